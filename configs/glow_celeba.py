"""Glow on CelebA (TFDS 'celeb_a'), centre-cropped to 148 and resized to 64x64.

L=4 levels of K=32 steps, width 512, additive coupling as in the paper's CelebA model
(which used CelebA-HQ at 256x256 with L=6).
"""

from tfp_flows.run import schema


def get_config():
    config = schema.default_config()
    # Glow as the paper trains it (centred, uniformly dequantized).
    config.model.family = 'glow'
    config.model.preprocessing = 'centre'
    config.model.split_prior = True
    config.dequantizer.kind = 'uniform'
    config.data.name = 'celeb_a'
    config.data.image_size = 64
    config.data.augment = 'flip'  # Random left-right flips, as the paper trains.
    config.model.num_levels = 4
    config.model.num_steps = 32
    config.model.loop = True  # One tf.while_loop per level (bench/README 'Depth').
    config.model.hidden_channels = 512
    config.model.coupling = 'additive'
    config.train.batch_size = 64
    config.train.epochs = 100
    config.train.optimizer = 'adamax'
    config.train.learning_rate = 1e-3
    config.train.warmup_steps = 5000
    config.train.sample_every_epochs = 1
    config.train.intra_op_threads = 0
    config.train.weight_decay = 0.01
    return config
