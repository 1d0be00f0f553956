"""Flow steps as `tfp.bijectors.Bijector`s: forward maps latent to data."""

from tfp_flows.bijectors.actnorm import ActNorm
from tfp_flows.bijectors.base import FlowBijector
from tfp_flows.bijectors.chain import Chain
from tfp_flows.bijectors.coupling import AdditiveCoupling, AffineCoupling, SplineCoupling
from tfp_flows.bijectors.invertible_conv import InvertibleConv1x1, LUInvertibleConv1x1
from tfp_flows.bijectors.logistic_mixture import LogisticMixtureCoupling
from tfp_flows.bijectors.loop import Loop
from tfp_flows.bijectors.multiscale import FactorOut
from tfp_flows.bijectors.preprocessing import Centre, LogitTransform
from tfp_flows.bijectors.prior import LearnedPrior
from tfp_flows.bijectors.squeeze import Squeeze

__all__ = [
    'ActNorm',
    'AdditiveCoupling',
    'AffineCoupling',
    'Centre',
    'Chain',
    'FactorOut',
    'FlowBijector',
    'InvertibleConv1x1',
    'LUInvertibleConv1x1',
    'LearnedPrior',
    'LogisticMixtureCoupling',
    'LogitTransform',
    'Loop',
    'SplineCoupling',
    'Squeeze',
]
