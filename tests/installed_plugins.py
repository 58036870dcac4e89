"""Install a plugin folder the way a user would, into a temporary site folder, and run
Python with that folder on ``PYTHONPATH``: the plugin's entry point is then found
exactly as after ``pip install``, and the test venv itself is never changed."""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

PIP = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index", "--no-deps", "--no-build-isolation"]


def copy_tree(source: Path, tmp: Path) -> Path:
    """A clean copy of ``source`` under ``tmp``: building writes into the tree it builds."""
    tree = tmp / "src" / source.name
    shutil.copytree(source, tree, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".pytest_cache"))
    return tree


def install(tree: Path, site: Path) -> Path:
    """Build ``tree`` and install it into the folder ``site``, offline; returns ``site``."""
    done = subprocess.run([*PIP, "--target", str(site), str(tree)], capture_output=True, text=True)
    assert done.returncode == 0, f"pip install {tree.name} failed:\n{done.stdout}\n{done.stderr}"
    return site


def run_python(*args: str, site: Path | None = None, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    """``python *args`` in a fresh process, with ``site`` (if given) on the import path."""
    environment = {**os.environ, **env}
    if site is not None:
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), environment.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=environment, cwd=cwd, timeout=900)


def write_distribution(site: Path, dist: str, module: str, body: str, entry_name: str, version: str = "1.2.3") -> None:
    """A minimal installed distribution in ``site``: one module and its ``.dist-info``
    advertising it in the ``registry_core`` entry-point group, as pip leaves it."""
    (site / f"{module}.py").write_text(textwrap.dedent(body))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[registry_core]\n{entry_name} = {module}\n")
