"""Class-conditional Glow on the 8x8 digits: one-hot labels, learned class-conditional prior.

The Glow of glow_digits.py (logit preprocessing, variational dequantization; the dequantizer
sees the image, not the label), conditioned on the digit: a density given the label, so not
comparable with the unconditional recipes. Measured results: bench/results/recipe_notes.md.
"""

from configs import glow_digits


def get_config():
    config = glow_digits.get_config()
    # Batches (x, one-hot digit), conditional_shape (10,): every coupling network sees the
    # label, which also sets the mean and log-scale of the top latent and each split prior
    # (Glow's ycond), on a learned top prior (learntop). Sample figures: one row per class.
    config.data.conditional = True
    config.model.learn_top_prior = True
    return config
