"""Real tables: a vector flow beside GaussianMixture and KernelDensity, in test nats/dim.

For scikit-learn's breast cancer (569 x 30) and wine (178 x 13) tables (the features; the class
column is left out): each table is written to a CSV with a header row, and the flow is trained
on it by `python train.py --config=configs/realnvp_table.py --config.data.name=csv:PATH` in a
fresh process (`digits_recipes.run_recipe`), the command a user types. The run keeps its best
epoch by validation and reports `test_nats_per_dim` in metrics.json: the mean over the test
rows of -log p(x) / D, in the CSV's units (the model standardises inside itself and adds the
log-Jacobian, `tfp_flows.run.restore.standardize_flow`). The flow is also restored here and its
log p(x) of each test row recomputed, to check that figure and to pair it with the others.

The peers, on the same train / validation / test split (`tfp_flows.data.own.split_indices`),
fit on the training rows standardised with the training split's mean and deviation (ddof 0,
the flow's own standardisation), with -sum(log deviation) added back, so every figure is a
density in the CSV's units:
  GaussianMixture: every covariance type x components in GMM_COMPONENTS (3 initialisations,
    random_state 0); the pair with the best validation log-likelihood, as fitted on the
    training rows (no refit on train + validation: the flow never trains on validation).
  KernelDensity: Gaussian kernel, bandwidth in BANDWIDTHS (standardised units) chosen by
    validation log-likelihood; fitted on the training rows only, as above.

    nice -n 15 python bench/tables.py                  # bench/results/tables.{json,md}
    nice -n 15 python bench/tables.py --search         # the recipe search: tables_search.jsonl
    nice -n 15 python bench/tables.py --set model.coupling=spline --out /tmp/spline

`--set KEY=VALUE` (repeatable) is passed to every flow run as --config.KEY=VALUE, so the table
can be re-measured with another coupling or size. Reported per table: test and validation
log-likelihood in nats per dimension (higher is better; minus metrics.json's figure), per-row
standard errors, each fit's choice and seconds, the machine and the runs' commands.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time

import numpy as np
import sklearn.datasets
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import KernelDensity

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)  # `configs` and this checkout's `tfp_flows`.

from digits_recipes import run_recipe  # noqa: E402

from tfp_flows.data import own  # noqa: E402

TABLES = ('breast_cancer', 'wine')
RECIPE = 'realnvp_table'
GMM_COMPONENTS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20)
COVARIANCE_TYPES = ('full', 'tied', 'diag', 'spherical')
BANDWIDTHS = tuple(float(b) for b in np.geomspace(0.05, 3.0, 41))

# The recipe search, each candidate run on both tables: SEARCH_BASE with a candidate's changes,
# all of them passed as overrides of configs/realnvp_table.py.
SEARCH_BASE = {
    'model.hidden_channels': 64,
    'model.num_steps': 8,
    'model.dropout_rate': 0.1,
    'train.weight_decay': 0.1,
    'train.learning_rate': 1e-3,
    'train.batch_size': 32,
    'train.warmup_steps': 20,
    'train.epochs': 200,
    'train.early_stopping_patience': 40,
}
CANDIDATES = {
    'base': {},
    'lr3e-3': {'train.learning_rate': 3e-3},
    'dropout0.3': {'model.dropout_rate': 0.3},
    'wd1': {'train.weight_decay': 1.0},
    'width32': {'model.hidden_channels': 32},
    'bound1': {'model.log_scale_bound': 1.0},
    'bound0.5': {'model.log_scale_bound': 0.5},
    'small': {'model.hidden_channels': 32, 'model.num_steps': 4, 'model.dropout_rate': 0.3},
    'steps4': {'model.num_steps': 4},
    'ema0.99': {'train.ema_momentum': 0.99},
    'lr3e-3_ema0.99': {'train.learning_rate': 3e-3, 'train.ema_momentum': 0.99},
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--root', default='/tmp/tfp_flows_tables', help='Tables and workdirs.')
    parser.add_argument('--out', default=os.path.join(HERE, 'results', 'tables'))
    parser.add_argument('--tables', default=','.join(TABLES))
    parser.add_argument('--seeds', default='0', help="Comma-separated config.seed's of the flow.")
    parser.add_argument('--nice', type=int, default=15, help='Niceness of the training runs.')
    parser.add_argument('--search', action='store_true', help='Run CANDIDATES (flow only).')
    parser.add_argument('--set', action='append', default=[], metavar='KEY=VALUE')
    return parser.parse_args(argv)


def write_table(name, directory):
    """Writes scikit-learn's table `name` (features only) to directory/NAME.csv; its path."""
    bunch = getattr(sklearn.datasets, f'load_{name}')()
    names = [re.sub(r'[^0-9a-z]+', '_', n.lower()).strip('_') for n in bunch.feature_names]
    path = os.path.join(directory, f'{name}.csv')
    os.makedirs(directory, exist_ok=True)
    with open(path, 'w') as f:
        f.write(','.join(names) + '\n')
        f.writelines(','.join(repr(float(v)) for v in row) + '\n' for row in bunch.data)
    return path


def standardized_splits(path):
    """({split: rows standardised by the training split's mean and deviation}, the log-Jacobian
    -sum(log deviation) that takes their log-densities to the CSV's units, the raw splits)."""
    x = own.read_csv(path)[0]
    raw = {split: x[own.split_indices(len(x), split)] for split in own.SPLIT_FRACTIONS}
    mean, scale = raw['train'].mean(axis=0), raw['train'].std(axis=0)
    return {k: (v - mean) / scale for k, v in raw.items()}, -np.log(scale).sum(), raw


def _summary(log_p, num_dims):
    """Mean log-likelihood per dimension of per-row `log_p` [N], and its standard error."""
    per_dim = np.asarray(log_p, np.float64) / num_dims
    return {'mean': float(per_dim.mean()), 'se': float(per_dim.std(ddof=1) / np.sqrt(len(per_dim)))}


def _select(fits, z, log_jacobian):
    """The record of the fit (of (choice, fitted model) pairs) best by validation."""
    num_dims = z['train'].shape[1]
    scored = [(_summary(m.score_samples(z['validation']) + log_jacobian, num_dims), c, m)
              for c, m in fits]  # fmt: skip
    validation, choice, model = max(scored, key=lambda s: s[0]['mean'])
    test = model.score_samples(z['test']) + log_jacobian
    return {
        'choice': choice,
        'validation': validation,
        'test': _summary(test, num_dims),
        'test_log_p': test.tolist(),
        'candidates': len(fits),
    }


def gaussian_mixture(z, log_jacobian):
    start = time.monotonic()
    fits = [
        (
            {'covariance_type': kind, 'n_components': k},
            GaussianMixture(k, covariance_type=kind, n_init=3, random_state=0).fit(z['train']),
        )
        for kind in COVARIANCE_TYPES
        for k in GMM_COMPONENTS
        if k < len(z['train'])
    ]
    return {**_select(fits, z, log_jacobian), 'seconds': round(time.monotonic() - start, 1)}


def kernel_density(z, log_jacobian):
    start = time.monotonic()
    fits = [({'bandwidth': b}, KernelDensity(bandwidth=b).fit(z['train'])) for b in BANDWIDTHS]
    return {**_select(fits, z, log_jacobian), 'seconds': round(time.monotonic() - start, 1)}


def flow(path, workdir, raw, overrides, nice):
    """Trains the recipe on the CSV `path` with train.py; its record, with the test rows'
    log-likelihood per dimension recomputed from the restored best flow."""
    from tfp_flows.run import restore

    record = run_recipe(RECIPE, workdir, [f'data.name=csv:{path}', *overrides], nice)
    metrics, num_dims = record['metrics'], raw['test'].shape[1]
    log_p = restore.restore_flow(workdir).log_prob(raw['test'].astype(np.float32)).numpy()
    record['test'] = _summary(log_p, num_dims)
    record['test_log_p'] = log_p.astype(np.float64).tolist()
    record['validation'] = {'mean': -metrics['validation_nats_per_dim']}
    if abs(record['test']['mean'] + metrics['test_nats_per_dim']) > 1e-4:
        raise SystemExit(f'{workdir}: restored flow {record["test"]} != metrics.json {metrics}.')
    return record


def _paired(a, b, num_dims):
    """Mean and standard error of the per-row difference a - b, per dimension."""
    return _summary(np.subtract(a, b), num_dims)


def measure_table(name, args):
    path = write_table(name, args.root)
    z, log_jacobian, raw = standardized_splits(path)
    result = {
        'rows': {k: len(v) for k, v in raw.items()},
        'columns': int(raw['train'].shape[1]),
        'csv_log_jacobian': float(log_jacobian),
        'gaussian_mixture': gaussian_mixture(z, log_jacobian),
        'kernel_density': kernel_density(z, log_jacobian),
        'flow': [],
    }
    for seed in args.seeds.split(','):
        workdir = os.path.join(args.root, 'runs', f'{name}_seed{seed}')
        overrides = [f'seed={seed}', *args.set]
        result['flow'].append(flow(path, workdir, raw, overrides, args.nice))
    for peer in ('gaussian_mixture', 'kernel_density'):
        for run in result['flow']:
            run[f'minus_{peer}'] = _paired(
                run['test_log_p'], result[peer]['test_log_p'], result['columns']
            )
    return result


def machine():
    model = subprocess.run(['lscpu'], capture_output=True, text=True).stdout
    found = re.search(r'^Model name:\s*(.+)$', model, re.M)
    return {
        'cpu': found.group(1) if found else platform.processor(),
        'cpus': os.cpu_count(),
        'platform': platform.platform(),
        'loadavg': [round(v, 2) for v in os.getloadavg()],
        'date_utc': datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds'),
    }


def search(args):
    """Runs each of CANDIDATES on each table (flow only), appending to OUT_search.jsonl;
    candidates already there are kept. Prints the mean validation figure of each."""
    log = args.out + '_search.jsonl'
    done = set()
    if os.path.exists(log):
        with open(log) as f:
            done = {(r['candidate'], r['table']) for r in map(json.loads, f)}
    for candidate, overrides in CANDIDATES.items():  # `--set` is not used here.
        for name in args.tables.split(','):
            if (candidate, name) in done:
                continue
            path = write_table(name, args.root)
            workdir = os.path.join(args.root, 'search', f'{candidate}_{name}')
            changed = {**SEARCH_BASE, **overrides}
            settings = [f'data.name=csv:{path}', *(f'{k}={v}' for k, v in changed.items())]
            record = run_recipe(RECIPE, workdir, settings, args.nice)
            record.update(candidate=candidate, table=name, overrides=overrides)
            with open(log, 'a') as f:
                f.write(json.dumps(record) + '\n')
            print(candidate, name, record['metrics'], flush=True)


def _search_lines(log):
    """The search's table: each candidate's validation and test log-likelihood per table."""
    if not os.path.exists(log):
        return []
    with open(log) as f:
        records = [json.loads(line) for line in f]
    rows = {}
    for r in records:
        m = r['metrics']
        rows.setdefault(r['candidate'], {'overrides': r['overrides']})[r['table']] = (
            -m['validation_nats_per_dim'],
            -m['test_nats_per_dim'],
            f'{m["best_epoch"]}/{m["epochs_trained"]}',
            r['wall_s'],
        )
    base = ', '.join(f'`{k}={v}`' for k, v in SEARCH_BASE.items())
    lines = [
        f'Each candidate is configs/realnvp_table.py with the search base ({base}) and its '
        'changes, run once (seed 0) on each table; the recipe is the candidate of the best mean '
        'validation log-likelihood per dimension over the two tables.',
        '',
        '| candidate | changes from the search base | breast cancer: validation / test (best '
        'epoch, wall s) | wine: validation / test (best epoch, wall s) | mean validation |',
        '|---|---|---|---|---|',
    ]
    for candidate, row in rows.items():
        cells = [
            f'{row[t][0]:.3f} / {row[t][1]:.3f} ({row[t][2]}, {row[t][3]:.0f})' if t in row else ''
            for t in TABLES
        ]
        mean = np.mean([row[t][0] for t in TABLES]) if all(t in row for t in TABLES) else None
        changes = ', '.join(f'`{k}={v}`' for k, v in row['overrides'].items())
        lines.append(
            f'| {candidate} | {changes or "(the base)"} | '
            f'{" | ".join(cells)} | {"" if mean is None else f"{mean:.3f}"} |'
        )
    cpu = sum(r['run_cpu_s'] for r in records)
    return [*lines, '', f'{len(records)} runs, {cpu:.0f} CPU s of training runs in all.']


def _figure(summary):
    return (
        f'{summary["mean"]:.3f} +- {summary["se"]:.3f}'
        if 'se' in summary
        else (f'{summary["mean"]:.3f}')
    )


def _verdict(result):
    """The flow's mean test and validation figures over its seeds against the better peer's."""
    sentences = []
    for split in ('test', 'validation'):
        peer = max(('gaussian_mixture', 'kernel_density'), key=lambda p: result[p][split]['mean'])
        mean = float(np.mean([run[split]['mean'] for run in result['flow']]))
        best = result[peer][split]['mean']
        sentences.append(
            f'on the {split} rows the flow is **{"above" if mean > best else "below"}** the '
            f'better peer ({peer}, {best:.3f}): {mean:.3f}, {mean - best:+.3f} nats/dim'
        )
    return f'Mean of {len(result["flow"])} seed(s): {"; ".join(sentences)}.'


def write_outputs(out, results, host, args):
    with open(out + '.json', 'w') as f:
        json.dump(
            {'machine': host, 'set': args.set, 'seeds': args.seeds, 'tables': results}, f, indent=1
        )
    lines = [
        f"Test log-likelihood in nats per dimension (higher is better; the CSV's own units), "
        f'on {host["cpus"]} cores of an {host["cpu"]}, {host["date_utc"][:10]} (load average '
        f'{host["loadavg"][0]} at the end: the machine was shared). `+-` is the standard error '
        f'over the test rows. Made by `nice -n {args.nice} python {shlex.join(sys.argv)}` (its '
        'docstring gives the protocol).',
        '',
    ]
    for name, r in results.items():
        rows = r['rows']
        lines += [
            f'### {name} ({r["columns"]} columns; {rows["train"]} / {rows["validation"]} / '
            f'{rows["test"]} train / validation / test rows)',
            '',
            '| model | chosen by validation | validation | test | seconds |',
            '|---|---|---|---|---|',
        ]
        for peer, label in (
            ('gaussian_mixture', 'GaussianMixture'),
            ('kernel_density', 'KernelDensity'),
        ):
            p = r[peer]
            choice = ', '.join(f'{k} {v:.3g}' if isinstance(v, float) else f'{k} {v}'
                               for k, v in p['choice'].items())  # fmt: skip
            lines.append(
                f'| {label} | {choice} (of {p["candidates"]}) | {_figure(p["validation"])} | '
                f'{_figure(p["test"])} | {p["seconds"]} |'
            )
        for run in r['flow']:
            m = run['metrics']
            lines.append(
                f'| flow, `{run["command"]}` | best epoch {m["best_epoch"]} of '
                f'{m["epochs_trained"]} | {_figure(run["validation"])} | {_figure(run["test"])} '
                f'| {run["wall_s"]} wall, {run["run_cpu_s"]} CPU (others took '
                f'{run.get("others_cpu_frac", 0):.0%} of the CPU) |'
            )
        lines += ['', 'Flow minus peer, per test row, mean +- standard error:']
        for run, seed in zip(r['flow'], args.seeds.split(','), strict=True):
            diffs = [
                f'{_figure(run[f"minus_{p}"])} vs {p}'
                for p in ('gaussian_mixture', 'kernel_density')
            ]
            lines.append(f'- seed {seed}: {"; ".join(diffs)}.')
        lines += ['', _verdict(r), '']
    search_lines = _search_lines(out + '_search.jsonl')
    if search_lines:
        lines += [
            '### The recipe search (validation chooses; test shown, not used)',
            '',
            *search_lines,
        ]
    with open(out + '.md', 'w') as f:
        f.write('\n'.join(lines) + '\n')


def main(argv=None):
    args = parse_args(argv)
    if args.search:
        search(args)
        return
    results = {name: measure_table(name, args) for name in args.tables.split(',')}
    write_outputs(args.out, results, machine(), args)


if __name__ == '__main__':
    main()
