"""Tests of tfp_flows/bijectors/context.py: the checks and features of a flow's context."""

import numpy as np
import pytest
import tensorflow as tf

import tfp_flows
from tfp_flows.bijectors.context import check_conditional_shape, context_features


@pytest.mark.parametrize(
    ('value', 'expected'), [(None, None), (3, (3,)), ([2, 5], (2, 5)), (np.int64(4), (4,))]
)
def test_conditional_shape_is_a_tuple_of_positive_ints(value, expected):
    assert check_conditional_shape(value) == expected


@pytest.mark.parametrize('value', [(), 0, (2, -1), (2.0,), 'ab', True, (True,)])
def test_rejects_bad_conditional_shapes(value):
    with pytest.raises(ValueError, match=r'`conditional_shape` must be None or a non-empty shape'):
        check_conditional_shape(value)


@pytest.mark.parametrize(
    ('context_shape', 'x_shape'),
    [([3, 2, 2], [3, 5]), ([2, 2], [3, 5]), ([1, 2, 2], [3, 5]), ([3, 2, 2], [4, 3, 5])],
)
def test_features_are_flattened_and_broadcast_to_the_batch(context_shape, x_shape):
    context = tf.reshape(tf.range(np.prod(context_shape), dtype=tf.float64), context_shape)
    x = tf.zeros(x_shape, tf.float32)
    features = context_features(context, (2, 2), x, 1, 'step')
    assert features.dtype == tf.float32
    assert features.shape == [*x_shape[:-1], 4]
    expected = np.broadcast_to(np.reshape(context, [*context_shape[:-2], 4]), features.shape)
    np.testing.assert_array_equal(features, expected)


def test_features_under_tf_function_with_an_unknown_batch():
    fn = tf.function(
        lambda c, x: context_features(c, (2,), x, 1, 'step'),
        input_signature=[tf.TensorSpec([None, 2]), tf.TensorSpec([None, 3])],
    )
    np.testing.assert_array_equal(fn(tf.ones([1, 2]), tf.zeros([4, 3])), np.ones([4, 2]))
    with pytest.raises(tf.errors.InvalidArgumentError):
        fn(tf.ones([2, 2]), tf.zeros([4, 3]))


def test_an_integer_one_hot_label_is_cast():
    features = context_features(
        tf.one_hot([1, 0], 2, dtype=tf.int32), (2,), tf.zeros([2, 3]), 1, 's'
    )
    np.testing.assert_array_equal(features, [[0.0, 1.0], [1.0, 0.0]])


def test_conditional_shape_of_a_flow():
    kwargs = dict(num_levels=2, num_steps=1, hidden_channels=8)
    assert tfp_flows.conditional_shape_of(tfp_flows.glow((8, 8, 1), **kwargs)) is None
    flow = tfp_flows.glow((8, 8, 1), **kwargs, conditional_shape=(2, 5))
    assert tfp_flows.conditional_shape_of(flow) == (2, 5)
    assert tfp_flows.conditional_shape_of(flow.bijector) == (2, 5)
    vector = tfp_flows.real_nvp((2,), num_steps=2, conditional_shape=3)
    assert tfp_flows.conditional_shape_of(vector) == (3,)
    mixed = tfp_flows.bijectors.Chain(
        [vector.bijector, tfp_flows.real_nvp((2,), num_steps=2, conditional_shape=4).bijector],
        event_ndims=1,
    )
    with pytest.raises(ValueError, match=r'different conditional shapes'):
        tfp_flows.conditional_shape_of(mixed)
