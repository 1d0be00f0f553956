"""Tests of tfp_flows/validation.py: one message per argument, for Python values and tensors."""

import numpy as np
import pytest
import tensorflow as tf

from tfp_flows import validation
from tfp_flows.validation import (
    Interval,
    assert_op,
    assert_values,
    check_int,
    check_number,
    check_sample_shape,
    check_scalar,
    check_stateless_seed,
    format_message,
)

POSITIVE = Interval(low=0, low_open=True)


@pytest.mark.parametrize(
    ('interval', 'description'),
    [
        (Interval(integer=True, low=1), 'a positive int'),
        (Interval(integer=True, low=0), 'an int >= 0'),
        (Interval(integer=True, low=0, high=2**31), 'an int in [0, 2**31)'),
        (Interval(integer=True, low=-3, high=5), 'an int in [-3, 5)'),
        (Interval(integer=True), 'an int'),
        (POSITIVE, 'a finite number > 0'),
        (Interval(low=0), 'a finite number >= 0'),
        (Interval(low=0, high=0.5, high_open=True), 'a number in [0, 0.5)'),
        (Interval(high=1, high_open=True), 'a finite number < 1'),
        (Interval(), 'a finite number'),
    ],
)
def test_interval_describes_its_domain(interval, description):
    assert interval.description == description


@pytest.mark.parametrize(
    ('interval', 'inside', 'outside'),
    [
        (Interval(integer=True, low=1), [1, np.int64(7)], [0, 1.0, True, '1', None]),
        (Interval(integer=True, low=0, high=4), [0, 3], [-1, 4]),
        (POSITIVE, [1e-30, 2, np.float32(0.5)], [0.0, -1, float('inf'), float('nan'), True]),
        (Interval(low=0, high=0.5, high_open=True), [0.0, 0.49], [0.5, -1e-9, float('nan')]),
    ],
)
def test_interval_holds_python_numbers_and_tensors_alike(interval, inside, outside):
    for value in inside:
        assert interval.contains(value), value
    for value in outside:
        assert not interval.contains(value), value
    kind = int if interval.integer else float
    numbers = [v for v in inside + outside if type(v) in (kind, np.int64, np.float32)]
    dtype = tf.int64 if interval.integer else tf.float64
    held = interval.tensor_contains(tf.constant(numbers, dtype)).numpy()
    np.testing.assert_array_equal(held, [interval.contains(v) for v in numbers])


def test_python_checks_name_the_argument_value_and_domain():
    with pytest.raises(ValueError, match=r'^`size` must be a positive int; got 2\.0\.$'):
        check_int('size', 2.0)
    with pytest.raises(ValueError, match=r'^`size` must be None or an int >= 0; got -1\.$'):
        check_int('size', -1, low=0, allow_none=True)
    assert check_int('size', None, allow_none=True) is None
    assert check_int('size', np.int32(3)) == 3 and isinstance(check_int('size', np.int32(3)), int)
    with pytest.raises(ValueError, match=r'^`rate` must be a finite number > 0; got inf\.$'):
        check_number('rate', float('inf'), 0, low_open=True)


def test_format_message_prints_python_numbers_as_tensorflow_prints_tensors():
    for value, dtype in [(0.7, tf.float32), (-1.0, tf.float32), (0.1, tf.float64), (3, tf.int32)]:
        assert format_message('{}', value) == format_message('{}', tf.constant(value, dtype))
    assert format_message('{}', 123456789.0) == '123456789'  # Not rounded through float32.
    assert format_message('{}', float('nan')) == 'nan'
    assert format_message('{}', 2**70) == str(2**70)
    # Values that are not numbers by their repr, also with braces in them.
    assert format_message('got {} and {}', 'hot', {}) == "got 'hot' and {}"


def test_assert_op_raises_the_same_message_eagerly_and_at_run_time():
    template = '`t` must be a finite number > 0; got {}.'
    with pytest.raises(tf.errors.InvalidArgumentError) as eager:
        assert_op(tf.constant(False), template, tf.constant(-1.0))
    assert eager.value.message == '`t` must be a finite number > 0; got -1.'

    @tf.function
    def check(t):
        with tf.control_dependencies([assert_op(t > 0, template, t)]):
            return tf.identity(t)

    assert check(tf.constant(2.0)).numpy() == 2.0
    with pytest.raises(tf.errors.InvalidArgumentError) as traced:
        check(tf.constant(-1.0))
    assert '[`t` must be a finite number > 0; got -1.]' in traced.value.message


def test_assert_op_formats_its_message_only_when_the_check_fails():
    @tf.function
    def check(t):
        with tf.control_dependencies([assert_op(t > 0, 'got {}', t)]):
            return tf.identity(t)

    graph = check.get_concrete_function(tf.TensorSpec([], tf.float32)).graph
    # The string formatting is in the failing branch of a cond, not in the function itself.
    assert 'StringFormat' not in {op.type for op in graph.get_operations()}
    branches = graph.as_graph_def().library.function
    assert any(node.op == 'StringFormat' for f in branches for node in f.node_def)


def test_the_private_xla_context_check_tells_jit_compiled_functions():
    # Pins `tensorflow.python.ops.control_flow_util.GraphOrParentsInXlaContext`, the one private
    # TF call of validation.py: it must be True while `jit_compile=True` traces, else False.
    seen = {}

    def probe(name):
        def fn(x):
            seen[name] = validation._in_xla_context()  # noqa: SLF001 (pinned here)
            return x

        return fn

    validation_eager = validation._in_xla_context()  # noqa: SLF001
    tf.function(probe('graph'))(tf.constant(1.0))
    tf.function(probe('xla'), jit_compile=True)(tf.constant(1.0))
    inner = tf.function(probe('nested'))
    tf.function(lambda x: inner(x), jit_compile=True)(tf.constant(1.0))
    assert seen == {'graph': False, 'xla': True, 'nested': True} and not validation_eager


def test_a_run_time_check_compiles_with_xla_and_is_left_out_there():
    @tf.function(jit_compile=True)
    def scaled(t):
        return 2.0 * check_scalar('t', t, POSITIVE)

    assert scaled(tf.constant(1.5)).numpy() == 3.0
    assert scaled(tf.constant(-1.0)).numpy() == -2.0  # XLA compiles assertions out.


def test_check_scalar_refuses_python_values_now_and_tensors_at_run_time():
    message = r'^`t` must be a finite number > 0; got {}\.$'
    with pytest.raises(ValueError, match=message.format('-1')):
        check_scalar('t', -1.0, POSITIVE)
    with pytest.raises(ValueError, match=message.format("'1'")):
        check_scalar('t', '1', POSITIVE)
    with pytest.raises(ValueError, match=message.format(r'\[1 2\]')):
        check_scalar('t', tf.constant([1.0, 2.0]), POSITIVE)
    with pytest.raises(TypeError, match=message.format('a bool tensor')):
        check_scalar('t', tf.constant(True), POSITIVE)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message.format('0')):
        check_scalar('t', tf.constant(0.0), POSITIVE)
    with pytest.raises(ValueError, match=r'`n` must be an int >= 0; got 2\.0\.'):
        check_scalar('n', 2.0, Interval(integer=True, low=0))  # Not shown as TF's '2'.
    unknown_rank = tf.function(
        lambda t: check_scalar('t', t, POSITIVE), input_signature=[tf.TensorSpec(None)]
    )
    assert unknown_rank(tf.constant(2.0)).numpy() == 2.0
    with pytest.raises(tf.errors.InvalidArgumentError, match=r'got \[1 2\]\.'):
        unknown_rank(tf.constant([1.0, 2.0]))
    assert check_scalar('t', 3, POSITIVE, tf.float64).dtype == tf.float64


def test_check_sample_shape_takes_ints_lists_and_int_tensors():
    assert check_sample_shape('s', 3) == 3
    assert check_sample_shape('s', (2, 0)) == (2, 0)
    assert check_sample_shape('s', tf.TensorShape([4])) == [4]
    for bad in (-1, [2, -3], 2.5, 'x', None):
        with pytest.raises(ValueError, match=r'`s` must be an int >= 0 or a list of ints >= 0'):
            check_sample_shape('s', bad)
    with pytest.raises(TypeError, match=r'got a float32 tensor\.'):
        check_sample_shape('s', tf.constant(2.0))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r'got \[2 -3\]\.'):
        check_sample_shape('s', tf.constant([2, -3]))


def test_check_stateless_seed_refuses_other_shapes_and_dtypes():
    assert check_stateless_seed('seed', None) is None
    assert check_stateless_seed('seed', [1, 2]).shape == [2]
    message = r'`seed` must be None or an int tensor of shape \[2\] \(a stateless seed\); got '
    with pytest.raises(ValueError, match=message + r'\[1 2 3\]\.'):
        check_stateless_seed('seed', [1, 2, 3])
    with pytest.raises(TypeError, match=message + r'a float32 tensor\.'):
        check_stateless_seed('seed', [1.0, 2.0])
    with pytest.raises(ValueError, match=message + "'12'"):
        check_stateless_seed('seed', '12')


def test_assert_values_counts_and_shows_the_first_values_outside():
    x = tf.constant([0.5, 2.0, np.nan, -1.0, 3.0, 4.0, 5.0, 6.0])
    message = '`x` must be values in [0, 1]; got 7 value(s) outside it, the first: [2 nan -1 3 4].'
    inside = (x >= 0) & (x <= 1)
    with pytest.raises(tf.errors.InvalidArgumentError) as eager:
        assert_values('x', x, inside, 'values in [0, 1]')
    assert eager.value.message == message
    traced = tf.function(lambda x: assert_values('x', x, (x >= 0) & (x <= 1), 'values in [0, 1]'))
    with pytest.raises(tf.errors.InvalidArgumentError) as graph:
        traced(x)
    assert f'[{message}]' in graph.value.message
    np.testing.assert_array_equal(traced(tf.constant([0.0, 1.0])), [0.0, 1.0])
