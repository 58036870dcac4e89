"""Every ```python snippet in README.md and docs/ runs as written.

Snippets of one file run in order in one namespace (like a reader pasting them into
one session), inside a temporary working folder.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_snippets(path: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", path.read_text(), re.S | re.M)


@pytest.mark.parametrize("doc", [d for d in DOCS if d.exists() and python_snippets(d)], ids=lambda d: d.name)
def test_snippets_run(doc, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__doc_snippet__"}
    for i, snippet in enumerate(python_snippets(doc)):
        exec(compile(snippet, f"{doc.name} snippet {i + 1}", "exec"), namespace)
