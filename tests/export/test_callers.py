"""What a caller of a loaded SavedModel meets: the integer dtypes it passes, and its mistakes.

Each exported model is loaded here with `tf.saved_model.load` (plain TensorFlow; the process
without tfp_flows is `test_export.py`'s). The sweeps build every signature's inputs from its
own input specs, so a new signature or input is covered without an edit here.
"""

import numpy as np
import pytest
import tensorflow as tf

import tfp_flows
from tfp_flows.export import export_saved_model

_INPUT_ERRORS = (TypeError, ValueError, tf.errors.InvalidArgumentError)
MODELS = {
    'real_nvp_conditional': lambda: (
        tfp_flows.real_nvp(
            (8, 8, 1), num_levels=1, num_steps=1, hidden_channels=8, conditional_shape=(3,)
        ),
        256,
    ),
    'vector': lambda: (tfp_flows.real_nvp((2,), num_steps=1, hidden_channels=8), None),
}


@pytest.fixture(scope='module', params=sorted(MODELS))
def loaded(request, tmp_path_factory):
    flow, num_bins = MODELS[request.param]()
    path = export_saved_model(flow, tmp_path_factory.mktemp('export') / 'm', num_bins=num_bins)
    return tf.saved_model.load(path)


def _good_value(name, spec):
    """A valid input of `spec` (a batch of 2 where its batch size is free)."""
    shape = [2 if d is None else d for d in spec.shape.as_list()]
    values = {'num_samples': 2, 'temperature': 0.7, 'seed': [1, 2]}
    if name in values:
        return tf.constant(values[name], spec.dtype)
    return tf.zeros(shape, spec.dtype)  # x, z, pixels, conditional_input: zeros are valid.


def _inputs(loaded, signature):
    """{input name: a valid tensor} of `loaded.signatures[signature]`."""
    _, specs = loaded.signatures[signature].structured_input_signature
    return {name: _good_value(name, spec) for name, spec in specs.items()}


def _functions(loaded):
    return sorted(set(loaded.signatures) - {'serving_default'})


def test_the_handed_case_a_seed_of_tf_constant_samples(loaded):
    inputs = _inputs(loaded, 'sample')
    inputs['seed'] = tf.constant([0, 1])
    x = loaded.sample(**inputs)['x']
    np.testing.assert_array_equal(loaded.signatures['sample'](**inputs)['x'], x)


def _integer_forms(value):
    """The forms a caller naturally passes an integer input in, all meaning `value`."""
    numpy = value.numpy()
    return {
        'python': numpy.tolist(),
        'tf.constant': tf.constant(numpy.tolist()),
        'numpy int64': numpy.astype(np.int64),
        'numpy int32': numpy.astype(np.int32),
    }


def test_every_integer_input_takes_python_tf_constant_and_numpy_integers(loaded):
    for signature in _functions(loaded):
        inputs = _inputs(loaded, signature)
        expected = loaded.signatures[signature](**inputs)
        for name, value in inputs.items():
            if not value.dtype.is_integer:
                continue
            for form, other in _integer_forms(value).items():
                outputs = getattr(loaded, signature)(**{**inputs, name: other})
                for key, result in outputs.items():
                    np.testing.assert_array_equal(
                        result, expected[key], err_msg=f'{signature}({name}={form})'
                    )
            as_tf = {**inputs, name: tf.constant(value.numpy().tolist())}
            loaded.signatures[signature](**as_tf)


def _mistakes(inputs, name):
    """{mistake: the inputs with `name` wrong in that way (None: left out)}."""
    value = inputs[name]
    other_dtype = tf.float16 if value.dtype.is_integer else tf.int64
    return {
        'wrong rank': {**inputs, name: value[tf.newaxis]},
        'wrong dtype': {**inputs, name: tf.cast(value, other_dtype)},
        'missing': {key: v for key, v in inputs.items() if key != name},
    }


def _raises(call, what):
    with pytest.raises(_INPUT_ERRORS) as raised:
        call()
    return str(raised.value), what


@pytest.mark.parametrize('mistake', ['wrong rank', 'wrong dtype', 'missing'])
def test_every_input_of_every_signature_refused_naming_it(loaded, mistake):
    """The message names the input, in its first line (TensorFlow's binding, which prints
    the inputs after it) or its last two (a check in the graph); a wrong dtype through
    `loaded.signatures` is named by its position, as TensorFlow does."""
    for signature in _functions(loaded):
        inputs = _inputs(loaded, signature)
        for position, name in enumerate(sorted(inputs)):
            wrong = _mistakes(inputs, name)[mistake]
            for way, call in (
                ('function', lambda w=wrong, s=signature: getattr(loaded, s)(**w)),
                ('signature', lambda w=wrong, s=signature: loaded.signatures[s](**w)),
            ):
                message, what = _raises(call, f'{signature}: {name} {mistake} ({way})')
                lines = message.strip().splitlines()
                if (way, mistake) == ('signature', 'wrong dtype'):
                    named = f'input #{position}(zero-based)'
                else:
                    named = name
                # TF's binding names it on its first line; a failed check, on its last two.
                binding = message.startswith('Binding inputs')
                assert named in ' '.join(lines[:1] if binding else lines[-2:]), (what, message)


def test_tflite_keeps_the_numbers_but_drops_the_checks_as_documented(tmp_path):
    """The export docstring's TFLite paragraph: x = 1.5 gives a number where the SavedModel
    raises."""
    flow = tfp_flows.glow((4, 4, 1), num_levels=1, num_steps=1, hidden_channels=8)
    path = export_saved_model(flow, tmp_path / 'm', num_bins=256)
    converter = tf.lite.TFLiteConverter.from_saved_model(path, signature_keys=['log_prob'])
    log_prob = tf.lite.Interpreter(model_content=converter.convert())
    log_prob = log_prob.get_signature_runner('log_prob')
    x = np.full((2, 4, 4, 1), 0.5, np.float32)
    np.testing.assert_allclose(log_prob(x=x)['log_prob'], flow.log_prob(x), rtol=1e-5)
    x[0, 0, 0, 0] = 1.5
    assert np.isfinite(log_prob(x=x)['log_prob']).all()
    loaded = tf.saved_model.load(path)
    with pytest.raises(tf.errors.InvalidArgumentError, match='in \\[0, 1\\]'):
        loaded.log_prob(x)
