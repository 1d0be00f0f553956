"""CPU per train step of the default recipe with dropout masks drawn for the global batch.

`FlowTrainer` passes each replica (and micro-batch) the bijector kwarg `dropout_rows`, so every
dropout layer applies its rows of the whole global batch's masks (drawn alone from the Philox
counter since 2026-12-08; before, it drew the whole batch's masks and kept its rows). This
times, in one process and interleaved (each repeat runs the variants in a new random order),
one epoch of digits (19 steps of 64) of `configs/default.py` (Real NVP, mixture-of-logistics
couplings, variational dequantizer, dropout 0.05, one thread per op) with:

- `global_rows`: the trainer as it is;
- `own_rows`: the kwarg dropped, so each part draws only its own rows (the draw's old cost);
- `no_dropout`: dropout 0, for scale.

It prints this process's CPU ms per step of each repeat and their medians, as JSON. Arguments:
replicas (1 or 2: a `MirroredStrategy` over 2 logical CPU devices) and accumulation steps.

    python bench/dropout_rows.py 2 1    # 2 replicas
    python bench/dropout_rows.py 1 2    # one device, 2 micro-batches
"""

import json
import os
import random
import resource
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tensorflow as tf  # noqa: E402

from tfp_flows.training.distribute import configure_threads  # noqa: E402

configure_threads(1, 0)
cpu = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from configs import default  # noqa: E402
from tfp_flows.run import datasets, experiment  # noqa: E402

STEPS, REPEATS = 19, 7


def main(replicas, accumulation):
    if replicas == 1:
        strategy = tf.distribute.OneDeviceStrategy('/cpu:0')
    else:
        devices = [d.name for d in tf.config.list_logical_devices('CPU')]
        strategy = tf.distribute.MirroredStrategy(devices)
    trainers = {}
    for name, rate in (('global_rows', 0.05), ('own_rows', 0.05), ('no_dropout', 0.0)):
        config = default.get_config()
        config.model.dropout_rate = rate
        config.train.accumulation_steps = accumulation
        data = datasets.load(config)
        with strategy.scope():  # The run's own flow, dequantizer and compiled trainer.
            trainer = experiment._build(config, data).trainer  # noqa: SLF001
        if name == 'own_rows':  # The variant: the train step's kwargs without the rows.
            kwargs = trainer._training_kwargs  # noqa: SLF001
            trainer._training_kwargs = _without_rows(kwargs)  # noqa: SLF001
        train = data.train.take(STEPS).cache()
        trainer.fit(train, epochs=1, verbose=0)  # Traces.
        trainers[name] = (trainer, train)
    times = {name: [] for name in trainers}
    for _ in range(REPEATS):
        for name in random.sample(list(trainers), len(trainers)):
            trainer, train = trainers[name]
            start = _cpu_seconds()
            trainer.fit(train, epochs=1, verbose=0)
            times[name].append(round(1e3 * (_cpu_seconds() - start) / STEPS, 1))
    medians = {name: sorted(t)[len(t) // 2] for name, t in times.items()}
    result = dict(replicas=replicas, accumulation=accumulation, cpu_ms_per_step=times)
    print(json.dumps({**result, 'medians': medians}))


def _without_rows(training_kwargs):
    def kwargs(rows):
        return {k: v for k, v in training_kwargs(rows).items() if k != 'dropout_rows'}

    return kwargs


def _cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == '__main__':
    main(*(int(a) for a in sys.argv[1:3]))
