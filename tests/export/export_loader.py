"""Loads exported flows in a process that imports only TensorFlow, and checks their numbers.

Run by tests/test_export.py as `python export_loader.py`, with one directory per line on stdin,
sent as soon as each is written (this process imports TensorFlow meanwhile). Each directory
holds a SavedModel `saved_model/` written by `tfp_flows.export.export_saved_model`, and
`expected.npz`, the in-memory model's numbers: `x` (a data batch), `log_prob` and `z`
(`flow.log_prob(x)` and `flow.bijector.inverse(x)`), `bits_per_dim` when exported with
`num_bins` (then also `pixels`, discrete images, and `bits_per_dim_iw`, the in-memory
importance-weighted bits/dim of them for `iw_num_samples` draws and `iw_seed`, with the
exported dequantizer), `sample` (the in-memory `FlowModule.sample` for `num_samples`,
`temperature` and `seed`), and `bad_x` (a batch of the wrong event shape). For a conditional
flow it also holds `conditional_input` (the contexts of `x`, which every number above is
computed with), `sample_conditional_input` (those of the samples) and `log_prob_one_context`
(`log_prob` of `x` all under its first context, passed as one row). At the end of stdin it
prints one JSON line,

    {"models": {DIRECTORY: "ok" or the failure's traceback},
     "modules": {"tfp_flows": imported?, "tensorflow_probability": imported?}}

and exits with status 1 if a check failed.
"""

import json
import os
import sys
import traceback

import numpy as np
import tensorflow as tf

_INPUT_ERRORS = (ValueError, TypeError, tf.errors.InvalidArgumentError)
_TOLERANCES = {  # dtype: (rtol, atol) of numbers that the loaded and in-memory model compute.
    np.dtype('float32'): (1e-5, 1e-4),
    np.dtype('float64'): (1e-10, 1e-9),
}


def _fails(call, what, message=None):
    """Asserts that `call()` raises TensorFlow's shape, dtype or value error (with `message`
    in it, if given)."""
    try:
        result = call()
    except _INPUT_ERRORS as error:
        if message is not None and message not in str(error):
            raise AssertionError(f'{what} failed without {message!r}: {error}') from error
        return
    raise AssertionError(f'{what} did not fail; it returned {result!r}.')


def _context(expected, key='conditional_input'):
    """The positional context arguments of a conditional flow's functions: () or (c,)."""
    return (expected[key],) if key in expected else ()


def _named(context):
    """The context as a signature's keyword input: {} or {'conditional_input': c}."""
    return {'conditional_input': tf.constant(context[0])} if context else {}


def _check_signatures(loaded, x, has_bits_per_dim, context):
    dtype = tf.as_dtype(x.dtype)
    names = {'log_prob', 'sample', 'encode', 'decode', 'serving_default'}
    if has_bits_per_dim:
        names |= {'bits_per_dim', 'bits_per_dim_iw'}
    assert set(loaded.signatures) == names, sorted(loaded.signatures)
    data_spec = [None, *x.shape[1:]]
    context_specs = {}
    if context:
        context_specs['conditional_input'] = ([None, *context[0].shape[1:]], dtype)
    for name in names - {'sample', 'bits_per_dim_iw'}:
        _, inputs = loaded.signatures[name].structured_input_signature
        shapes = {key: (spec.shape.as_list(), spec.dtype) for key, spec in inputs.items()}
        value = 'z' if name == 'decode' else 'x'
        assert shapes == {value: (data_spec, dtype), **context_specs}, (name, shapes)
    _, inputs = loaded.signatures['sample'].structured_input_signature
    shapes = {key: (spec.shape.as_list(), spec.dtype) for key, spec in inputs.items()}
    expected = {'num_samples': ([], tf.int32), 'temperature': ([], dtype), 'seed': ([2], tf.int32)}
    assert shapes == {**expected, **context_specs}, shapes
    for name in ('log_prob', 'serving_default'):
        outputs = loaded.signatures[name].structured_outputs
        assert list(outputs) == ['log_prob'], (name, outputs)
    if has_bits_per_dim:
        _, inputs = loaded.signatures['bits_per_dim_iw'].structured_input_signature
        shapes = {key: (spec.shape.as_list(), spec.dtype) for key, spec in inputs.items()}
        expected = {
            'pixels': (data_spec, tf.int32),
            'num_samples': ([], tf.int32),
            'seed': ([2], tf.int32),
            **context_specs,
        }
        assert shapes == expected, shapes
        outputs = loaded.signatures['bits_per_dim_iw'].structured_outputs
        assert list(outputs) == ['bits_per_dim'], outputs


def _check_numbers(loaded, expected):
    # Each function runs once, through its signature or its restored `tf.function` (their first
    # calls build and optimise a graph, ~1 s each for Glow); 'serving_default' is `log_prob`.
    x = expected['x']
    rtol, atol = _TOLERANCES[x.dtype]
    signatures = loaded.signatures
    tensor = tf.constant(x)
    context = _context(expected)
    named = _named(context)
    for log_prob in (
        loaded.log_prob(x, *context)['log_prob'],
        signatures['log_prob'](x=tensor, **named)['log_prob'],
    ):
        assert log_prob.shape == [len(x)], log_prob.shape
        np.testing.assert_allclose(log_prob, expected['log_prob'], rtol=rtol, atol=atol)
    if 'bits_per_dim' in expected:
        bits = signatures['bits_per_dim'](x=tensor, **named)['bits_per_dim']
        np.testing.assert_allclose(bits, expected['bits_per_dim'], rtol=rtol, atol=atol)
        iw_args = (expected['pixels'], int(expected['iw_num_samples']), expected['iw_seed'])
        iw = signatures['bits_per_dim_iw'](
            pixels=tf.constant(iw_args[0]),
            num_samples=tf.constant(iw_args[1]),
            seed=tf.constant(iw_args[2], tf.int32),
            **named,
        )['bits_per_dim']
        np.testing.assert_allclose(iw, expected['bits_per_dim_iw'], rtol=rtol, atol=atol)
        iw_function = loaded.bits_per_dim_iw(*iw_args, *context)['bits_per_dim']
        np.testing.assert_array_equal(iw_function, iw)
    z = signatures['encode'](x=tensor, **named)['z']
    assert z.shape == x.shape, z.shape
    np.testing.assert_allclose(z, expected['z'], rtol=rtol, atol=atol)
    np.testing.assert_allclose(loaded.decode(z, *context)['x'], x, rtol=rtol, atol=atol)
    if context:  # One context row for the whole batch.
        log_prob = loaded.log_prob(x, context[0][:1])['log_prob']
        np.testing.assert_allclose(log_prob, expected['log_prob_one_context'], rtol=rtol, atol=atol)


def _check_sample(loaded, expected):
    num_samples, temperature = int(expected['num_samples']), float(expected['temperature'])
    seed = expected['seed']
    context = _context(expected, 'sample_conditional_input')
    named = _named(context)
    first = loaded.sample(num_samples, temperature, seed, *context)['x']
    second = loaded.signatures['sample'](
        num_samples=tf.constant(num_samples, tf.int32),
        temperature=tf.constant(temperature, first.dtype),
        seed=tf.constant(seed, tf.int32),
        **named,
    )['x']
    assert first.shape == expected['sample'].shape, first.shape
    assert np.all(np.isfinite(first))
    np.testing.assert_array_equal(first, second)  # Reproducible in this process.
    rtol, atol = _TOLERANCES[expected['x'].dtype]
    np.testing.assert_allclose(first, expected['sample'], rtol=rtol, atol=atol)
    other = loaded.sample(num_samples, temperature, seed + 1, *context)['x']
    assert not np.allclose(first, other), 'another seed gave the same samples'


def _check_bad_inputs(loaded, expected):
    x = expected['x']
    signatures = loaded.signatures
    context = _context(expected)
    named = _named(context)
    other_float = np.float64 if x.dtype == np.float32 else np.float32
    cases = {
        'event shape': tf.constant(expected['bad_x']),
        'missing batch axis': tf.constant(x[0]),
        'other float dtype': tf.constant(x.astype(other_float)),
        'int32': tf.zeros(x.shape, tf.int32),
    }
    for case, value in cases.items():  # Through the functions `_check_numbers` ran.
        _fails(lambda v=value: loaded.log_prob(v, *context), f'log_prob with a bad {case}')
        _fails(
            lambda v=value: signatures['log_prob'](x=v, **named), f'log_prob signature, bad {case}'
        )
        _fails(lambda v=value: signatures['encode'](x=v, **named), f'encode signature, bad {case}')
        _fails(lambda v=value: loaded.decode(v, *context), f'decode with a bad {case}')
        if 'bits_per_dim' in signatures:
            _fails(
                lambda v=value: signatures['bits_per_dim'](x=v, **named),
                f'bits_per_dim, bad {case}',
            )
    _fails(
        lambda: loaded.log_prob(expected['bad_x'], *context),
        'log_prob of a NumPy batch of bad shape',
    )
    if 'bits_per_dim' in signatures:  # Data in [0, 1]: raw pixels and NaN are caught.
        in_range = '`x` must be values in [0, 1] (dequantized data)'
        _fails(
            lambda: loaded.log_prob(x * 255.0, *context), 'log_prob of pixels in [0, 255]', in_range
        )
        _fails(lambda: loaded.encode(np.full_like(x, np.nan), *context), 'encode of NaN', in_range)
        bits = signatures['bits_per_dim']
        _fails(lambda: bits(x=tf.constant(x - 1.0), **named), 'bits_per_dim of x < 0', in_range)
        pixels, iw_seed = expected['pixels'], expected['iw_seed']
        iw_cases = {
            'a pixel of -1': (pixels - 1, 1, iw_seed),
            'a pixel of num_bins': (pixels * 0 + 10_000, 1, iw_seed),
            'num_samples 0': (pixels, 0, iw_seed),
            'pixels of a bad event shape': (pixels[:, ::2], 1, iw_seed),
            'a seed of shape [3]': (pixels, 1, np.array([1, 2, 3], np.int64)),
        }
        for case, args in iw_cases.items():
            _fails(
                lambda a=args: loaded.bits_per_dim_iw(*a, *context), f'bits_per_dim_iw with {case}'
            )
    else:  # Any finite data: NaN and infinities are caught.
        finite = '`x` must be finite values'
        nan_x = x.copy()
        nan_x[0, 0] = np.nan
        _fails(lambda: loaded.log_prob(nan_x, *context), 'log_prob of NaN', finite)
        _fails(lambda: signatures['encode'](x=tf.constant(nan_x), **named), 'encode of NaN', finite)
    inf_z = x.copy()
    inf_z.flat[0] = np.inf
    finite_z = '`z` must be finite values'
    _fails(lambda: loaded.decode(inf_z, *context), 'decode of inf', finite_z)
    _fails(
        lambda: signatures['decode'](z=tf.constant(inf_z), **named),
        'decode signature of inf',
        finite_z,
    )
    if context:
        (c,) = context
        bad_contexts = {
            'context of another shape': np.concatenate([c, c], axis=-1),
            'context of another batch size': c[:-1],
            'context without a batch axis': c[0],
        }
        for case, value in bad_contexts.items():
            _fails(lambda v=value: loaded.log_prob(x, v), f'log_prob with a {case}')
            _fails(lambda v=value: loaded.decode(x, v), f'decode with a {case}')
            _fails(
                lambda v=value: signatures['encode'](x=tf.constant(x), conditional_input=v),
                f'encode signature with a {case}',
            )
        _fails(lambda: signatures['log_prob'](x=tf.constant(x)), 'log_prob without a context')
        _fails(lambda: loaded.log_prob(x), 'log_prob function without a context')
        rows = '`conditional_input` must be one context per example or one for all'
        calls = {'log_prob': loaded.log_prob, 'encode': loaded.encode, 'decode': loaded.decode}
        if 'bits_per_dim' in signatures:
            calls['bits_per_dim'] = loaded.bits_per_dim
        for name, call in calls.items():  # Each names the input and what it expected.
            _fails(lambda f=call: f(x, c[:-1]), f'{name} with a context per example but one', rows)
        finite = '`conditional_input` must be finite values'
        _fails(lambda: loaded.log_prob(x, c * np.nan), 'log_prob with a NaN context', finite)
    seed, dtype = expected['seed'], tf.as_dtype(x.dtype)
    sample = signatures['sample']
    sample_context = _context(expected, 'sample_conditional_input')
    good = dict(
        num_samples=tf.constant(2),
        temperature=tf.constant(1.0, dtype),
        seed=tf.constant(seed, tf.int32),
        **_named(tuple(c[:2] for c in sample_context)),
    )
    bad = {
        'seed of shape [3]': dict(seed=tf.constant([1, 2, 3])),
        'int64 seed': dict(seed=tf.constant([1, 2], tf.int64)),
        'float num_samples': dict(num_samples=tf.constant(2.0)),
        'num_samples of shape [1]': dict(num_samples=tf.constant([2])),
        'temperature of another dtype': dict(temperature=tf.constant(1.0, tf.float16)),
    }
    if sample_context:
        bad['context of 3 rows for 2 samples'] = dict(
            conditional_input=tf.constant(sample_context[0][:3])
        )
    for case, change in bad.items():
        _fails(lambda c=change: sample(**{**good, **c}), f'sample signature with {case}')
    if sample_context:
        three = {**good, 'conditional_input': tf.constant(sample_context[0][:3])}
        rows = '`conditional_input` must be one context per example or one for all'
        _fails(lambda: sample(**three), 'sample of 2 with 3 contexts', rows)
    two = tuple(c[:2] for c in sample_context)  # The context of 2 samples, or ().
    # Values outside the domains, refused by name (issue 10: inf was taken).
    message = '`temperature` must be'
    for value in [np.inf, np.nan, 0.0, -1.0]:
        change = dict(temperature=tf.constant(value, dtype))
        _fails(lambda c=change: sample(**{**good, **c}), f'sample at {value}', message)
        _fails(
            lambda v=value: loaded.sample(2, v, seed, *two), f'sample function at {value}', message
        )
    num_samples = '`num_samples` must be an int >= 0'
    change = dict(num_samples=tf.constant(-1))
    _fails(lambda: sample(**{**good, **change}), 'sample of -1 samples', num_samples)
    _fails(lambda: loaded.sample(-1, 1.0, seed, *two), 'sample function of -1 samples', num_samples)
    _fails(lambda: loaded.sample(2, 1.0, [1, 2, 3], *two), 'sample with a seed of shape [3]')
    no_samples = loaded.sample(0, 1.0, seed, *(c[:0] for c in sample_context))
    assert no_samples['x'].shape[0] == 0  # No samples is a valid request.


def check_model(directory):
    """Runs every check on the export in `directory`; raises AssertionError on a mismatch."""
    with np.load(os.path.join(directory, 'expected.npz')) as archive:
        expected = dict(archive)
    loaded = tf.saved_model.load(os.path.join(directory, 'saved_model'))
    _check_signatures(loaded, expected['x'], 'bits_per_dim' in expected, _context(expected))
    _check_numbers(loaded, expected)
    _check_sample(loaded, expected)
    _check_bad_inputs(loaded, expected)


def main():
    report = {'models': {}}
    while directory := sys.stdin.readline().strip():
        try:
            check_model(directory)
            report['models'][directory] = 'ok'
        except Exception:  # Each model's failure goes into the report.
            report['models'][directory] = traceback.format_exc()
    report['modules'] = {
        module: module in sys.modules for module in ('tfp_flows', 'tensorflow_probability')
    }
    print(json.dumps(report))
    ok = all(result == 'ok' for result in report['models'].values())
    return 0 if ok and not any(report['modules'].values()) else 1


if __name__ == '__main__':
    sys.exit(main())
