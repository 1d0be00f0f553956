"""Tests of tfp_flows/networks.py: the conditioner networks of couplings and split priors."""

import contextlib
import functools
import re

import checks
import numpy as np
import pytest
import tensorflow as tf

from tfp_flows import dense_conv, networks


@pytest.mark.parametrize('dtype', checks.DTYPES)
@pytest.mark.parametrize('batch_shape', [[2], [2, 3], []])
def test_conv_net_maps_any_batch_of_images(batch_shape, dtype):
    net = checks.randomize_variables(networks.ConvNet(3, 5, hidden_channels=8, dtype=dtype))
    x = tf.random.stateless_normal([*batch_shape, 4, 6, 3], [6, 1], dtype=dtype)
    y = net(x)
    assert y.shape == [*batch_shape, 4, 6, 5]
    assert y.dtype == dtype
    flat = net(tf.reshape(x, [-1, 4, 6, 3]))
    np.testing.assert_allclose(tf.reshape(y, [-1, 4, 6, 5]), flat, **checks.tolerance(dtype))


@pytest.mark.parametrize('dtype', checks.DTYPES)
@pytest.mark.parametrize('batch_shape', [[2], [2, 3], []])
def test_dense_net_maps_any_batch_of_vectors(batch_shape, dtype):
    net = checks.randomize_variables(networks.DenseNet(3, 4, hidden_units=8, dtype=dtype))
    x = tf.random.stateless_normal([*batch_shape, 3], [6, 2], dtype=dtype)
    y = net(x)
    assert y.shape == [*batch_shape, 4]
    assert y.dtype == dtype
    np.testing.assert_allclose(
        tf.reshape(y, [-1, 4]), net(tf.reshape(x, [-1, 3])), **checks.tolerance(dtype)
    )


def test_conv_net_is_glows_three_layers():
    net = checks.randomize_variables(networks.ConvNet(2, 4, hidden_channels=8, dtype=tf.float64))
    x = tf.random.stateless_normal([2, 4, 4, 2], [6, 3], dtype=tf.float64)
    h = tf.nn.relu(tf.nn.conv2d(x, net.kernel_in, 1, 'SAME') + net.bias_in)
    h = tf.nn.relu(tf.nn.conv2d(h, net.kernel_hidden, 1, 'SAME') + net.bias_hidden)
    expected = tf.nn.conv2d(h, net.kernel_out, 1, 'SAME') + net.bias_out
    np.testing.assert_allclose(net(x), expected)
    assert net.kernel_in.shape == [3, 3, 2, 8]
    assert net.kernel_hidden.shape == [1, 1, 8, 8]
    assert net.kernel_out.shape == [3, 3, 8, 4]


@pytest.mark.parametrize('size', [4, 8])  # A 4x4 map takes the dense product, 8x8 TF's conv.
def test_conv_net_residual_blocks_follow_the_1x1_layer(size):
    net = networks.ConvNet(2, 4, hidden_channels=8, dtype=tf.float64, residual_blocks=2)
    net = checks.randomize_variables(net)
    x = tf.random.stateless_normal([2, size, size, 2], [6, 3], dtype=tf.float64)
    h = tf.nn.relu(tf.nn.conv2d(x, net.kernel_in, 1, 'SAME') + net.bias_in)
    h = tf.nn.relu(tf.nn.conv2d(h, net.kernel_hidden, 1, 'SAME') + net.bias_hidden)
    for kernel, bias in (
        (net.kernel_block_0, net.bias_block_0),
        (net.kernel_block_1, net.bias_block_1),
    ):
        h = h + tf.nn.relu(tf.nn.conv2d(h, kernel, 1, 'SAME') + bias)
    expected = tf.nn.conv2d(h, net.kernel_out, 1, 'SAME') + net.bias_out
    np.testing.assert_allclose(net(x), expected)
    assert net.kernel_block_1.shape == [3, 3, 8, 8]
    assert len(net.trainable_variables) == 6 + 2 * 2
    # The other layers as without blocks (the same seeds): blocks only add.
    plain, blocks = (networks.ConvNet(2, 4, 8, seed=3, residual_blocks=n) for n in (0, 1))
    assert len(plain.variables) == 6
    for layer in ('in', 'hidden', 'out'):
        for kind in ('kernel', 'bias'):
            name = f'{kind}_{layer}'
            np.testing.assert_array_equal(getattr(plain, name), getattr(blocks, name))


def test_dense_net_layers():
    net = networks.DenseNet(3, 4, hidden_units=8, num_hidden_layers=3)
    assert [k.shape.as_list() for k in net.kernels] == [[3, 8], [8, 8], [8, 8]]
    assert net.kernel_out.shape == [8, 4]
    assert len(net.trainable_variables) == 2 * 3 + 2


@pytest.mark.parametrize(
    'make',
    [
        lambda: networks.ConvNet(2, 4, hidden_channels=8),
        lambda: networks.DenseNet(2, 4, hidden_units=8),
        lambda: networks.ZeroConv(2, 4),
    ],
    ids=['conv_net', 'dense_net', 'zero_conv'],
)
def test_fresh_network_outputs_zeros(make):
    net = make()
    shape = [2, 4, 4, 2] if not isinstance(net, networks.DenseNet) else [2, 2]
    x = tf.random.stateless_normal(shape, [6, 4])
    np.testing.assert_array_equal(net(x), np.zeros([*shape[:-1], 4]))


def test_seed_fixes_the_initial_weights():
    first, same, other = (networks.ConvNet(2, 4, 8, seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(first.kernel_in, same.kernel_in)
    assert not np.allclose(first.kernel_in, other.kernel_in)


def test_variables_are_tracked():
    assert len(networks.ConvNet(2, 4, 8).trainable_variables) == 6
    assert len(networks.ZeroConv(2, 4).trainable_variables) == 2


@pytest.mark.parametrize(
    ('make', 'name', 'value'),
    [
        (lambda: networks.ConvNet(0, 4), 'input_channels', 0),
        (lambda: networks.ConvNet(2, 4, hidden_channels=0), 'hidden_channels', 0),
        (lambda: networks.ConvNet(2, -1), 'output_channels', -1),
        (lambda: networks.DenseNet(2, 4, hidden_units=2.5), 'hidden_units', 2.5),
        (lambda: networks.DenseNet(2, 4, num_hidden_layers=0), 'num_hidden_layers', 0),
        (lambda: networks.ZeroConv(2, 0), 'output_channels', 0),
    ],
)
def test_rejects_bad_sizes(make, name, value):
    with pytest.raises(ValueError, match=rf'`{name}` must be a positive int; got {value}'):
        make()
    with pytest.raises(ValueError, match=r'`residual_blocks` must be an int >= 0; got -1'):
        networks.ConvNet(2, 4, residual_blocks=-1)


def test_rejects_wrong_input_size():
    with pytest.raises(ValueError, match=r'expects 2 input channels; got shape \[1, 4, 4, 3\]'):
        networks.ConvNet(2, 4, 8)(tf.zeros([1, 4, 4, 3]))
    with pytest.raises(ValueError, match=r'expects 2 inputs on the last axis; got shape \[1, 3\]'):
        networks.DenseNet(2, 4, 8)(tf.zeros([1, 3]))


@pytest.mark.parametrize('context', [None, 'loop_gradients', 'tap_products'])
@pytest.mark.parametrize('dtype', checks.DTYPES)
@pytest.mark.parametrize(
    'height, width, channels_in, channels_out',
    [
        (4, 4, 2, 8),  # Dense: the kernel's gradient through the dense matrix's,
        (4, 4, 2, 32),  # through x's patches,
        (4, 4, 32, 2),  # through the output's gradient spread over the taps.
        (4, 3, 3, 5),  # In tap_products: by x's patches,
        (3, 4, 6, 2),  # by every tap's product summed over the taps.
        (2, 2, 8, 3),
        (1, 3, 2, 2),
        (4, 5, 3, 4),  # tf.nn.conv2d.
        (8, 8, 2, 4),
        (4, 4, 600, 600),
    ],
)
def test_conv3x3_equals_conv2d_on_small_and_large_maps(
    height, width, channels_in, channels_out, dtype, context
):
    # Small maps take the dense-matrix path (products per tap in tap_products above 9
    # positions), larger ones tf.nn.conv2d (in a loop's body with gradients of our own); values
    # and gradients must be those of the convolution every way.
    x = tf.random.stateless_normal([3, height, width, channels_in], [6, 4], dtype=dtype)
    kernel = tf.random.stateless_normal([3, 3, channels_in, channels_out], [6, 5], dtype=dtype)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, kernel])
        with getattr(networks, context)() if context else contextlib.nullcontext():
            y = networks._conv3x3(x, kernel)  # noqa: SLF001 (the helper under test)
        expected = tf.nn.conv2d(x, kernel, 1, 'SAME')
        weights = tf.random.stateless_normal(expected.shape, [6, 6], dtype=dtype)
        loss, expected_loss = tf.reduce_sum(y * weights), tf.reduce_sum(expected * weights)
    tol = checks.tolerance(dtype)
    scale = {'atol': tol['atol'] * channels_in * 9, 'rtol': tol['rtol']}
    np.testing.assert_allclose(y, expected, **scale)
    for got, want in zip(
        tape.gradient(loss, [x, kernel]), tape.gradient(expected_loss, [x, kernel]), strict=True
    ):
        np.testing.assert_allclose(got, want, **scale)


@pytest.mark.parametrize('by_taps', [False, True])
@pytest.mark.parametrize('jit_compile', [False, True])
@pytest.mark.parametrize('channels_in, channels_out', [(2, 8), (2, 32), (32, 2)])
def test_conv3x3_gradients_traced_for_any_batch(channels_in, channels_out, jit_compile, by_taps):
    # The dense path's gradients (each of the kernel's three products) traced once for an
    # unknown batch, in graph or XLA, on a batch of 5 and an empty one: tf.nn.conv2d's.
    kernel = tf.random.stateless_normal([3, 3, channels_in, channels_out], [7, 1])

    def gradients(conv):
        def step(x):
            with tf.GradientTape() as tape:
                tape.watch([x, kernel])
                with networks.tap_products(by_taps):
                    y = conv(x, kernel)
                loss = tf.reduce_sum(y * tf.sin(y))
            return tape.gradient(loss, [x, kernel])

        spec = [tf.TensorSpec([None, 4, 4, channels_in])]
        return tf.function(step, input_signature=spec, jit_compile=jit_compile)

    ours = gradients(networks._conv3x3)  # noqa: SLF001 (the helper under test)
    theirs = gradients(lambda x, kernel: tf.nn.conv2d(x, kernel, 1, 'SAME'))
    for batch in (5, 0):
        x = tf.random.stateless_normal([batch, 4, 4, channels_in], [7, 2])
        for got, want in zip(ours(x), theirs(x), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * channels_in)


@pytest.mark.parametrize('dtype', [tf.float16, tf.bfloat16])  # Mixed policies' compute dtypes.
@pytest.mark.parametrize('channels_in, channels_out', [(3, 5), (6, 2)])  # Each tap product.
def test_products_per_tap_in_half_precision(channels_in, channels_out, dtype):
    x = tf.random.stateless_normal([3, 4, 3, channels_in], [7, 3])
    kernel = tf.random.stateless_normal([3, 3, channels_in, channels_out], [7, 4])
    x, kernel = (tf.cast(tf.cast(v, dtype), tf.float32) for v in (x, kernel))  # Exact in dtype.
    weights = tf.random.stateless_normal([3, 4, 3, channels_out], [7, 5])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, kernel])
        with networks.tap_products():  # As a mixed policy: cast in, and the output back.
            y = networks._conv3x3(tf.cast(x, dtype), tf.cast(kernel, dtype))  # noqa: SLF001
        loss = tf.reduce_sum(tf.cast(y, tf.float32) * weights)
        expected_loss = tf.reduce_sum(tf.nn.conv2d(x, kernel, 1, 'SAME') * weights)
    assert y.dtype == dtype
    tol = {'rtol': 0.02, 'atol': 0.1 if dtype == tf.bfloat16 else 0.01}
    np.testing.assert_allclose(tf.cast(y, tf.float32), tf.nn.conv2d(x, kernel, 1, 'SAME'), **tol)
    for got, want in zip(
        tape.gradient(loss, [x, kernel]), tape.gradient(expected_loss, [x, kernel]), strict=True
    ):
        np.testing.assert_allclose(got, want, **{**tol, 'atol': 10 * tol['atol']})


@pytest.mark.parametrize('shape', [(1, 1, 3, 2), (1, 5, 2, 4), (2, 3, 4, 1), (5, 4, 2, 3)])
def test_loop_body_convolutions_gradients_on_odd_and_one_pixel_maps(shape):
    # dense_conv.conv3x3_same's kernel gradient: x's channels convolved with g as a kernel the
    # size of the map, padded by 1 (a 1x1 map: a 1x1 kernel on a 3x3 input).
    height, width, channels_in, channels_out = shape
    x = tf.random.stateless_normal([2, height, width, channels_in], [8, 1], dtype=tf.float64)
    kernel = tf.random.stateless_normal([3, 3, channels_in, channels_out], [8, 2], dtype=tf.float64)
    weights = tf.random.stateless_normal([2, height, width, channels_out], [8, 3], dtype=tf.float64)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, kernel])
        y = dense_conv.conv3x3_same(x, kernel)
        expected = tf.nn.conv2d(x, kernel, 1, 'SAME')
        loss, expected_loss = tf.reduce_sum(y * weights), tf.reduce_sum(expected * weights)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    for got, want in zip(
        tape.gradient(loss, [x, kernel]), tape.gradient(expected_loss, [x, kernel]), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('switch', ['loop_gradients', 'tap_products'])
@pytest.mark.parametrize('on', [0, 'no', None])
def test_switches_refuse_a_value_that_is_not_a_bool(on, switch):
    # A falsy non-bool used not to pin TF's gradients inside a loop body.
    with pytest.raises(ValueError, match='`on`'), getattr(networks, switch)(on):
        pass


@pytest.mark.parametrize('off', [None, False, np.False_])
def test_loop_gradients_off_pins_tfs_gradients_in_a_loop_body(off):
    # Ours are forward convolutions only: XLA:CPU leaves TF's backprop ops in a loop body
    # uncanonicalized (naive loops: 7-10x slower training steps) and runs extract_patches as
    # a grouped convolution, slow there too (bench/README, "XLA").
    x = tf.random.stateless_normal([3, 8, 8, 2], [6, 7])
    kernel = tf.random.stateless_normal([3, 3, 2, 2], [6, 8])

    def gradient(x):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            pinned = contextlib.nullcontext() if off is None else networks.loop_gradients(off)
            with pinned, networks.loop_gradients():  # As a Loop's body.
                y = networks._conv2d(x, kernel)  # noqa: SLF001 (the helper under test)
        return tape.gradient(y, [x, kernel])

    kinds = {
        op.type for op in tf.function(gradient).get_concrete_function(x).graph.get_operations()
    }
    backprop = {'Conv2DBackpropInput', 'Conv2DBackpropFilter'}
    slow = backprop | {'ExtractImagePatches'}
    assert backprop <= kinds if off is not None else not slow & kinds


def test_loop_body_convolutions_of_an_unknown_batch_have_the_convolutions_gradients():
    # The batch not known to be non-empty takes a tf.cond, in a tf.while_loop's body (a Loop).
    x = tf.random.stateless_normal([3, 8, 8, 2], [6, 7], dtype=tf.float64)
    kernel = tf.random.stateless_normal([3, 3, 2, 2], [6, 8], dtype=tf.float64)

    @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 2], tf.float64)])
    def gradients(x):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([x, kernel])
            with networks.loop_gradients():
                step = networks._conv2d  # noqa: SLF001 (the helper under test)
                _, y = tf.while_loop(
                    lambda i, y: i < 2, lambda i, y: (i + 1, step(y, kernel)), (0, x)
                )
            expected = tf.nn.conv2d(tf.nn.conv2d(x, kernel, 1, 'SAME'), kernel, 1, 'SAME')
        return tape.gradient(y, [x, kernel]), tape.gradient(expected, [x, kernel])

    for got, want in zip(*gradients(x), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_zero_dense_starts_at_zero_and_is_linear():
    net = networks.ZeroDense(3, 4, dtype=tf.float64)
    x = tf.random.stateless_normal([2, 5, 3], [6, 7], dtype=tf.float64)
    np.testing.assert_array_equal(net(x), np.zeros([2, 5, 4]))
    checks.randomize_variables(net, seed=1)
    np.testing.assert_allclose(net(x), x.numpy() @ net.kernel.numpy() + net.bias.numpy())
    assert len(net.trainable_variables) == 2
    with pytest.raises(ValueError, match=r'expects 3 inputs on the last axis; got shape \[2, 2\]'):
        net(tf.zeros([2, 2], tf.float64))


DROPOUT_NETWORKS = {
    'conv_net': (functools.partial(networks.ConvNet, 3, 4, 16, seed=2), [2, 4, 4, 3]),
    'conv_net_residual': (
        functools.partial(networks.ConvNet, 3, 4, 16, seed=2, residual_blocks=1),
        [2, 8, 8, 3],
    ),
    'dense_net': (functools.partial(networks.DenseNet, 3, 4, 16, seed=2), [2, 3]),
    # Rows of 5 values: a part's first mask value sits inside a Philox block (4 values, 2 in
    # float64), which `_uniform_rows` skips into.
    'dense_net_odd_width': (functools.partial(networks.DenseNet, 3, 4, 5, seed=2), [2, 3]),
}


@pytest.mark.parametrize('name', list(DROPOUT_NETWORKS))
def test_dropout_is_off_unless_training(name):
    make, shape = DROPOUT_NETWORKS[name]
    net, plain = make(dropout_rate=0.5), make(dropout_rate=0.0)
    checks.randomize_variables(net, seed=3)
    for a, b in zip(net.trainable_variables, plain.trainable_variables, strict=True):
        b.assign(a)
    x = tf.random.stateless_normal(shape, [6, 8])
    expected = plain(x)
    for training in (False, None, tf.constant(False)):
        np.testing.assert_array_equal(net(x, training=training), expected)
    np.testing.assert_array_equal(net(x), expected)
    first, second = net(x, training=True), net(x, training=tf.constant(True))
    assert not np.allclose(first, expected) and not np.allclose(first, second)
    # A stateless seed fixes the masks; another seed gives others.
    seeded = net(x, training=True, seed=[1, 2])
    np.testing.assert_array_equal(seeded, net(x, training=True, seed=tf.constant([1, 2])))
    assert not np.allclose(seeded, net(x, training=True, seed=[1, 3]))
    # The rate-0 network ignores `training`.
    np.testing.assert_array_equal(plain(x, training=True), expected)


@pytest.mark.parametrize(
    'name, dtype',
    [(name, None) for name in DROPOUT_NETWORKS]
    + [('dense_net_odd_width', d) for d in ('mixed_float16', 'mixed_bfloat16', 'float64')]
    + [('conv_net_residual', 'mixed_float16'), ('conv_net', 'float64')],
)
def test_the_parts_of_a_batch_apply_the_whole_batchs_masks(name, dtype):
    # A part draws its own rows only (not the whole batch's masks, then a slice).
    make, shape = DROPOUT_NETWORKS[name]
    kwargs = {'dtype': tf.float64} if dtype == 'float64' else {'dtype_policy': dtype}
    net = checks.randomize_variables(make(dropout_rate=0.5, **kwargs), seed=3)
    x = tf.random.stateless_normal([6, *shape[1:]], [6, 8], dtype=net.variable_dtype)
    seeded = dict(training=True, seed=[1, 2])
    whole = net(x, **seeded).numpy()
    assert not np.allclose(whole, net(x).numpy())  # Dropout is on.
    # The same masks; float64 convolutions and products of another batch size may round by
    # an ulp (a mask's difference is a value or zero, or twice it).
    equal = np.testing.assert_array_equal
    if dtype == 'float64':
        equal = functools.partial(np.testing.assert_allclose, rtol=1e-12)
    for offset, count, total in ((0, 6, 6), (0, 2, 6), (2, 4, 6), (3, 1, 9), (1, 4, 6)):
        for rows in ((offset, total), (tf.constant(offset), tf.constant(total, tf.int64))):
            equal(
                net(x[offset : offset + count], **seeded, rows=rows), whole[offset : offset + count]
            )
    # XLA draws other masks than TF's kernels, but its parts take its whole batch's too.
    compiled = tf.function(lambda x, offset: net(x, **seeded, rows=(offset, 6)), jit_compile=True)
    compiled_whole = compiled(x, 0).numpy()
    for offset in (1, 2, 3):  # One shape: one more compile.
        part = compiled(x[offset : offset + 3], tf.constant(offset))
        equal(part, compiled_whole[offset : offset + 3])


def test_dropout_inside_tf_function_with_a_training_tensor():
    net = checks.randomize_variables(networks.DenseNet(3, 4, 16, dropout_rate=0.5), seed=4)
    x = tf.random.stateless_normal([8, 3], [6, 9])
    fn = tf.function(lambda x, training: net(x, training=training, seed=[4, 5]))
    np.testing.assert_array_equal(fn(x, tf.constant(False)), net(x))
    np.testing.assert_allclose(fn(x, tf.constant(True)), net(x, training=True, seed=[4, 5]))


@pytest.mark.parametrize('rate', [-0.1, 1.0, '0.1', True])
def test_rejects_bad_dropout_rates(rate):
    with pytest.raises(ValueError, match=r'`dropout_rate` must be a number in \[0, 1\); got'):
        networks.ConvNet(2, 4, 8, dropout_rate=rate)


def test_rejects_bad_training_and_seed_values():
    net = networks.DenseNet(3, 4, 8, dropout_rate=0.1)
    with pytest.raises(
        TypeError, match=r"`training` must be a bool or a scalar bool tensor; got 'yes'"
    ):
        net(tf.zeros([1, 3]), training='yes')
    with pytest.raises(TypeError, match=r'`training` must be a scalar; got a tensor of shape'):
        net(tf.zeros([1, 3]), training=tf.constant([True, False]))
    with pytest.raises(
        ValueError,
        match=r'`dropout_seed` must be None or an int tensor of shape \[2\] .*\[1, 2, 3\]',
    ):
        net(tf.zeros([1, 3]), training=True, seed=[1, 2, 3])
    bad_rows = (3, (1, 2, 3), (-1, 4), (0.0, 4), (tf.constant([0]), 4), (tf.constant(0.0), 4))
    for rows in (*bad_rows, (2**31, 2**31 + 4), (0, 2**32)):  # int32 would wrap the last two.
        with pytest.raises(ValueError, match=r'`dropout_rows` must be'):
            net(tf.zeros([1, 3]), training=True, seed=[1, 2], rows=rows)


@pytest.mark.parametrize('kind', ['dense', 'conv'])
def test_dropout_rows_must_hold_the_batch_and_come_with_a_seed(kind):
    make = networks.DenseNet if kind == 'dense' else networks.ConvNet
    net = checks.randomize_variables(make(3, 4, 8, dropout_rate=0.5), seed=5)  # Not all zeros.
    x = tf.random.stateless_normal([4, 3] if kind == 'dense' else [4, 2, 2, 3], [5, 6])
    for rows in ((3, 4), (0, 3), (10, 4), (0, 0)):  # offset + 4 > total.
        with pytest.raises(ValueError, match=re.escape(f'`dropout_rows` (offset, total) = {rows}')):
            net(x, training=True, seed=[1, 2], rows=rows)
    with pytest.raises(ValueError, match=re.escape('`dropout_rows` (0, 4) needs a `dropout_seed`')):
        net(x, training=True, rows=(0, 4))
    np.testing.assert_array_equal(  # Rows that hold the batch: its part of a batch of 8.
        net(x, True, [1, 2], (4, 8)), net(tf.concat([x, x], 0), True, [1, 2])[4:]
    )


def _peak_bytes_of_stacked_nets(num_nets):
    """Peak allocator bytes of one traced call through `num_nets` ConvNets on a 4x4 map,
    beyond what was held before (figures of TensorFlow's allocator, not timings)."""
    nets = [networks.ConvNet(8, 8, hidden_channels=64, seed=i) for i in range(num_nets)]
    for net in nets:
        net.kernel_out.assign(tf.random.stateless_normal(net.kernel_out.shape, [0, 1]) * 0.01)

    @tf.function
    def run(x):
        for net in nets:
            x = net(x)
        return tf.reduce_sum(x)

    x = tf.ones([8, 4, 4, 8])
    run(x)
    tf.config.experimental.reset_memory_stats('CPU:0')
    before = tf.config.experimental.get_memory_info('CPU:0')['current']
    run(x).numpy()
    return tf.config.experimental.get_memory_info('CPU:0')['peak'] - before


def test_dense_matrices_of_small_maps_are_not_all_held_at_once():
    # Each net's dense 3x3 matrices take 0.5 MiB each here (the most the dense path takes);
    # built as soon as the call starts (they depend on variables only) all would be held at once.
    few, many = _peak_bytes_of_stacked_nets(2), _peak_bytes_of_stacked_nets(8)
    assert 0 < many < 1.5 * few, (few, many)


def test_static_shapes_need_no_shape_ops_in_the_conv_net():
    net = checks.randomize_variables(networks.ConvNet(4, 6, hidden_channels=8))
    graph = tf.function(net).get_concrete_function(tf.TensorSpec([2, 8, 8, 4])).graph
    assert 'Shape' not in {op.type for op in graph.get_operations()}
    unknown_batch = tf.function(net).get_concrete_function(tf.TensorSpec([None, 8, 8, 4]))
    x = tf.random.stateless_normal([2, 8, 8, 4], [0, 1])
    np.testing.assert_allclose(unknown_batch(x), net(x), rtol=1e-6)
