"""tfp_flows' own Glow, measured with the peers' protocol (bench/peers/protocol.py).

``tfp_flows.glow((8, 8, 1), num_levels=2, num_steps=4, hidden_channels=64, permutation='lu',
coupling='affine')``: the peers' architecture (affine coupling with Glow's 3x3 -> 1x1 -> 3x3 conv
net of width 64, LU 1x1 convolution, data-initialised ActNorm, learned split prior). It takes the
dequantized data in [0, 1) (its first bijector centres it), so ``to_native`` adds back the 0.5
the protocol takes off; the log-density is the same. ActNorm is initialised (``tfp_flows.
initialize``) on the first training batch, inside the time to first step, as the peers do.

Training goes through ``tfp_flows.training.trainer.FlowTrainer`` (a Keras 3 ``Model``):

  --driver=keras  the protocol's per-batch loop calls Keras' compiled train function, the very
                  function ``fit`` runs for each batch (throughput figure: the headline number)
  --driver=fit    ``FlowTrainer.fit`` on a ``tf.data`` pipeline of the protocol's batch stream,
                  validation and the budget clock in a callback (quality figure: the default)
  --driver=raw    a plain ``tf.function`` train step (GradientTape + the same Keras optimizer)

The throughput figure also reports ``fit`` (epochs of the same batches through ``tf.data``) and
the raw step, to show what Keras costs. ``--mode=xla`` passes ``jit_compile=True`` to
``trainer.compile`` and compiles log_prob, sample and the raw step with XLA too.

Optimizer (``--recipe``): ``protocol`` is the peers' Adam at 1e-3 without clipping; ``default``
is the optimizer of the library's Glow digits recipe, the default when this script was written
(configs/glow_digits.py: Adamax 3e-3, 100 warm-up steps, cosine decay over 60 epochs, weight
decay 0.1, gradient norm clipped at 50).

    python bench/tfp_flows_glow.py --mode=graph --figure=throughput --out=r.json
    python bench/tfp_flows_glow.py --mode=graph --figure=quality --budget_s=120 --out=q.json
    python bench/tfp_flows_glow.py --mode=graph --figure=quality --recipe=default --out=d.json
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, 'peers'))
sys.path.insert(1, os.path.dirname(HERE))  # the repository root, for `configs`

import numpy as np  # noqa: E402
import protocol as P  # noqa: E402

LN2 = math.log(2.0)


def bpd_to_nats(bpd: float) -> float:
    """Per-image -log p (nats) of [0, 1) data from bits/dim on the 17-level digits."""
    return bpd * P.D * LN2 - P.D * math.log(P.NUM_LEVELS)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    P.add_common_args(parser)
    parser.add_argument('--mode', choices=['graph', 'xla'], default='graph')
    parser.add_argument('--driver', choices=['keras', 'fit', 'raw'], default=None)
    parser.add_argument('--recipe', choices=['protocol', 'default'], default='protocol')
    parser.add_argument('--permutation', choices=['lu', 'plain'], default='lu')
    parser.add_argument(
        '--steps_per_execution',
        type=int,
        default=1,
        help="train steps per call into TF in fit (Keras' option; the digits recipes use 8)",
    )
    parser.add_argument(
        '--fit_steps_per_epoch',
        type=int,
        default=160,
        help='steps per epoch of the fit throughput figure (steady state: long epochs)',
    )
    P.add_tf_thread_args(parser)
    parser.add_argument('--name', default=None, help='peer name in the JSON (default: derived)')
    args = parser.parse_args()
    if args.driver is None:
        args.driver = 'fit' if args.figure == 'quality' else 'keras'
    if args.figure == 'throughput' and args.driver == 'fit':
        parser.error('the throughput figure always reports fit; use --driver=keras or raw')
    return args


class Bench:
    """One tfp_flows Glow with its trainer, compiled functions and protocol adapters."""

    _RESET_EVERY = 19  # steps: one protocol epoch

    def __init__(self, args, tf, keras, tfp_flows):
        from tfp_flows.training.optimizers import make_optimizer
        from tfp_flows.training.trainer import FlowTrainer

        self.tf, self.args = tf, args
        jit = args.mode == 'xla'
        keras.utils.set_random_seed(args.seed)
        self.flow = tfp_flows.glow(
            P.IMAGE_SHAPE,
            num_levels=P.GLOW_LEVELS,
            num_steps=P.GLOW_STEPS_PER_LEVEL,
            hidden_channels=P.GLOW_HIDDEN,
            permutation=args.permutation,
            coupling='affine',
            seed=args.seed,
        )
        self._initialize = tfp_flows.initialize
        self.initialized = False
        self.ddi_s = None
        self._since_reset, self._prev_mean = 0, 0.0
        recipe = recipe_settings(args.recipe)
        self.recipe = recipe
        self.trainer = FlowTrainer(self.flow, num_bins=P.NUM_LEVELS, clip_norm=recipe['clip_norm'])
        self.optimizer = make_optimizer(
            recipe['optimizer'],
            recipe['learning_rate'],
            warmup_steps=recipe['warmup_steps'],
            decay_steps=recipe['decay_steps'],
            weight_decay=recipe['weight_decay'],
        )
        self.trainer.compile(
            self.optimizer, jit_compile=jit, steps_per_execution=args.steps_per_execution
        )
        self.trainer.make_train_function()
        self.tvars = self.flow.trainable_variables

        train_sig = [tf.TensorSpec([P.TRAIN_BATCH, *P.IMAGE_SHAPE], tf.float32)]
        eval_sig = [tf.TensorSpec([P.EVAL_BATCH, *P.IMAGE_SHAPE], tf.float32)]
        clip = recipe['clip_norm']
        flow, tvars, opt = self.flow, self.tvars, self.optimizer

        @tf.function(input_signature=train_sig, jit_compile=jit)
        def raw_step(x):
            with tf.GradientTape() as tape:
                loss = -tf.reduce_mean(flow.log_prob(x))
            grads = tape.gradient(loss, tvars)
            if clip is not None:
                grads, _ = tf.clip_by_global_norm(grads, clip)
            opt.apply(grads, tvars)
            return loss

        @tf.function(input_signature=eval_sig, jit_compile=jit)
        def log_prob(x):
            return flow.log_prob(x)

        self._raw_step = raw_step
        self._log_prob = log_prob
        self._samplers = {}
        self._jit = jit

    # -- protocol adapters ------------------------------------------------------------------

    def to_native(self, x_centred: np.ndarray):
        return self.tf.constant(x_centred + np.float32(0.5))

    def maybe_initialize(self, x) -> None:
        if not self.initialized:
            t = time.perf_counter()
            self._initialize(self.flow, x)
            self.ddi_s = time.perf_counter() - t
            self.initialized = True

    def keras_step(self, x) -> float:
        """One step of Keras' compiled train function (what `fit` runs per batch).

        The logged loss is the trainer's running mean since its metrics were last reset (as in
        an epoch of `fit`), so this batch's own loss is k * m_k - (k - 1) * m_(k-1). Metrics are
        reset every `_RESET_EVERY` steps: resetting eagerly on every step (as `train_on_batch`
        does) would cost ~2 ms per step, which `fit` does not pay.
        """
        self.maybe_initialize(x)
        if self._since_reset >= self._RESET_EVERY:
            self.trainer.reset_metrics()
            self._since_reset, self._prev_mean = 0, 0.0
        mean = float(self.trainer.train_function(iter([x]))[self.trainer.metric_name])
        k = self._since_reset = self._since_reset + 1
        loss = k * mean - (k - 1) * self._prev_mean
        self._prev_mean = mean
        return bpd_to_nats(loss)

    def raw_step(self, x) -> float:
        self.maybe_initialize(x)
        return float(self._raw_step(x).numpy())

    def log_prob(self, x) -> np.ndarray:
        return self._log_prob(x).numpy()

    def sample(self, n: int) -> np.ndarray:
        if n not in self._samplers:
            flow = self.flow
            self._samplers[n] = self.tf.function(lambda: flow.sample(n), jit_compile=self._jit)
        return self._samplers[n]().numpy()

    def get_weights(self):
        return [v.numpy() for v in self.tvars]

    def set_weights(self, weights) -> None:
        for v, w in zip(self.tvars, weights, strict=True):
            v.assign(w)

    def peer_model(self, driver: str) -> P.PeerModel:
        tf = self.tf
        step = {'keras': self.keras_step, 'raw': self.raw_step}[driver]
        return P.PeerModel(
            to_native=self.to_native,
            train_step=step,
            log_prob=self.log_prob,
            sample=self.sample,
            get_weights=self.get_weights,
            set_weights=self.set_weights,
            n_params=int(sum(np.prod(v.shape) for v in self.tvars)),
            info={
                'n_trainable_variables': len(self.tvars),
                'latent_event_shape': [int(d) for d in self.flow.event_shape],
                'tf_threads': {
                    'intra_op_threads': tf.config.threading.get_intra_op_parallelism_threads(),
                    'inter_op_threads': tf.config.threading.get_inter_op_parallelism_threads(),
                },
            },
        )


def recipe_settings(recipe: str) -> dict:
    if recipe == 'protocol':
        return dict(
            optimizer='adam',
            learning_rate=P.LEARNING_RATE,
            warmup_steps=0,
            decay_steps=None,
            weight_decay=None,
            clip_norm=None,
        )
    from configs import glow_digits

    cfg = glow_digits.get_config()
    m = cfg.model
    assert (m.family, m.num_levels, m.num_steps, m.hidden_channels) == (
        'glow',
        P.GLOW_LEVELS,
        P.GLOW_STEPS_PER_LEVEL,
        P.GLOW_HIDDEN,
    ), 'configs/glow_digits.py no longer has the protocol architecture'
    assert cfg.train.batch_size == P.TRAIN_BATCH
    steps_per_epoch = (len(P.load_digits_split()['train']) // P.TRAIN_BATCH) or 1
    return dict(
        optimizer=cfg.train.optimizer,
        learning_rate=cfg.train.learning_rate,
        warmup_steps=cfg.train.warmup_steps,
        decay_steps=cfg.train.epochs * steps_per_epoch if cfg.train.cosine_decay else None,
        weight_decay=cfg.train.weight_decay,
        clip_norm=cfg.train.clip_norm,
    )


# ----------------------------------------------------------------------------------------------
# Extra throughput figures: fit and the raw step
# ----------------------------------------------------------------------------------------------


def fit_throughput(bench: Bench, data, *, repeats: int, warmup: int, steps: int) -> dict:
    """Images/s of `FlowTrainer.fit` on a `tf.data` pipeline of fixed batches (epochs of `steps`
    steps; median over `repeats` epochs after `warmup`)."""
    tf, keras = bench.tf, __import__('keras')
    pool = np.stack(P.fixed_batches(data['train'], 8, P.TRAIN_BATCH)) + np.float32(0.5)
    ds = tf.data.Dataset.from_tensor_slices(pool).repeat().prefetch(2)
    times = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t)

    mon = P.ContentionMonitor()
    t = time.perf_counter()
    bench.trainer.fit(
        ds, epochs=warmup + repeats, steps_per_epoch=steps, verbose=0, callbacks=[Timer()]
    )
    total = time.perf_counter() - t
    contention = mon.stop()
    med = statistics.median(times[warmup:])
    return {
        'fit_train_images_per_s': steps * P.TRAIN_BATCH / med,
        'fit_step_ms': 1e3 * med / steps,
        'fit_first_epoch_s': times[0],  # includes tracing fit's iterator function
        'fit_epoch_times_s': times,
        'fit_total_s': total,
        'fit_others_cpu_frac': contention.get('others_cpu_frac'),
    }


def step_throughput(step, bench: Bench, data, *, repeats: int, warmup: int, steps: int) -> dict:
    pool = [bench.to_native(x) for x in P.fixed_batches(data['train'], 8, P.TRAIN_BATCH, seed=3)]
    it = {'i': 0}

    def once():
        it['i'] = (it['i'] + 1) % len(pool)
        step(pool[it['i']])

    t = time.perf_counter()
    once()
    first = time.perf_counter() - t
    timing = P.timeit_median(once, repeats, warmup, steps)
    return {
        'images_per_s': P.throughput(timing, P.TRAIN_BATCH),
        'step_ms': 1e3 * timing['per_call_s'],
        'first_call_s': first,
        'others_cpu_frac': timing['others_cpu_frac'],
    }


# ----------------------------------------------------------------------------------------------
# Quality through fit
# ----------------------------------------------------------------------------------------------


def measure_quality_fit(make_bench, data, *, budget_s: float, keep_best: bool = True) -> dict:
    """`run_budgeted_training`'s protocol, with the steps run by `FlowTrainer.fit`.

    The same batch stream (`protocol.train_batches`) feeds fit through `tf.data`; one fit epoch
    is one protocol epoch (19 batches). A callback keeps the budget clock (started before model
    construction, paused while validating), validates after every epoch with the protocol's
    fixed-noise validation set, keeps the best weights and stops fit when the budget is spent.

    With ``--steps_per_execution`` k > 1, Keras calls the callback after every k steps (the
    budget is then checked every k steps, ~0.1 s here); the steps come from the optimizer's
    counter and each step of a call is logged with that call's mean loss. On this endless
    stream Keras rounds an epoch up to whole calls (19 -> 24 steps for k = 8), so validation
    runs every 24 steps. The first-step loss
    is the loss of the first batch at the initial weights, computed before fit (clock paused).
    """
    import keras

    rss_at_entry = P.peak_rss_mib()
    whole = P.ContentionMonitor()
    clock = P.BudgetClock()
    bench = make_bench()
    tf = bench.tf
    steps_per_epoch = len(data['train']) // P.TRAIN_BATCH
    val01 = P.fixed_eval_data(data['val'], salt=1)
    test01 = P.fixed_eval_data(data['test'], salt=2)
    train01 = P.fixed_eval_data(data['train'], salt=3)

    def stream():
        for _, xb in P.train_batches(data['train']):
            yield xb + np.float32(0.5)

    ds = tf.data.Dataset.from_generator(
        stream, output_signature=tf.TensorSpec([P.TRAIN_BATCH, *P.IMAGE_SHAPE], tf.float32)
    ).prefetch(2)
    # ActNorm's data-dependent init on the first batch of the stream (which fit then trains on).
    first_batch = tf.constant(next(stream()))
    bench.maybe_initialize(first_batch)
    clock.pause()
    first_loss = -float(tf.reduce_mean(bench.flow.log_prob(first_batch)))
    clock.resume()
    iterations = bench.optimizer.iterations

    def log_prob_fn(x):
        return bench.log_prob(bench.to_native(x))

    state = dict(
        steps=0,
        first_loss=None,
        ttfs=None,
        losses=[],
        epoch_losses=[],
        prev_mean=0.0,
        n_nonfinite=0,
        diverged=False,
        epochs_done=0,
    )
    best = {'val_bpd': math.inf, 'step': None, 'weights': None}
    history = []

    def validate(epoch, epoch_mean):
        clock.pause()
        t0 = time.perf_counter()
        v = P.summarize_bpd(P.evaluate_nll(log_prob_fn, val01))
        entry = {
            'epoch': epoch,
            'step': state['steps'],
            'train_clock_s': clock.elapsed(),
            'val_bpd': v['bpd'],
            'train_loss_epoch_mean': epoch_mean,
        }
        history.append(entry)
        if keep_best and math.isfinite(v['bpd']) and v['bpd'] < best['val_bpd']:
            best.update(val_bpd=v['bpd'], step=state['steps'], weights=bench.get_weights())
        entry['eval_s'] = time.perf_counter() - t0
        clock.resume()

    class Budget(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            state['prev_mean'] = 0.0
            state['epoch_losses'] = []

        def on_train_batch_end(self, batch, logs=None):
            # logs['bits_per_dim'] is the running mean (bits/dim) over this epoch's batches, all of
            # 64 images: with j steps done before this call and k after it, the mean of this
            # call's k - j steps is (k * m_k - j * m_j) / (k - j).
            steps = int(iterations.numpy())
            j = len(state['epoch_losses'])
            n = steps - state['steps']
            k = j + n
            mean = float(logs['bits_per_dim'])
            loss = bpd_to_nats((k * mean - j * state['prev_mean']) / n)
            state['prev_mean'] = mean
            state['steps'] = steps
            if state['first_loss'] is None:
                state['first_loss'] = first_loss
                state['ttfs'] = clock.elapsed()
                state['first_call_steps'] = n
            state['losses'] += [loss] * n
            state['epoch_losses'] += [loss] * n
            if not math.isfinite(loss):
                state['n_nonfinite'] += 1
                state['diverged'] = True
                self.model.stop_training = True
            elif clock.elapsed() >= budget_s:
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            state['epochs_done'] = epoch + 1
            if state['diverged']:
                return
            losses = state['epoch_losses']
            validate(epoch, float(np.mean(losses)) if losses else float('nan'))
            if clock.elapsed() >= budget_s:
                self.model.stop_training = True

    bench.trainer.fit(
        ds,
        epochs=10**6,
        steps_per_epoch=steps_per_epoch,
        verbose=0,
        callbacks=[Budget()],
    )
    train_clock = clock.elapsed()
    clock.pause()
    losses = state['losses']
    tail = losses[-P.LAST_STEPS :]
    final = {
        'val': P.summarize_bpd(P.evaluate_nll(log_prob_fn, val01)),
        'test': P.summarize_bpd(P.evaluate_nll(log_prob_fn, test01)),
        'train': P.summarize_bpd(P.evaluate_nll(log_prob_fn, train01)),
    }
    best_out = None
    if keep_best and best['weights'] is not None:
        bench.set_weights(best['weights'])
        best_out = {
            'step': best['step'],
            'val': P.summarize_bpd(P.evaluate_nll(log_prob_fn, val01)),
            'test': P.summarize_bpd(P.evaluate_nll(log_prob_fn, test01)),
            'train': P.summarize_bpd(P.evaluate_nll(log_prob_fn, train01)),
        }
    first = state['first_loss']
    return {
        'budget_s': budget_s,
        'train_clock_s': train_clock,
        'eval_paused_s': clock.paused_total,
        'steps': state['steps'],
        'epochs_completed': state['epochs_done'],
        'images_seen': state['steps'] * P.TRAIN_BATCH,
        'time_to_first_step_s': state['ttfs'],  # To the end of the first call into TF.
        'first_call_steps': state.get('first_call_steps'),
        'ddi_s': bench.ddi_s,
        'first_step_loss_nats': first,
        'first_step_loss_bpd': float(P.bits_per_dim(first)) if first is not None else None,
        'last_step_loss_nats': losses[-1] if losses else None,
        'last_steps_n': len(tail),
        'last_steps_train_loss_nats': float(np.mean(tail)) if tail else None,
        'last_steps_train_bpd': float(P.bits_per_dim(np.mean(tail))) if tail else None,
        'n_nonfinite_losses': state['n_nonfinite'],
        'diverged': state['diverged'],
        'final_weights': final,
        'best_val_weights': best_out,
        'history': history,
        'others_cpu_frac': {'whole_run': whole.stop().get('others_cpu_frac')},
        'n_params': int(sum(np.prod(v.shape) for v in bench.tvars)),
        'rss_after_imports_mib': rss_at_entry,
        'peak_rss_mib': P.peak_rss_mib(),
        'model_info': {'n_trainable_variables': len(bench.tvars)},
    }


# ----------------------------------------------------------------------------------------------


def main() -> None:
    args = parse_args()
    t0 = time.perf_counter()
    import keras
    import tensorflow as tf

    import tfp_flows

    import_s = time.perf_counter() - t0
    threads = P.configure_tf_threads(tf, args)
    name = args.name or '_'.join(
        ['tfp_flows_glow', args.mode]
        + ([args.recipe] if args.recipe != 'protocol' else [])
        + ([args.permutation] if args.permutation != 'lu' else [])
        + ([f'{args.driver}'] if args.driver not in ('keras', 'fit') else [])
        + ([f'spe{args.steps_per_execution}'] if args.steps_per_execution > 1 else [])
    ) + P.thread_suffix(args)
    holder = {}

    def make_bench() -> Bench:
        holder['bench'] = Bench(args, tf, keras, tfp_flows)
        return holder['bench']

    def build() -> P.PeerModel:
        return make_bench().peer_model(args.driver)

    config = {
        'library': 'tfp_flows.glow + tfp_flows.training.trainer.FlowTrainer (Keras 3)',
        'mode': args.mode,
        'jit_compile': args.mode == 'xla',
        'driver': args.driver,
        'recipe': args.recipe,
        'optimizer': recipe_settings(args.recipe),
        'permutation': args.permutation,
        'steps_per_execution': args.steps_per_execution,
        'tf_threads': threads,
        'coupling': 'affine, ConvNet 3x3 -> 1x1 -> 3x3 (width 64), log-scale bound*tanh(raw/bound)',
        'base': 'standard Normal on the latent [8, 8, 1]',
        'train_batch': P.TRAIN_BATCH,
        'eval_batch': P.EVAL_BATCH,
        'levels': P.GLOW_LEVELS,
        'steps_per_level': P.GLOW_STEPS_PER_LEVEL,
        'hidden': P.GLOW_HIDDEN,
        'seed': args.seed,
        'import_s': import_s,
    }
    if args.figure == 'quality' and args.driver != 'fit':
        P.run_figure(args, peer=name, build=build, config=config, import_s=import_s)
        return

    data = P.load_digits_split()
    idle = P.wait_for_idle(args.wait_idle_s, args.idle_threshold) if args.wait_idle_s else None
    config['wait_for_idle'] = idle
    if args.figure == 'quality':
        config.update(budget_s=args.budget_s, keep_best=not args.no_keep_best)
        m = measure_quality_fit(
            make_bench, data, budget_s=args.budget_s, keep_best=not args.no_keep_best
        )
        P.write_result(args.out, peer=name, figure='quality', config=config, metrics=m)
        b = m['best_val_weights'] or {}
        print(
            f'{name} quality: budget={args.budget_s:.0f}s steps={m["steps"]} '
            f'first_loss={P.fmt(m["first_step_loss_nats"])}nats '
            f'test_bpd(best-val)={P.fmt(b.get("test", {}).get("bpd"), ".3f")} '
            f'test_bpd(final)={P.fmt(m["final_weights"]["test"]["bpd"], ".3f")} '
            f'peak_rss={m["peak_rss_mib"]:.0f}MiB '
            f'others_cpu={P.fmt(m["others_cpu_frac"]["whole_run"], ".2f")}',
            flush=True,
        )
        return

    # Throughput: the protocol's figures, then fit and the other step on the same model.
    m = P.measure_throughput(
        build,
        data,
        repeats=args.repeats,
        warmup=args.warmup,
        train_steps_per_repeat=args.train_steps_per_repeat,
        eval_calls_per_repeat=args.eval_calls_per_repeat,
    )
    bench = holder['bench']
    kw = dict(repeats=args.repeats, warmup=args.warmup, steps=args.train_steps_per_repeat)
    extra = fit_throughput(bench, data, **{**kw, 'steps': args.fit_steps_per_epoch})
    other = 'raw' if args.driver == 'keras' else 'keras'
    o = step_throughput(getattr(bench, f'{other}_step'), bench, data, **kw)
    extra.update({f'{other}_step_{k}': v for k, v in o.items()})
    extra[f'{args.driver}_step_images_per_s'] = m['train_images_per_s']
    extra['ddi_s'] = bench.ddi_s
    m.update(extra)
    m['peak_rss_mib_after_extras'] = P.peak_rss_mib()
    config.update(
        learning_rate=P.LEARNING_RATE,
        repeats=args.repeats,
        warmup=args.warmup,
        train_steps_per_repeat=args.train_steps_per_repeat,
        eval_calls_per_repeat=args.eval_calls_per_repeat,
        fit_steps_per_epoch=args.fit_steps_per_epoch,
    )
    P.write_result(args.out, peer=name, figure='throughput', config=config, metrics=m)
    print(
        f'{name} throughput: params={m["n_params"]} '
        f'first_step={m["time_to_first_step_s"]:.2f}s '
        f'first_loss={m["first_step_loss_nats"]:.1f}nats '
        f'train={m["train_images_per_s"]:.0f}img/s '
        f'log_prob={m["log_prob_images_per_s"]:.0f}img/s '
        f'sample={m["sample_images_per_s"]:.0f}img/s '
        f'peak_rss={m["peak_rss_mib"]:.0f}MiB '
        f'others_cpu={P.fmt(m["others_cpu_frac"]["whole_run"], ".2f")} '
        f'fit={extra["fit_train_images_per_s"]:.0f}img/s '
        f'{other}_step={o["images_per_s"]:.0f}img/s ddi={bench.ddi_s:.2f}s',
        flush=True,
    )


if __name__ == '__main__':
    main()
