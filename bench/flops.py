"""FLOPs per image of a tfp_flows Glow, counted from the model's shapes, and the FLOP/s it achieves.

1. Peak: the machine's float32 matrix-product rate, timed on large ``tf.matmul``s (best of
   several repeats of an n x n product in a ``tf.function``), in GFLOP/s.
2. FLOPs per image, forward (log_prob or sample), counted exactly from the model: every
   coupling network's 3x3 / 1x1 / 3x3 convolutions (positions x taps x C_in x C_out multiply-
   adds, all 9 taps counted at the borders too), every 1x1 invertible convolution (C^2 per
   position) and every split prior's 3x3 convolution; ActNorm and the coupling's elementwise
   work are left out (memory-bound, < 1%). Checked against the formula of PEER_LESSONS.md.
   Training costs ~3x the forward (forward, gradient w.r.t. activations, w.r.t. weights).
3. Achieved: images/s of a training step (Keras' compiled train function, as ``fit`` runs it)
   and of log_prob, times those FLOPs, for the digits model and for a compute-dominated one
   (32x32x3, 3 levels, width 256, 4 steps per level, small batch); in graph mode, or with
   `--jit_compile` under XLA (the trainer's `jit_compile=True`, log_prob in
   `tf.function(jit_compile=True)`).

    python bench/flops.py --out=bench/results/flops.json
    python bench/flops.py --jit_compile --out=bench/results/flops_xla.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, 'peers'))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np  # noqa: E402
import protocol as P  # noqa: E402

MODELS = {
    'digits': dict(shape=(8, 8, 1), levels=2, steps=4, hidden=64, batch=64),
    'compute': dict(shape=(32, 32, 3), levels=3, steps=4, hidden=256, batch=16),
}


def matmul_peak(tf, sizes=(1024, 2048, 3072), seconds=2.0) -> dict:
    """Best float32 GFLOP/s of an n x n x n `tf.matmul` over a few sizes."""
    out = {}
    for n in sizes:
        a = tf.random.normal([n, n])
        b = tf.random.normal([n, n])
        f = tf.function(lambda a, b: tf.matmul(a, b))
        f(a, b).numpy()
        reps = max(1, int(seconds * 30e9 / (2 * n**3)))
        best = float('inf')
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(reps):
                r = f(a, b)
            r.numpy()
            best = min(best, (time.perf_counter() - t) / reps)
        out[n] = 2 * n**3 / best / 1e9
    return {'gflops_by_size': out, 'peak_gflops': max(out.values())}


def count_macs(flow) -> dict:
    """Forward multiply-adds per image, by kind, from the shapes each step sees.

    Walks the flow once from data to latent with `tfp_flows.bijectors.walk.trace`, which
    hands every step (nested levels and factor-outs included) its input.
    """
    import tensorflow as tf

    from tfp_flows import networks
    from tfp_flows.bijectors import (
        AdditiveCoupling,
        AffineCoupling,
        FactorOut,
        InvertibleConv1x1,
        LUInvertibleConv1x1,
        walk,
    )

    macs = {'coupling_conv3x3': 0, 'coupling_conv1x1': 0, 'invertible_1x1': 0, 'split_prior': 0}

    def count(step, x, inverse):
        positions = int(np.prod(x.shape[1:-1]))
        if isinstance(step, (LUInvertibleConv1x1, InvertibleConv1x1)):
            macs['invertible_1x1'] += positions * step.num_channels**2
        elif isinstance(step, (AffineCoupling, AdditiveCoupling)):
            net = step.conditioner
            for kernel in (net.kernel_in, net.kernel_out):
                macs['coupling_conv3x3'] += positions * int(np.prod(kernel.shape))
            macs['coupling_conv1x1'] += positions * int(np.prod(net.kernel_hidden.shape))
        elif isinstance(step, FactorOut) and step.prior is not None:
            prior = step.prior
            kernels = (
                [prior.kernel]
                if isinstance(prior, networks.ZeroConv)
                else [prior.kernel_in, prior.kernel_hidden, prior.kernel_out]
            )
            for kernel in kernels:
                macs['split_prior'] += positions * int(np.prod(kernel.shape))

    batch = tf.fill([1, *flow.event_shape], tf.constant(0.5, flow.dtype))
    walk.trace(flow.bijector, batch, True, lambda visit: count(visit.step, visit.x, visit.inverse))
    macs['total'] = sum(macs.values())
    return macs


def formula_flops(shape, levels, steps, hidden) -> float:
    """PEER_LESSONS.md: F_fwd = 2 K sum_l P_l (h^2 + 13.5 h c_l + c_l^2)
    + 2 sum_{l<L} P_l 9 (c_l / 2) c_l, with P_l = H W / 4^l and c_l = 2^(l+1) C."""
    height, width, channels = shape
    total = 0.0
    for level in range(1, levels + 1):
        positions = height * width / 4**level
        c = 2 ** (level + 1) * channels
        total += 2 * steps * positions * (hidden**2 + 13.5 * hidden * c + c**2)
        if level < levels:
            total += 2 * positions * 9 * (c / 2) * c
    return total


def achieved(tf, name, spec, repeats, warmup, steps, jit_compile=False) -> dict:
    import tfp_flows
    from tfp_flows.training.optimizers import make_optimizer
    from tfp_flows.training.trainer import FlowTrainer

    shape, batch = spec['shape'], spec['batch']
    flow = tfp_flows.glow(
        shape, num_levels=spec['levels'], num_steps=spec['steps'], hidden_channels=spec['hidden']
    )
    macs = count_macs(flow)
    fwd = 2.0 * macs['total']
    rng = np.random.RandomState(0)
    pool = [
        tf.constant(
            ((rng.randint(0, 17, (batch, *shape)) + rng.uniform(size=(batch, *shape))) / 17).astype(
                np.float32
            )
        )
        for _ in range(4)
    ]
    tfp_flows.initialize(flow, pool[0])
    trainer = FlowTrainer(flow, num_bins=17)
    trainer.compile(make_optimizer('adam', 1e-3), jit_compile=jit_compile)
    trainer.make_train_function()

    def products_per_tap_under_xla(x):  # As `tfp_flows.networks.tap_products` asks.
        with tfp_flows.networks.tap_products(jit_compile):
            return flow.log_prob(x)

    log_prob = tf.function(products_per_tap_under_xla, jit_compile=jit_compile)
    it = {'i': 0}

    def train_once():
        it['i'] = (it['i'] + 1) % len(pool)
        float(trainer.train_function(iter([pool[it['i']]]))[trainer.metric_name])

    def log_prob_once():
        it['i'] = (it['i'] + 1) % len(pool)
        log_prob(pool[it['i']]).numpy()

    train_once()
    log_prob_once()
    t_train = P.timeit_median(train_once, repeats, warmup, steps)
    t_lp = P.timeit_median(log_prob_once, repeats, warmup, steps)
    train_ips = P.throughput(t_train, batch)
    lp_ips = P.throughput(t_lp, batch)
    return {
        'model': dict(spec, shape=list(shape)),
        'n_params': int(sum(np.prod(v.shape) for v in flow.trainable_variables)),
        'macs_per_image_fwd': macs,
        'flops_per_image_fwd': fwd,
        'flops_per_image_fwd_formula': formula_flops(
            shape, spec['levels'], spec['steps'], spec['hidden']
        ),
        'flops_per_image_train': 3 * fwd,
        'train_images_per_s': train_ips,
        'train_gflops_achieved': train_ips * 3 * fwd / 1e9,
        'log_prob_images_per_s': lp_ips,
        'log_prob_gflops_achieved': lp_ips * fwd / 1e9,
        'others_cpu_frac': {
            'train': t_train['others_cpu_frac'],
            'log_prob': t_lp['others_cpu_frac'],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=None)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--steps', type=int, default=5)
    parser.add_argument('--models', default=','.join(MODELS))
    parser.add_argument('--jit_compile', action='store_true', help='XLA: trainer and log_prob')
    args = parser.parse_args()
    import tensorflow as tf

    peak = matmul_peak(tf)
    print(
        'matmul peak: '
        + ', '.join(f'{n}: {g:.1f}' for n, g in peak['gflops_by_size'].items())
        + ' GFLOP/s',
        flush=True,
    )
    results = {}
    for name in args.models.split(','):
        r = achieved(
            tf, name, MODELS[name], args.repeats, args.warmup, args.steps, args.jit_compile
        )
        r['train_fraction_of_peak'] = r['train_gflops_achieved'] / peak['peak_gflops']
        r['log_prob_fraction_of_peak'] = r['log_prob_gflops_achieved'] / peak['peak_gflops']
        results[name] = r
        print(
            f'{name}: {r["flops_per_image_fwd"] / 1e6:.2f} MFLOP/image fwd (formula '
            f'{r["flops_per_image_fwd_formula"] / 1e6:.2f}), train {r["train_images_per_s"]:.0f} '
            f'img/s = {r["train_gflops_achieved"]:.1f} GFLOP/s '
            f'({100 * r["train_fraction_of_peak"]:.0f}% of peak), log_prob '
            f'{r["log_prob_images_per_s"]:.0f} img/s = {r["log_prob_gflops_achieved"]:.1f} '
            f'GFLOP/s ({100 * r["log_prob_fraction_of_peak"]:.0f}%)',
            flush=True,
        )
    if args.out:
        record = P.write_result(
            None, peer='tfp_flows_glow', figure='flops', config=vars(args), metrics={}
        )
        record['metrics'] = {'matmul': peak, 'models': results}
        with open(args.out, 'w') as f:
            json.dump(record, f, indent=2, default=str)
            f.write('\n')


if __name__ == '__main__':
    main()
