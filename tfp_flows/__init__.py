"""tfp_flows: Real NVP and Glow normalizing flows for TensorFlow Probability."""

from tfp_flows import bijectors, export, networks
from tfp_flows.bijectors.context import conditional_shape_of
from tfp_flows.dequantization import bits_per_dim, uniform_dequantize
from tfp_flows.initialization import initialize
from tfp_flows.models import glow, real_nvp, sample

__all__ = [
    'bijectors',
    'bits_per_dim',
    'conditional_shape_of',
    'export',
    'glow',
    'initialize',
    'networks',
    'real_nvp',
    'sample',
    'uniform_dequantize',
]
