"""Glow on scikit-learn's 8x8 digits, with logit preprocessing and variational dequantization.

Glow as configs/default.py sizes it (2 levels of 4 steps, width 64, LU 1x1 convolutions,
affine couplings, learned split prior), on Real NVP's logit of the data rather than Glow's
centring, with noise from a variational dequantizer (Flow++): centred, uniformly dequantized
digits make a Glow spend its capacity on the spikes of exact-zero background pixels.
Measured results: bench/results/recipe_notes.md.
"""

from configs import default


def get_config():
    config = default.get_config()
    config.model.family = 'glow'
    config.model.split_prior = True  # Glow's learned prior of the factored-out channels.
    config.model.preprocessing = 'logit'
    config.model.alpha = 0.01
    config.dequantizer.kind = 'variational'
    config.train.weight_decay = 0.1  # Measured best for digits Glow.
    return config
