"""Training a flow with Keras: `FlowTrainer`, the optimizers, strategies and thread pools."""

from tfp_flows.training.distribute import configure_threads, make_strategy
from tfp_flows.training.optimizers import FusedAdam, FusedAdamax, make_optimizer
from tfp_flows.training.trainer import FlowTrainer

__all__ = [
    'FlowTrainer',
    'FusedAdam',
    'FusedAdamax',
    'configure_threads',
    'make_optimizer',
    'make_strategy',
]
