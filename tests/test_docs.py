"""Every ```python snippet in README.md and docs/ runs as written, and so does every
``$ command`` of the ```console blocks of the pages in ``CONSOLE``.

A page's blocks run in order (like a reader following it: the Python may use what a
command wrote), the snippets in one namespace, inside a temporary working folder with
``REGISTRY_CORE_HOME`` there too, and the Python on one thread, as the pages' commands
run (many threads on a tiny model only contend). The output a page shows after a command must be what
it prints, numbers aside (they depend on the machine), ``...`` standing for any lines.
Every relative link in the docs leads to a file and heading that exist.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CONSOLE = {"training.md", "inference.md"}  # pages whose console commands run too
NOT_RUN = {  # a command holding one of these needs something a test machine lacks
    "--dataset cifar10": "the CIFAR-10 files",
    "/data/imagenet": "ImageNet",
    "data/flowers": "a folder of flower photos and ImageNet weights in the store",
}
BLOCK = re.compile(r"^```(python|console)\n(.*?)^```", re.S | re.M)


def blocks(path: Path) -> list[tuple[str, str]]:
    """``(language, text)`` of the page's python and console blocks, in order."""
    return BLOCK.findall(path.read_text())


def python_snippets(path: Path) -> list[str]:
    return [text for language, text in blocks(path) if language == "python"]


def commands(block: str) -> list[tuple[str, list[str]]]:
    """``(command, lines shown after it)`` for each ``$ `` line of a console block;
    a line ending in a backslash goes on, and ``#`` comment lines are left out."""
    found: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if found and found[-1][0].endswith("\\") and not found[-1][1]:
            found[-1] = (found[-1][0][:-1].rstrip() + " " + line.strip(), [])
        elif line.startswith("$ "):
            found.append((line[2:], []))
        elif found and not line.startswith("#"):
            found[-1][1].append(line)
    return found


def shown_output(shown: list[str]) -> re.Pattern:
    """What a page shows after a command, as a pattern: numbers match any number,
    runs of spaces any spacing, and a line ``...`` any lines."""
    pattern = ""
    for line in shown:
        if line.strip() == "...":
            pattern += r"(?:.*\n)*?"
            continue
        pieces = re.split(r"(\d+(?:[.,]\d+)*)", line.strip())
        body = "".join(r"\d+(?:[.,]\d+)*" if i % 2 else re.sub(r"(\\ )+", r"[ \\t]+", re.escape(p))
                       for i, p in enumerate(pieces))
        pattern += rf"^[ \t]*{body}[ \t]*\n"
    return re.compile(pattern, re.M)


def run_console(block: str, doc: Path, cwd: Path) -> None:
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    for command, shown in commands(block):
        if any(marker in command for marker in NOT_RUN):
            continue
        done = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=600)
        assert done.returncode == 0, f"{doc.name}: `{command}` failed:\n{done.stdout[-3000:]}"
        assert shown_output(shown).search(done.stdout + "\n"), (
            f"{doc.name} shows output that `{command}` does not print:\n" + "\n".join(shown) + f"\n--- printed:\n{done.stdout}")


@pytest.mark.parametrize("doc", [d for d in DOCS if d.exists() and python_snippets(d)], ids=lambda d: d.name)
def test_snippets_run(doc, tmp_path, monkeypatch, one_thread):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REGISTRY_CORE_HOME", str(tmp_path / "home"))
    namespace = {"__name__": "__doc_snippet__"}
    for i, (language, text) in enumerate(blocks(doc)):
        if language == "python":
            exec(compile(text, f"{doc.name} block {i + 1}", "exec"), namespace)
        elif doc.name in CONSOLE:
            run_console(text, doc, tmp_path)


def test_console_blocks_are_read_as_a_reader_reads_them():
    block = "# a comment\n$ echo 1 \\\n    2\nsaid 12 items\n...\n  the end\n$ true\n"
    assert commands(block) == [("echo 1 2", ["said 12 items", "...", "  the end"]), ("true", [])]
    pattern = shown_output(["said 12 items", "...", "  the end"])
    assert pattern.search("noise\nsaid 7  items\nmore\nand more\nthe end\n")
    assert not pattern.search("said seven items\nthe end\n")


def test_every_command_left_out_is_still_on_a_page():
    pages = [ROOT / "docs" / name for name in CONSOLE]
    shown = [c for page in pages for language, text in blocks(page) if language == "console" for c, _ in commands(text)]
    assert all(any(marker in command for command in shown) for marker in NOT_RUN)


def _anchors(path: Path) -> set[str]:
    """GitHub's anchors for a page's headings (code blocks left out)."""
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    titles = re.findall(r"^#+ (.+)$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-") for title in titles}


def test_relative_links_lead_somewhere():
    broken = []
    for doc in DOCS:
        text = re.sub(r"^```.*?^```", "", doc.read_text(), flags=re.S | re.M)
        for target, anchor in re.findall(r"\]\(([^)#\s:]*)(?:#([^)\s]+))?\)", text):
            path = (doc.parent / target).resolve() if target else doc
            if not path.exists() or (anchor and path.suffix == ".md" and anchor not in _anchors(path)):
                broken.append(f"{doc.name}: {target}{'#' + anchor if anchor else ''}")
    assert not broken, broken
