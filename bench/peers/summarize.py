"""Print a Markdown table of the peer results: ``python bench/peers/summarize.py [RESULTS_DIR]``."""

from __future__ import annotations

import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from protocol import fmt  # noqa: E402


def _get(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d or d[k] is None:
            return None
        d = d[k]
    return d


def main() -> None:
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'results')
    runs: dict[str, dict[str, dict]] = {}
    for path in sorted(glob.glob(os.path.join(root, '*.json'))):
        with open(path) as f:
            r = json.load(f)
        if r['figure'] in ('throughput', 'quality'):
            runs.setdefault(r['peer'], {})[r['figure']] = r
    if not runs:
        print(f'no results in {root}')
        return

    rows = [
        ('date (UTC), throughput run', lambda t, q: _get(t, 'date_utc')),
        ('date (UTC), quality run', lambda t, q: _get(q, 'date_utc')),
        ('parameters (trainable)', lambda t, q: fmt(_get(t or q, 'metrics', 'n_params'), 'd')),
        ('train images/s (batch 64)', lambda t, q: fmt(_get(t, 'metrics', 'train_images_per_s'))),
        (
            'log_prob images/s (batch 256)',
            lambda t, q: fmt(_get(t, 'metrics', 'log_prob_images_per_s')),
        ),
        (
            'sample images/s (batch 256)',
            lambda t, q: fmt(_get(t, 'metrics', 'sample_images_per_s')),
        ),
        (
            'time to first step, s',
            lambda t, q: fmt(_get(t, 'metrics', 'time_to_first_step_s'), '.2f'),
        ),
        ('  (quality run), s', lambda t, q: fmt(_get(q, 'metrics', 'time_to_first_step_s'), '.2f')),
        (
            'log_prob first call, s',
            lambda t, q: fmt(_get(t, 'metrics', 'log_prob_first_call_s'), '.2f'),
        ),
        (
            'sample first call, s',
            lambda t, q: fmt(_get(t, 'metrics', 'sample_first_call_s'), '.2f'),
        ),
        (
            'peak RSS, MiB (throughput run)',
            lambda t, q: fmt(_get(t, 'metrics', 'peak_rss_mib'), '.0f'),
        ),
        (
            '  RSS after imports, MiB',
            lambda t, q: fmt(_get(t, 'metrics', 'rss_after_imports_mib'), '.0f'),
        ),
        (
            'peak RSS, MiB (quality run)',
            lambda t, q: fmt(_get(q, 'metrics', 'peak_rss_mib'), '.0f'),
        ),
        (
            'first-step loss, nats/image',
            lambda t, q: fmt(_get(q, 'metrics', 'first_step_loss_nats'), '.1f'),
        ),
        (
            'budget, s / steps done',
            lambda t, q: (
                f'{fmt(_get(q, "metrics", "budget_s"), ".0f")} / '
                f'{fmt(_get(q, "metrics", "steps"), "d")}'
            ),
        ),
        (
            'test bpd (best-val weights)',
            lambda t, q: fmt(_get(q, 'metrics', 'best_val_weights', 'test', 'bpd'), '.3f'),
        ),
        ('  best-val step', lambda t, q: fmt(_get(q, 'metrics', 'best_val_weights', 'step'), 'd')),
        (
            'test bpd (final weights)',
            lambda t, q: fmt(_get(q, 'metrics', 'final_weights', 'test', 'bpd'), '.3f'),
        ),
        (
            'val bpd (final weights)',
            lambda t, q: fmt(_get(q, 'metrics', 'final_weights', 'val', 'bpd'), '.3f'),
        ),
        (
            'train bpd, full set (final weights)',
            lambda t, q: fmt(_get(q, 'metrics', 'final_weights', 'train', 'bpd'), '.3f'),
        ),
        (
            'train bpd, last 19 steps (running)',
            lambda t, q: fmt(_get(q, 'metrics', 'last_steps_train_bpd'), '.3f'),
        ),
        (
            'non-finite losses / sample images',
            lambda t, q: (
                f'{fmt(_get(q, "metrics", "n_nonfinite_losses"), "d")} / '
                f'{fmt(_get(t, "metrics", "sample_nonfinite_images"), "d")} of '
                f'{fmt(_get(t, "metrics", "sample_images_checked"), "d")}'
            ),
        ),
        (
            'others CPU share (thr. train/quality)',
            lambda t, q: (
                f'{fmt(_get(t, "metrics", "others_cpu_frac", "train"), ".2f")} / '
                f'{fmt(_get(q, "metrics", "others_cpu_frac", "whole_run"), ".2f")}'
            ),
        ),
    ]
    peers = list(runs)
    print('| figure | ' + ' | '.join(peers) + ' |')
    print('|---|' + '---|' * len(peers))
    for name, f in rows:
        cells = []
        for p in peers:
            t, q = runs[p].get('throughput'), runs[p].get('quality')
            try:
                cells.append(str(f(t, q)))
            except (TypeError, KeyError):
                cells.append('n/a')
        print(f'| {name} | ' + ' | '.join(cells) + ' |')
    m = next(iter(next(iter(runs.values())).values()))['machine']
    v = m['versions']
    print(
        f'\nmachine: {m["nproc"]} CPUs ({m["cpu_model"]}), {m["mem_total_gib"]} GiB; '
        f'python {m["python"]}; ' + ', '.join(f'{k} {val}' for k, val in v.items() if val)
    )


if __name__ == '__main__':
    main()
