"""The default recipe trained 1.5x longer with dropout 0.1: the best digits recipe here.

Real NVP (3 scales of 3 couplings per mask, width 64) with Flow++'s mixture-of-logistics CDF
couplings (Ho et al. 2019, https://arxiv.org/abs/1902.00275; 8 logistics), logit, variational
dequantization, peak rate 0.005, dropout 0.1 in the conditioners and EMA weights, 90 epochs.

The best digits recipe by validation among the runs of bench/results/digits_search4.md (structure,
epochs, dropout), after digits_search.md (couplings, widths, dequantizer, regularisation: the
mixture couplings ahead of the spline and affine ones), digits_search2.md (8 logistics at rate
0.005) and digits_search3.md; its data -> latent map, what training runs, is in closed form.
Coupling results: bench/results/digits_logistic_mixture.md.
"""

from configs import default


def get_config():
    config = default.get_config()
    config.model.dropout_rate = 0.1
    config.train.epochs = 90
    return config
