"""Class-conditional Glow on the 8x8 digits: one-hot labels, learned class-conditional prior.

The Glow of glow_digits.py (logit preprocessing, variational dequantization; the dequantizer
sees the image, not the label), conditioned on the digit: a density given the label, so not
comparable with the unconditional recipes. Measured results: bench/results/recipe_notes.md.
"""

from configs import glow_digits


def get_config():
    config = glow_digits.get_config()
    # Every coupling network and prior sees the one-hot digit (Glow's ycond, learntop).
    config.data.conditional = True
    config.model.learn_top_prior = True
    return config
