"""The wheel holds exactly the package tree: every module and asset, no tests/scripts/docs, the entry points.

The wheel is built once per session (``pip wheel``, as ``pip install .`` and ``pip install git+URL`` do) from a
copy of the working tree, so the checkout gets no build/ or egg-info leftovers and stale ones cannot leak in.
The expected file list is computed here from the folders, independently of setup.py.
"""

from __future__ import annotations

import configparser
import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
# Source folder -> where its files go in the wheel.
ROOTS = {"pixgen": "pixgen", "drawers": "pixgen/drawers", "losses": "pixgen/losses", "filters": "pixgen/filters"}
IGNORED_DIRS = {".git", "build", "dist", "__pycache__", ".pytest_cache", ".ruff_cache", ".venv", "outputs"}


def walk_files(root: Path) -> list[str]:
    """Files under ``root`` (posix, relative), leaving out build leftovers, caches and VCS folders."""
    names = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in IGNORED_DIRS and not d.endswith(".egg-info")]
        names += [Path(folder, f).relative_to(root).as_posix() for f in files if not f.endswith(".pyc")]
    return sorted(names)


def source_files(root: Path = REPO) -> list[str]:
    """The checkout's files as a fresh clone plus new work would have them (git's view; a plain walk without git)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root, capture_output=True, check=True
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        return walk_files(root)
    return sorted(name for name in out.split("\0") if name and (root / name).is_file())


def wheel_path_of(source: str) -> str | None:
    """Where a source file must land in the wheel, or None when it must not be there."""
    top, _, rest = source.partition("/")
    if top not in ROOTS or not rest:
        return None
    if source.endswith(".py") or "assets" in rest.split("/")[:-1]:
        return f"{ROOTS[top]}/{rest}"
    return None


@pytest.fixture(scope="module")
def source_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A snapshot of the working tree (others may edit it while the wheel builds)."""
    base = tmp_path_factory.mktemp("wheel")
    for name in source_files():
        (base / "src" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, base / "src" / name)
    return base / "src"


@pytest.fixture(scope="module")
def expected(source_copy: Path) -> set[str]:
    """Where the snapshot's modules and assets must land in the wheel."""
    return {path for name in walk_files(source_copy) if (path := wheel_path_of(name))}


@pytest.fixture(scope="module")
def wheel(source_copy: Path) -> Path:
    """The wheel built from the snapshot."""
    base = source_copy.parent
    cmd = [sys.executable, "-m", "pip", "wheel", str(source_copy), "--no-deps", "-q", "-w", str(base / "dist")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"pip wheel failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    (found,) = (base / "dist").glob("pixgen-*.whl")
    return found


@pytest.fixture(scope="module")
def wheel_files(wheel: Path) -> set[str]:
    """Names of the files in the wheel."""
    with zipfile.ZipFile(wheel) as archive:
        return {name for name in archive.namelist() if not name.endswith("/")}


def dist_info(files: set[str]) -> str:
    """The wheel's .dist-info folder name."""
    (folder,) = {name.split("/")[0] for name in files if name.split("/")[0].endswith(".dist-info")}
    return folder


def test_every_module_and_asset_is_in_the_wheel(wheel_files: set[str], expected: set[str]) -> None:
    assert "pixgen/shapes/assets/shapes_vqgan.ckpt" in expected  # the oracle itself sees the assets
    missing = sorted(expected - wheel_files)
    assert not missing, f"files of the package tree missing from the wheel: {missing}"


def test_nothing_unexpected_is_in_the_wheel(wheel_files: set[str], expected: set[str]) -> None:
    info = dist_info(wheel_files)
    extra = sorted(name for name in wheel_files - expected if not name.startswith(f"{info}/"))
    assert not extra, f"the wheel holds files outside the package tree: {extra}"
    tops = {name.split("/")[0] for name in wheel_files}
    assert tops == {"pixgen", info}, f"unexpected top-level entries in the wheel: {sorted(tops)}"


def test_package_folders_hold_only_modules_and_assets() -> None:
    """A data file outside an assets/ folder would silently miss the wheel: keep data under assets/."""
    strays = [name for name in source_files() if name.split("/")[0] in ROOTS and wheel_path_of(name) is None]
    assert not strays, f"move these data files under an assets/ folder (only those reach the wheel): {strays}"


def _entry_points(text: str) -> dict[str, dict[str, str]]:
    """Entry point groups of an ini text (setup.cfg's section body or entry_points.txt), name -> target."""
    parser = configparser.ConfigParser()
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # entry point names keep their case
    parser.read_string(text)
    return {group: dict(parser[group]) for group in parser.sections()}


def _setup_cfg_entry_points() -> dict[str, dict[str, str]]:
    """setup.cfg's [options.entry_points], as group -> {name: target}."""
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    groups = {}
    for group, body in parser["options.entry_points"].items():
        pairs = (line.split("=", 1) for line in body.splitlines() if "=" in line)
        groups[group] = {name.strip(): target.strip() for name, target in pairs}
    return groups


def test_wheel_entry_points_match_setup_cfg(wheel: Path, wheel_files: set[str]) -> None:
    with zipfile.ZipFile(wheel) as archive:
        shipped = _entry_points(archive.read(f"{dist_info(wheel_files)}/entry_points.txt").decode())
    declared = _setup_cfg_entry_points()
    assert sorted(shipped) == sorted(declared)
    assert shipped == declared
    assert shipped["console_scripts"]["pixgen"] == "pixgen.cli:main"


def test_every_entry_point_target_module_is_in_the_wheel(wheel_files: set[str]) -> None:
    targets = {target.split(":")[0] for group in _setup_cfg_entry_points().values() for target in group.values()}
    shipped = {name.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for name in wheel_files}
    missing = sorted(targets - shipped)
    assert not missing, f"setup.cfg's entry points name modules the wheel lacks: {missing}"


def test_the_wheel_imports_from_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    """Every module of the unpacked wheel imports from a folder outside the checkout."""
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path / "site")
        modules = sorted(
            name[:-3].replace("/", ".").removesuffix(".__init__")
            for name in archive.namelist()
            if name.endswith(".py") and not name.endswith("__main__.py")  # __main__ runs the CLI
        )
    code = (
        "import importlib, sys\n"
        f"sys.path.insert(0, {str(tmp_path / 'site')!r})\n"
        f"for name in {modules!r}:\n"
        "    module = importlib.import_module(name)\n"
        f"    assert module.__file__.startswith({str(tmp_path / 'site')!r}), (name, module.__file__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def _load_setup_py() -> ModuleType:
    """setup.py as a module (its setup() call runs only as a script)."""
    spec = importlib.util.spec_from_file_location("pixgen_setup_py", REPO / "setup.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FAKE_TREE = (
    "__init__.py",
    "wing/__init__.py",
    "wing/deep/x.py",
    "loose/y.py",
    "assets/a.bin",
    "wing/assets/sub/b.json",
    "notes/readme.txt",
    "wing/__pycache__/z.py",
)


def test_setup_py_finds_new_subpackages_and_nested_assets(tmp_path: Path) -> None:
    """A new subpackage (with or without __init__.py) and assets at any depth need no edit of setup.py."""
    setup_py = _load_setup_py()
    for name in FAKE_TREE:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    found = setup_py.find_packages_under("pkg", tmp_path)
    assert sorted(found) == ["pkg", "pkg.loose", "pkg.wing", "pkg.wing.deep"]
    assert setup_py.asset_files(tmp_path) == ["assets/a.bin"]
    assert setup_py.asset_files(tmp_path / "wing") == ["assets/sub/b.json"]


def test_setup_py_roots_match_the_layout() -> None:
    assert _load_setup_py().ROOTS == {target.replace("/", "."): folder for folder, target in ROOTS.items()}
    for name in ("drawers", "losses", "filters"):
        assert not (REPO / "pixgen" / name).exists(), f"pixgen/{name} would clash with the top-level {name}/ folder"
