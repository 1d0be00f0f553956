"""Real NVP on scikit-learn's 8x8 digits: 2 scales, checkerboard then channel couplings."""

from configs import default


def get_config():
    config = default.get_config()
    config.model.family = 'real_nvp'
    config.model.preprocessing = 'logit'  # Real NVP's logit transform.
    config.model.num_levels = 2
    config.model.num_steps = 3  # The paper's 3 couplings per mask type and scale.
    config.model.hidden_channels = 64
    config.model.split_prior = False  # Real NVP factors out to a plain Normal.
    config.train.weight_decay = 0.01  # Not tuned here; 0.1 was measured on digits Glow only.
    return config
