"""What depth costs: Glow with its K steps per level unrolled, looped, or TFP's `tfb.Glow`.

Glow on 32x32x3 images (L=3 levels, coupling width 64, batch 2, float32), K = 4, 8, 16, 32
steps per level, in three layouts: this library's `glow()` with each level's steps unrolled
(`loop=False`) or looped (`loop=True`; both LU 1x1 conv, affine couplings), trained by
`FlowTrainer` with the library's `FusedAdam` (as train.py's recipes train: their optimizer is
`training.make_optimizer`'s), and TFP's `tfb.Glow` built as the peers' benchmark builds it
(`bench/peers/tfp_glow.py`: GlowDefaultNetwork couplings of that width, OneByOneConv, ActNorm,
GlowDefaultExitNetwork), its train step a `tf.function` with a GradientTape and tf_keras'
Adam, as that benchmark runs it. (Results up to results/depth.md of 2026-12-07 trained ours
with Keras 3's Adam.)

Each row runs two fresh processes, one after the other:
- graph: the parameters, the ops in the traced `log_prob` and training-step graphs, the first
  `log_prob` call (trace and run), ActNorm's data-dependent init (ours; TFP's runs inside its
  first call), the first training step (ours: `FlowTrainer.train_on_batch`; trace and run),
  training steps/s after it (median of --repeats repeats of 10 steps) and the process's peak
  RSS after all that;
- xla: the same flow trained with `jit_compile=True` (ours: `FlowTrainer.compile(...,
  jit_compile=True)`): its first training step (trace, XLA compile and run), its steps/s and
  its own peak RSS (`xla_*` keys). A second process, so the first XLA step pays for everything
  a user who starts with XLA pays for (nothing warmed by the graph step) and the graph row's
  peak RSS is not raised by the XLA compile.

    nice python bench/depth.py --out=bench/results/depth.json      # all rows: idle machine
    python bench/depth.py --depths=2 --layouts=looped,tfp --repeats=1
    python bench/depth.py --xla_unrolled_up_to=8   # no XLA rows of unrolled/TFP from K=16 on
(The graph rows of ours alone took 5 min on the idle machine; the XLA and TFP rows grow with K
too: at K=2 under load, XLA's first step took 16-26 s.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

IMAGE, LEVELS, WIDTH, BATCH = (32, 32, 3), 3, 64, 2
LAYOUTS = ('unrolled', 'looped', 'tfp')
PEERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'peers')


def _timed(function, *args, **kwargs):
    """(function(*args, **kwargs), seconds it took)."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def _ops(function, *args):
    """The number of operations in `function`'s (a tf.function) graph for `args`."""
    return len(function.get_concrete_function(*args).graph.get_operations())


def _params(variables):
    """The number of parameters in `variables`."""
    return sum(variable.shape.num_elements() for variable in variables)


def _ours(tf, num_steps, loop, x, xla):
    """(figures, train step) of this library's Glow: graph figures, or the XLA trainer's."""
    import tfp_flows
    from tfp_flows.training import FlowTrainer, FusedAdam

    out = {}
    flow, out['build_s'] = _timed(tfp_flows.glow, IMAGE, LEVELS, num_steps, WIDTH, loop=loop)
    out['params'] = _params(flow.trainable_variables)
    if not xla:
        log_prob = tf.function(flow.log_prob)
        _, out['first_log_prob_s'] = _timed(lambda: log_prob(x).numpy())
        out['log_prob_ops'] = _ops(log_prob, x)
    _, out['initialize_s'] = _timed(tfp_flows.initialize, flow, x)
    trainer = FlowTrainer(flow, 256)
    trainer.compile(FusedAdam(1e-4), jit_compile=xla)
    _, out['first_train_step_s'] = _timed(trainer.train_on_batch, x)
    if not xla:
        out['train_step_ops'] = _ops(tf.function(trainer.train_step), (x,))
    return out, lambda: trainer.train_on_batch(x)


def _tfp(tf, num_steps, x, xla):
    """(figures, train step) of TFP's `tfb.Glow`, built by the peers' benchmark's function."""
    sys.path.insert(0, PEERS)
    import protocol
    import tensorflow_probability as tfp
    import tf_keras
    import tfp_glow

    # `glow_distribution` reads the architecture from the protocol module: this size instead.
    protocol.IMAGE_SHAPE, protocol.GLOW_LEVELS = IMAGE, LEVELS
    protocol.GLOW_STEPS_PER_LEVEL, protocol.GLOW_HIDDEN = num_steps, WIDTH
    x = x - 0.5  # the peers' centring
    out = {}
    tf.random.set_seed(0)
    (px, _), out['build_s'] = _timed(tfp_glow.glow_distribution, tfp, 0)
    variables = px.trainable_variables
    out['params'] = _params(variables)
    optimizer = tf_keras.optimizers.Adam(learning_rate=protocol.LEARNING_RATE)
    optimizer.build(variables)
    signature = [tf.TensorSpec([BATCH, *IMAGE], tf.float32)]

    @tf.function(input_signature=signature, jit_compile=xla)
    def train_step(x):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(px.log_prob(x))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    if not xla:
        log_prob = tf.function(px.log_prob, input_signature=signature)
        _, out['first_log_prob_s'] = _timed(lambda: log_prob(x).numpy())
        out['log_prob_ops'] = _ops(log_prob, x)
    _, out['first_train_step_s'] = _timed(lambda: train_step(x).numpy())
    if not xla:
        out['train_step_ops'] = _ops(train_step, x)
    return out, lambda: train_step(x).numpy()


def worker(num_steps, layout, xla, repeats):
    """Runs in a fresh process: one flow's graph (or XLA) figures, as a dict."""
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    import resource
    import statistics

    import tensorflow as tf

    x = tf.random.stateless_uniform([BATCH, *IMAGE], [1, 2], 0.05, 0.95)
    if layout == 'tfp':
        out, step = _tfp(tf, num_steps, x, xla)
    else:
        out, step = _ours(tf, num_steps, layout == 'looped', x, xla)
    rates = []
    for _ in range(repeats):
        _, seconds = _timed(lambda: [step() for _ in range(10)])
        rates.append(10 / seconds)
    out['steps_per_s'] = statistics.median(rates)
    out['peak_rss_mib'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _run_worker(num_steps, layout, mode, repeats):
    """One worker process's figures, with the 1-, 5- and 15-minute load before and after."""
    before = _load()
    command = [sys.executable, __file__, '--worker', str(num_steps), layout, mode]
    result = subprocess.run([*command, f'--repeats={repeats}'], capture_output=True, text=True)
    if result.returncode:  # Recorded, and the other rows go on.
        print(f'{" ".join(command)} failed:\n{result.stderr[-3000:]}', file=sys.stderr)
        return {'error': result.stderr.strip().splitlines()[-1:] or [f'exit {result.returncode}']}
    out = json.loads(result.stdout.strip().splitlines()[-1])
    out['load_before'], out['load_after'] = before, _load()
    return out


def _machine():
    model = next(
        (line.split(':', 1)[1].strip() for line in open('/proc/cpuinfo') if 'model name' in line),
        platform.processor(),
    )
    return {'cpu': model, 'cores': os.cpu_count()}


def _load():
    return open('/proc/loadavg').read().split()[:3]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--depths', default='4,8,16,32')
    parser.add_argument('--layouts', default=','.join(LAYOUTS))
    parser.add_argument('--repeats', type=int, default=3, help='repeats of 10 steps for steps/s')
    parser.add_argument(
        '--xla_unrolled_up_to',
        type=int,
        default=32,
        help='XLA rows of the unrolled and TFP layouts (whose compile grows with K) up to this K',
    )
    parser.add_argument('--out', default=None)
    parser.add_argument('--worker', nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        num_steps, layout, mode = args.worker
        print(json.dumps(worker(int(num_steps), layout, mode == 'xla', args.repeats)))
        return
    layouts = args.layouts.split(',')
    if args.repeats < 1 or not set(layouts) <= set(LAYOUTS):
        parser.error(f'--repeats must be >= 1 and --layouts a subset of {",".join(LAYOUTS)}')
    rows = []
    for num_steps in map(int, args.depths.split(',')):
        for layout in layouts:
            row = {'K': num_steps, 'layout': layout}
            row.update(_run_worker(num_steps, layout, 'graph', args.repeats))
            if layout == 'looped' or num_steps <= args.xla_unrolled_up_to:
                xla = _run_worker(num_steps, layout, 'xla', args.repeats)
                row.update({f'xla_{key}': value for key, value in xla.items()})
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.out:  # After every row: a later failure or interruption keeps them.
                with open(args.out, 'w') as file:
                    json.dump({'machine': _machine(), 'rows': rows}, file, indent=1)


if __name__ == '__main__':
    main()
