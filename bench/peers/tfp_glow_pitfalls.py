"""Reproduce two pitfalls of TFP 0.25's ``tfb.Glow`` seen while benchmarking it.

1. Split-prior (exit) initial scale. ``ExitBijector`` builds its affine coupling with
   ``scale = exp(h + 2)`` and a zero-initialised network, so at initialisation every split-off
   latent is ``z = exp(2) * x ~ 7.39 * x`` in the density direction. That inflates the first
   training loss by hundreds of nats/image. This script compares the first loss of the default
   model with the same model whose exit-network bias is set so that the initial scale is 1.
2. ``grab_after_block`` other than 0.5: ``ExitBijector.make_bijector_fn`` slices the network
   output with the number of *kept* channels instead of the number of *grabbed* ones, so any
   split that is not exactly half fails with a shape error.

    python bench/peers/tfp_glow_pitfalls.py [--out=pitfalls.json]
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import protocol as P  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=None)
    args = parser.parse_args()

    import tensorflow as tf
    import tensorflow_probability as tfp
    from tensorflow_probability.python.bijectors.glow import ExitBijector

    tfb, tfd = tfp.bijectors, tfp.distributions
    shape = list(P.IMAGE_SHAPE)
    data = P.load_digits_split()
    x = P.centre(P.fixed_eval_data(data['train'][: P.TRAIN_BATCH], salt=3))

    def make(grab=None, steps=P.GLOW_STEPS_PER_LEVEL):
        tf.random.set_seed(0)
        glow = tfb.Glow(
            output_shape=shape,
            num_glow_blocks=P.GLOW_LEVELS,
            num_steps_per_block=steps,
            coupling_bijector_fn=lambda s: tfb.GlowDefaultNetwork(s, num_hidden=P.GLOW_HIDDEN),
            exit_bijector_fn=tfb.GlowDefaultExitNetwork,
            grab_after_block=grab,
            seed=0,
        )
        z_shape = glow.inverse_event_shape(shape)
        return glow, tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0.0, 1.0), z_shape), glow)

    out = {}
    # 1. initial loss with the default exit scale exp(0 + 2) and with the exit scale set to 1.
    for label, neutral in (('default_exit_scale_exp2', False), ('exit_scale_1', True)):
        glow, px = make()
        if neutral:
            exits = [m for m in glow.submodules if isinstance(m, ExitBijector)]
            n_fixed = 0
            for e in exits:
                if e.exit_layer is None:
                    continue
                conv = e.exit_layer.layers[-1]
                nchan = conv.bias.shape[0] // 2
                b = np.zeros(conv.bias.shape, np.float32)
                b[:nchan] = -2.0  # scale = exp(h + 2) with h = -2 -> 1
                conv.bias.assign(b)
                n_fixed += 1
            assert n_fixed > 0
        z = glow.inverse(x).numpy()  # also runs ActNorm's data-dependent init
        nll = float(-tf.reduce_mean(px.log_prob(x)).numpy())
        out[label] = {
            'first_loss_nats': nll,
            'first_loss_bpd': float(P.bits_per_dim(nll)),
            'latent_std_min': float(z.std(0).min()),
            'latent_std_max': float(z.std(0).max()),
        }
        print(f'{label}: initial -log p = {nll:.1f} nats/image ({P.bits_per_dim(nll):.2f} bpd)')

    # 2. grab_after_block other than 0.5.
    for grab in ((0.25, 0.0), (0.75, 0.0), (0.5, 0.0)):
        try:
            glow, px = make(grab, steps=1)
            lp = px.log_prob(x).numpy()
            res = {'ok': True, 'splits': [list(map(int, b)) for b in glow.blockwise_splits]}
            res['finite'] = bool(np.isfinite(lp).all())
        except Exception as e:  # noqa: BLE001 - report whatever TFP raises
            res = {'ok': False, 'error': f'{type(e).__name__}: {str(e).splitlines()[0][:200]}'}
        out[f'grab_after_block={grab}'] = res
        print(f'grab_after_block={grab}: {res}')

    P.write_result(args.out, peer='tfp_glow', figure='pitfalls', config={}, metrics=out)


if __name__ == '__main__':
    main()
