"""Notebooks use only the public API, are valid Python, and run headless (nbclient) with small settings."""

import ast
import json
from pathlib import Path

import pytest

import pixgen

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_uses_only_the_public_api(path: Path) -> None:
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    assert cells
    for cell in cells:
        source = "".join(line for line in cell["source"] if not line.lstrip().startswith("!"))
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "pixgen":
                assert node.attr in pixgen.__all__, f"{path.name}: pixgen.{node.attr} is not public"
            if isinstance(node, ast.ImportFrom) and node.module == "pixgen":
                assert all(alias.name in pixgen.__all__ for alias in node.names)
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pixgen."):
                raise AssertionError(f"{path.name} imports a private module {node.module}")


def _outputs(cell) -> str:
    """Everything a cell showed, as text: streams, errors and the mime types of its displays."""
    parts = []
    for output in cell.get("outputs", []):
        parts += [output.get("text", ""), output.get("ename", ""), " ".join(output.get("data", {}))]
        parts += [str(output.get("data", {}).get("text/html", ""))[:200]]
    return "\n".join(parts)


@pytest.mark.slow  # every cell in a fresh kernel: the shapes demo, resume, a story and a zoom flight with videos
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_headless(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every cell but the real-weight ones (tagged ``real-weights``) runs in a fresh kernel, offline, with the
    small settings the notebook reads from ``PIXGEN_NOTEBOOK_SMOKE``; images and videos are shown."""
    import nbclient
    import nbformat

    monkeypatch.setenv("PIXGEN_NOTEBOOK_SMOKE", "1")
    notebook = nbformat.read(path, as_version=4)
    notebook.cells = [c for c in notebook.cells if "real-weights" not in c.metadata.get("tags", [])]
    nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    shown = "\n".join(_outputs(cell) for cell in notebook.cells if cell.cell_type == "code")
    assert "image/png" in shown and "<video" in shown and "Traceback" not in shown
    assert list((tmp_path / "outputs").rglob("*.mp4"))


def test_a_notebook_without_ipywidgets_gets_a_text_bar(quick: dict, monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """tqdm's notebook bar needs ipywidgets: without it pixgen.run says so once and shows a text bar."""
    import sys

    from pixgen import api

    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import ipywidgets fails, as where it is not installed
    monkeypatch.setattr(api, "_in_notebook", lambda: True)
    api._have_widgets.cache_clear()
    try:
        for _ in range(2):
            result = pixgen.run(**quick, save=False, display_every=0)
            assert result.iterations == quick["iterations"]
    finally:
        api._have_widgets.cache_clear()
    warnings = [r.getMessage() for r in caplog.records if "ipywidgets" in r.getMessage()]
    assert warnings == ["ipywidgets is not installed: a text progress bar instead of the notebook widget "
                        "(pip install 'pixgen[notebook]')"]
