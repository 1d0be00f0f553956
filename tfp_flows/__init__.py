"""tfp_flows: Real NVP and Glow normalizing flows for TensorFlow Probability.

The public names below load on first use (PEP 562), so `import tfp_flows` does not start
TensorFlow and `train.py` can check its flags and workdir before TensorFlow prints a line.
The subpackages by role, and the import direction: docs/ARCHITECTURE.md.
"""

import importlib
import importlib.abc
import importlib.metadata
import importlib.util
import sys
import warnings

__version__ = importlib.metadata.version('tfp_flows')

# Public name -> the module that defines it (a module's own name: the module itself).
_PUBLIC = {
    'bijectors': 'tfp_flows.bijectors',
    'bits_per_dim': 'tfp_flows.dequantization',
    'conditional_shape_of': 'tfp_flows.bijectors.context',
    'export': 'tfp_flows.export',
    'glow': 'tfp_flows.models',
    'initialize': 'tfp_flows.initialization',
    'networks': 'tfp_flows.networks',
    'real_nvp': 'tfp_flows.models',
    'sample': 'tfp_flows.sampling',
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


# Modules that moved in 0.2 (issue 18), importable from their old place for one release with a
# DeprecationWarning naming the new one.
MOVED = {
    'tfp_flows.baselines': 'tfp_flows.tools.baselines',
    'tfp_flows.callbacks': 'tfp_flows.run.callbacks',
    'tfp_flows.distribute': 'tfp_flows.training.distribute',
    'tfp_flows.experiment': 'tfp_flows.run.experiment',
    'tfp_flows.figures': 'tfp_flows.run.figures',
    'tfp_flows.images': 'tfp_flows.tools.pictures',
    'tfp_flows.latent': 'tfp_flows.tools.latent',
    'tfp_flows.optimizers': 'tfp_flows.training.optimizers',
    'tfp_flows.own_data': 'tfp_flows.data.own',
    'tfp_flows.run_model': 'tfp_flows.run.restore',
    'tfp_flows.trainer': 'tfp_flows.training.trainer',
    'tfp_flows.variational_dequantization': 'tfp_flows.dequantization.variational',
    'tfp_flows.workdir': 'tfp_flows.run.workdir',
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports a moved module's old name as its new module (the same module object)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        new = MOVED[spec.name]
        warnings.warn(
            f'{spec.name} moved to {new}; import it from there (the old name goes in 0.3).',
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(new)

    def exec_module(self, module):
        pass  # The new module ran when it was imported.


sys.meta_path.append(_MovedModules())
