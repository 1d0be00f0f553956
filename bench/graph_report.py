"""How big the traced graphs are, how long tracing takes, and how often each coupling net runs.

For tfp_flows' digits Glow and TFP's ``tfb.Glow`` (same architecture) this traces (without
running) the train step, log_prob and sample as ``tf.function``s and reports, for each: the
seconds to trace, the number of graph ops, the convolutions / matrix products in it, and how
many times each coupling network was called while tracing. One call per network in the train
step means log_prob's inverse and its log-det share one pass (tfp_flows' ``FlowBijector`` +
``GreedyGraphOnlyCache``); TFP's RealNVP-based couplings evaluate the network twice.

    python bench/graph_report.py [--out=bench/results/graph_report.json]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, 'peers'))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import protocol as P  # noqa: E402
from tfp_glow import glow_distribution  # noqa: E402

OPS = ('Conv2D', 'MatMul', 'BatchMatMulV2', 'Einsum', 'MatrixTriangularSolve', 'ReadVariableOp')


def _count_calls(objects, method):
    """Wraps `method` of each object to count its calls; returns the counter."""
    calls = collections.Counter()
    for i, obj in enumerate(objects):
        original = getattr(obj, method)

        def wrapped(*args, _original=original, _i=i, **kwargs):
            calls[_i] += 1
            return _original(*args, **kwargs)

        object.__setattr__(obj, method, wrapped)
    return calls


def report(tf, name, dist, nets, method, optimizer, x_train, x_eval, shift):
    calls = _count_calls(nets, method)
    tvars = dist.trainable_variables
    optimizer.build(tvars)

    def train_step(x):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(dist.log_prob(x + shift))
        optimizer.apply_gradients(zip(tape.gradient(loss, tvars), tvars, strict=True))
        return loss

    out = {'n_coupling_nets': len(nets), 'n_trainable_variables': len(tvars)}
    for fn_name, fn, args in (
        ('train_step', train_step, (x_train,)),
        ('log_prob', lambda x: dist.log_prob(x + shift), (x_eval,)),
        ('sample', lambda: dist.sample(256), ()),
    ):
        calls.clear()
        t = time.perf_counter()
        graph = tf.function(fn).get_concrete_function(*args).graph
        trace_s = time.perf_counter() - t
        types = collections.Counter(op.type for op in graph.get_operations())
        per_net = sorted(set(calls[i] for i in range(len(nets))))
        out[fn_name] = {
            'trace_s': trace_s,
            'n_ops': len(graph.get_operations()),
            'op_types': {k: types[k] for k in OPS if types[k]},
            'calls_per_coupling_net': per_net,
        }
        print(
            f'{name:10s} {fn_name:10s} trace {trace_s:5.2f}s  ops {out[fn_name]["n_ops"]:5d}  '
            f'calls per coupling net {per_net}  '
            + ' '.join(f'{k}={v}' for k, v in out[fn_name]['op_types'].items()),
            flush=True,
        )
    return out


def apply_graph(tf, optimizer, variables) -> dict:
    """Time to trace `optimizer.apply` on `variables` and the ops in its graph."""
    optimizer.build(variables)
    t = time.perf_counter()
    graph = (
        tf.function(lambda g: optimizer.apply(g, variables) or tf.constant(0))
        .get_concrete_function([tf.zeros_like(v) for v in variables])
        .graph
    )
    return {'trace_s': time.perf_counter() - t, 'n_ops': len(graph.get_operations())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=None)
    args = parser.parse_args()
    import keras
    import tensorflow as tf
    import tensorflow_probability as tfp
    import tf_keras

    import tfp_flows
    from tfp_flows import networks
    from tfp_flows.training.optimizers import make_optimizer

    tfb = tfp.bijectors
    shape = list(P.IMAGE_SHAPE)
    x_train = tf.random.uniform([P.TRAIN_BATCH, *shape])
    x_eval = tf.random.uniform([P.EVAL_BATCH, *shape])
    results = {}

    flow = tfp_flows.glow(
        P.IMAGE_SHAPE,
        num_levels=P.GLOW_LEVELS,
        num_steps=P.GLOW_STEPS_PER_LEVEL,
        hidden_channels=P.GLOW_HIDDEN,
    )
    tfp_flows.initialize(flow, x_train)
    nets = [m for m in flow.submodules if isinstance(m, networks.ConvNet)]
    results['tfp_flows'] = report(
        tf, 'tfp_flows', flow, nets, '_apply', make_optimizer('adam', 1e-3), x_train, x_eval, 0.0
    )
    fused = apply_graph(tf, make_optimizer('adam', 1e-3), flow.trainable_variables)
    plain = apply_graph(tf, keras.optimizers.Adam(1e-3), flow.trainable_variables)
    results['tfp_flows']['fused_adam_apply'] = fused
    results['tfp_flows']['keras_adam_apply'] = plain
    print(
        f'optimizer apply on {len(flow.trainable_variables)} variables: keras Adam '
        f'{plain["n_ops"]} ops ({plain["trace_s"]:.2f}s), '
        f'fused {fused["n_ops"]} ops ({fused["trace_s"]:.2f}s)',
        flush=True,
    )

    px, _ = glow_distribution(tfp, seed=0)
    px.log_prob(x_train - 0.5)  # builds the Keras networks (and runs TFP's data init)
    tfp_nets = [m for m in px.submodules if isinstance(m, tfb.GlowDefaultNetwork)]
    results['tfp_glow'] = report(
        tf, 'tfp_glow', px, tfp_nets, 'call', tf_keras.optimizers.Adam(1e-3), x_train, x_eval, -0.5
    )
    if args.out:
        record = P.write_result(
            None, peer='graph_report', figure='graphs', config={}, metrics=results
        )
        with open(args.out, 'w') as f:
            json.dump(record, f, indent=2)
            f.write('\n')


if __name__ == '__main__':
    main()
