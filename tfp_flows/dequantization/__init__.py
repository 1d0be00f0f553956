"""Discrete images <-> densities: dequantization, and bits/dim bounds and estimates.

`uniform`: checking pixels and uniform dequantization; `likelihood`: bits/dim, the one-sample
bound and the importance-weighted estimate; `variational`: the learned noise q(u | k).

A flow is a density p on continuous values; an image k [H, W, C] (D = H W C values, each one
of B = `num_bins` integers) is dequantized to x = (k + u) / B in [0, 1)^D, u in [0, 1)^D, and
the discrete model is the mass p puts on the cell of k, P(k) = integral over u of
p((k + u) / B) B^-D du. For any density q(u | k) on [0, 1)^D, by Jensen's inequality (Theis
et al. 2016, https://arxiv.org/abs/1511.01844, for uniform q; Ho et al. 2019, Flow++, eq. 9,
https://arxiv.org/abs/1902.00275, for learned q):

    log P(k) >= E_{u ~ q}[log p(x) - log q(u | k)] - D log B.

Bits/dim is -log P(k) / (D log 2); its upper bound from one draw u ~ q is

    bits/dim = (-log p(x) + log q(u | k) + D log B) / (D log 2)       (`dequantized_bits_per_dim`)

which training minimises, with q uniform (log q = 0, `uniform_dequantize`) or learned
(`variational.VariationalDequantizer`). With S draws u_s ~ q, the importance-weighted estimate
(Burda et al. 2016, IWAE, https://arxiv.org/abs/1509.00519; the figure Flow++ reports)

    log P(k) ~ logsumexp_s [log p(x_s) - log q(u_s | k)] - log S - D log B

is a lower bound in expectation that tightens towards log P(k) as S grows
(`importance_weighted_log_likelihood`); S = 1 is the one-sample bound. `log p(x)` is the
flow's `log_prob` on x in [0, 1)^D, its preprocessing (logit, centring) included.
"""

from tfp_flows.dequantization.likelihood import (
    bits_per_dim,
    check_dequantizer,
    dequantize,
    dequantized_bits_per_dim,
    importance_weighted_bits_per_dim,
    importance_weighted_log_likelihood,
)
from tfp_flows.dequantization.uniform import (
    below_one,
    check_num_bins,
    check_pixels,
    dequantize_with,
    uniform_dequantize,
)

__all__ = [
    'below_one',
    'bits_per_dim',
    'check_dequantizer',
    'check_num_bins',
    'check_pixels',
    'dequantize',
    'dequantize_with',
    'dequantized_bits_per_dim',
    'importance_weighted_bits_per_dim',
    'importance_weighted_log_likelihood',
    'uniform_dequantize',
]
