"""The default recipe trained 90 epochs with dropout 0.15: the best digits recipe here.

Real NVP (3 scales of 3 couplings per mask, width 64, one residual block in each coupling
network) with Flow++'s mixture-of-logistics CDF couplings (Ho et al. 2019,
https://arxiv.org/abs/1902.00275; 8 logistics), logit, variational dequantization, peak rate
0.005, dropout 0.15 in the conditioners and EMA weights, 90 epochs (195 s on the idle 2-core
machine, 1.4x the default's).

The best validation figure of bench/results/digits_search5.md (1.768; test 1.767, importance-
weighted 1.713), ahead of 90 epochs with the default's dropout 0.1 (1.775); after
digits_search.md (couplings, widths, dequantizer, regularisation: the mixture couplings ahead of
the spline and affine ones), digits_search2.md (8 logistics at rate 0.005), digits_search3.md and
digits_search4.md (the third scale); its data -> latent map, what training runs, is in closed
form. Coupling results: bench/results/digits_logistic_mixture.md.
"""

from configs import default


def get_config():
    config = default.get_config()
    config.model.dropout_rate = 0.15
    config.train.epochs = 90
    return config
