"""Class-conditional Glow on MNIST (TFDS labels, 10 classes): glow_mnist given the digit."""

from configs import glow_mnist


def get_config():
    config = glow_mnist.get_config()
    # Batches (x, one-hot label of TFDS 'mnist'), conditional_shape (10,), with a learned
    # class-conditional prior, as glow_digits_conditional. Not run here beyond a test on
    # tfds.testing.mock_data.
    config.data.conditional = True
    config.model.learn_top_prior = True
    return config
