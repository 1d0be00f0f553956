"""The digits recipes as `python train.py` runs them: figures, time and the machine's load.

Each recipe (configs/NAME.py) is trained by `python train.py --config=configs/NAME.py
--workdir=ROOT/NAME` in a fresh process (at `--nice`), one after another, exactly the command
a user types: `tfp_flows.run.experiment.train_and_evaluate` trains it (a variational dequantizer
with the flow where the recipe asks for one), keeps the best epoch by validation bits/dim and
writes metrics.json. Reported per recipe: validation and test bits/dim (the one-sample bound,
fixed noise), the importance-weighted test and validation figures when the recipe sets
`config.eval.iw_samples`, the best epoch, wall-clock seconds, the run's CPU seconds and the
share of the machine's CPU other processes took meanwhile (a loaded machine stretches wall
time, not CPU time), beside the per-pixel histogram baseline (`tfp_flows.tools.baselines`).

    python bench/digits_recipes.py --root /tmp/digits_recipes --out bench/results/digits_recipes
    python bench/digits_recipes.py --recipes default --root /tmp/r --out /tmp/r/result \\
        --set train.epochs=1          # a smoke test (--set becomes --config.KEY=VALUE)

Writes OUT.json (every run's record) and OUT.md (a table). A recipe whose workdir already holds
metrics.json is not trained again (its record is kept from OUT.json if there).
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)  # `configs` and this checkout's `tfp_flows`.

from glow_ablation import _cpu_jiffies  # noqa: E402

RECIPES = ('default', 'affine_digits', 'realnvp_digits', 'glow_digits', 'glow_digits_conditional')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--root', required=True, help='One workdir per recipe is made under it.')
    parser.add_argument('--out', required=True, help='Writes OUT.json and OUT.md.')
    parser.add_argument('--recipes', default=','.join(RECIPES), help='Comma-separated names.')
    parser.add_argument('--nice', type=int, default=5, help='Niceness of the training runs.')
    parser.add_argument(
        '--set',
        action='append',
        default=[],
        metavar='SECTION.KEY=VALUE',
        help='Config override for every run, passed to train.py as --config.SECTION.KEY=VALUE.',
    )
    return parser.parse_args(argv)


def run_recipe(name, workdir, overrides, nice):
    """Trains recipe `name` with train.py in a fresh process; returns its record."""
    command = [
        'nice',
        '-n',
        str(nice),
        sys.executable,
        os.path.join(ROOT, 'train.py'),
        f'--config={os.path.join(ROOT, "configs", name + ".py")}',
        f'--workdir={workdir}',
        *(f'--config.{override}' for override in overrides),
    ]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get('PYTHONPATH', '')]))
    before, children_before = _cpu_jiffies(), os.times()
    load_start, start = os.getloadavg(), time.monotonic()
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    wall = time.monotonic() - start
    after, children_after = _cpu_jiffies(), os.times()
    if result.returncode != 0:
        raise SystemExit(f'Recipe {name} failed:\n{result.stderr[-3000:]}')
    own = (children_after.children_user - children_before.children_user) + (
        children_after.children_system - children_before.children_system
    )
    record = {
        'recipe': name,
        'command': ' '.join(command[3:])
        .replace(sys.executable, 'python')
        .replace(ROOT + os.sep, ''),
        'start_utc': started,
        'wall_s': round(wall, 1),
        'run_cpu_s': round(own, 1),
        'loadavg_start': [round(v, 2) for v in load_start],
        'loadavg_end': [round(v, 2) for v in os.getloadavg()],
    }
    if before and after:
        busy, total = after[0] - before[0], after[1] - before[1]
        record['others_cpu_frac'] = round(max(0.0, busy - own) / total, 3) if total else None
    with open(os.path.join(workdir, 'metrics.json')) as f:
        record['metrics'] = json.load(f)
    return record


def _histogram_baseline():
    from tfp_flows import data
    from tfp_flows.tools.baselines import histogram_baseline

    splits = [data.load_digits(split) for split in ('train', 'validation', 'test')]
    return histogram_baseline(*splits, num_bins=17)


def _figure(metrics, key):
    value = metrics.get(key)
    return '' if value is None else f'{value:.3f}'


def write_outputs(out, records, baseline):
    with open(out + '.json', 'w') as f:
        json.dump(
            {
                'machine': {'cpus': os.cpu_count(), 'platform': platform.platform()},
                'histogram_baseline': baseline,
                'runs': records,
            },
            f,
            indent=1,
        )
    lines = [
        f'Digits (1,257 / 180 / 360 train / validation / test images, 17 levels), bits/dim of '
        f'the best epoch by validation: one-sample bound on fixed noise, and the '
        f'importance-weighted test figure from S noise draws per image. Each row is one '
        f'`python train.py --config=configs/RECIPE.py` run on {os.cpu_count()} CPU cores, '
        f"started {records[0]['start_utc'][:10] if records else ''}; CPU s is the run's own, "
        f"and others' CPU share the part of the machine's CPU time other processes took "
        f'meanwhile (wall time grows with it). glow_digits_conditional models p(x | digit). '
        f'The default recipe was chosen in digits_search4.md, affine_digits (the default of '
        f'0.2) by validation bits/dim among the candidates of digits_candidates.jsonl (an '
        f'earlier driver with its own loop, commit 2eefc3d; IW there from 128 draws, most '
        f'runs on a loaded machine).',
        '',
        '| recipe | validation | test | test IW (S) | best epoch / epochs | wall s | CPU s | '
        "others' CPU share |",
        '|---|---|---|---|---|---|---|---|',
    ]
    for record in records:
        m = record['metrics']
        iw = _figure(m, 'test_bits_per_dim_iw')
        if iw:
            iw += f' ({m["iw_samples"]})'
        lines.append(
            f'| `{record["recipe"]}` | {_figure(m, "validation_bits_per_dim")} | '
            f'{_figure(m, "test_bits_per_dim")} | {iw} | {m["best_epoch"]} / '
            f'{m["epochs_trained"]} | {record["wall_s"]:.0f} | {record["run_cpu_s"]:.0f} | '
            f'{record.get("others_cpu_frac", "")} |'
        )
    lines.append(
        f'| per-pixel histogram baseline | {baseline["validation_bits_per_dim"]:.3f} | '
        f'{baseline["test_bits_per_dim"]:.3f} | | | | | |'
    )
    with open(out + '.md', 'w') as f:
        f.write('\n'.join(lines) + '\n')


def main(argv=None):
    args = parse_args(argv)
    previous = {}
    if os.path.exists(args.out + '.json'):
        with open(args.out + '.json') as f:
            previous = {r['recipe']: r for r in json.load(f)['runs']}
    records = []
    for name in args.recipes.split(','):
        workdir = os.path.join(args.root, name)
        if os.path.exists(os.path.join(workdir, 'metrics.json')) and name in previous:
            records.append(previous[name])
            continue
        records.append(run_recipe(name, workdir, args.set, args.nice))
        print(json.dumps(records[-1]), flush=True)
    write_outputs(args.out, records, _histogram_baseline())


if __name__ == '__main__':
    main()
