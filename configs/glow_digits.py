"""Glow on scikit-learn's 8x8 digits, with logit preprocessing and variational dequantization.

Sized as configs/affine_digits.py; centred, uniformly dequantized digits make a Glow spend its
capacity on the spikes of exact-zero background pixels. Results: bench/results/recipe_notes.md.
"""

from configs import affine_digits


def get_config():
    config = affine_digits.get_config()
    config.model.family = 'glow'
    config.model.split_prior = True  # Glow's learned prior of the factored-out channels.
    config.model.preprocessing = 'logit'
    config.model.alpha = 0.01
    config.dequantizer.kind = 'variational'
    config.train.weight_decay = 0.1  # Measured best for digits Glow.
    return config
