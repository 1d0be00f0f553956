"""Peer: TensorFlow Probability's built-in ``tfp.bijectors.Glow``.

``tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0, 1), [64]), tfb.Glow(...))`` with
L=2 blocks, K=4 steps per block, ``tfb.GlowDefaultNetwork(num_hidden=64)`` affine couplings
(3x3 -> 1x1 -> 3x3 convs, ReLU, zero-initialised last layer, sigmoid(h + 2) scale), TFP's
LU-parameterised 1x1 convolution (``OneByOneConv``), data-initialised ActNorm, and the default
exit (split-prior) network ``tfb.GlowDefaultExitNetwork`` with ``grab_after_block=(0.5, 0.)``.
Optimizer: ``tf_keras.optimizers.Adam(1e-3)``; the train step is a ``tf.function`` (``--mode
graph``) or ``tf.function(jit_compile=True)`` (``--mode xla``); log_prob and sample use the same
kind of function. ``--intra_op_threads``/``--inter_op_threads`` set TF's thread pools (as for
tfp_flows' entries, so each library is also measured with the pools that suit small ops).

    python bench/peers/tfp_glow.py --mode=graph --figure=throughput --out=r.json
    python bench/peers/tfp_glow.py --mode=xla --figure=quality --budget_s=120 --out=q.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import protocol as P  # noqa: E402


def glow_distribution(tfp, seed: int):
    """(px, glow): TFP's ``tfb.Glow`` of the protocol's architecture over a standard Normal."""
    tfb, tfd = tfp.bijectors, tfp.distributions
    glow = tfb.Glow(
        output_shape=list(P.IMAGE_SHAPE),
        num_glow_blocks=P.GLOW_LEVELS,
        num_steps_per_block=P.GLOW_STEPS_PER_LEVEL,
        coupling_bijector_fn=lambda s: tfb.GlowDefaultNetwork(s, num_hidden=P.GLOW_HIDDEN),
        exit_bijector_fn=tfb.GlowDefaultExitNetwork,
        seed=seed,
    )
    z_shape = glow.inverse_event_shape(list(P.IMAGE_SHAPE))
    return tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0.0, 1.0), z_shape), glow), glow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    P.add_common_args(parser)
    parser.add_argument('--mode', choices=['graph', 'xla'], default='graph')
    P.add_tf_thread_args(parser)
    args = parser.parse_args()

    t0 = time.perf_counter()
    import tensorflow as tf
    import tensorflow_probability as tfp
    import tf_keras

    import_s = time.perf_counter() - t0
    threads = P.configure_tf_threads(tf, args)
    jit = args.mode == 'xla'
    image_shape = list(P.IMAGE_SHAPE)

    def build() -> P.PeerModel:
        tf.random.set_seed(args.seed)
        px, glow = glow_distribution(tfp, args.seed)
        z_shape = glow.inverse_event_shape(image_shape)
        tvars = px.trainable_variables
        opt = tf_keras.optimizers.Adam(learning_rate=P.LEARNING_RATE)
        opt.build(tvars)

        train_sig = [tf.TensorSpec([P.TRAIN_BATCH] + image_shape, tf.float32)]
        eval_sig = [tf.TensorSpec([P.EVAL_BATCH] + image_shape, tf.float32)]

        @tf.function(input_signature=train_sig, jit_compile=jit)
        def train_step(x):
            with tf.GradientTape() as tape:
                loss = -tf.reduce_mean(px.log_prob(x))
            grads = tape.gradient(loss, tvars)
            opt.apply_gradients(zip(grads, tvars, strict=True))
            return loss

        @tf.function(input_signature=eval_sig, jit_compile=jit)
        def log_prob(x):
            return px.log_prob(x)

        @tf.function(jit_compile=jit)
        def sample(n):
            return px.sample(n)

        def get_weights():
            return [v.numpy() for v in tvars]

        def set_weights(ws):
            for v, w in zip(tvars, ws, strict=True):
                v.assign(w)

        n_params = int(sum(np.prod(v.shape) for v in tvars))
        return P.PeerModel(
            to_native=lambda x: tf.constant(x),
            train_step=lambda x: float(train_step(x).numpy()),
            log_prob=lambda x: log_prob(x).numpy(),
            sample=lambda n: sample(n).numpy(),  # Python int: static shape, one trace per n
            get_weights=get_weights,
            set_weights=set_weights,
            n_params=n_params,
            info={
                'blockwise_splits': [list(map(int, b)) for b in glow.blockwise_splits],
                'latent_event_shape': [int(d) for d in z_shape],
                'n_trainable_variables': len(tvars),
                'tf_threads': threads,
            },
        )

    P.run_figure(
        args,
        peer=f'tfp_glow_{args.mode}' + P.thread_suffix(args),
        build=build,
        config={
            'library': 'tensorflow_probability.bijectors.Glow',
            'mode': args.mode,
            'jit_compile': jit,
            'tf_threads': threads,
            'optimizer': 'tf_keras.optimizers.Adam',
            'coupling': 'GlowDefaultNetwork(num_hidden=64), affine, sigmoid(h+2) scale',
            'exit': 'GlowDefaultExitNetwork (3x3 conv, exp(h+2) scale), grab_after_block=(0.5, 0)',
            'base': 'Sample(Normal(0, 1), [64])',
        },
        import_s=import_s,
    )


if __name__ == '__main__':
    main()
