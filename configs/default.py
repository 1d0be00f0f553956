"""The default recipe: the best model on scikit-learn's 8x8 digits (ships with the package).

Real NVP (2 scales of 4 couplings, width 64) on the logit of the data, with a variational
dequantizer (Flow++), sized to train on 2 CPU cores in a few minutes (one thread per op; the
larger recipes give each op every core). Measured results: bench/results/recipe_notes.md.
Every field, its domain and doc: `python train.py --print_config`.
"""

from tfp_flows.run import schema


def get_config():
    return schema.default_config()
