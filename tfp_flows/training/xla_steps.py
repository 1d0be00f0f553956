"""`FlowTrainer`'s train function with XLA and several steps per call: the call's steps as one
XLA loop. Keras 3 compiles each step on its own and loops over them in TF, so every step reads
and writes back all the variables and optimizer slots across the XLA boundary; at the digits
Glow's size that costs more than the step's arithmetic saves (bench/README, "XLA")."""

import tensorflow as tf

from tfp_flows import networks
from tfp_flows.training.workarounds import step_logs

__all__ = ['looped_train_function']


def _stacked(batches):
    return tf.nest.map_structure(lambda *parts: tf.stack(parts), *batches)


def _same_shapes(batches):
    """Whether every batch (a structure of tensors) has the first's shapes, as a bool tensor."""
    first, *others = [tf.nest.flatten(batch) for batch in batches]
    same = [
        tf.reduce_all(tf.equal(tf.shape(a), tf.shape(b)))
        for other in others
        for a, b in zip(first, other, strict=True)
    ]
    return tf.reduce_all(tf.stack(same)) if same else tf.constant(True)


def looped_train_function(trainer, keras_function):
    """Keras' train function (an iterator -> the last step's logs; `StopIteration` once the
    iterator has no batch) for `trainer` compiled with `jit_compile=True` and
    `steps_per_execution` n > 1 (so on one replica): it takes up to n batches, as Keras does;
    batches of one shape (n, or fewer at an epoch's end) train in one XLA call, a
    `tf.while_loop` of the train step over them stacked; batches of several shapes (a
    dataset's short last batch among them) one call each. Steps equal Keras' one XLA call per
    step up to rounding. Anything but an iterator (`train_on_batch`'s batch) goes to
    `keras_function`, Keras' own."""
    strategy, n, one = trainer.distribute_strategy, trainer.steps_per_execution, tf.constant(1)

    def train_step(batch):  # In the replica's thread (a MirroredStrategy runs each in its own).
        with networks.loop_gradients():
            return trainer.train_step(batch)

    @tf.function(jit_compile=True, reduce_retracing=True)
    def steps(batches, count):
        def body(i):
            strategy.run(train_step, args=(tf.nest.map_structure(lambda b: b[i], batches),))
            return i + 1

        tf.while_loop(lambda i: i < count, body, [tf.constant(0)])

    @tf.function(reduce_retracing=True)
    def from_iterator(iterator):
        optionals = [iterator.get_next_as_optional()]
        empty = tf.experimental.Optional.empty(optionals[0].element_spec)
        for _ in range(n - 1):  # Each only after a batch, as Keras' loop takes them.
            previous = optionals[-1]
            optionals.append(
                tf.cond(previous.has_value(), iterator.get_next_as_optional, lambda: empty)
            )
        taken = [optional.has_value() for optional in optionals]

        def train():
            first = optionals[0].get_value()
            batches = [first] + [
                tf.cond(has, optional.get_value, lambda: first)
                for has, optional in zip(taken[1:], optionals[1:], strict=True)
            ]
            count = tf.reduce_sum(tf.cast(taken, tf.int32))

            def one_by_one():  # Each batch as n copies, one trained: shapes XLA has compiled.
                for has, batch in zip(taken, batches, strict=True):
                    tf.cond(has, lambda b=batch: steps(_stacked([b] * n), one), lambda: None)

            tf.cond(_same_shapes(batches), lambda: steps(_stacked(batches), count), one_by_one)

        tf.cond(taken[0], train, lambda: None)
        return taken[0], step_logs(trainer.metrics)

    def function(iterator):
        if not isinstance(iterator, tf.data.Iterator | tf.distribute.DistributedIterator):
            return keras_function(iterator)
        taken, logs = from_iterator(iterator)
        if not taken:
            raise StopIteration
        return logs

    return function
