"""README.md runs as written: at most 200 lines, and every command in it is run by this test or by CI.

- Shell commands sit in ```bash blocks, one per line. ``pixgen ...`` lines run here, in order within their block,
  through click's ``CliRunner`` (in-process, so a model loads once for all of them). The other lines must be keys
  of ``RUN_BY_CI`` (the installs, ``python -m pytest``, ``ruff check .``), and ``.ci/run`` must hold the text
  that runs each (``pip install .`` is CI's ``pip wheel .`` and the install of that wheel in a fresh venv); CI
  also runs the offline quickstart (the first ```bash block after ``<!-- quickstart -->``) from that wheel.
- For speed, ``pixgen run`` and ``pixgen animate`` lines get ``--iterations 1 --cutn 1`` appended (one step runs
  the whole path; an animation also ``--frames 2 --steps-per-frame 1``), and ``--size 64x64`` unless they use a
  preset (a repeated option's last value wins).
- Nothing downloads here (the conftest sets ``PIXGEN_OFFLINE=1`` and an empty ``PIXGEN_CACHE``), so what the
  README downloads is replaced: the default CLIP, OpenAI's ViT-B-32, by the same architecture with random
  weights, ``--clip ViT-B-32:random``, on every ``pixgen run`` line that names no CLIP and no preset (and
  ``ViT-B-32:openai`` by ``ViT-B-32:random`` where it is named); a named VQGAN (``VQGANS``) by a tiny
  taming-format VQGAN with random weights, written where ``pixgen models path NAME`` says its files go, so that
  ``pixgen models download NAME`` finds and checks it and ``--drawer vqgan`` loads it.
- ```python blocks run in order in one namespace, with the small settings of ``PYTHON_SUBSTITUTIONS`` (the same
  CLIP substitution; each pattern must still occur in the README).
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from vqgan_fixtures import write_tiny_vqgan

from pixgen.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MAX_LINES = 200
#: README command -> the text in .ci/run that runs it ("python -m pip" is read as "pip")
RUN_BY_CI = {"pip install .": "pip wheel .", 'pip install -e ".[test]"': 'pip install -e ".[test]"',
             "python -m pytest": "python -m pytest", "ruff check .": "ruff check ."}
VQGANS = ("imagenet_f16_16384",)  # the VQGANs the README uses (--drawer vqgan's default among them)
RANDOM_CLIP = "ViT-B-32:random"
FAST = ["--iterations", "1", "--cutn", "1"]
PYTHON_SUBSTITUTIONS = {
    'preset="shapes", seed=0)': 'preset="shapes", seed=0, iterations=1)',
    "iterations=100": f'iterations=1, cutn=1, clip=["{RANDOM_CLIP}"]',
    'size="128x128"': 'size="64x64"',
}
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)


def blocks(language: str) -> list[str]:
    """The bodies of the README's fenced blocks of ``language``, in order."""
    return [body for lang, body in FENCE.findall(README.read_text(encoding="utf-8")) if lang == language]


def commands(block: str) -> list[str]:
    """The commands of a ```bash block: one per non-empty line."""
    return [line.strip() for line in block.splitlines() if line.strip()]


BASH = blocks("bash")
PIXGEN_BLOCKS = [b for b in BASH if any(c.startswith("pixgen ") for c in commands(b))]


def test_readme_is_short_and_its_fences_are_known() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_LINES
    assert {lang for lang, _ in FENCE.findall(text)} <= {"bash", "python", "ini"}
    for command in (c for block in BASH for c in commands(block)):
        assert not command.endswith("\\") and not command.startswith("#"), command


def test_entry_point_examples_name_real_groups() -> None:
    """The ```ini blocks are setup.cfg entry points: each group is one that a pixgen registry reads."""
    import configparser

    from pixgen import registry

    groups = {reg.group for reg in vars(registry).values() if isinstance(reg, registry.Registry)}
    for block in blocks("ini"):
        parser = configparser.ConfigParser()
        parser.read_string(block)
        entries = parser["options.entry_points"]
        assert entries and set(entries) <= groups, f"unknown entry-point groups: {set(entries) - groups}"
        for group in entries:
            assert all(re.fullmatch(r"\w+ = [\w.]+:\w+", line.strip())
                       for line in entries[group].strip().splitlines())


def test_every_command_is_run_here_or_by_ci() -> None:
    others = {c for block in BASH for c in commands(block) if not c.startswith("pixgen ")}
    assert others <= set(RUN_BY_CI), f"commands neither run by this test nor by CI: {others - set(RUN_BY_CI)}"
    ci = _normalized((ROOT / ".ci" / "run").read_text(encoding="utf-8"))
    for command in others:
        assert _normalized(RUN_BY_CI[command]) in ci, f".ci/run no longer runs {command!r}"


def test_quickstart_is_the_offline_demo() -> None:
    text = README.read_text(encoding="utf-8")
    assert "\n<!-- quickstart -->\n" in text
    quickstart = blocks_after(text, "<!-- quickstart -->")
    assert quickstart and quickstart[0].startswith("pixgen run --preset shapes ")


def test_inline_commands_and_links_are_real() -> None:
    text = FENCE.sub("", README.read_text(encoding="utf-8"))
    run_here = [c for block in BASH for c in commands(block)]
    for span in re.findall(r"`([^`\n]+)`", text):
        if span.startswith("pixgen "):
            assert any(c.startswith(span) for c in run_here), f"{span!r} is not in a ```bash block"
    for target in re.findall(r"\]\(([^)#]+)\)|src=\"([^\"]+)\"", text):
        path = next(t for t in target if t)
        assert (ROOT / path).exists(), f"README links to {path}, which does not exist"


@pytest.mark.parametrize("block", PIXGEN_BLOCKS, ids=[commands(b)[0][:40] for b in PIXGEN_BLOCKS])
def test_bash_block_runs(block: str, tiny_vqgan: tuple[Path, Path]) -> None:
    runner = CliRunner()
    place_vqgans(runner, tiny_vqgan)
    for command in commands(block):
        if not command.startswith("pixgen "):
            continue
        before = set(Path.cwd().rglob("output.png"))
        result = runner.invoke(main, cli_args(command), catch_exceptions=False)
        assert result.exit_code == 0, f"{command}\n{result.output}"
        if command.startswith("pixgen run") and "--help" not in command:
            assert set(Path.cwd().rglob("output.png")) - before, f"{command} wrote no output.png"


def test_python_blocks_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from pixgen.registry import LOSSES

    monkeypatch.setattr(LOSSES, "entries", dict(LOSSES.entries))  # the README registers a loss
    text = README.read_text(encoding="utf-8")
    found = {pattern: 0 for pattern in PYTHON_SUBSTITUTIONS}
    namespace: dict = {"__name__": "readme"}
    for match in (m for m in FENCE.finditer(text) if m.group(1) == "python"):
        code = "\n" * text.count("\n", 0, match.start(2)) + match.group(2)  # tracebacks show README lines
        for pattern, replacement in PYTHON_SUBSTITUTIONS.items():
            found[pattern] += code.count(pattern)
            code = code.replace(pattern, replacement)
        assert "openai" not in code
        exec(compile(code, str(README), "exec", dont_inherit=True), namespace)
    assert all(found.values()), f"README no longer has {[p for p, n in found.items() if not n]}: update them"
    assert Path("red_circle.png").is_file() and Path("lighthouse.png").is_file()


def cli_args(command: str) -> list[str]:
    """The arguments after ``pixgen``, with the downloads replaced and the run shortened (see the docstring)."""
    args = shlex.split(command)[1:]
    if args[0] not in ("run", "animate") or "--help" in args:
        return args
    args = [RANDOM_CLIP if a == "ViT-B-32:openai" else a for a in args]
    if "--clip" not in args and "--preset" not in args:
        args += ["--clip", RANDOM_CLIP]
    frames = ["--frames", "2", "--steps-per-frame", "1"] if args[0] == "animate" else []  # two frames: the warp too
    return args + FAST + frames + ([] if "--preset" in args else ["--size", "64x64"])


def place_vqgans(runner: CliRunner, files: tuple[Path, Path]) -> None:
    """Copy the tiny VQGAN to where ``pixgen models path NAME`` says each named VQGAN's files go."""
    for name in VQGANS:
        result = runner.invoke(main, ["models", "path", name])
        assert result.exit_code == 0, result.output
        for line in result.stdout.splitlines():
            dest = Path(line.strip())
            source = next(f for f in files if f.suffix == dest.suffix)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)


def blocks_after(text: str, marker: str) -> list[str]:
    """The commands of the first ```bash block after ``marker``."""
    body = next(b for lang, b in FENCE.findall(text.split(marker, 1)[1]) if lang == "bash")
    return commands(body)


def _normalized(text: str) -> str:
    return re.sub(r"\bpython -m pip\b", "pip", text)


@pytest.fixture(scope="module")
def tiny_vqgan(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(model.yaml, last.ckpt) of a tiny f16 VQGAN in taming's format, random weights."""
    return write_tiny_vqgan(tmp_path_factory.mktemp("readme_vqgan"), kind="vq")
