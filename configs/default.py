"""The default recipe: the best digits model that trains in about 2 minutes on 2 CPU cores.

Real NVP (3 scales of 3 couplings per mask, width 64, one residual block h + ReLU(conv3x3(h)) in
each coupling network) with Flow++'s mixture-of-logistics CDF couplings (Ho et al. 2019,
https://arxiv.org/abs/1902.00275; 8 logistics), on the logit of the data, with a variational
dequantizer; dropout 0.1 in the conditioners and EMA weights, 60 epochs at peak rate 0.005 (one
thread per op; the larger recipes give each op every core): 136 s on the idle 2-core machine.
Chosen by validation among runs of about 2 minutes: bench/results/digits_search5.md (the
residual block: validation 1.805 -> 1.779, importance-weighted test 1.740 -> 1.719), after
digits_search4.md (the third scale). `logistic_mixture_digits` trains it longer.
Every field, its domain and doc: `python train.py --print_config`.
"""

from configs import affine_digits


def get_config():
    config = affine_digits.get_config()
    config.model.num_levels = 3
    config.model.num_steps = 3
    config.model.residual_blocks = 1
    config.model.coupling = 'logistic_mixture'
    config.model.mixture_components = 8
    config.model.dropout_rate = 0.1
    config.train.ema_momentum = 0.99  # Validated, tested and exported: the averaged weights.
    config.train.learning_rate = 0.005
    config.train.epochs = 60
    return config
