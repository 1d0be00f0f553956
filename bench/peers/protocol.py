"""Shared measurement protocol for the peer benchmarks (and, later, for tfp_flows itself).

Framework-agnostic: only numpy and the standard library are imported here, so a PyTorch
benchmark does not pay for importing TensorFlow and vice versa.

The protocol
------------
Data
    scikit-learn 8x8 digits (1,797 images, integer levels 0..16, so ``NUM_LEVELS = 17``),
    shaped ``[N, 8, 8, 1]`` (NHWC). One fixed permutation ``np.random.RandomState(0)``;
    test = first 360 images of the permutation, validation = next 180, train = remaining 1,257.
Dequantization
    ``x = (k + u) / 17`` with ``u ~ U[0, 1)``, so ``x`` lies in ``[0, 1)``. Training batches get
    fresh noise every time; validation / test / train-set evaluation use fixed noise
    (``EVAL_NOISE_SEED``) so numbers are comparable between runs and between libraries.
Model input
    ``x - 0.5`` (Glow centring). The shift has log-det 0, so ``log p(x) == log p_model(x - 0.5)``.
Metric
    ``bits/dim = (-log p(x) + D * log(17)) / (D * log 2)`` with ``D = 64`` and ``log p(x)`` the
    continuous log-density (nats) of the dequantized ``[0, 1)`` data.
Timing
    ``time.perf_counter``; throughput figures are the median over ``repeats`` timed repeats after
    ``warmup`` untimed repeats, each repeat running a fixed number of calls and forcing the
    result to host memory (``.numpy()`` / ``.item()``) before the clock stops.
Time to first step
    From the start of model construction (after imports and data loading) to the end of the first
    training step including tracing / compilation and host transfer of the loss.
Peak memory
    ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of a fresh process per configuration (imports
    included; the RSS right after the imports is reported too as a baseline).
Quality
    Train with Adam for a wall-clock budget. The budget clock starts at model construction (so it
    includes tracing / compilation and the time to first step) and is paused during validation
    passes. The validation set is evaluated after each epoch; the weights with the best
    validation bits/dim are kept and used for the test figure (the final weights' test figure is
    reported as well).
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import math
import os
import platform
import resource
import socket
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

NUM_LEVELS = 17
IMAGE_SHAPE = (8, 8, 1)
D = int(np.prod(IMAGE_SHAPE))  # 64
N_TEST = 360
N_VAL = 180
SPLIT_SEED = 0
EVAL_NOISE_SEED = 1234
TRAIN_NOISE_SEED = 1
TRAIN_BATCH = 64
EVAL_BATCH = 256
LEARNING_RATE = 1e-3

# Glow architecture shared by every Glow entry of the comparison.
GLOW_LEVELS = 2
GLOW_STEPS_PER_LEVEL = 4
GLOW_HIDDEN = 64

PROTOCOL_VERSION = 1
LAST_STEPS = 19  # training-loss summary at the end: mean over the last 19 steps (one epoch)


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------


def load_digits_split() -> dict[str, np.ndarray]:
    """Integer digits images (values 0..16) split into train / val / test, each [N, 8, 8, 1]."""
    from sklearn.datasets import load_digits

    images = load_digits().images.astype(np.int64)  # [1797, 8, 8], values 0..16
    assert images.min() >= 0 and images.max() <= NUM_LEVELS - 1
    images = images.reshape((-1,) + IMAGE_SHAPE)
    perm = np.random.RandomState(SPLIT_SEED).permutation(len(images))
    test = images[perm[:N_TEST]]
    val = images[perm[N_TEST : N_TEST + N_VAL]]
    train = images[perm[N_TEST + N_VAL :]]
    return {'train': train, 'val': val, 'test': test}


def dequantize(k: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """Uniform dequantization: (k + u) / 17 in [0, 1), float32."""
    u = rng.uniform(size=k.shape)
    return ((k + u) / NUM_LEVELS).astype(np.float32)


def centre(x01: np.ndarray) -> np.ndarray:
    """Glow centring applied to [0, 1) data before it enters a model (log-det 0)."""
    return (x01 - 0.5).astype(np.float32)


def fixed_eval_data(k: np.ndarray, salt: int = 0) -> np.ndarray:
    """Dequantized [0, 1) data with fixed noise, for validation / test / train-set evaluation."""
    return dequantize(k, np.random.RandomState(EVAL_NOISE_SEED + salt))


def train_batches(
    k_train: np.ndarray, batch_size: int = TRAIN_BATCH, seed: int = TRAIN_NOISE_SEED
) -> Iterator[tuple[int, np.ndarray]]:
    """Endless (epoch, centred float32 batch) stream: reshuffled every epoch, fresh dequantization
    noise every batch, the last incomplete batch of each epoch dropped."""
    rng = np.random.RandomState(seed)
    n = len(k_train)
    epoch = 0
    while True:
        perm = rng.permutation(n)
        for start in range(0, n - batch_size + 1, batch_size):
            idx = perm[start : start + batch_size]
            yield epoch, centre(dequantize(k_train[idx], rng))
        epoch += 1


def fixed_batches(
    k_train: np.ndarray, n_batches: int, batch_size: int, seed: int = 7
) -> list[np.ndarray]:
    """A pool of centred batches made up front (throughput runs exclude data preparation)."""
    rng = np.random.RandomState(seed)
    out = []
    for _ in range(n_batches):
        idx = rng.randint(0, len(k_train), size=batch_size)
        out.append(centre(dequantize(k_train[idx], rng)))
    return out


# ----------------------------------------------------------------------------------------------
# Metric
# ----------------------------------------------------------------------------------------------


def bits_per_dim(nll_nats: float | np.ndarray, d: int = D, levels: int = NUM_LEVELS):
    """bits/dim from -log p(x) in nats per image, with log p the density on [0, 1)^d data."""
    return (np.asarray(nll_nats, dtype=np.float64) + d * math.log(levels)) / (d * math.log(2.0))


def evaluate_nll(
    log_prob_fn: Callable[[np.ndarray], np.ndarray],
    x01: np.ndarray,
    batch_size: int = EVAL_BATCH,
) -> np.ndarray:
    """Per-image -log p(x) (nats) of [0, 1) data x01.

    ``log_prob_fn`` takes a centred float32 batch of exactly ``batch_size`` images and returns
    their log-densities as a numpy array. The last chunk is padded (by repeating images) so a
    compiled function only ever sees one shape; padded entries are dropped.
    """
    out = []
    n = len(x01)
    for start in range(0, n, batch_size):
        chunk = x01[start : start + batch_size]
        m = len(chunk)
        if m < batch_size:
            reps = np.resize(np.arange(m), batch_size - m)
            chunk = np.concatenate([chunk, chunk[reps]], axis=0)
        lp = np.asarray(log_prob_fn(centre(chunk)), dtype=np.float64).reshape(-1)
        out.append(-lp[:m])
    return np.concatenate(out)


def summarize_bpd(nll: np.ndarray) -> dict[str, Any]:
    finite = np.isfinite(nll)
    return {
        'bpd': float(bits_per_dim(np.mean(nll))) if finite.all() else float('nan'),
        'nll_nats': float(np.mean(nll)) if finite.all() else float('nan'),
        'n_nonfinite': int((~finite).sum()),
        'n': int(len(nll)),
    }


# ----------------------------------------------------------------------------------------------
# Timing and memory
# ----------------------------------------------------------------------------------------------


def _proc_stat_jiffies() -> tuple[int, int] | None:
    """(busy, total) CPU jiffies of the whole machine from /proc/stat (steal counts as busy)."""
    try:
        with open('/proc/stat') as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is in user)
    return total - idle, total


class ContentionMonitor:
    """How much CPU *other* processes used while this one was measuring.

    ``others_cpu_frac`` = (machine busy CPU time - this process's CPU time) / (wall * nproc).
    On an otherwise idle machine it is ~0; 0.5 on 2 cores means one core was busy elsewhere
    and the timings are not trustworthy.
    """

    def __init__(self) -> None:
        self.start()

    def start(self) -> None:
        self._t = time.perf_counter()
        self._own = _own_cpu_s()
        self._stat = _proc_stat_jiffies()

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self._t
        own = _own_cpu_s() - self._own
        stat = _proc_stat_jiffies()
        out = {'wall_s': wall, 'own_cpu_s': own}
        if stat is not None and self._stat is not None:
            hz = os.sysconf('SC_CLK_TCK')
            busy = (stat[0] - self._stat[0]) / hz
            total = (stat[1] - self._stat[1]) / hz
            others = max(0.0, busy - own)
            out.update(
                machine_busy_cpu_s=busy,
                others_cpu_s=others,
                others_cpu_frac=others / total if total > 0 else float('nan'),
            )
        return out


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def wait_for_idle(
    max_wait_s: float, threshold: float = 0.1, window_s: float = 3.0, quiet_windows: int = 2
) -> dict[str, Any]:
    """Wait (up to ``max_wait_s``) until other processes use < ``threshold`` of the machine's CPU
    for ``quiet_windows`` consecutive windows. Returns how long it waited and the last reading."""
    t0 = time.perf_counter()
    quiet = 0
    last = float('nan')
    while True:
        mon = ContentionMonitor()
        time.sleep(window_s)
        last = mon.stop().get('others_cpu_frac', 0.0)
        quiet = quiet + 1 if last < threshold else 0
        waited = time.perf_counter() - t0
        if quiet >= quiet_windows or waited >= max_wait_s:
            return {
                'waited_s': waited,
                'idle': quiet >= quiet_windows,
                'last_others_cpu_frac': last,
                'threshold': threshold,
            }


def timeit_median(
    fn: Callable[[], Any], repeats: int = 5, warmup: int = 2, number: int = 1
) -> dict[str, Any]:
    """Median wall time of ``number`` calls of ``fn``, over ``repeats`` timed repeats, after
    ``warmup`` untimed repeats. ``fn`` must block until its work is done (e.g. end with
    ``.numpy()`` / ``.item()``)."""
    if repeats < 1:
        raise ValueError('repeats must be >= 1')
    for _ in range(warmup):
        for _ in range(number):
            fn()
    times = []
    mon = ContentionMonitor()
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append(time.perf_counter() - t0)
    contention = mon.stop()
    med = statistics.median(times)
    return {
        'others_cpu_frac': contention.get('others_cpu_frac'),
        'median_s': med,
        'per_call_s': med / number,
        'times_s': times,
        'repeats': repeats,
        'warmup': warmup,
        'number': number,
    }


def throughput(timing: dict[str, Any], items_per_call: int) -> float:
    """Items per second from a ``timeit_median`` result."""
    return items_per_call / timing['per_call_s']


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (Linux ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mib() -> float:
    try:
        with open('/proc/self/statm') as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf('SC_PAGE_SIZE') / 2**20
    except OSError:
        return float('nan')


# ----------------------------------------------------------------------------------------------
# Budgeted training loop
# ----------------------------------------------------------------------------------------------


class BudgetClock:
    """Wall clock that can be paused (for validation passes)."""

    def __init__(self) -> None:
        self._start = time.perf_counter()
        self._paused_total = 0.0
        self._pause_start: float | None = None

    def pause(self) -> None:
        self._pause_start = time.perf_counter()

    def resume(self) -> None:
        assert self._pause_start is not None
        self._paused_total += time.perf_counter() - self._pause_start
        self._pause_start = None

    def elapsed(self) -> float:
        now = self._pause_start if self._pause_start is not None else time.perf_counter()
        return now - self._start - self._paused_total

    @property
    def paused_total(self) -> float:
        return self._paused_total


def run_budgeted_training(
    *,
    clock: BudgetClock,
    step_fn: Callable[[np.ndarray], float],
    log_prob_fn: Callable[[np.ndarray], np.ndarray],
    get_weights: Callable[[], Any],
    set_weights: Callable[[Any], None],
    data: dict[str, np.ndarray],
    budget_s: float,
    keep_best: bool = True,
) -> dict[str, Any]:
    """Train until ``clock.elapsed() >= budget_s`` and evaluate.

    ``clock`` must have been started right before model construction. ``step_fn`` takes a
    centred batch, runs one optimizer step and returns the (pre-update) loss, the mean
    -log p over the batch in nats/image, as a Python float (so it blocks until the step is done).
    Tracing / compilation happens inside the first call, so the time to first step is measured
    here too.
    Validation runs after each epoch with the clock paused; training stops early at the first
    non-finite loss.
    """
    val01 = fixed_eval_data(data['val'], salt=1)
    test01 = fixed_eval_data(data['test'], salt=2)
    train01 = fixed_eval_data(data['train'], salt=3)

    batches = train_batches(data['train'])
    losses: list[float] = []
    epoch_losses: list[float] = []
    history: list[dict[str, float]] = []
    best = {'val_bpd': float('inf'), 'step': 0, 'weights': None}
    n_nonfinite = 0
    diverged = False
    steps = 0
    cur_epoch = 0
    time_to_first_step = None
    first_loss = None

    def validate(epoch: int, epoch_mean: float) -> None:
        clock.pause()
        t0 = time.perf_counter()
        v = summarize_bpd(evaluate_nll(log_prob_fn, val01))
        entry = {
            'epoch': epoch,
            'step': steps,
            'train_clock_s': clock.elapsed(),
            'val_bpd': v['bpd'],
            'train_loss_epoch_mean': epoch_mean,
        }
        history.append(entry)
        if keep_best and math.isfinite(v['bpd']) and v['bpd'] < best['val_bpd']:
            best.update(val_bpd=v['bpd'], step=steps, weights=get_weights())
        entry['eval_s'] = time.perf_counter() - t0
        clock.resume()

    while clock.elapsed() < budget_s:
        epoch, xb = next(batches)
        if epoch != cur_epoch:
            validate(cur_epoch, float(np.mean(epoch_losses)) if epoch_losses else float('nan'))
            epoch_losses = []
            cur_epoch = epoch
            if clock.elapsed() >= budget_s:
                break
        loss = float(step_fn(xb))
        steps += 1
        if first_loss is None:
            first_loss = loss
            time_to_first_step = clock.elapsed()
        losses.append(loss)
        epoch_losses.append(loss)
        if not math.isfinite(loss):
            n_nonfinite += 1
            diverged = True
            break
    train_clock = clock.elapsed()
    tail = losses[-LAST_STEPS:]
    if not diverged:
        validate(cur_epoch, float(np.mean(epoch_losses)) if epoch_losses else float('nan'))

    clock.pause()
    final = {
        'val': summarize_bpd(evaluate_nll(log_prob_fn, val01)),
        'test': summarize_bpd(evaluate_nll(log_prob_fn, test01)),
        'train': summarize_bpd(evaluate_nll(log_prob_fn, train01)),
    }
    best_out = None
    if keep_best and best['weights'] is not None:
        set_weights(best['weights'])
        best_out = {
            'step': best['step'],
            'val': summarize_bpd(evaluate_nll(log_prob_fn, val01)),
            'test': summarize_bpd(evaluate_nll(log_prob_fn, test01)),
            'train': summarize_bpd(evaluate_nll(log_prob_fn, train01)),
        }
    return {
        'budget_s': budget_s,
        'train_clock_s': train_clock,
        'eval_paused_s': clock.paused_total,
        'steps': steps,
        'epochs_completed': cur_epoch,
        'images_seen': steps * TRAIN_BATCH,
        'time_to_first_step_s': time_to_first_step,
        'first_step_loss_nats': first_loss,
        'first_step_loss_bpd': float(bits_per_dim(first_loss)) if first_loss is not None else None,
        'last_step_loss_nats': losses[-1] if losses else None,
        'last_steps_n': len(tail),
        'last_steps_train_loss_nats': float(np.mean(tail)) if tail else None,
        'last_steps_train_bpd': float(bits_per_dim(np.mean(tail))) if tail else None,
        'n_nonfinite_losses': n_nonfinite,
        'diverged': diverged,
        'final_weights': final,
        'best_val_weights': best_out,
        'history': history,
    }


# ----------------------------------------------------------------------------------------------
# Peer interface and the two figures
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class PeerModel:
    """What a benchmarked library provides. Every callable must block until its work is done.

    to_native: centred float32 numpy batch [B, 8, 8, 1] -> the library's tensor (layout change
        included); done outside the timed region in throughput runs, inside the budget in quality
        runs.
    train_step: native batch of TRAIN_BATCH images -> loss (mean -log p, nats/image) as a float,
        after one full optimizer step.
    log_prob: native batch -> numpy log-densities (no gradient).
    sample: n -> numpy samples (only the shape matters here).
    """

    to_native: Callable[[np.ndarray], Any]
    train_step: Callable[[Any], float]
    log_prob: Callable[[Any], np.ndarray]
    sample: Callable[[int], np.ndarray]
    get_weights: Callable[[], Any]
    set_weights: Callable[[Any], None]
    n_params: int
    info: dict[str, Any] = dataclasses.field(default_factory=dict)


def measure_throughput(
    build: Callable[[], PeerModel],
    data: dict[str, np.ndarray],
    *,
    repeats: int = 5,
    warmup: int = 2,
    train_steps_per_repeat: int = 20,
    eval_calls_per_repeat: int = 5,
    eval_batch: int = EVAL_BATCH,
) -> dict[str, Any]:
    """Time to first step, training / log_prob / sample throughput, parameter count, peak RSS.

    Call in a fresh process, right after the imports (the RSS at entry is reported as baseline).
    """
    rss_at_entry = peak_rss_mib()
    whole = ContentionMonitor()
    pool = fixed_batches(data['train'], 8, TRAIN_BATCH)
    eval_np = fixed_batches(data['train'], 1, eval_batch, seed=11)[0]

    # Time to first step: model construction + first optimizer step (tracing / compilation).
    t0 = time.perf_counter()
    model = build()
    t_built = time.perf_counter()
    first_loss = float(model.train_step(model.to_native(pool[0])))
    t_first = time.perf_counter()
    rss_after_first_step = peak_rss_mib()

    native_pool = [model.to_native(x) for x in pool]
    it = {'i': 0}

    def train_once() -> None:
        it['i'] = (it['i'] + 1) % len(native_pool)
        loss = model.train_step(native_pool[it['i']])
        if not math.isfinite(loss):
            raise FloatingPointError(f'non-finite training loss {loss}')

    train_t = timeit_median(train_once, repeats, warmup, train_steps_per_repeat)

    eval_native = model.to_native(eval_np)
    t = time.perf_counter()
    lp = model.log_prob(eval_native)
    log_prob_first_call_s = time.perf_counter() - t
    lp_t = timeit_median(
        lambda: model.log_prob(eval_native), repeats, warmup, eval_calls_per_repeat
    )

    bad = {'images': 0, 'total': 0}

    def sample_once() -> None:
        s = np.asarray(model.sample(eval_batch))
        bad['images'] += int((~np.isfinite(s.reshape(len(s), -1))).any(axis=1).sum())
        bad['total'] += len(s)

    t = time.perf_counter()
    s = model.sample(eval_batch)
    sample_first_call_s = time.perf_counter() - t
    assert tuple(np.shape(s))[0] == eval_batch, np.shape(s)
    smp_t = timeit_median(sample_once, repeats, warmup, eval_calls_per_repeat)

    return {
        'n_params': model.n_params,
        'build_s': t_built - t0,
        'time_to_first_step_s': t_first - t0,
        'first_step_loss_nats': first_loss,
        'first_step_loss_bpd': float(bits_per_dim(first_loss)),
        'train_images_per_s': throughput(train_t, TRAIN_BATCH),
        'train_step_ms': 1e3 * train_t['per_call_s'],
        'log_prob_images_per_s': throughput(lp_t, eval_batch),
        'log_prob_batch_ms': 1e3 * lp_t['per_call_s'],
        'log_prob_first_call_s': log_prob_first_call_s,
        'log_prob_mean_nll_nats': float(-np.mean(lp)),
        'sample_images_per_s': throughput(smp_t, eval_batch),
        'sample_batch_ms': 1e3 * smp_t['per_call_s'],
        'sample_first_call_s': sample_first_call_s,
        # images with any non-finite pixel, over all warm-up and timed sample calls
        'sample_nonfinite_images': bad['images'],
        'sample_images_checked': bad['total'],
        'timings': {'train': train_t, 'log_prob': lp_t, 'sample': smp_t},
        'others_cpu_frac': {
            'train': train_t['others_cpu_frac'],
            'log_prob': lp_t['others_cpu_frac'],
            'sample': smp_t['others_cpu_frac'],
            'whole_run': whole.stop().get('others_cpu_frac'),
        },
        'rss_after_imports_mib': rss_at_entry,
        'rss_after_first_step_mib': rss_after_first_step,
        'peak_rss_mib': peak_rss_mib(),
        'model_info': model.info,
    }


def measure_quality(
    build: Callable[[], PeerModel],
    data: dict[str, np.ndarray],
    *,
    budget_s: float,
    keep_best: bool = True,
) -> dict[str, Any]:
    """Train for ``budget_s`` seconds (clock from model construction) and report bits/dim."""
    rss_at_entry = peak_rss_mib()
    whole = ContentionMonitor()
    clock = BudgetClock()
    model = build()
    out = run_budgeted_training(
        clock=clock,
        step_fn=lambda x: model.train_step(model.to_native(x)),
        log_prob_fn=lambda x: model.log_prob(model.to_native(x)),
        get_weights=model.get_weights,
        set_weights=model.set_weights,
        data=data,
        budget_s=budget_s,
        keep_best=keep_best,
    )
    out.update(
        others_cpu_frac={'whole_run': whole.stop().get('others_cpu_frac')},
        n_params=model.n_params,
        rss_after_imports_mib=rss_at_entry,
        peak_rss_mib=peak_rss_mib(),
        model_info=model.info,
    )
    return out


def add_common_args(parser: Any) -> None:
    parser.add_argument('--figure', choices=['throughput', 'quality'], required=True)
    parser.add_argument('--budget_s', type=float, default=120.0)
    parser.add_argument('--out', default=None, help='JSON result path')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--train_steps_per_repeat', type=int, default=20)
    parser.add_argument('--eval_calls_per_repeat', type=int, default=5)
    parser.add_argument('--no_keep_best', action='store_true')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--wait_idle_s',
        type=float,
        default=0.0,
        help='before measuring, wait up to this long for other processes to leave the CPU idle',
    )
    parser.add_argument('--idle_threshold', type=float, default=0.1)


def add_tf_thread_args(parser: Any) -> None:
    """TensorFlow's thread pools, for the TF entries (0 keeps TF's default: one per core)."""
    parser.add_argument('--intra_op_threads', type=int, default=0, help='threads inside one op')
    parser.add_argument('--inter_op_threads', type=int, default=0, help='ops run side by side')


def thread_suffix(args: Any) -> str:
    """'' for TF's default pools, else e.g. '_intra1_inter2' (part of the entry's name)."""
    parts = [
        f'{k}{n}'
        for k, n in (('intra', args.intra_op_threads), ('inter', args.inter_op_threads))
        if n
    ]
    return ''.join('_' + p for p in parts)


def configure_tf_threads(tf: Any, args: Any) -> dict[str, int]:
    """Applies ``add_tf_thread_args``' flags (before TF runs any op); returns the setting."""
    if args.intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
    if args.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    return {
        'intra_op_threads': tf.config.threading.get_intra_op_parallelism_threads(),
        'inter_op_threads': tf.config.threading.get_inter_op_parallelism_threads(),
    }


def run_figure(
    args: Any,
    *,
    peer: str,
    build: Callable[[], PeerModel],
    config: dict[str, Any],
    import_s: float | None = None,
) -> dict[str, Any]:
    """Run the figure chosen by ``args``, write the JSON, print a one-line summary."""
    data = load_digits_split()
    idle = None
    if args.wait_idle_s > 0:
        idle = wait_for_idle(args.wait_idle_s, threshold=args.idle_threshold)
    config = dict(config)
    config.update(
        train_batch=TRAIN_BATCH,
        eval_batch=EVAL_BATCH,
        learning_rate=LEARNING_RATE,
        levels=GLOW_LEVELS,
        steps_per_level=GLOW_STEPS_PER_LEVEL,
        hidden=GLOW_HIDDEN,
        seed=args.seed,
        import_s=import_s,
        wait_for_idle=idle,
    )
    if args.figure == 'throughput':
        config.update(
            repeats=args.repeats,
            warmup=args.warmup,
            train_steps_per_repeat=args.train_steps_per_repeat,
            eval_calls_per_repeat=args.eval_calls_per_repeat,
        )
        m = measure_throughput(
            build,
            data,
            repeats=args.repeats,
            warmup=args.warmup,
            train_steps_per_repeat=args.train_steps_per_repeat,
            eval_calls_per_repeat=args.eval_calls_per_repeat,
        )
        line = (
            f'{peer} throughput: params={m["n_params"]} '
            f'first_step={m["time_to_first_step_s"]:.2f}s '
            f'first_loss={m["first_step_loss_nats"]:.1f}nats '
            f'train={m["train_images_per_s"]:.0f}img/s '
            f'log_prob={m["log_prob_images_per_s"]:.0f}img/s '
            f'sample={m["sample_images_per_s"]:.0f}img/s '
            f'peak_rss={m["peak_rss_mib"]:.0f}MiB '
            f'others_cpu={m["others_cpu_frac"]["whole_run"]:.2f}'
        )
    else:
        config.update(budget_s=args.budget_s, keep_best=not args.no_keep_best)
        m = measure_quality(build, data, budget_s=args.budget_s, keep_best=not args.no_keep_best)
        best = m['best_val_weights'] or {}
        line = (
            f'{peer} quality: budget={args.budget_s:.0f}s steps={m["steps"]} '
            f'first_loss={fmt(m["first_step_loss_nats"])}nats '
            f'test_bpd(best-val)={fmt(best.get("test", {}).get("bpd"), ".3f")} '
            f'test_bpd(final)={fmt(m["final_weights"]["test"]["bpd"], ".3f")} '
            f'train_bpd(final)={fmt(m["final_weights"]["train"]["bpd"], ".3f")} '
            f'nonfinite={m["n_nonfinite_losses"]} peak_rss={m["peak_rss_mib"]:.0f}MiB '
            f'others_cpu={m["others_cpu_frac"]["whole_run"]:.2f}'
        )
    write_result(args.out, peer=peer, figure=args.figure, config=config, metrics=m)
    print(line, flush=True)
    return m


# ----------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------

_DISTRIBUTIONS = (
    'tensorflow',
    'tensorflow-probability',
    'tf_keras',
    'keras',
    'torch',
    'normflows',
    'numpy',
    'scikit-learn',
)


def _cpu_model() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown'


def _mem_total_gib() -> float:
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemTotal'):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float('nan')


def machine_info() -> dict[str, Any]:
    """Machine and software description. Versions come from package metadata, so nothing heavy
    is imported."""
    versions = {}
    for dist in _DISTRIBUTIONS:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {
        'nproc': affinity if affinity is not None else os.cpu_count(),
        'cpu_count': os.cpu_count(),
        'cpu_model': _cpu_model(),
        'mem_total_gib': round(_mem_total_gib(), 2),
        'hostname': socket.gethostname(),
        'platform': platform.platform(),
        'python': sys.version.split()[0],
        'versions': versions,
        'env': {
            k: os.environ[k]
            for k in (
                'OMP_NUM_THREADS',
                'TF_NUM_INTRAOP_THREADS',
                'TF_XLA_FLAGS',
                'MKL_NUM_THREADS',
            )
            if k in os.environ
        },
    }


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def write_result(
    path: str | None, *, peer: str, figure: str, config: dict[str, Any], metrics: dict[str, Any]
) -> dict[str, Any]:
    """Write one run's result as JSON (with machine info and date) and return the record."""
    record = {
        'protocol_version': PROTOCOL_VERSION,
        'peer': peer,
        'figure': figure,
        'date_utc': datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds'),
        'argv': sys.argv,
        'machine': machine_info(),
        'config': config,
        'metrics': metrics,
    }
    if path:
        d = os.path.dirname(os.path.abspath(path))
        os.makedirs(d, exist_ok=True)
        with open(path, 'w') as f:
            json.dump(record, f, indent=2, default=_json_default, allow_nan=True)
            f.write('\n')
    return record


def fmt(x: Any, spec: str = '.1f') -> str:
    if x is None:
        return 'n/a'
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return format(x, spec)


if __name__ == '__main__':
    # `python protocol.py wait-idle MAX_S [THRESHOLD]`: block until the machine is idle.
    if len(sys.argv) >= 3 and sys.argv[1] == 'wait-idle':
        thr = float(sys.argv[3]) if len(sys.argv) > 3 else 0.1
        print(json.dumps(wait_for_idle(float(sys.argv[2]), threshold=thr)))
    else:
        print(__doc__)
