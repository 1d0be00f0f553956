"""Real NVP on CIFAR-10: 3 scales of 3 checkerboard + 3 channel couplings (the paper's layout).

The paper's couplings use 8-block ResNets with 64 features (3.49 bits/dim); ours use Glow's
3-layer conv net of the same width. Validation is the last 5,000 TFDS train images.
"""

from tfp_flows.run import schema


def get_config():
    config = schema.default_config()
    config.data.name = 'cifar10'
    config.data.splits.train = 'train[:45000]'
    config.data.splits.validation = 'train[45000:]'
    config.model.family = 'real_nvp'
    config.model.preprocessing = 'logit'  # Real NVP's logit transform.
    config.model.num_levels = 3
    config.model.num_steps = 3
    config.model.hidden_channels = 64
    config.model.split_prior = False
    config.model.alpha = 0.05  # The paper's margin (the digits default is 0.01).
    config.dequantizer.kind = 'uniform'  # As the paper; variational is measured on digits only.
    config.train.batch_size = 64
    config.train.epochs = 500
    config.train.optimizer = 'adam'
    config.train.learning_rate = 1e-3
    config.train.warmup_steps = 1000
    config.train.weight_decay = 5e-5  # The paper's L2 of 5e-5, here decoupled.
    config.train.sample_every_epochs = 1
    config.train.intra_op_threads = 0  # Large convolutions want every core per op.
    return config
