"""tfp_flows/__init__.py: public names load on first use, `__version__` is setup.cfg's."""

import configparser
import importlib.metadata
import os
import subprocess
import sys

import tfp_flows
from tfp_flows import dequantization, initialization, models
from tfp_flows.bijectors import context
from tfp_flows.run import restore

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_public_name_resolves_to_its_definition():
    expected = {
        'bits_per_dim': dequantization.bits_per_dim,
        'conditional_shape_of': context.conditional_shape_of,
        'glow': models.glow,
        'initialize': initialization.initialize,
        'real_nvp': models.real_nvp,
        'sample': models.sample,
        'uniform_dequantize': dequantization.uniform_dequantize,
    }
    for name in tfp_flows.__all__:
        value = getattr(tfp_flows, name)
        if name in expected:
            assert value is expected[name], name
        else:
            assert value.__name__ == f'tfp_flows.{name}', name  # A module.
    assert set(tfp_flows.__all__) <= set(dir(tfp_flows))
    assert restore.restore_flow  # The README's call.


def test_import_starts_no_tensorflow_and_the_version_is_setup_cfgs():
    code = (
        'import sys, tfp_flows; assert "tensorflow" not in sys.modules, "imported TF"; '
        'print(tfp_flows.__version__); tfp_flows.no_such_name'
    )
    result = subprocess.run(
        [sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert "module 'tfp_flows' has no attribute 'no_such_name'" in result.stderr
    parser = configparser.ConfigParser()
    parser.read(os.path.join(ROOT, 'setup.cfg'))
    assert result.stdout.strip() == parser['metadata']['version'] == tfp_flows.__version__
    assert importlib.metadata.version('tfp_flows') == tfp_flows.__version__  # Installed alike.
