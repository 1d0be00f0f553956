"""Glow on scikit-learn's 8x8 digits: the default recipe (see default.py)."""

from configs import default


def get_config():
    return default.get_config()
