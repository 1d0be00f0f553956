"""The default recipe: the best model on scikit-learn's 8x8 digits (ships with the package).

Real NVP (2 scales of 4 couplings, width 64) on the logit of the data (margin 0.01), with
noise from a variational dequantizer trained jointly (Flow++), sized to train on 2 CPU cores
in a few minutes, regularised with weight decay; the best epoch by validation bits/dim is the
one kept and tested. Chosen by validation bits/dim among 15 digits candidates (Glow and Real
NVP, centred or logit, uniform or variational noise, sizes, margins, rates); configs/
glow_digits.py is the best Glow. One thread per op, independent ops side by side and 8 steps
per call into TF suit a model this small on a few CPU cores; the larger recipes give each op
every core. Every field, its domain and doc: tfp_flows/run/schema.py, or
`python train.py --print_config`.
"""

from tfp_flows.run import schema


def get_config():
    return schema.default_config()
