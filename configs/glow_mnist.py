"""Glow on MNIST (TFDS 'mnist', 28x28x1: 2 levels, as 28 = 4 * 7), scaled to one machine.

Validation is the last 10% of the TFDS train split.
"""

from tfp_flows.run import schema


def get_config():
    config = schema.default_config()
    # Glow as the paper trains it (centred, uniformly dequantized).
    config.model.family = 'glow'
    config.model.preprocessing = 'centre'
    config.model.split_prior = True
    config.dequantizer.kind = 'uniform'
    config.data.name = 'mnist'
    config.data.splits.train = 'train[:90%]'
    config.data.splits.validation = 'train[90%:]'
    config.model.num_levels = 2
    config.model.num_steps = 16
    config.model.loop = True  # One tf.while_loop per level (bench/README 'Depth').
    config.model.hidden_channels = 256
    config.train.epochs = 100
    config.train.learning_rate = 1e-3
    config.train.warmup_steps = 1000
    config.train.sample_every_epochs = 1
    config.train.intra_op_threads = 0
    config.train.weight_decay = 0.01
    return config
