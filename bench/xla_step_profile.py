"""Our digits-Glow train step under the TF profiler (issue 20): the events summed per (plane,
thread, name) over the profiled steps, as ms and events per step; `--group` merges names by
op type (`type`), by HLO kind (`kind`) or into dot / fusion / call / copy (`category`).
`--mode`: `graph` or `xla` (one step per call), `graph8` or `xla8` (`FlowTrainer`, 8 steps
per call). The profiler's own cost inflates every figure; compare within one run.

    PYTHONPATH=$PWD python bench/xla_step_profile.py --mode=xla --group=category
"""

import argparse
import collections
import glob
import os
import re
import sys
import tempfile

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, 'peers'))

import numpy as np  # noqa: E402
import protocol as P  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--mode', default='xla')
    parser.add_argument('--steps', type=int, default=50)
    parser.add_argument('--top', type=int, default=40)
    parser.add_argument('--group', default='name', help='name or kind (name up to . or _)')
    args = parser.parse_args()
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    import tfp_flows
    from tfp_flows.training.optimizers import FusedAdam

    tf.config.threading.set_intra_op_parallelism_threads(1)
    data = P.load_digits_split()
    pool = [tf.constant(x + np.float32(0.5)) for x in P.fixed_batches(data['train'], 8, 64)]
    flow = tfp_flows.glow(P.IMAGE_SHAPE, num_levels=2, num_steps=4, hidden_channels=64)
    tfp_flows.initialize(flow, pool[0])
    tvars = flow.trainable_variables
    opt = FusedAdam(learning_rate=1e-3)
    opt.build(tvars)

    @tf.function(jit_compile=args.mode == 'xla')
    def step(x):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(flow.log_prob(x))
        opt.apply(tape.gradient(loss, tvars), tvars)
        return loss

    if args.mode.endswith('8'):
        from tfp_flows.training.optimizers import make_optimizer
        from tfp_flows.training.trainer import FlowTrainer

        ds = tf.data.Dataset.from_tensor_slices(tf.stack(pool)).repeat()
        trainer = FlowTrainer(flow, num_bins=256)
        trainer.compile(
            make_optimizer('adam', 1e-3), jit_compile=args.mode == 'xla8', steps_per_execution=8
        )
        trainer.make_train_function()
        it = iter(trainer.distribute_strategy.experimental_distribute_dataset(ds))
        args.steps = args.steps // 8 * 8

        def step(x):
            return trainer.train_function(it)[trainer.metric_name]

        step.steps = 8
    for i in range(10):
        step(pool[i % 8]).numpy()
    logdir = tempfile.mkdtemp()
    tf.profiler.experimental.start(logdir)
    for i in range(args.steps // getattr(step, 'steps', 1)):
        step(pool[i % 8]).numpy()
    tf.profiler.experimental.stop()
    (path,) = glob.glob(f'{logdir}/**/*.xplane.pb', recursive=True)
    space = xplane_pb2.XSpace()
    with open(path, 'rb') as f:
        space.ParseFromString(f.read())
    totals = collections.Counter()
    counts = collections.Counter()
    for plane in space.planes:
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                name = names.get(event.metadata_id, '?')
                if args.group == 'kind':
                    name = name.split(':')[0].rstrip('0123456789._')
                elif args.group == 'type':
                    name = name.rsplit(':', 1)[-1]
                elif args.group == 'category':
                    name = name.rsplit(':', 1)[-1]
                    name = (
                        'dot'
                        if re.match(r'(_?Mkl|MatMul|Einsum|Batch|dot)', name)
                        else 'fusion'
                        if 'fusion' in name or name.startswith('wrapped')
                        else 'call'
                        if re.match(r'call', name)
                        else 'copy'
                        if name.startswith('copy')
                        else name
                    )
                key = (plane.name[:20], line.name[:28], name[:70])
                totals[key] += event.duration_ps / 1e9  # ms
                counts[key] += 1
    for key, ms in totals.most_common(args.top):
        print(f'{ms / args.steps:8.3f} ms/step {counts[key] / args.steps:6.1f}/step  {key}')


if __name__ == '__main__':
    main()
