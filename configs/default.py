"""The default recipe: the best digits model that trains in about 2 minutes on 2 CPU cores.

Real NVP (2 scales of 4 couplings, width 64) with Flow++'s mixture-of-logistics CDF couplings
(Ho et al. 2019, https://arxiv.org/abs/1902.00275; 8 logistics), on the logit of the data, with a
variational dequantizer; dropout 0.05 in the conditioners and EMA weights, 45 epochs at peak rate
0.005 (one thread per op; the larger recipes give each op every core). Chosen by validation among
runs of about the time of `affine_digits` (the default of 0.2, affine couplings, 60 epochs) and
twice it: bench/results/digits_search3.md. `logistic_mixture_digits` trains it for 60 epochs.
Every field, its domain and doc: `python train.py --print_config`.
"""

from configs import affine_digits


def get_config():
    config = affine_digits.get_config()
    config.model.coupling = 'logistic_mixture'
    config.model.mixture_components = 8
    config.model.dropout_rate = 0.05
    config.train.ema_momentum = 0.99  # Validated, tested and exported: the averaged weights.
    config.train.learning_rate = 0.005
    config.train.epochs = 45
    return config
