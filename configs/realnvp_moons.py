"""Real NVP on the two-moons 2-D toy; writes density.png beside the data."""

from tfp_flows.run import schema


def get_config():
    config = schema.default_config()
    config.data.name = 'moons'
    config.model.family = 'real_nvp'
    config.model.preprocessing = None  # Vector data: no preprocessing.
    config.dequantizer.kind = 'uniform'  # Continuous data: nothing to dequantize.
    config.eval.iw_samples = 0  # An estimate for discrete images only.
    config.model.num_steps = 8  # Affine couplings alternating between the two coordinates.
    config.model.hidden_channels = 64  # Units of each of the two hidden layers of the MLPs.
    config.model.split_prior = False
    config.train.batch_size = 256
    config.train.epochs = 15
    config.train.optimizer = 'adam'
    config.train.learning_rate = 2e-3
    config.train.weight_decay = 0.01
    return config
