"""Real NVP on scikit-learn's 8x8 digits as the paper trains it: uniform dequantization.

2 scales, checkerboard then channel couplings, the paper's logit margin 0.05 and 3 couplings
per mask type and scale. `affine_digits` is this family with a variational
dequantizer, margin 0.01 and 4 couplings. Measured results: bench/results/recipe_notes.md.
"""

from configs import affine_digits


def get_config():
    config = affine_digits.get_config()
    config.model.family = 'real_nvp'
    config.model.preprocessing = 'logit'  # Real NVP's logit transform.
    config.model.alpha = 0.05  # The paper's margin.
    config.model.num_levels = 2
    config.model.num_steps = 3  # The paper's 3 couplings per mask type and scale.
    config.model.hidden_channels = 64
    config.model.split_prior = False  # Real NVP factors out to a plain Normal.
    config.dequantizer.kind = 'uniform'  # The paper's dequantization.
    config.train.weight_decay = 0.01
    return config
