"""tfp_flows/run/restore.py: a CSV run's flow in the table's units, its statistics restored."""

import gc
import logging
import re

import checks
import numpy as np
import pytest
import tensorflow as tf

import tfp_flows
from tfp_flows.bijectors import walk
from tfp_flows.data.own import TableStatistics
from tfp_flows.export import FlowModule
from tfp_flows.run import restore, schema
from tfp_flows.run import workdir as workdirs

STATISTICS = TableStatistics(
    ('x0', 'x1'), np.array([1.0, 100.0]), np.array([1.5, 20.0]), ('label',), [1.0], [0.8]
)


def _inner(dtype=tf.float64):
    flow = tfp_flows.real_nvp(
        (2,), num_steps=2, hidden_channels=8, conditional_shape=(1,), dtype=dtype
    )
    checks.randomize_variables(flow, seed=2)
    return flow


def _table(rows=50):
    rng = np.random.default_rng(0)
    label = rng.integers(0, 3, (rows, 1)).astype(np.float64)
    x = np.stack([rng.normal(size=rows) + label[:, 0], 100 + 20 * rng.normal(size=rows)], -1)
    return x, label


def test_a_standardized_flow_gives_densities_and_samples_in_the_tables_units():
    inner = _inner()
    flow = restore.standardize_flow(inner, STATISTICS)
    x, c = _table()
    m, s = STATISTICS.mean, STATISTICS.scale
    context = (c - STATISTICS.context_mean) / STATISTICS.context_scale
    expected = inner.log_prob((x - m) / s, bijector_kwargs={'conditional_input': context})
    expected -= np.log(s).sum()  # The density correction of x = m + s * u.
    log_prob = flow.log_prob(x, bijector_kwargs={'conditional_input': c})
    np.testing.assert_allclose(log_prob, expected, rtol=1e-10)
    samples = tfp_flows.sample(flow, 5, seed=3, conditional_input=c[:5])
    inner_samples = tfp_flows.sample(inner, 5, seed=3, conditional_input=context[:5])
    np.testing.assert_allclose(samples, m + s * inner_samples, rtol=1e-10)
    # The statistics are saved, not trained.
    assert {v.ref() for v in flow.trainable_variables} == {
        v.ref() for v in inner.trainable_variables
    }
    module = FlowModule(flow)
    assert module.conditional_shape == (1,)
    np.testing.assert_allclose(module.log_prob(x, c)['log_prob'], log_prob, rtol=1e-10)


def test_the_statistics_are_saved_with_the_flow_and_restore_into_placeholders(tmp_path):
    flow = restore.standardize_flow(_inner(), STATISTICS)
    path = tf.train.Checkpoint(flow=flow).write(str(tmp_path / 'ckpt'))
    rebuilt = restore.data_flow(_inner(), 'csv:table.csv')  # Placeholder statistics.
    tf.train.Checkpoint(flow=rebuilt).read(path).assert_existing_objects_matched()
    x, c = _table()
    kwargs = {'conditional_input': c}
    np.testing.assert_allclose(
        rebuilt.log_prob(x, bijector_kwargs=kwargs), flow.log_prob(x, bijector_kwargs=kwargs)
    )
    assert restore.data_flow(flow, 'digits') is flow  # Other data: the flow itself.


def test_a_config_recorded_before_the_loop_existed_builds_the_unrolled_flow():
    # Recorded before model.loop: unrolled, though glow's own default loops K >= 8.
    model = schema.default_config().model.to_dict()
    model.update(family='glow', num_levels=1, num_steps=8, hidden_channels=4)
    del model['loop']
    kinds = [
        type(s).__name__ for s in walk.all_steps(restore.build_flow(model, (4, 4, 1)).bijector)
    ]
    assert 'Loop' not in kinds and kinds.count('ActNorm') == 8
    model['loop'] = None  # What a Python caller of glow gets: looped from 8 steps.
    kinds = [
        type(s).__name__ for s in walk.all_steps(restore.build_flow(model, (4, 4, 1)).bijector)
    ]
    assert 'Loop' in kinds


def test_a_looped_runs_config_rebuilds_and_restores_a_looped_flow(tmp_path, caplog):
    config = schema.default_config()
    config.dequantizer.kind = 'uniform'
    config.model.update(
        dict(family='glow', loop=True, num_levels=1, num_steps=2, hidden_channels=8)
    )
    flow = checks.randomize_variables(restore.build_flow(config.model, (8, 8, 2)), seed=4)
    assert 'Loop' in [type(s).__name__ for s in walk.all_steps(flow.bijector)]
    recorded = config.to_dict()
    recorded['data'].update(event_shape=[8, 8, 2], num_bins=256)  # What the run records.
    workdirs.write_json(str(tmp_path / 'config.json'), recorded)
    modules = restore.checkpoint_modules(flow, None)  # And training state, as a run's hold.
    checkpoint = tf.train.Checkpoint(**modules, epoch=tf.Variable(3))
    tf.train.CheckpointManager(checkpoint, str(tmp_path / 'checkpoints' / 'best'), 1).save()
    restored = restore.restore_flow(str(tmp_path))
    x = tf.random.stateless_uniform([2, 8, 8, 2], [4, 1])
    np.testing.assert_allclose(restored.log_prob(x), flow.log_prob(x), rtol=1e-6)
    caplog.set_level(logging.WARNING)
    for section, key, value, words in (  # config.json edited by hand: the loop refused before
        ('model', 'loop', False, '(loop=True: model.loop)'),  # TF reads a value.
        ('dequantizer', 'kind', 'variational', 'not bound to checkpointed values'),
    ):
        edited = {**recorded, section: {**recorded[section], key: value}}
        workdirs.write_json(str(tmp_path / 'config.json'), edited)
        gc.freeze()  # collect() walks only what this test makes, not the worker's whole heap.
        try:
            with pytest.raises(ValueError, match=re.escape(words)):
                restore.restore_flow(str(tmp_path))
            gc.collect()  # TF warns of each value a refused restore left when collected.
        finally:
            gc.unfreeze()
        assert 'could not be found' not in caplog.text and 'unrestored' not in caplog.text
    config.model.update(dict(family='real_nvp', loop=False))
    assert 'Loop' not in [
        type(s).__name__
        for s in walk.all_steps(restore.build_flow(config.model, (8, 8, 2)).bijector)
    ]


@pytest.mark.parametrize(
    'call, error, message',
    [
        (lambda: restore.standardize_flow('flow', STATISTICS), TypeError, '`flow` must be'),
        (lambda: restore.standardize_flow(_inner(), None), TypeError, '`statistics` must be'),
        (
            lambda: restore.standardize_flow(tfp_flows.real_nvp((3,), num_steps=1), STATISTICS),
            ValueError,
            r'`flow` must have event shape \[2\]',
        ),
        (
            lambda: restore.standardize_flow(tfp_flows.real_nvp((2,), num_steps=1), STATISTICS),
            ValueError,
            r'`flow` must have conditional_shape \(1,\) for 1 context columns; got None',
        ),
        (lambda: restore.placeholder_statistics(0), ValueError, '`num_columns` must be a pos'),
        (
            lambda: restore.placeholder_statistics(2, -1),
            ValueError,
            '`num_context_columns` must be an int >= 0',
        ),
    ],
)
def test_bad_arguments_are_refused_by_name(call, error, message):
    with pytest.raises(error, match=message):
        call()
