"""Build script: the package list and package data are computed from the folder tree, never kept by hand.

Metadata, dependencies and entry points live in setup.cfg. The code lives in four roots: ``pixgen/`` and the
top-level plug-in folders ``drawers/``, ``losses/`` and ``filters/``, which install as ``pixgen.drawers``,
``pixgen.losses`` and ``pixgen.filters``. Every folder under a root that holds Python code (at any depth) is a
package, and every file under a package's ``assets/`` folder is its package data, so a new subpackage or asset
reaches the wheel without editing anything here. tests/test_packaging.py builds the wheel and checks this.
"""

from __future__ import annotations

import os
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent

# Installed package name -> folder (relative to this file). The only hand-kept part: the four roots.
ROOTS = {
    "pixgen": "pixgen",
    "pixgen.drawers": "drawers",
    "pixgen.losses": "losses",
    "pixgen.filters": "filters",
}
ASSETS = "assets"
SKIP_DIRS = {"__pycache__", ASSETS}


def _holds_code(folder: Path) -> bool:
    """True when the folder or any folder below it (outside assets/ and caches) holds a .py file."""
    for _folder, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".")]
        if any(name.endswith(".py") for name in files):
            return True
    return False


def find_packages_under(name: str, folder: Path) -> dict[str, Path]:
    """Every package below ``folder`` (installed as ``name``), as dotted name -> folder."""
    found = {name: folder}
    for child in sorted(folder.iterdir()):
        if not child.is_dir() or child.name in SKIP_DIRS or not child.name.isidentifier():
            continue
        if _holds_code(child):
            found.update(find_packages_under(f"{name}.{child.name}", child))
    return found


def asset_files(folder: Path) -> list[str]:
    """Files under ``folder/assets`` (any depth), relative to ``folder``, in posix form."""
    assets = folder / ASSETS
    if not assets.is_dir():
        return []
    return sorted(
        path.relative_to(folder).as_posix()
        for path in assets.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    )


def packages() -> dict[str, Path]:
    """All packages of the four roots, as dotted name -> absolute folder."""
    found: dict[str, Path] = {}
    for name, folder in ROOTS.items():
        found.update(find_packages_under(name, HERE / folder))
    return found


def main() -> None:
    """Run setuptools with the computed package list, package folders and package data."""
    found = packages()
    data = {name: files for name, folder in found.items() if (files := asset_files(folder))}
    setup(packages=sorted(found), package_dir=dict(ROOTS), package_data=data)


if __name__ == "__main__":
    main()
