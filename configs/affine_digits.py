"""Real NVP with affine couplings on scikit-learn's 8x8 digits: the default recipe of 0.2.

Real NVP (2 scales of 4 couplings, width 64) on the logit of the data, with a variational
dequantizer (Flow++), sized to train on 2 CPU cores in about a minute (one thread per op; the
larger recipes give each op every core): 0.6x the default's time, 0.1 bits/dim behind it, and
its samples come in closed form (the default's invert a mixture CDF by bisection). It is the
schema's defaults (`python train.py --print_config` lists every field, its domain and doc).
Measured results: bench/results/recipe_notes.md, bench/results/digits_recipes.md.
"""

from tfp_flows.run import schema


def get_config():
    return schema.default_config()
