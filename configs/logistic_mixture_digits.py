"""The default recipe trained 60 epochs with dropout 0.1: the best digits recipe here.

Real NVP (3 scales of 3 couplings per mask, width 64, one residual block in each coupling
network) with Flow++'s mixture-of-logistics CDF couplings (Ho et al. 2019,
https://arxiv.org/abs/1902.00275; 8 logistics), logit, variational dequantization, peak rate
0.005, dropout 0.1 in the conditioners and EMA weights, 60 epochs (1.15x the default's CPU).

The best validation figure of the residual-block runs of bench/results/digits_search5.md
(1.779; its test importance-weighted figure 1.719), ahead of this recipe's earlier 90 epochs
without the block (digits_search4.md); after digits_search.md (couplings, widths, dequantizer,
regularisation: the mixture couplings ahead of the spline and affine ones), digits_search2.md (8
logistics at rate 0.005) and digits_search3.md; its data -> latent map, what training runs, is in
closed form. Coupling results: bench/results/digits_logistic_mixture.md.
"""

from configs import default


def get_config():
    config = default.get_config()
    config.model.dropout_rate = 0.1
    config.train.epochs = 60
    return config
