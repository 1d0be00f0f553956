"""A recipe's train step, graph against XLA, interleaved in one process (issue 20).

Builds the run of a `configs/` recipe (as `train.py` does: flow, dequantizer, optimizer, one
thread per op as the recipe says) three times and times its train function per step on the
recipe's training batches: `graph` (the recipe's `steps_per_execution` steps as one graph call),
`keras_xla` (`jit_compile=True`, Keras' own train function: one XLA call per step) and
`loop_xla` (`FlowTrainer`'s, the call's steps as one XLA loop, `xla_steps`). Prints CPU ms per
step, median [min, max] over the repeats, per-repeat CPU ratios against `loop_xla`, and the
CPU share other processes took. Run it from the repository root:

    PYTHONPATH=$PWD python bench/xla_recipe_ab.py --config=configs/default.py
    PYTHONPATH=$PWD python bench/xla_recipe_ab.py --config=configs/glow_digits.py \\
        --set=model.num_levels=2 --set=model.num_steps=4
"""

import argparse
import importlib.util
import os
import random
import statistics
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, 'peers'))

import protocol as P  # noqa: E402


def _config(path, overrides):
    spec = importlib.util.spec_from_file_location('recipe', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    for item in overrides:
        key, value = item.split('=', 1)
        *parents, leaf = key.split('.')
        node = config
        for parent in parents:
            node = node[parent]
        node[leaf] = type(node[leaf])(value)
    return config


def _entry(config, data, name):
    """A function running one train call of entry `name`, and its steps per call."""
    import keras
    import tensorflow as tf

    from tfp_flows.run import experiment

    config.train.jit_compile = name != 'graph'
    with tf.distribute.get_strategy().scope():
        model = experiment._build(config, data)  # noqa: SLF001 (the run's own build)
    trainer = model.trainer
    trainer.make_train_function()
    if name == 'keras_xla':
        keras.Model.make_train_function(trainer, force=True)
    iterator = iter(
        trainer.distribute_strategy.experimental_distribute_dataset(data.train.repeat())
    )

    def run():
        trainer.train_function(iterator)[trainer.metric_name].numpy()

    return run, trainer.steps_per_execution


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--config', default='configs/default.py')
    parser.add_argument('--set', action='append', default=[], help='field=value (a recipe field)')
    parser.add_argument('--entries', default='graph,keras_xla,loop_xla')
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--steps', type=int, default=32)
    args = parser.parse_args()
    from tfp_flows.run import datasets
    from tfp_flows.training.distribute import configure_threads

    config = _config(args.config, args.set)
    configure_threads(config.train.intra_op_threads, config.train.inter_op_threads)
    data = datasets.load(config)
    entries, first = {}, {}
    for name in args.entries.split(','):
        cpu = time.process_time()
        entries[name] = _entry(config, data, name)
        entries[name][0]()
        first[name] = time.process_time() - cpu
    for run, _ in entries.values():
        for _ in range(2):
            run()
    cpu = {name: [] for name in entries}
    order, monitor = list(entries), P.ContentionMonitor()
    for repeat in range(args.repeats):
        random.Random(repeat).shuffle(order)
        for name in order:
            run, per_call = entries[name]
            calls = max(1, args.steps // per_call)
            start = time.process_time()
            for _ in range(calls):
                run()
            cpu[name].append((time.process_time() - start) / (calls * per_call) * 1e3)
    others = monitor.stop().get('others_cpu_frac')
    for name, times in cpu.items():
        print(
            f'{name:9s} cpu ms/step {statistics.median(times):7.2f} '
            f'[{min(times):.2f}, {max(times):.2f}]  first call {first[name]:.1f} s cpu'
        )
    for name in cpu:
        if name != 'loop_xla' and 'loop_xla' in cpu:
            ratio = [a / b for a, b in zip(cpu[name], cpu['loop_xla'], strict=True)]
            print(
                f'{name} / loop_xla cpu: {statistics.median(ratio):.3f} '
                f'[{min(ratio):.3f}, {max(ratio):.3f}]'
            )
    print(f'others_cpu_frac {others:.2f}  load {open("/proc/loadavg").read().split()[:3]}')


if __name__ == '__main__':
    main()
