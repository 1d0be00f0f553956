"""One side-by-side table of tfp_flows and the peers, with ratios and the issue's targets.

    python bench/summarize.py [RESULTS_DIR]        # default bench/results

Reads every ``*.json`` result of ``bench/tfp_flows_glow.py`` and ``bench/peers/*.py`` in the
directory (written by ``bench/run_all.sh``) and prints Markdown: the figures of every entry,
then the targets of issue #5 with the ratios they are judged on. "Best setting" of a library is
its best entry for that figure (e.g. TFP in graph mode or with XLA, normflows with torch's
default threads or one thread).
"""

from __future__ import annotations

import glob
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'peers'))

from protocol import fmt  # noqa: E402

OURS = 'tfp_flows_glow'
LIBRARIES = {'tfp_flows': OURS, 'TFP Glow': 'tfp_glow', 'normflows': 'normflows_glow'}


def _get(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d or d[k] is None:
            return None
        d = d[k]
    return d


def load(root: str) -> dict[str, dict[str, dict]]:
    runs: dict[str, dict[str, dict]] = {}
    for path in sorted(glob.glob(os.path.join(root, '*.json'))):
        with open(path) as f:
            r = json.load(f)
        if r.get('figure') in ('throughput', 'quality'):
            runs.setdefault(r['peer'], {})[r['figure']] = r
    return runs


def _order(name: str) -> tuple:
    for i, prefix in enumerate(LIBRARIES.values()):
        if name.startswith(prefix):
            return (i, name)
    return (len(LIBRARIES), name)


def _t(key, spec='.1f'):
    return lambda t, q: fmt(_get(t, 'metrics', key), spec)


def _q(*keys, spec='.3f'):
    return lambda t, q: fmt(_get(q, 'metrics', *keys), spec)


ROWS = [
    ('date (UTC), throughput / quality run', lambda t, q: f'{_date(t)} / {_date(q)}'),
    ('parameters (trainable)', lambda t, q: fmt(_get(t or q, 'metrics', 'n_params'), 'd')),
    ('train images/s, protocol loop (batch 64)', _t('train_images_per_s')),
    ('  train images/s, Keras fit', _t('fit_train_images_per_s')),
    ('  train images/s, raw tf.function step', _t('raw_step_images_per_s')),
    ('log_prob images/s (batch 256)', _t('log_prob_images_per_s')),
    ('sample images/s (batch 256)', _t('sample_images_per_s')),
    ('time to first step, s', _t('time_to_first_step_s', '.2f')),
    ('  (quality run), s', _q('time_to_first_step_s', spec='.2f')),
    ('log_prob / sample first call, s', lambda t, q: f'{_f(t, "log_prob_first_call_s")} / '
     f'{_f(t, "sample_first_call_s")}'),
    ('peak RSS, MiB (throughput / quality run)', lambda t, q: (
        f'{fmt(_get(t, "metrics", "peak_rss_mib"), ".0f")} / '
        f'{fmt(_get(q, "metrics", "peak_rss_mib"), ".0f")}')),
    ('  RSS after imports, MiB', _t('rss_after_imports_mib', '.0f')),
    ('first-step loss, nats/image', _q('first_step_loss_nats', spec='.1f')),
    ('budget s / steps done', lambda t, q: (
        f'{fmt(_get(q, "metrics", "budget_s"), ".0f")} / {fmt(_get(q, "metrics", "steps"), "d")}')),
    ('test bpd (best-val weights)', _q('best_val_weights', 'test', 'bpd')),
    ('  best-val step', _q('best_val_weights', 'step', spec='d')),
    ('test bpd (final weights)', _q('final_weights', 'test', 'bpd')),
    ('train bpd, full set (final weights)', _q('final_weights', 'train', 'bpd')),
    ('non-finite losses / sample images', lambda t, q: (
        f'{fmt(_get(q, "metrics", "n_nonfinite_losses"), "d")} / '
        f'{fmt(_get(t, "metrics", "sample_nonfinite_images"), "d")} of '
        f'{fmt(_get(t, "metrics", "sample_images_checked"), "d")}')),
    ('others CPU share (thr. train / quality)', lambda t, q: (
        f'{fmt(_get(t, "metrics", "others_cpu_frac", "train"), ".2f")} / '
        f'{fmt(_get(q, "metrics", "others_cpu_frac", "whole_run"), ".2f")}')),
]  # fmt: skip


def _date(r):
    d = _get(r, 'date_utc')
    return d[5:16].replace('T', ' ') if d else 'n/a'


def _f(t, key):
    return fmt(_get(t, 'metrics', key), '.2f')


def table(runs: dict) -> list[str]:
    names = sorted(runs, key=_order)
    lines = ['| figure | ' + ' | '.join(names) + ' |', '|---|' + '---|' * len(names)]
    for label, f in ROWS:
        cells = []
        for n in names:
            t, q = runs[n].get('throughput'), runs[n].get('quality')
            try:
                cells.append(str(f(t, q)))
            except (TypeError, KeyError, ValueError):
                cells.append('n/a')
        lines.append(f'| {label} | ' + ' | '.join(cells) + ' |')
    return lines


def _best(runs, prefix, figure, path, higher=True, exclude=()):
    """(value, entry name) of the best entry of a library for one figure."""
    best = None
    for name, figs in runs.items():
        if not name.startswith(prefix) or any(e in name for e in exclude):
            continue
        v = _get(figs.get(figure), 'metrics', *path)
        if v is None:
            continue
        if best is None or (v > best[0] if higher else v < best[0]):
            best = (v, name)
    return best


def targets(runs: dict) -> list[str]:
    """The issue's targets: ours at its best setting against each peer at its best setting."""
    # Every entry of ours counts, the library's default recipe (configs/default.py) included:
    # the peers run their own examples' recipe (Adam 1e-3).
    tput, qual = 'throughput', 'quality'
    rows = [  # label, figure, metric path, higher is better, target vs TFP, target vs normflows
        ('training images/s (protocol loop)', tput, ('train_images_per_s',), True, 1.5, 2.0),
        ('training images/s (ours via fit)', tput, ('fit_train_images_per_s',), True, 1.5, 2.0),
        ('log_prob images/s', tput, ('log_prob_images_per_s',), True, 1.5, 1.5),
        ('sample images/s', tput, ('sample_images_per_s',), True, 1.5, 1.5),
        ('time to first step, s (vs TFP graph)', tput, ('time_to_first_step_s',), False, 1.0, None),
        ('peak RSS, MiB (throughput run)', tput, ('peak_rss_mib',), False, 1.0, None),
        ('test bpd after the budget (best-val)', qual, ('best_val_weights', 'test', 'bpd'), False,
         1.0, 1.0),
    ]  # fmt: skip
    out = [
        '| target | tfp_flows (entry) | TFP Glow best (entry) | ratio | target | '
        'normflows best (entry) | ratio | target |',
        '|---|---|---|---|---|---|---|---|',
    ]
    for label, figure, path, higher, tfp_target, nf_target in rows:
        ours = _best(runs, OURS, figure, path, higher, exclude=('_plain', '_raw'))
        tfp_prefix = 'tfp_glow_graph' if 'first step' in label else 'tfp_glow'
        peer_path = ('train_images_per_s',) if path == ('fit_train_images_per_s',) else path
        tfp = _best(runs, tfp_prefix, figure, peer_path, higher, exclude=('pitfalls',))
        nf = _best(runs, 'normflows_glow', figure, peer_path, higher)
        cells = [label, _entry(ours)]
        for peer, target in ((tfp, tfp_target), (nf, nf_target)):
            if target is None:
                cells += [_entry(peer), '', '']
                continue
            if ours is None or peer is None:
                cells += [_entry(peer), 'n/a', '']
                continue
            if figure == 'quality':  # lower is better: the difference, not a ratio
                diff = ours[0] - peer[0]
                ok = diff < 0
                cells += [_entry(peer), f'{diff:+.3f} bpd', f'< 0: {"met" if ok else "MISSED"}']
            else:
                ratio = ours[0] / peer[0] if higher else peer[0] / ours[0]
                ok = ratio >= target
                cells += [
                    _entry(peer),
                    f'{ratio:.2f}x',
                    f'>= {target:g}x: {"met" if ok else "MISSED"}',
                ]
        out.append('| ' + ' | '.join(cells) + ' |')
    out.append(
        '\nRatios: higher-is-better figures are ours / peer; time to first step and peak RSS are '
        'peer / ours (so > 1 means ours is faster or smaller).'
    )
    return out


def _entry(best):
    return (
        'n/a' if best is None else f'{fmt(best[0], ".3g" if best[0] < 10 else ".0f")} ({best[1]})'
    )


def machine(runs: dict) -> str:
    first = next(iter(next(iter(runs.values())).values()))
    m = first['machine']
    v = m['versions']
    return (
        f'machine: {m["nproc"]} CPUs ({m["cpu_model"]}), {m["mem_total_gib"]} GiB; '
        f'python {m["python"]}; ' + ', '.join(f'{k} {val}' for k, val in v.items() if val)
    )


def extras(root: str) -> list[str]:
    """Tables of the scaling, FLOPs and graph-size results, when present."""
    out = []
    path = os.path.join(root, 'scaling.json')
    if os.path.exists(path):
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from scaling import table as scaling_table

        with open(path) as f:
            r = json.load(f)
        out += [f'Scaling ({_date(r)} UTC), training images/s, batch 64:', '']
        out += [scaling_table(r['results']), '']
    path = os.path.join(root, 'flops.json')
    if os.path.exists(path):
        with open(path) as f:
            r = json.load(f)
        m = r['metrics']
        peak = m['matmul']['peak_gflops']
        out += [
            f'FLOPs ({_date(r)} UTC); measured float32 matmul peak {peak:.1f} GFLOP/s '
            f'(n x n, n = {", ".join(str(k) for k in m["matmul"]["gflops_by_size"])}):',
            '',
            '| model | batch | MFLOP/image fwd (formula) | train img/s | train GFLOP/s (% peak) '
            '| log_prob img/s | log_prob GFLOP/s (% peak) |',
            '|---|---|---|---|---|---|---|',
        ]
        for name, x in m['models'].items():
            mod = x['model']
            fwd, formula = x['flops_per_image_fwd'] / 1e6, x['flops_per_image_fwd_formula'] / 1e6
            train_pct, lp_pct = (
                100 * x['train_fraction_of_peak'],
                100 * x['log_prob_fraction_of_peak'],
            )
            out.append(
                f'| {name}: {"x".join(map(str, mod["shape"]))}, L={mod["levels"]}, '
                f'K={mod["steps"]}, h={mod["hidden"]} | {mod["batch"]} | {fwd:.2f} ({formula:.2f}) '
                f'| {x["train_images_per_s"]:.0f} | {x["train_gflops_achieved"]:.1f} '
                f'({train_pct:.0f}%) | {x["log_prob_images_per_s"]:.0f} | '
                f'{x["log_prob_gflops_achieved"]:.1f} ({lp_pct:.0f}%) |'
            )
        out.append('')
    path = os.path.join(root, 'graph_report.json')
    if os.path.exists(path):
        with open(path) as f:
            r = json.load(f)
        out += [
            'Traced graphs (digits model; trace only, no run):',
            '',
            '| library | function | trace s | graph ops | calls per coupling net |',
            '|---|---|---|---|---|',
        ]
        for lib, x in r['metrics'].items():
            for fn in ('train_step', 'log_prob', 'sample'):
                g = x[fn]
                out.append(
                    f'| {lib} | {fn} | {g["trace_s"]:.2f} | {g["n_ops"]} | '
                    f'{", ".join(map(str, g["calls_per_coupling_net"]))} |'
                )
        ours = r['metrics'].get('tfp_flows', {})
        if 'fused_adam_apply' in ours:
            keras_adam, fused = ours['keras_adam_apply'], ours['fused_adam_apply']
            out.append(
                f'\nOptimizer update of the {ours["n_trainable_variables"]} variables: Keras Adam '
                f'{keras_adam["n_ops"]} ops ({keras_adam["trace_s"]:.2f} s to trace), fused Adam '
                f'{fused["n_ops"]} ops ({fused["trace_s"]:.2f} s).'
            )
    return out


def main() -> None:
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'results')
    runs = load(root)
    if not runs:
        print(f'no results in {root}')
        return
    print('\n'.join(table(runs)))
    print()
    print('\n'.join(targets(runs)))
    print()
    print(machine(runs))
    more = extras(root)
    if more:
        print()
        print('\n'.join(more))


if __name__ == '__main__':
    main()
