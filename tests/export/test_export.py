"""Tests of tfp_flows/export.py: the SavedModel, reloaded in a process without tfp_flows."""

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfp_flows
from tfp_flows import dense_conv
from tfp_flows.dequantization import importance_weighted_bits_per_dim
from tfp_flows.dequantization.variational import VariationalDequantizer
from tfp_flows.export import FlowModule, export_saved_model

tfb = tfp.bijectors
tfd = tfp.distributions

LOADER = Path(__file__).with_name('export_loader.py')
NUM_BINS = 256
SAMPLE = dict(num_samples=3, temperature=0.7, seed=np.array([5, 6], np.int64))
IMPORTANCE_WEIGHTED = dict(iw_num_samples=3, iw_seed=np.array([7, 8], np.int64))
# The saved_model_cli commands after their first word: `show` as the README gives it (`--dir`
# added), `run` as export.py's docstring example (tests/test_docstring_examples.py) with its
# PATH, which the README gives with other paths.
SHOW = ['show', '--all']
_RUN_EXAMPLE = tfp_flows.export.__doc__.split('\n    saved_model_cli ')[1].split('\n\n')[0]
RUN = _RUN_EXAMPLE.replace('\\\n', ' ').split()


def _image_data(event_shape, dtype, seed):
    return np.random.default_rng(seed).uniform(size=[16, *event_shape]).astype(dtype)


def _vector_data(event_shape, dtype, seed):
    return np.random.default_rng(seed).normal(size=[16, *event_shape]).astype(dtype)


def _glow_with_variational_dequantizer():
    # Mixture-of-logistics couplings: decoding bisects in a while loop of plain TF ops.
    flow = tfp_flows.glow(
        event_shape=(8, 8, 1),
        num_levels=1,
        num_steps=1,
        hidden_channels=8,
        coupling='logistic_mixture',
    )
    dequantizer = VariationalDequantizer(
        (8, 8, 1), NUM_BINS, num_steps=2, hidden_channels=8, context_channels=2
    )
    return flow, dequantizer


# name: (build the flow (or (flow, dequantizer)), make data, num_bins, build under
# MirroredStrategy)
MODELS = {
    'real_nvp': (  # With a residual block in each coupling network (one in the loop below).
        lambda: tfp_flows.real_nvp(
            event_shape=(8, 8, 1), num_levels=2, num_steps=1, hidden_channels=16, residual_blocks=1
        ),
        _image_data,
        NUM_BINS,
        False,
    ),
    'glow_variational': (_glow_with_variational_dequantizer, _image_data, NUM_BINS, False),
    # A Glow whose level loops over its steps (`loop=True`: a while loop in the SavedModel),
    # its passes through the flow compiled with XLA (`jit_compile=True`); one level, as each
    # pass compiles again in the loader.
    'glow_xla': (
        lambda: tfp_flows.glow(
            event_shape=(8, 8, 1),
            num_levels=1,
            num_steps=2,
            hidden_channels=16,
            loop=True,
            residual_blocks=1,
        ),
        _image_data,
        NUM_BINS,
        False,
    ),
    # Any base distribution exports, not only a standard Normal; variables of a strategy too.
    'vector_other_base_mirrored': (
        lambda: tfd.TransformedDistribution(
            tfd.Sample(tfd.Normal(0.5, 2.0), [2]),
            tfp_flows.real_nvp(event_shape=(2,), num_steps=2, hidden_channels=16).bijector,
        ),
        _vector_data,
        None,
        True,
    ),
    # Conditional flows: every signature takes `conditional_input`.
    'glow_conditional': (
        lambda: tfp_flows.glow(
            event_shape=(8, 8, 1),
            num_levels=2,
            num_steps=1,
            hidden_channels=8,
            conditional_shape=(3,),
            learn_top_prior=True,
        ),
        _image_data,
        NUM_BINS,
        False,
    ),
    # Spline couplings: TFP's spline exports as plain TensorFlow ops.
    'vector_conditional_float64_spline': (
        lambda: tfp_flows.real_nvp(
            event_shape=(3,),
            num_steps=2,
            hidden_channels=16,
            conditional_shape=(2, 2),
            dtype=tf.float64,
            coupling='spline',
            spline_bound=1.0,  # Standard Normal data: the values both in and outside [-B, B].
        ),
        _vector_data,
        None,
        False,
    ),
}


def _flow_and_dequantizer(built):
    return built if isinstance(built, tuple) else (built, None)


def _move_at_random(module, seed):
    rng = np.random.default_rng(seed)
    for variable in module.trainable_variables:
        noise = 0.05 * rng.standard_normal(variable.shape)
        variable.assign_add(noise.astype(variable.dtype.as_numpy_dtype))


def _contexts(flow, num, seed):
    """`num` random contexts for a conditional `flow`, or None for an unconditional one."""
    shape = tfp_flows.conditional_shape_of(flow)
    if shape is None:
        return None
    rng = np.random.default_rng(seed)
    return rng.normal(size=[num, *shape]).astype(flow.dtype.as_numpy_dtype)


def _trained_looking(flow, make_data, seed=0):
    """Runs ActNorm's data-dependent init, then moves every trainable variable at random.

    Returns the data and, for a conditional flow, its contexts (else None).
    """
    data = make_data(flow.event_shape, flow.dtype.as_numpy_dtype, seed)
    contexts = _contexts(flow, len(data), seed + 2)
    tfp_flows.initialize(flow, data, conditional_input=contexts)
    rng = np.random.default_rng(seed + 1)
    for variable in flow.trainable_variables:
        scale = 0.5 if 'context_prior' in variable.name else 0.05  # Let the context matter.
        noise = scale * rng.standard_normal(variable.shape)
        variable.assign_add(noise.astype(variable.dtype.as_numpy_dtype))
    return data, contexts


def _bad_shape(x):
    """A batch like `x` whose event has the wrong shape.

    For vectors [N, 1]: it broadcasts through a vector flow, so a signature called with it
    returns a number unless the exported functions check the shape at run time.
    """
    if x.ndim == 4:
        return x[:, ::2, ::2, :]
    return x[:, :1]


def _in_memory_sample(flow, context=None):
    """`FlowModule(flow).sample` run eagerly: the same code, without a slow trace."""
    tf.config.run_functions_eagerly(True)
    try:
        temperature = tf.constant(SAMPLE['temperature'], flow.dtype)  # Eager: no casting.
        context = () if context is None else (context,)
        samples = FlowModule(flow).sample(
            SAMPLE['num_samples'], temperature, SAMPLE['seed'], *context
        )
        return samples['x'].numpy()
    finally:
        tf.config.run_functions_eagerly(False)


def _export_with_expected_numbers(name, directory):
    """Builds model `name`, exports it to `directory`/saved_model, writes expected.npz."""
    build, make_data, num_bins, mirrored = MODELS[name]
    strategy = tf.distribute.MirroredStrategy() if mirrored else tf.distribute.get_strategy()
    with strategy.scope():
        flow, dequantizer = _flow_and_dequantizer(build())
        data, contexts = _trained_looking(flow, make_data)
        if dequantizer is not None:
            _move_at_random(dequantizer, seed=3)
        path = export_saved_model(
            flow,
            directory / 'saved_model',
            num_bins=num_bins,
            dequantizer=dequantizer,
            jit_compile=name == 'glow_xla',
        )
        x = data[:4]
        kwargs, sample_context, conditional = {}, None, {}
        if contexts is not None:
            kwargs = {'conditional_input': contexts[:4]}
            sample_context = _contexts(flow, SAMPLE['num_samples'], seed=5)
            conditional = dict(
                conditional_input=contexts[:4],
                sample_conditional_input=sample_context,
                log_prob_one_context=flow.log_prob(
                    x, bijector_kwargs={'conditional_input': contexts[0]}
                ).numpy(),
            )
        expected = dict(
            x=x,
            log_prob=flow.log_prob(x, bijector_kwargs=kwargs).numpy(),
            z=flow.bijector.inverse(x, **kwargs).numpy(),
            sample=_in_memory_sample(flow, sample_context),
            bad_x=_bad_shape(x),
            **SAMPLE,
            **conditional,
        )
    if num_bins is not None:
        num_dims = int(np.prod(flow.event_shape))
        pixels = np.floor(x * num_bins).astype(np.int32)
        log_q = 0.0
        if dequantizer is not None:  # The noise x dequantizes, scored by the dequantizer.
            log_q = dequantizer.log_prob(x * num_bins - pixels, pixels).numpy()
        expected['bits_per_dim'] = tfp_flows.bits_per_dim(
            expected['log_prob'] - log_q, num_dims, num_bins
        ).numpy()
        expected.update(pixels=pixels, **IMPORTANCE_WEIGHTED)
        expected['bits_per_dim_iw'] = importance_weighted_bits_per_dim(
            flow,
            dequantizer,
            pixels,
            num_bins,
            IMPORTANCE_WEIGHTED['iw_num_samples'],
            IMPORTANCE_WEIGHTED['iw_seed'],
            bijector_kwargs=kwargs or None,
        ).numpy()
    np.savez(directory / 'expected.npz', **expected)
    return flow, dequantizer, path


def _saved_model_cli():
    executable = shutil.which('saved_model_cli')
    if executable:
        return [executable]
    return [sys.executable, '-m', 'tensorflow.python.tools.saved_model_cli']


def _start(command, **kwargs):
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs
    )


def _finish(process):
    stdout, stderr = process.communicate(timeout=600)
    return types.SimpleNamespace(returncode=process.returncode, stdout=stdout, stderr=stderr)


def _export_and_check_in_other_processes(root):
    """Every model of MODELS exported under `root`, then checked by export_loader.py and
    saved_model_cli, which start early and overlap the exports (each spends ~10 s importing
    TensorFlow); the loader gets each model's directory as soon as it is written."""
    loader = _start([sys.executable, str(LOADER)], stdin=subprocess.PIPE)
    flows, dequantizers, paths, cli = {}, {}, {}, {}
    try:
        for name in MODELS:
            flows[name], dequantizers[name], paths[name] = _export_with_expected_numbers(
                name, root / name
            )
            loader.stdin.write(f'{root / name}\n')
            loader.stdin.flush()
            if name == 'real_nvp':
                batch = np.random.default_rng(0).uniform(size=(2, 8, 8, 1)).astype('f4')
                np.save(root / 'batch.npy', batch)  # As the docstring says, where it runs.
                cli_log_prob = flows[name].log_prob(batch).numpy()
                cli['show'] = _start([*_saved_model_cli(), *SHOW, '--dir', paths[name]])
                run = [paths[name] if word == 'PATH' else word for word in RUN]
                cli['run'] = _start([*_saved_model_cli(), *run], cwd=root)
    except BaseException:
        for process in [loader, *cli.values()]:
            process.kill()
            process.communicate()
        raise
    loader_result = _finish(loader)
    lines = loader_result.stdout.strip().splitlines()
    assert lines, loader_result.stderr[-3000:]
    report = json.loads(lines[-1])
    report['models'] = {Path(key).name: value for key, value in report['models'].items()}
    return types.SimpleNamespace(
        flows=flows,
        dequantizers=dequantizers,
        paths=paths,
        report=report,
        loader=loader_result,
        cli_log_prob=cli_log_prob,
        **{name: _finish(process) for name, process in cli.items()},
    )


def test_exports_reload_without_tfp_flows_and_give_the_in_memory_numbers(tmp_path):
    # One test, so that pytest-xdist exports once. export_loader.py checks, per model,
    # log_prob, bits/dim, encode/decode, seeded samples and the signature specs, and that bad
    # shapes, dtypes and values (contexts too) fail, naming the input.
    exported = _export_and_check_in_other_processes(tmp_path)
    failed = {name: result for name, result in exported.report['models'].items() if result != 'ok'}
    assert set(exported.report['models']) == set(MODELS) and not failed, failed
    assert exported.report['modules'] == {'tfp_flows': False, 'tensorflow_probability': False}
    assert exported.loader.returncode == 0, exported.loader.stderr[-3000:]
    variables = exported.flows['vector_other_base_mirrored'].variables
    assert variables and all(isinstance(v, tf.distribute.DistributedValues) for v in variables)
    for name in MODELS:
        _assert_every_variable_and_the_actnorm_flags_saved(exported, name)
    _assert_the_passes_and_only_they_compile_with_xla(exported.paths)
    _assert_only_core_tensorflow_ops(exported.paths['vector_conditional_float64_spline'])
    _assert_saved_model_cli_shows_the_signatures(exported.show)
    _assert_saved_model_cli_runs_log_prob(exported.run, exported.cli_log_prob)


def _assert_every_variable_and_the_actnorm_flags_saved(exported, name):
    flow, dequantizer = exported.flows[name], exported.dequantizers[name]
    reader = tf.train.load_checkpoint(os.path.join(exported.paths[name], 'variables', 'variables'))
    keys = [
        k for k in reader.get_variable_to_shape_map() if k.endswith('/.ATTRIBUTES/VARIABLE_VALUE')
    ]
    assert len(keys) == len(flow.variables) + len(dequantizer.variables if dequantizer else [])
    flags = [k for k in keys if '/initialized/' in k]
    num_actnorms = sum(v.name.endswith('initialized:0') for v in flow.variables)
    assert num_actnorms > 0 and len(flags) == num_actnorms, name
    assert all(np.all(reader.get_tensor(k)) for k in flags), name  # [K] in a looped level.


def _saved_model(path):
    """The SavedModel proto of the export at `path`."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(path, 'saved_model.pb'), 'rb') as f:
        saved_model.ParseFromString(f.read())
    return saved_model


def _xla_compiled_functions(path):
    """Names of the SavedModel's functions marked for XLA compilation."""
    library = _saved_model(path).meta_graphs[0].graph_def.library
    return [
        f.signature.name
        for f in library.function
        if f.attr.get('_XlaMustCompile') is not None and f.attr['_XlaMustCompile'].b
    ]


def _assert_only_core_tensorflow_ops(path):
    # Every op type of the graph and its functions is one of TensorFlow's own (`tf.raw_ops`),
    # so the SavedModel needs no library to load; UpperBound is the spline's bin search.
    library = _saved_model(path).meta_graphs[0].graph_def.library
    functions = {f.signature.name for f in library.function}
    nodes = [*_saved_model(path).meta_graphs[0].graph_def.node]
    nodes += [node for f in library.function for node in f.node_def]
    types = {node.op for node in nodes} - functions
    assert 'UpperBound' in types and not [t for t in types if not hasattr(tf.raw_ops, t)], types


def _assert_the_passes_and_only_they_compile_with_xla(paths):
    # Traced functions are named after the Python functions: `_encode_pass` runs
    # `_latent_and_log_density`, `_decode_pass` runs `_data`.
    compiled = _xla_compiled_functions(paths['glow_xla'])
    assert len(compiled) == 2, compiled
    assert any('_latent_and_log_density' in name for name in compiled), compiled
    assert any('_data' in name for name in compiled), compiled
    assert not _xla_compiled_functions(paths['real_nvp'])


def _assert_saved_model_cli_shows_the_signatures(result):
    assert result.returncode == 0, result.stderr[-3000:]
    for name in (
        'log_prob',
        'bits_per_dim',
        'bits_per_dim_iw',
        'sample',
        'encode',
        'decode',
        'serving_default',
    ):
        assert f"signature_def['{name}']:" in result.stdout
    assert re.search(
        r"inputs\['x'\] tensor_info:\s+dtype: DT_FLOAT\s+shape: \(-1, 8, 8, 1\)", result.stdout
    )
    assert re.search(
        r"inputs\['seed'\] tensor_info:\s+dtype: DT_INT32\s+shape: \(2\)", result.stdout
    )
    assert "outputs['log_prob'] tensor_info:" in result.stdout


def _assert_saved_model_cli_runs_log_prob(result, log_prob):
    assert result.returncode == 0, result.stderr[-3000:]
    match = re.search(r'Result for output key log_prob:\s*\[([^\]]*)\]', result.stdout)
    assert match, result.stdout
    values = np.array(match.group(1).split(), float)
    assert values.shape == (2,)
    np.testing.assert_allclose(values, log_prob, rtol=1e-4)  # The in-memory flow's numbers.


@pytest.fixture(scope='module')
def vector_flow():
    flow = tfp_flows.real_nvp(event_shape=(2,), num_steps=2, hidden_channels=8)
    _trained_looking(flow, _vector_data)
    return flow


def test_a_conditional_module_decodes_what_it_encodes_given_the_context():
    flow = MODELS['vector_conditional_float64_spline'][0]()
    _trained_looking(flow, _vector_data)
    module = FlowModule(flow)
    assert module.conditional_shape == (2, 2)
    x = _vector_data((3,), np.float64, 3)[:4]
    contexts = _contexts(flow, 4, seed=6)
    z = module.encode(x, contexts)['z']
    np.testing.assert_allclose(z, flow.bijector.inverse(x, conditional_input=contexts))
    np.testing.assert_allclose(module.decode(z, contexts)['x'], x, rtol=1e-10)
    other = module.log_prob(x, contexts[::-1])['log_prob']
    assert not np.allclose(other, module.log_prob(x, contexts)['log_prob'])


@pytest.mark.parametrize('coupling', ['affine', 'logistic_mixture'])
def test_an_xla_module_takes_products_per_tap_and_the_graph_modules_numbers(monkeypatch, coupling):
    # `jit_compile=True` traces its passes in `networks.tap_products()` (the 4x4 maps of the
    # level); the checks and sampling outside stay as they are, and so do the numbers.
    calls = []
    ours = dense_conv.tap_conv3x3
    monkeypatch.setattr(dense_conv, 'tap_conv3x3', lambda *a: calls.append(1) or ours(*a))
    flow = tfp_flows.glow(
        (8, 8, 1), num_levels=1, num_steps=2, hidden_channels=8, coupling=coupling,
        conditional_shape=(3,), learn_top_prior=True,
    )  # fmt: skip
    x, contexts = _trained_looking(flow, _image_data)
    x, contexts, seed = x[:5], contexts[:5], np.array([1, 2])
    results = []
    for jit in (False, True):
        module = FlowModule(flow, num_bins=NUM_BINS, jit_compile=jit)
        del calls[:]
        z = module.encode(x, contexts)['z']
        results.append((
            module.bits_per_dim(x, contexts)['bits_per_dim'], z, module.decode(z, contexts)['x'],
            module.sample(3, 0.7, seed, contexts[:3])['x'],
        ))  # fmt: skip
        assert bool(calls) == jit
    for graph, xla in zip(*results, strict=True):
        np.testing.assert_allclose(xla, graph, rtol=1e-5, atol=1e-5)
    assert np.std(results[0][0]) > 1e-3  # Moved variables: not the identity's numbers.


def _entries(directory):
    return sorted(os.listdir(directory))


def test_export_refuses_an_existing_directory(vector_flow, tmp_path):
    path = tmp_path / 'model'
    path.mkdir()
    message = f'{re.escape(str(path))} already exists; .* pass overwrite=True to replace it'
    with pytest.raises(FileExistsError, match=message):
        export_saved_model(vector_flow, path)
    assert _entries(tmp_path) == ['model'] and _entries(path) == []


def test_export_refuses_to_replace_a_file(vector_flow, tmp_path):
    path = tmp_path / 'model'
    path.write_text('not a SavedModel')
    with pytest.raises(FileExistsError, match='exists and is not a directory; refusing'):
        export_saved_model(vector_flow, path, overwrite=True)
    assert path.read_text() == 'not a SavedModel'


def test_export_overwrite_replaces_the_directory(vector_flow, tmp_path):
    path = tmp_path / 'model'
    path.mkdir()
    (path / 'old_file').write_text('old')
    assert export_saved_model(vector_flow, path, overwrite=True) == str(path)
    assert 'old_file' not in _entries(path) and 'saved_model.pb' in _entries(path)
    assert _entries(tmp_path) == ['model']  # No temporary directory is left.


def _failing_save(module, export_dir, signatures=None):
    os.makedirs(os.path.join(export_dir, 'variables'))
    Path(export_dir, 'saved_model.pb').write_bytes(b'partial')
    raise RuntimeError('disk full')


def test_failed_export_leaves_nothing_at_the_path(vector_flow, tmp_path, monkeypatch):
    monkeypatch.setattr(tf.saved_model, 'save', _failing_save)
    with pytest.raises(RuntimeError, match='disk full'):
        export_saved_model(vector_flow, tmp_path / 'model')
    assert _entries(tmp_path) == []


def test_failed_overwrite_keeps_the_old_export(vector_flow, tmp_path, monkeypatch):
    path = tmp_path / 'model'
    path.mkdir()
    (path / 'old_file').write_text('old')
    monkeypatch.setattr(tf.saved_model, 'save', _failing_save)
    with pytest.raises(RuntimeError, match='disk full'):
        export_saved_model(vector_flow, path, overwrite=True)
    assert _entries(tmp_path) == ['model'] and _entries(path) == ['old_file']


def _save_without_error(module, export_dir, signatures=None):
    os.makedirs(export_dir)
    Path(export_dir, 'saved_model.pb').write_bytes(b'new')


def test_failed_rename_into_place_restores_the_old_export(vector_flow, tmp_path, monkeypatch):
    path = tmp_path / 'model'
    path.mkdir()
    (path / 'old_file').write_text('old')
    replace, moves_into_place = os.replace, []

    def replace_failing_into_place(source, destination):
        if os.fspath(destination) == str(path) and not moves_into_place:
            moves_into_place.append(source)  # The new export; the next one restores the old.
            raise OSError('rename failed')
        replace(source, destination)

    monkeypatch.setattr(tf.saved_model, 'save', _save_without_error)
    monkeypatch.setattr(os, 'replace', replace_failing_into_place)
    with pytest.raises(OSError, match='rename failed'):
        export_saved_model(vector_flow, path, overwrite=True)
    assert _entries(tmp_path) == ['model'] and _entries(path) == ['old_file']


@pytest.mark.parametrize('flow', [None, tfb.Exp()])
def test_export_rejects_what_is_not_a_flow(flow, tmp_path):
    with pytest.raises(TypeError, match='`flow` must be a `tfd.TransformedDistribution`'):
        export_saved_model(flow, tmp_path / 'model')


@pytest.mark.parametrize('num_bins', [1, 2.0, True, '256'])
def test_export_rejects_bad_num_bins(vector_flow, num_bins, tmp_path):
    with pytest.raises(ValueError, match=r'`num_bins` must be None or an int >= 2; got '):
        export_saved_model(vector_flow, tmp_path / 'model', num_bins=num_bins)
    assert _entries(tmp_path) == []


def test_export_and_load_log_no_note_per_bijector(vector_flow, tmp_path):
    # The structure saved for checkpoints is not part of a SavedModel (its functions have it
    # traced in): TensorFlow would otherwise note so once per bijector at save and warn at
    # every load. The flow keeps it for its own checkpoints.
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    tf.get_logger().addHandler(handler)
    try:
        path = export_saved_model(vector_flow, tmp_path / 'model')
        tf.saved_model.load(path)
    finally:
        tf.get_logger().removeHandler(handler)
    assert not [r.getMessage() for r in records if 'py_state' in r.getMessage()]
    assert not [r.getMessage() for r in records if 'stores python values' in r.getMessage()]
    checkpoint = tf.train.Checkpoint(flow=vector_flow)
    saved = checkpoint.write(str(tmp_path / 'ckpt'))
    assert any('_saved_structure' in name for name, _ in tf.train.list_variables(saved))


def test_export_rejects_a_dequantizer_of_other_data(tmp_path):
    flow = tfp_flows.glow(event_shape=(8, 8, 1), num_levels=1, num_steps=1, hidden_channels=8)
    dequantizer = VariationalDequantizer((8, 8, 1), 17, num_steps=2, hidden_channels=8)
    with pytest.raises(ValueError, match=r'must be built for the data: num_bins 256 \(got 17\)'):
        export_saved_model(flow, tmp_path / 'model', num_bins=NUM_BINS, dequantizer=dequantizer)
    other_shape = VariationalDequantizer((4, 4, 1), 17, num_steps=2, hidden_channels=8)
    with pytest.raises(ValueError, match=r'data: event_shape \(8, 8, 1\) \(got \(4, 4, 1\)\)'):
        export_saved_model(flow, tmp_path / 'model', num_bins=17, dequantizer=other_shape)
    with pytest.raises(ValueError, match='A `dequantizer` needs `num_bins`'):
        export_saved_model(flow, tmp_path / 'model', dequantizer=dequantizer)
    with pytest.raises(TypeError, match='`dequantizer` must be None or a VariationalDequantizer'):
        export_saved_model(flow, tmp_path / 'model', num_bins=17, dequantizer='uniform')
    assert _entries(tmp_path) == []
