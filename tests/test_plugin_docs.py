"""docs/plugins.md cannot drift: its hook reference is generated from hookspecs.py, its
tutorial files are what ``registry-core new-plugin`` writes, and the tutorial, followed
from the page alone, installs and works.

Run ``python tests/test_plugin_docs.py`` to regenerate the hook reference after
changing ``hookspecs.py``.
"""

import inspect
import re
from pathlib import Path

import pytest
from installed_plugins import install, run_python

from registry_core import list_models, testing
from registry_core.plugins import hookspecs
from registry_core.scaffold import PluginNames, render

DOC = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"
BEGIN = "<!-- hook reference: generated from registry_core/plugins/hookspecs.py by tests/test_plugin_docs.py -->\n"
END = "<!-- end of hook reference -->\n"
TUTORIAL_NAME = "registry-cool-block"
TUTORIAL_FILE = re.compile(r"^File `registry-cool-block/([^`]+)`:\n\n```\w*\n(.*?)^```\n", re.S | re.M)


def hooks() -> list[tuple[str, object]]:
    """Every hook in hookspecs.py, in the order it is defined."""
    marker = f"{hookspecs.PROJECT}_spec"
    return [(name, fn) for name, fn in vars(hookspecs).items() if callable(fn) and hasattr(fn, marker)]


def signature(fn) -> str:
    """``inspect.signature`` with types named as plugin authors import them (no module paths)."""
    return re.sub(r"\b(?:[a-z_]+\.)+([A-Za-z_]+)", r"\1", f"{fn.__name__}{inspect.signature(fn)}")


def hook_reference() -> str:
    sections = [inspect.getdoc(hookspecs) + "\n"]
    sections += [f"### `{signature(fn)}`\n\n{inspect.getdoc(fn)}\n" for _, fn in hooks()]
    return BEGIN + "\n" + "\n".join(sections) + "\n" + END


def documented_reference(text: str) -> str:
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[start:end]


def test_every_hook_appears_with_its_signature():
    text = DOC.read_text()
    missing = [signature(fn) for _, fn in hooks() if signature(fn) not in text]
    assert not missing, f"docs/plugins.md does not document {missing}"


def test_every_hook_has_a_docstring_and_a_test_that_implements_it():
    """House rule 1: a hook without a docstring, or that no test implements (so that
    the core calls it), fails here."""
    root = Path(__file__).resolve().parent.parent
    tests = "\n".join(path.read_text() for folder in (root / "tests", *root.glob("plugins/*/tests")) for path in folder.glob("*.py"))
    undocumented = [name for name, fn in hooks() if not (inspect.getdoc(fn) or "").strip()]
    untested = [name for name, _ in hooks() if not re.search(rf"^\s*def {name}\(", tests, re.M)]
    assert hooks() and not undocumented and not untested, f"no docstring: {undocumented}; no test: {untested}"


def test_every_hook_is_annotated():
    unannotated = [name for name, fn in hooks()
                   if any(p.annotation is inspect.Parameter.empty for p in inspect.signature(fn).parameters.values())
                   or inspect.signature(fn).return_annotation is inspect.Signature.empty]
    assert not unannotated


def test_hook_reference_matches_hookspecs():
    assert documented_reference(DOC.read_text()) == hook_reference(), (
        "docs/plugins.md's hook reference is out of date; run `python tests/test_plugin_docs.py`"
    )


def test_every_conformance_check_is_documented():
    text = DOC.read_text()
    public = [n for n, f in vars(testing).items() if inspect.isfunction(f) and f.__module__.startswith(testing.__name__) and not n.startswith("_")]
    assert public and [n for n in public if f"testing.{n}(" not in text] == []


def tutorial_files() -> dict[str, str]:
    return dict(TUTORIAL_FILE.findall(DOC.read_text()))


def test_tutorial_shows_exactly_what_new_plugin_writes():
    written = render(PluginNames.from_name(TUTORIAL_NAME))
    shown = tutorial_files()
    assert shown == {path: text for path, text in written.items() if path in shown}
    assert set(written) - set(shown) == {"README.md"}


@pytest.mark.skipif("resnet18" not in list_models(), reason="the tutorial uses resnet18 from registry-resnet")
def test_tutorial_followed_from_the_page_works(tmp_path):
    tree = tmp_path / TUTORIAL_NAME
    for path, text in tutorial_files().items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_text(text)
    session = re.search(r"^```pycon\n(.*?)^```\n", DOC.read_text(), re.S | re.M).group(1)
    (tmp_path / "session.txt").write_text(session)
    site = install(tree, tmp_path / "site")
    done = run_python("-m", "doctest", str(tmp_path / "session.txt"), site=site, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


if __name__ == "__main__":
    text = DOC.read_text()
    DOC.write_text(text.replace(documented_reference(text), hook_reference()))
    print(f"updated the hook reference in {DOC}")
