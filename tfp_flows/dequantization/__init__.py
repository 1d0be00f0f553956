"""Discrete images <-> densities: dequantization, and bits/dim bounds and estimates.

`uniform`: checking pixels and uniform dequantization; `likelihood`: bits/dim, the one-sample
bound and the importance-weighted estimate; `variational`: the learned noise q(u | k).

A flow is a density p on continuous values. Images are discrete: each value is one of B =
`num_bins` integers k in {0, ..., B - 1}. Dequantization maps an image k [H, W, C] (D = H W C
values) to continuous data in [0, 1)^D,

    x = (k + u) / B,   u in [0, 1)^D,

and the discrete model is the mass p puts on the cell of k, P(k) = integral of p(x) over the
cell = integral over u of p((k + u) / B) B^-D du. For any density q(u | k) on [0, 1)^D, by
Jensen's inequality (Theis et al. 2016, https://arxiv.org/abs/1511.01844, for uniform q; Ho et
al. 2019, Flow++, eq. 9, https://arxiv.org/abs/1902.00275, for learned q):

    log P(k) >= E_{u ~ q}[log p(x) - log q(u | k)] - D log B.

Bits/dim on the discrete data is -log P(k) / (D log 2) (a code length); its upper bound from
one draw u ~ q is

    bits/dim = (-log p(x) + log q(u | k) + D log B) / (D log 2)       (`dequantized_bits_per_dim`)

which training minimises and evaluation reports, with q uniform (log q = 0, `uniform_dequantize`,
`dequantizer=None`) or learned (`tfp_flows.dequantization.variational.VariationalDequantizer`).
With S draws u_s ~ q, the importance-weighted estimate (Burda et al. 2016, IWAE,
https://arxiv.org/abs/1509.00519; the figure Flow++ reports)

    log P(k) ~ logsumexp_s [log p(x_s) - log q(u_s | k)] - log S - D log B

is a lower bound in expectation that tightens as S grows and converges to log P(k)
(`importance_weighted_log_likelihood`, `importance_weighted_bits_per_dim`). S = 1 is the
one-sample bound. `log p(x)` is the flow's `log_prob` on x in [0, 1)^D: every preprocessing
bijector inside the flow (logit, centring) is already part of that log-density.
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
