"""Glow's ablation on digits: permutation (lu, plain, shuffle, reverse) x coupling (affine,
additive), several seeds each, through the library's training API.

Each run is the Glow digits recipe (configs/glow_digits.py) with `config.model.permutation`,
`config.model.coupling` and the seed changed (`config.seed`, which fixes data order and
dequantization noise, and the model's initial parameters and shuffles, `model.seed`), trained by
`tfp_flows.run.experiment.train_and_evaluate` in a fresh process, one run after another. The figure
is the test bits/dim of the best-by-validation checkpoint (`metrics.json`). Kingma and Dhariwal
(2018, Glow, Fig. 3, https://arxiv.org/abs/1807.03039) found 1x1 conv < shuffle < reverse and
affine < additive in bits/dim on CIFAR-10; this asks whether that ordering holds here.

    python bench/glow_ablation.py --root /tmp/glow_ablation --out bench/results/glow_ablation
    # the figures in bench/results/glow_ablation.*: the centred, uniformly dequantized Glow
    # (the default recipe when they were measured)
    python bench/glow_ablation.py --root /tmp/glow_ablation_centre \
        --set model.preprocessing="'centre'" --set model.alpha=0.05 \
        --set dequantizer.kind="'uniform'" --set eval.iw_samples=0
    # a smoke test: 1 seed, 1 epoch, a tiny model
    python bench/glow_ablation.py --root /tmp/ablation_smoke --out /tmp/ablation_smoke/result \\
        --seeds 0 --set train.epochs=1 --set model.num_steps=1 --set model.hidden_channels=8

Writes OUT.json (every run's metrics, the CPU share other processes took during it, machine
info) and OUT.md (mean +- sample std of test bits/dim per cell, the histogram baseline beside).
A run whose workdir already holds metrics.json is not trained again, so an interrupted sweep
resumes where it stopped (use a new --root after changing --set).
"""

import argparse
import datetime
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)  # `configs` and this checkout's `tfp_flows`.

PERMUTATIONS = ('lu', 'plain', 'shuffle', 'reverse')
COUPLINGS = ('affine', 'additive')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--root', required=True, help='One workdir per run is made under it.')
    parser.add_argument('--out', help='Writes OUT.json and OUT.md (default: ROOT/ablation).')
    parser.add_argument('--seeds', default='0,1,2', help='Comma-separated ints.')
    parser.add_argument('--permutations', default=','.join(PERMUTATIONS))
    parser.add_argument('--couplings', default=','.join(COUPLINGS))
    parser.add_argument(
        '--set',
        action='append',
        default=[],
        metavar='SECTION.KEY=VALUE',
        help='Config override for every run, e.g. train.epochs=30 (a Python literal).',
    )
    parser.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--permutation', help=argparse.SUPPRESS)
    parser.add_argument('--coupling', help=argparse.SUPPRESS)
    parser.add_argument('--seed', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--workdir', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def apply_overrides(config, overrides):
    """Sets `section.key=value` overrides (values as Python literals, else strings)."""
    import ast

    for override in overrides:
        path, sep, text = override.partition('=')
        if not sep or '.' not in path:
            raise SystemExit(f'--set takes SECTION.KEY=VALUE; got {override!r}.')
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        *sections, key = path.split('.')
        node = config
        for section in sections:
            node = node[section]
        with config.unlocked():
            node[key] = value


def run_child(args):
    """One training run in this process; prints its metrics as the last line (JSON)."""
    from configs import glow_digits
    from tfp_flows.run import experiment

    config = glow_digits.get_config()
    apply_overrides(config, args.set)
    with config.unlocked():
        config.seed = args.seed
        config.model.seed = args.seed
        config.model.permutation = args.permutation
        config.model.coupling = args.coupling
    metrics = experiment.train_and_evaluate(config, args.workdir, verbose=0)
    print(json.dumps(metrics))


def _cpu_jiffies():
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    try:
        with open('/proc/stat') as f:
            fields = [int(v) for v in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    hz = os.sysconf('SC_CLK_TCK')
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / hz, sum(fields) / hz


def run_one(args, permutation, coupling, seed, workdir):
    """Trains one cell in a fresh process; returns its metrics and the machine's load."""
    metrics_path = os.path.join(workdir, 'metrics.json')
    if os.path.exists(metrics_path):
        with open(metrics_path) as f:
            return {'metrics': json.load(f), 'reused': True}
    command = [
        sys.executable,
        os.path.abspath(__file__),
        '--child',
        '--root',
        args.root,
        f'--permutation={permutation}',
        f'--coupling={coupling}',
        f'--seed={seed}',
        f'--workdir={workdir}',
        *(f'--set={override}' for override in args.set),
    ]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get('PYTHONPATH', '')]))
    before, children_before, start = _cpu_jiffies(), os.times(), time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    wall = time.monotonic() - start
    after, children_after = _cpu_jiffies(), os.times()
    if result.returncode != 0:
        raise SystemExit(
            f'Run {permutation}/{coupling}/seed {seed} failed:\n{result.stderr[-3000:]}'
        )
    own = (children_after.children_user - children_before.children_user) + (
        children_after.children_system - children_before.children_system
    )
    load = {'wall_s': round(wall, 1), 'run_cpu_s': round(own, 1)}
    if before and after:
        busy, total = after[0] - before[0], after[1] - before[1]
        load['others_cpu_frac'] = round(max(0.0, busy - own) / total, 3) if total else None
    return {'metrics': json.loads(result.stdout.strip().splitlines()[-1]), 'reused': False, **load}


def _histogram_baseline():
    from tfp_flows import data
    from tfp_flows.tools.baselines import histogram_baseline

    splits = [data.load_digits(split) for split in ('train', 'validation', 'test')]
    return histogram_baseline(*splits, num_bins=17)


def _mean_std(values):
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else float('nan'))


def write_outputs(out, runs, args, baseline):
    cells = {}
    for run in runs:
        key = (run['permutation'], run['coupling'])
        cells.setdefault(key, []).append(run['metrics']['test_bits_per_dim'])
    summary = {
        f'{p}/{c}': dict(zip(('mean', 'std'), _mean_std(v), strict=True), n=len(v))
        for (p, c), v in cells.items()
    }
    others = [r['others_cpu_frac'] for r in runs if r.get('others_cpu_frac') is not None]
    record = {
        'date_utc': datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds'),
        'argv': sys.argv,
        'overrides': args.set,
        'machine': {
            'nproc': os.cpu_count(),
            'platform': platform.platform(),
            'max_others_cpu_frac': max(others) if others else None,
        },
        'histogram_baseline': baseline,
        'summary': summary,
        'runs': runs,
    }
    os.makedirs(os.path.dirname(os.path.abspath(out)) or '.', exist_ok=True)
    with open(out + '.json', 'w') as f:
        json.dump(record, f, indent=2)
        f.write('\n')
    couplings = [c for c in COUPLINGS if any(k[1] == c for k in cells)]
    lines = [
        '| permutation | ' + ' | '.join(f'{c} coupling' for c in couplings) + ' |',
        '|---|' + '---|' * len(couplings),
    ]
    for permutation in [p for p in PERMUTATIONS if any(k[0] == p for k in cells)]:
        row = []
        for coupling in couplings:
            values = cells.get((permutation, coupling))
            if not values:
                row.append('')
                continue
            mean, std = _mean_std(values)
            row.append(f'{mean:.3f} +- {std:.3f} (n={len(values)})')
        lines.append(f'| {permutation} | ' + ' | '.join(row) + ' |')
    lines += [
        '',
        'Test bits/dim of the best-by-validation checkpoint, mean +- sample std over seeds. '
        f'Per-pixel histogram baseline: {baseline["test_bits_per_dim"]:.3f}. Overrides of the '
        f'glow_digits recipe: {", ".join(args.set) or "none"}. Other processes took up to '
        f'{record["machine"]["max_others_cpu_frac"]} of the CPU during a run (bits/dim does not '
        'depend on load; wall-clock does).',
    ]
    with open(out + '.md', 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return record


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        return run_child(args)
    seeds = [int(s) for s in args.seeds.split(',')]
    permutations = args.permutations.split(',')
    couplings = args.couplings.split(',')
    for name, values, allowed in (
        ('permutations', permutations, PERMUTATIONS),
        ('couplings', couplings, COUPLINGS),
    ):
        if not set(values) <= set(allowed):
            raise SystemExit(f'--{name} must be taken from {allowed}; got {values}.')
    out = args.out or os.path.join(args.root, 'ablation')
    runs = []
    for permutation, coupling, seed in itertools.product(permutations, couplings, seeds):
        workdir = os.path.join(args.root, f'{permutation}_{coupling}_seed{seed}')
        print(f'{permutation:8s} {coupling:8s} seed {seed} ...', end=' ', flush=True)
        run = run_one(args, permutation, coupling, seed, workdir)
        run.update(permutation=permutation, coupling=coupling, seed=seed, workdir=workdir)
        runs.append(run)
        print(
            f'test {run["metrics"]["test_bits_per_dim"]:.4f} bits/dim'
            + (' (reused)' if run['reused'] else f' in {run["wall_s"]} s')
        )
    write_outputs(out, runs, args, _histogram_baseline())
    print(f'Wrote {out}.json and {out}.md')


if __name__ == '__main__':
    main()
