"""Real NVP on MNIST (TFDS 'mnist', 28x28x1: 3 scales, 28 -> 14 -> 7).

Validation is the last 10% of the TFDS train split.
"""

from tfp_flows.run import schema


def get_config():
    config = schema.default_config()
    config.data.name = 'mnist'
    config.data.splits.train = 'train[:90%]'
    config.data.splits.validation = 'train[90%:]'
    config.model.family = 'real_nvp'
    config.model.preprocessing = 'logit'  # Real NVP's logit transform.
    config.model.num_levels = 3
    config.model.num_steps = 3
    config.model.hidden_channels = 64
    config.model.split_prior = False
    config.model.alpha = 0.05  # The paper's margin (the digits default is 0.01).
    config.dequantizer.kind = 'uniform'  # As the paper; variational is measured on digits only.
    config.train.epochs = 100
    config.train.optimizer = 'adam'
    config.train.learning_rate = 1e-3
    config.train.warmup_steps = 1000
    config.train.sample_every_epochs = 1
    config.train.intra_op_threads = 0
    config.train.weight_decay = 0.01
    return config
