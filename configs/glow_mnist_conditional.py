"""Class-conditional Glow on MNIST (TFDS labels, 10 classes): glow_mnist given the digit."""

from configs import glow_mnist


def get_config():
    config = glow_mnist.get_config()
    # As glow_digits_conditional; run here only on tfds.testing.mock_data.
    config.data.conditional = True
    config.model.learn_top_prior = True
    return config
