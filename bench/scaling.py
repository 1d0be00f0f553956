"""Training throughput as the model grows: image size, steps per level, plain vs LU 1x1 conv.

Every configuration runs in its own fresh process (one after another) on synthetic 17-level
images (uniform random levels, dequantized like the digits), batch 64, Adam 1e-3, and reports
training images/s (median of ``--repeats`` repeats of ``--steps_per_repeat`` steps after
``--warmup`` repeats) and the time to the first step. Ours trains through Keras' compiled train
function (what ``fit`` runs per batch) after ActNorm's data-dependent init; TFP's ``tfb.Glow``
through the peer script's ``tf.function`` train step. TFP's Glow has no plain 1x1 convolution,
so the plain vs LU comparison is ours only.

    python bench/scaling.py --out=bench/results/scaling.json      # all sweeps, ~15 min
    python bench/scaling.py --sweeps=size --libs=tfp_flows          # a subset
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, 'peers'))

BASE = dict(size=8, channels=1, levels=2, steps=4, hidden=64, permutation='lu')
SWEEPS = {
    'size': [dict(size=s) for s in (8, 16, 32)],
    'steps': [dict(steps=k) for k in (4, 8, 16)],
    'permutation': [dict(permutation=p) for p in ('lu', 'plain')],
}
BATCH = 64


def worker(args) -> dict:
    """Runs in a fresh process: builds one model, times its training steps, returns figures."""
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    import numpy as np
    import protocol as P
    import tensorflow as tf

    cfg = json.loads(args.config)
    shape = (cfg['size'], cfg['size'], cfg['channels'])
    rng = np.random.RandomState(0)
    pool01 = [
        (
            (rng.randint(0, 17, size=(BATCH, *shape)) + rng.uniform(size=(BATCH, *shape))) / 17
        ).astype(np.float32)
        for _ in range(4)
    ]
    t0 = time.perf_counter()
    if args.lib == 'tfp_flows':
        import tfp_flows
        from tfp_flows.training.optimizers import make_optimizer
        from tfp_flows.training.trainer import FlowTrainer

        flow = tfp_flows.glow(
            shape,
            num_levels=cfg['levels'],
            num_steps=cfg['steps'],
            hidden_channels=cfg['hidden'],
            permutation=cfg['permutation'],
            loop=False,  # As measured: unrolled (bench/depth.py compares the layouts).
        )
        tfp_flows.initialize(flow, pool01[0])
        trainer = FlowTrainer(flow, num_bins=17)
        trainer.compile(make_optimizer('adam', 1e-3))
        trainer.make_train_function()
        batches = [tf.constant(x) for x in pool01]
        tvars = flow.trainable_variables

        def step(x):
            return float(trainer.train_function(iter([x]))[trainer.metric_name])
    else:
        import tensorflow_probability as tfp
        import tf_keras

        tfb, tfd = tfp.bijectors, tfp.distributions
        if cfg['permutation'] != 'lu':
            raise SystemExit("TFP's Glow has only the LU 1x1 convolution")
        glow = tfb.Glow(
            output_shape=list(shape),
            num_glow_blocks=cfg['levels'],
            num_steps_per_block=cfg['steps'],
            coupling_bijector_fn=lambda s: tfb.GlowDefaultNetwork(s, num_hidden=cfg['hidden']),
            exit_bijector_fn=tfb.GlowDefaultExitNetwork,
            seed=0,
        )
        z_shape = glow.inverse_event_shape(list(shape))
        px = tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0.0, 1.0), z_shape), glow)
        tvars = px.trainable_variables
        opt = tf_keras.optimizers.Adam(1e-3)
        opt.build(tvars)

        @tf.function(input_signature=[tf.TensorSpec([BATCH, *shape], tf.float32)])
        def train_step(x):
            with tf.GradientTape() as tape:
                loss = -tf.reduce_mean(px.log_prob(x))
            opt.apply_gradients(zip(tape.gradient(loss, tvars), tvars, strict=True))
            return loss

        batches = [tf.constant(x - 0.5) for x in pool01]

        def step(x):
            return float(train_step(x).numpy())

    first_loss = step(batches[0])
    ttfs = time.perf_counter() - t0
    it = {'i': 0}

    def once():
        it['i'] = (it['i'] + 1) % len(batches)
        step(batches[it['i']])

    timing = P.timeit_median(once, args.repeats, args.warmup, args.steps_per_repeat)
    return {
        'lib': args.lib,
        'config': cfg,
        'train_images_per_s': P.throughput(timing, BATCH),
        'train_step_ms': 1e3 * timing['per_call_s'],
        'time_to_first_step_s': ttfs,
        'first_loss': first_loss,
        'n_params': int(sum(np.prod(v.shape) for v in tvars)),
        'n_variables': len(tvars),
        'others_cpu_frac': timing['others_cpu_frac'],
        'peak_rss_mib': P.peak_rss_mib(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--lib', default='tfp_flows')
    parser.add_argument('--config', default='{}')
    parser.add_argument('--libs', default='tfp_flows,tfp_glow')
    parser.add_argument('--sweeps', default=','.join(SWEEPS))
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--steps_per_repeat', type=int, default=10)
    parser.add_argument('--out', default=None)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)), flush=True)
        return

    import protocol as P

    results, done = [], {}
    for sweep in args.sweeps.split(','):
        for change in SWEEPS[sweep]:
            cfg = dict(BASE, **change)
            for lib in args.libs.split(','):
                if lib == 'tfp_glow' and cfg['permutation'] != 'lu':
                    continue
                key = (lib, json.dumps(cfg, sort_keys=True))
                if key in done:  # the base configuration is in every sweep: measured once
                    results.append(dict(done[key], sweep=sweep))
                    continue
                cmd = [
                    sys.executable,
                    os.path.abspath(__file__),
                    '--worker',
                    f'--lib={lib}',
                    f'--config={json.dumps(cfg)}',
                    f'--repeats={args.repeats}',
                    f'--warmup={args.warmup}',
                    f'--steps_per_repeat={args.steps_per_repeat}',
                ]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0:
                    print(f'FAILED {lib} {cfg}:\n{proc.stderr[-2000:]}', file=sys.stderr)
                    continue
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                r['sweep'] = sweep
                done[key] = r
                results.append(r)
                print(
                    f'{sweep:12s} {lib:10s} size={cfg["size"]:2d} K={cfg["steps"]:2d} '
                    f'{cfg["permutation"]:5s} train={r["train_images_per_s"]:7.0f} img/s '
                    f'first_step={r["time_to_first_step_s"]:6.1f}s '
                    f'others_cpu={P.fmt(r["others_cpu_frac"], ".2f")}',
                    flush=True,
                )
    print()
    print(table(results))
    if args.out:
        record = P.write_result(
            None, peer='scaling', figure='scaling', config={'base': BASE}, metrics={}
        )
        record['results'] = results
        with open(args.out, 'w') as f:
            json.dump(record, f, indent=2)
            f.write('\n')


def table(results) -> str:
    """Markdown: one row per configuration, ours and TFP side by side."""
    rows = {}
    for r in results:
        c = r['config']
        key = (r['sweep'], c['size'], c['steps'], c['permutation'])
        rows.setdefault(key, {})[r['lib']] = r
    lines = [
        '| sweep | image | K | 1x1 conv | tfp_flows train img/s | TFP Glow train img/s | ratio '
        '| tfp_flows first step, s | TFP first step, s |',
        '|---|---|---|---|---|---|---|---|---|',
    ]
    for (sweep, size, steps, perm), libs in rows.items():
        ours, tfp = libs.get('tfp_flows'), libs.get('tfp_glow')
        ratio = (
            f'{ours["train_images_per_s"] / tfp["train_images_per_s"]:.2f}x' if ours and tfp else ''
        )

        def cell(r, key, spec):
            return format(r[key], spec) if r else ''

        lines.append(
            f'| {sweep} | {size}x{size} | {steps} | {perm} | '
            f'{cell(ours, "train_images_per_s", ".0f")} | {cell(tfp, "train_images_per_s", ".0f")} '
            f'| {ratio} | {cell(ours, "time_to_first_step_s", ".1f")} | '
            f'{cell(tfp, "time_to_first_step_s", ".1f")} |'
        )
    return '\n'.join(lines)


if __name__ == '__main__':
    main()
