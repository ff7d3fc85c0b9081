"""The layout rules of DESIGN.md ("Core and wings"), checked on the code itself and on real runs."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: the core: folder in the checkout -> the package it installs as
CORE = {"pixgen": "pixgen", "drawers": "pixgen.drawers", "losses": "pixgen.losses", "filters": "pixgen.filters"}


def core_modules() -> dict[str, Path]:
    """Every core module by its installed name (the wings under pixgen/ are not the core)."""
    out = {}
    for folder, package in CORE.items():
        for path in sorted((ROOT / folder).glob("*.py")):
            out[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return out


def imports_of(path: Path, top_level_only: bool) -> set[str]:
    """The modules ``path`` imports (``from a.b import c`` gives ``a.b`` and ``a.b.c``), at module level only if
    asked (an import inside a function is lazy: it runs when that function is called)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_core_never_imports_or_names_a_wing() -> None:
    for name, path in core_modules().items():
        assert not any(m.startswith("pixgen.shapes") for m in imports_of(path, top_level_only=False)), name
        assert "pixgen.shapes" not in path.read_text(), f"{name} names the shapes wing"


def test_the_core_has_no_import_cycles() -> None:
    modules = core_modules()
    graph = {name: {m for m in imports_of(path, top_level_only=True) if m in modules and m != name}
             for name, path in modules.items()}
    done: set[str] = set()

    def visit(name: str, trail: tuple[str, ...]) -> None:
        assert name not in trail, "import cycle: " + " -> ".join((*trail[trail.index(name):], name))
        if name in done:
            return
        for nxt in sorted(graph[name]):
            visit(nxt, (*trail, name))
        done.add(name)

    for name in sorted(graph):
        visit(name, ())


def run_and_list_modules(code: str, tmp_path: Path) -> list[str]:
    """Run ``code`` in a fresh interpreter (so ``sys.modules`` starts empty) and return the pixgen modules it
    imported, in the order printed by the code's last line."""
    script = code + "\nimport sys, json\nprint(json.dumps(sorted(m for m in sys.modules if m.startswith('pixgen'))))"
    env = {**os.environ, "PIXGEN_CACHE": str(tmp_path / "cache"), "PIXGEN_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, env=env,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_plain_run_loads_no_wing_module(tmp_path: Path) -> None:
    """ViT-B-32 (random weights, the real architecture) and two steps through the public API."""
    modules = run_and_list_modules(
        "import pixgen\n"
        "result = pixgen.run('a red circle', clip=['ViT-B-32:random'], size='32x32', iterations=2, cutn=2,\n"
        "                    device='cpu', seed=0, save=False, progress=False)\n"
        "assert len(result.losses) == 2", tmp_path)
    assert "pixgen.engine" in modules and "pixgen.perceptors" in modules  # the run did go through the core
    assert [m for m in modules if m.startswith("pixgen.shapes")] == []


def test_a_shapes_run_never_imports_training_code(tmp_path: Path) -> None:
    modules = run_and_list_modules(
        "import pixgen\n"
        "pixgen.run('a red circle on a blue background', preset='shapes', iterations=2, seed=0, save=False,\n"
        "           progress=False)", tmp_path)
    assert "pixgen.shapes.losses.layout" in modules and "pixgen.shapes.prior" in modules
    assert [m for m in modules if m.startswith("pixgen.shapes.train")] == []
