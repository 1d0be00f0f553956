"""tfp_flows: Real NVP and Glow normalizing flows for TensorFlow Probability.

The public names below load on first use (PEP 562), so `import tfp_flows` does not start
TensorFlow: `tfp_flows.glow` imports the models, `tfp_flows.experiment` the training run, and
`train.py` can check its flags and workdir before TensorFlow prints a line.
"""

import configparser
import importlib
import importlib.metadata
import os


def _version():
    """The version in setup.cfg beside a source checkout, else the installed package's."""
    setup_cfg = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'setup.cfg')
    parser = configparser.ConfigParser()
    if parser.read(setup_cfg) and parser.get('metadata', 'name', fallback=None) == 'tfp_flows':
        return parser['metadata']['version']
    try:
        return importlib.metadata.version('tfp_flows')
    except importlib.metadata.PackageNotFoundError:
        return '0+unknown'


__version__ = _version()

# Public name -> the module that defines it (a module's own name: the module itself).
_PUBLIC = {
    'bijectors': 'tfp_flows.bijectors',
    'bits_per_dim': 'tfp_flows.dequantization',
    'conditional_shape_of': 'tfp_flows.bijectors.context',
    'experiment': 'tfp_flows.experiment',
    'export': 'tfp_flows.export',
    'glow': 'tfp_flows.models',
    'initialize': 'tfp_flows.initialization',
    'networks': 'tfp_flows.networks',
    'real_nvp': 'tfp_flows.models',
    'sample': 'tfp_flows.models',
    'uniform_dequantize': 'tfp_flows.dequantization',
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    module = importlib.import_module(_PUBLIC[name])
    value = module if module.__name__ == f'{__name__}.{name}' else getattr(module, name)
    globals()[name] = value  # Found directly from now on.
    return value


def __dir__():
    return sorted([*globals(), *_PUBLIC])
