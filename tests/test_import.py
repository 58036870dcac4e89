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


PUBLIC = """
import sys, warnings
import registry_core
assert "torch" not in sys.modules, "import registry_core imported torch"
missing = [name for name in registry_core.__all__ if not hasattr(registry_core, name)]
assert not missing and len(set(registry_core.__all__)) == len(registry_core.__all__), missing
assert callable(registry_core.convert_from) and registry_core.testing.check_block
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    assert registry_core.convert.convert_from is registry_core.convert_from
assert any("deprecated" in str(w.message) for w in caught)
print("ok")
"""


def test_every_public_name_and_submodule_resolves_after_a_plain_import_and_torch_waits_for_them():
    result = subprocess.run([sys.executable, "-c", PUBLIC], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]
