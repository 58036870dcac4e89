"""Every test writes only under its own tmp_path: the weights store lives there too."""

import pytest


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("REGISTRY_CORE_HOME", str(tmp_path / "registry_core_home"))
    monkeypatch.delenv("REGISTRY_CORE_PLUGINS", raising=False)
    monkeypatch.delenv("REGISTRY_CORE_TRACE", raising=False)
