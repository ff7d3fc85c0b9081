"""Notebooks use only the public API and are valid Python."""

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
