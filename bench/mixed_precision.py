"""Mixed precision on digits: bits/dim, accuracy of the flow's maps, and speed, per policy.

Policies: 'float32' (no policy), 'mixed_bfloat16' and 'mixed_float16' (`config.train.
mixed_precision`, `tfp_flows.mixed_precision`). Three commands, each in its own process:

  train       one full Glow digits run (`configs/glow_digits.py`: Glow L=2, K=4, width 64, 60
              epochs, Adamax with warm-up, cosine decay, weight decay, clipping; seed 0, or
              --seed; the default recipe, centred and uniformly dequantized, when bench/README's
              figures were measured) with
              the policy, through `experiment.train_and_evaluate`, into RUNS/<policy> (or
              RUNS/<policy>_seed<k>). Records the run's metrics.json, its wall time and the CPU
              share other processes took.
  accuracy    on the trained runs: test bits/dim of each run's best checkpoint evaluated under
              every policy (the same weights, the networks computing in another precision),
              the round-trip errors max|f(f^-1(x)) - x| on the 360 test images and
              max|f^-1(f(z)) - z| on 360 latents z ~ N(0, I), and the log-det error
              max|log|det J| - slogdet(autodiff J)| (nats per image) of f^-1 on 32 test
              images, each model under its own policy and the float32 model under each.
  throughput  images/s of training (FlowTrainer.fit over 8 batches of 64 in one call, as the
              recipe's steps_per_execution=8; one thread per op), of log_prob and of sample
              (tf.function), per policy, graph and XLA: median of --repeats after --warmup,
              every case built first and the cases timed in turns, so that load from other
              processes falls on every policy alike; on the digits model and on a larger one
              (32x32x3, L=3, K=4, width 512; 2 batches of 16 per fit call; graph only), where
              the convolutions dominate. CPU only: nothing here ran on a GPU.

    nice -n 10 python bench/mixed_precision.py train --policy=float32 --runs=/tmp/mp_runs
    nice -n 10 python bench/mixed_precision.py accuracy --runs=/tmp/mp_runs --out=A.json
    nice -n 10 python bench/mixed_precision.py throughput --out=T.json
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, 'peers'))
sys.path.insert(1, ROOT)  # `configs`, and `tfp_flows` of this checkout
sys.path.insert(2, os.path.join(ROOT, 'tests'))  # `checks.batch_jacobian`

import numpy as np  # noqa: E402
import protocol as P  # noqa: E402

POLICIES = ('float32', 'mixed_bfloat16', 'mixed_float16')
CPU_FLAGS = ('avx512f', 'avx512_bf16', 'avx512_fp16', 'amx_bf16', 'amx_tile', 'f16c')


def _policy(name):
    """The config's / API's value for a policy name: None for float32."""
    return None if name == 'float32' else name


def machine():
    """The CPU model and the flags that matter for bfloat16 / float16 (from lscpu)."""
    text = subprocess.run(['lscpu'], capture_output=True, text=True, check=False).stdout
    fields = dict(line.split(':', 1) for line in text.splitlines() if ':' in line)
    flags = fields.get('Flags', '').split()
    return {
        'cpu_model': fields.get('Model name', '').strip(),
        'cpu_family_model_stepping': [
            fields.get(k, '').strip() for k in ('CPU family', 'Model', 'Stepping')
        ],
        'hypervisor': fields.get('Hypervisor vendor', '').strip() or None,
        'cpus': os.cpu_count(),
        'flags_present': [f for f in CPU_FLAGS if f in flags],
        'flags_absent': [f for f in CPU_FLAGS if f not in flags],
        'python': platform.python_version(),
        'gpu': 'none: CPU only, not measured on a GPU',
    }


def _config(policy, epochs=None, seed=0):
    from configs import glow_digits

    config = glow_digits.get_config()
    config.seed = seed
    config.train.mixed_precision = _policy(policy)
    if epochs:  # A short run, to try the commands out; the figures use the recipe's 60.
        config.train.epochs = epochs
    return config


def train(args):
    from tfp_flows.run import experiment

    name = args.policy if not args.seed else f'{args.policy}_seed{args.seed}'
    workdir = os.path.join(args.runs, name)
    monitor = P.ContentionMonitor()
    start = time.monotonic()
    metrics = experiment.train_and_evaluate(
        _config(args.policy, args.epochs, args.seed), workdir, verbose=0
    )
    record = {
        'policy': args.policy,
        'seed': args.seed,
        'metrics': metrics,
        'wall_s': round(time.monotonic() - start, 1),
        'load': monitor.stop(),
        'machine': machine(),
        'command': ' '.join(sys.argv),
    }
    with open(os.path.join(workdir, 'bench_train.json'), 'w') as f:
        json.dump(record, f, indent=1)
    print(json.dumps({k: record[k] for k in ('policy', 'wall_s', 'load')}, indent=1))
    print(json.dumps(metrics, indent=1))


def _restore(workdir, policy):
    """The run's best checkpoint in a flow whose networks compute in `policy`."""
    import ml_collections
    import tensorflow as tf

    from tfp_flows.run import restore
    from tfp_flows.run import workdir as workdirs

    config = workdirs.read_json(os.path.join(workdir, 'config.json'))
    flow = restore.build_flow(
        ml_collections.ConfigDict(config['model']),
        tuple(config['data']['event_shape']),
        _policy(policy),
    )
    path = tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints', 'best'))
    restore.restore(tf.train.Checkpoint(flow=flow), path, partial=True)
    return flow, config


def _test_data(config):
    """The run's test split as `experiment` evaluates it: its batch size and fixed noise (the
    evaluation seed 0); the dataset and its images concatenated."""
    from tfp_flows import data

    dataset, info = data.make_dataset(
        config['data']['name'],
        config['data']['splits']['test'],
        config['train']['batch_size'],
        shuffle=False,
        seed=0,
        epoch=0,
    )
    return dataset, np.concatenate([batch.numpy() for batch in dataset]), info


def _errors(flow, images):
    """Round-trip and log-det errors of the flow's bijector f (latent -> data)."""
    import checks
    import tensorflow as tf

    bijector = flow.bijector
    x = tf.constant(images)
    z = bijector.inverse(x)
    x_again = bijector.forward(tf.constant(z.numpy()))
    latent = tf.random.stateless_normal(x.shape, [0, 7])
    latent_again = bijector.inverse(tf.constant(bijector.forward(latent).numpy()))
    subset = x[:32]
    jacobian = tf.cast(checks.batch_jacobian(bijector.inverse, subset), tf.float64)
    _, autodiff = tf.linalg.slogdet(jacobian)
    log_det = tf.cast(bijector.inverse_log_det_jacobian(subset, event_ndims=3), tf.float64)
    return {
        'round_trip_x_max_abs': float(tf.reduce_max(tf.abs(x_again - x))),
        'round_trip_z_max_abs': float(tf.reduce_max(tf.abs(latent_again - latent))),
        'log_det_vs_autodiff_max_abs_nats': float(tf.reduce_max(tf.abs(log_det - autodiff))),
        'log_det_magnitude_mean_nats': float(tf.reduce_mean(tf.abs(autodiff))),
    }


def _optimizer_steps(workdir):
    """The optimizer's step count in the run's latest checkpoint (float16 skips overflows)."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(
        tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints', 'latest'))
    )
    (key,) = [k for k in reader.get_variable_to_shape_map() if k.startswith('optimizer/_iter')]
    return int(reader.get_tensor(key))


def accuracy(args):
    from tfp_flows.training.trainer import FlowTrainer

    results = {'machine': machine(), 'command': ' '.join(sys.argv), 'runs': {}}
    monitor = P.ContentionMonitor()
    reference_log_prob = {}
    for trained in POLICIES:
        workdir = os.path.join(args.runs, trained)
        with open(os.path.join(workdir, 'metrics.json')) as f:
            metrics = json.load(f)
        entry = {
            'run_metrics': metrics,
            'optimizer_steps': _optimizer_steps(workdir),  # Fewer than batches: skipped steps.
            'batches': metrics['epochs_trained'] * 19,  # 1,257 training images in batches of 64.
            'evaluated_under': {},
        }
        train_record = os.path.join(workdir, 'bench_train.json')  # From the train command.
        if os.path.exists(train_record):
            with open(train_record) as f:
                entry['training'] = {k: v for k, v in json.load(f).items() if k != 'metrics'}
        for evaluated in POLICIES:
            flow, config = _restore(workdir, evaluated)
            dataset, images, info = _test_data(config)
            trainer = FlowTrainer(flow, info.num_bins)
            trainer.compile('sgd')
            bits = trainer.evaluate(dataset, verbose=0, return_dict=True)['bits_per_dim']
            log_prob = flow.log_prob(images).numpy()
            if evaluated == 'float32':
                reference_log_prob[trained] = log_prob
            difference = np.abs(log_prob - reference_log_prob[trained])
            row = {
                'test_bits_per_dim': float(bits),
                'log_prob_vs_float32_eval_max_abs_nats': float(np.max(difference)),
                'log_prob_vs_float32_eval_mean_abs_nats': float(np.mean(difference)),
            }
            if evaluated == trained or trained == 'float32':
                row.update(_errors(flow, images))
            entry['evaluated_under'][evaluated] = row
        results['runs'][trained] = entry
    results['load'] = monitor.stop()
    with open(args.out, 'w') as f:
        json.dump(results, f, indent=1)
    print(json.dumps(results, indent=1))


MODELS = {
    # name: (event shape, levels, steps, width, train batch, train steps per fit call,
    #        steps_per_execution, eval batch)
    'digits': ((8, 8, 1), 2, 4, 64, 64, 8, 8, 256),
    'large': ((32, 32, 3), 3, 4, 512, 16, 2, 1, 16),
}
# The modes timed per model: graph only for the large model, to keep the command short.
MODES = {'digits': ('graph', 'xla'), 'large': ('graph',)}


def _case(model, policy, mode, images):
    """The timed calls of one figure: {kind: (function, images per call)}, kind 'train' (one
    `FlowTrainer.fit` epoch over `images`), 'log_prob' and 'sample' (one eval batch each)."""
    import keras
    import tensorflow as tf

    import tfp_flows
    from tfp_flows.training.optimizers import make_optimizer
    from tfp_flows.training.trainer import FlowTrainer

    shape, levels, steps, width, batch, _, per_call, eval_batch = MODELS[model]
    xla = mode == 'xla'
    keras.utils.set_random_seed(0)
    flow = tfp_flows.glow(shape, levels, steps, width, dtype_policy=_policy(policy))
    tfp_flows.initialize(flow, images[:batch])
    trainer = FlowTrainer(flow, 17, clip_norm=50.0)
    trainer.compile(
        make_optimizer('adamax', 3e-3, warmup_steps=100),
        jit_compile=xla,
        steps_per_execution=per_call,
    )
    batches = tf.data.Dataset.from_tensor_slices(images).batch(batch).cache()
    x = tf.constant(images[:eval_batch])
    log_prob = tf.function(flow.log_prob, jit_compile=xla)
    draw = tf.function(lambda: flow.sample(eval_batch), jit_compile=xla)
    return {
        'train': (lambda: trainer.fit(batches, epochs=1, verbose=0), len(images)),
        'log_prob': (lambda: log_prob(x).numpy(), eval_batch),
        'sample': (lambda: draw().numpy(), eval_batch),
    }


def throughput(args):
    """Every (model, policy, mode) built first, then timed in turns: in each repeat every case
    runs once, starting one case later than the repeat before, so load from other processes
    falls on every policy alike."""
    import statistics

    from tfp_flows.training.distribute import configure_threads

    configure_threads(1, 0)  # The default recipe's: one thread per op, ops side by side.
    import tfp_flows

    results = {'machine': machine(), 'command': ' '.join(sys.argv), 'figures': []}
    rng = np.random.default_rng(0)
    cases = []
    for model, (shape, *_, batch, fit_steps, _, _) in MODELS.items():
        if args.models and model not in args.models.split(','):
            continue
        pixels = rng.integers(0, 17, size=(fit_steps * batch, *shape))
        images = tfp_flows.uniform_dequantize(pixels, 17, seed=[0, 1]).numpy()
        for policy in POLICIES:
            for mode in MODES[model]:
                cases.append(((model, policy, mode), _case(model, policy, mode, images)))
    monitor = P.ContentionMonitor()
    for key, calls in cases:  # Tracing, XLA compilation, Keras' first-epoch set-up.
        for kind, (function, _) in calls.items():
            start = time.perf_counter()
            for _ in range(args.warmup):
                function()
            print(f'warm-up {key} {kind}: {time.perf_counter() - start:.1f} s', flush=True)
    times = {(key, kind): [] for key, calls in cases for kind in calls}
    loads = {(key, kind): [] for key, calls in cases for kind in calls}
    for repeat in range(args.repeats):
        for i in range(len(cases)):
            key, calls = cases[(i + repeat) % len(cases)]
            for kind, (function, _) in calls.items():
                call_monitor = P.ContentionMonitor()
                start = time.perf_counter()
                function()
                times[key, kind].append(time.perf_counter() - start)
                loads[key, kind].append(call_monitor.stop().get('others_cpu_frac'))
        print(f'repeat {repeat + 1} of {args.repeats} done', flush=True)
    for key, calls in cases:
        model, policy, mode = key
        shape, levels, steps, width, batch, fit_steps, per_call, eval_batch = MODELS[model]
        figure = {'model': model, 'policy': policy, 'mode': mode}
        for kind, (_, count) in calls.items():
            figure[f'{kind}_images_per_s'] = count / statistics.median(times[key, kind])
        figure.update(
            times_s={kind: times[key, kind] for kind in calls},
            others_cpu_frac_median={kind: statistics.median(loads[key, kind]) for kind in calls},
            train_batch=batch,
            train_steps_per_fit_call=fit_steps,
            steps_per_execution=per_call,
            eval_batch=eval_batch,
            architecture=f'glow {shape}, L={levels}, K={steps}, width {width}',
        )
        results['figures'].append(figure)
        print(json.dumps({k: v for k, v in figure.items() if k != 'times_s'}), flush=True)
    results['load'] = monitor.stop()
    results['protocol'] = (
        f'median of {args.repeats} repeats after {args.warmup} warm-ups, cases interleaved; '
        'intra-op threads 1, inter-op threads TF default'
    )
    with open(args.out, 'w') as f:
        json.dump(results, f, indent=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('command', choices=['train', 'accuracy', 'throughput'])
    parser.add_argument('--policy', choices=POLICIES, default='float32')
    parser.add_argument('--runs', default='/tmp/tfp_flows_mixed_precision_runs')
    parser.add_argument('--out', default=None)
    parser.add_argument('--models', default='', help='throughput: comma-separated MODELS keys')
    parser.add_argument('--seed', type=int, default=0, help='train: config.seed (0: RUNS/POLICY)')
    parser.add_argument('--epochs', type=int, default=None, help='train: fewer epochs (a try)')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    args = parser.parse_args()
    {'train': train, 'accuracy': accuracy, 'throughput': throughput}[args.command](args)


if __name__ == '__main__':
    main()
