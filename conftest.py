"""Fixtures of every test, the core's and each family's: each writes only under its own
tmp_path (the weights store lives there too), and no plugin selection or tracing leaks in."""

import sys

import pytest


@pytest.fixture(scope="session")
def _built_index(tmp_path_factory):
    """The index of the installed plugins, built once per session in a fresh process,
    so a test's command-line runs find it as a user's second run would (building it is
    tested in tests/test_manifest.py)."""
    import os
    import subprocess

    home = tmp_path_factory.mktemp("index_home")
    build = "from registry_core.factory import manifest; manifest.current()"
    subprocess.run([sys.executable, "-c", build], env={**os.environ, "REGISTRY_CORE_HOME": str(home)},
                   capture_output=True, check=True, timeout=600)
    return home / "manifests"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch, _built_index):
    """Each test's own home folder, beside its tmp_path (which stays the test's alone)."""
    import shutil

    home = tmp_path_factory.mktemp("registry_core_home")
    shutil.copytree(_built_index, home / "manifests")
    monkeypatch.setenv("REGISTRY_CORE_HOME", str(home))
    monkeypatch.delenv("REGISTRY_CORE_PLUGINS", raising=False)
    monkeypatch.delenv("REGISTRY_CORE_TRACE", raising=False)


@pytest.fixture
def fresh_host(monkeypatch):
    """A new, empty plugin host (core components only) installed as the process default.

    Returns a function ``add(plugin, name)`` that registers a plugin on it and returns
    its record; the real default host is restored after the test."""
    from registry_core.plugins import host as plugins

    host = plugins.PluginHost()
    monkeypatch.setattr(plugins, "_default", host)

    def add(plugin, name="test-plugin"):
        return host.add_plugin(plugin, name)

    add.host = host
    return add


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder on ``sys.path`` to lay temporary distributions into; their modules
    (named ``rc_test_*``) are forgotten afterwards."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    yield site
    for name in [m for m in sys.modules if m.startswith("rc_test_")]:
        del sys.modules[name]


@pytest.fixture
def rediscover(monkeypatch):
    """Forget the loaded plugins and find them again through their entry points, each
    time it is called; the real default host comes back after the test."""
    from registry_core.plugins import host

    def again():
        monkeypatch.setattr(host, "_default", None)
        return host.default_host()

    return again


@pytest.fixture
def one_thread():
    """Small forward passes on 2 shared cores run several times faster on one thread."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
