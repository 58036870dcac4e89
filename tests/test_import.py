"""`import registry_core` is light: no plugin, no torchvision, no timm."""

import subprocess
import sys

CHECK = """
import sys
import registry_core
heavy = [m for m in sys.modules if m.split('.')[0] in {'torchvision', 'timm', 'sklearn'} or m.startswith('registry_') and m.split('.')[0] != 'registry_core']
assert not heavy, heavy
names = registry_core.list_models()
assert 'lenet5' in names
still = [m for m in sys.modules if m.split('.')[0] in {'torchvision', 'timm', 'sklearn'}]
assert not still, f'loading plugins imported {still}'
print('ok')
"""


def test_import_loads_no_plugin_and_plugins_load_lazily_without_torchvision_or_timm():
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_plugins_load_once():
    from registry_core.plugins import host as plugins

    assert plugins.default_host() is plugins.default_host()
