"""Glow on CIFAR-10 as in the paper: L=3, K=32, width 512, affine coupling, Adamax 1e-3.

The paper trains with batch 64 per GPU on 8 GPUs for ~1,000 epochs (3.35 bits/dim);
`train.batch_size` is the global batch over all replicas. Validation is the last 5,000
images of the TFDS train split.
"""

from tfp_flows.run import schema


def get_config():
    config = schema.default_config()
    # Glow as the paper trains it (centred, uniformly dequantized).
    config.model.family = 'glow'
    config.model.preprocessing = 'centre'
    config.model.split_prior = True
    config.dequantizer.kind = 'uniform'
    config.data.name = 'cifar10'
    config.data.splits.train = 'train[:45000]'
    config.data.splits.validation = 'train[45000:]'
    config.data.augment = 'flip'  # Random left-right flips, as the paper trains.
    config.model.num_levels = 3
    config.model.num_steps = 32
    config.model.loop = True  # One tf.while_loop per level (bench/README 'Depth').
    config.model.hidden_channels = 512
    config.train.batch_size = 64
    config.train.epochs = 1000
    config.train.optimizer = 'adamax'
    config.train.learning_rate = 1e-3
    config.train.warmup_steps = 5000  # Glow warms up over its first epochs.
    config.train.sample_every_epochs = 1
    config.train.intra_op_threads = 0  # Large convolutions want every core per op.
    config.train.weight_decay = 0.01
    return config
