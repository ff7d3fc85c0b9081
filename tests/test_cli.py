import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from pixgen.cli import main
from pixgen.io import read_png_metadata


def _args(quick: dict) -> list[str]:
    return ["run", "--prompt", quick["prompt"], "--clip", quick["clip"][0], "--size", quick["size"],
            "--iterations", "4", "--cutn", "4", "--seed", "7", "--device", "cpu"]


def test_run_end_to_end(quick: dict, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(main, [*_args(quick), "--out", str(out), "--pixel-size", "4"])
    assert result.exit_code == 0, result.output
    assert "Done: 4 iterations" in result.output and str(out / "output.png") in result.output
    meta = read_png_metadata(out / "output.png")
    assert meta["pixgen_pixel_size"] == "4" and meta["pixgen_seed_used"] == "7"
    again = CliRunner().invoke(main, ["run", "--config", str(out / "settings.yaml"), "--out", str(tmp_path / "b")])
    assert again.exit_code == 0, again.output
    first, second = (np.asarray(Image.open(d / "output.png")) for d in (out, tmp_path / "b"))
    assert np.array_equal(first, second)


def test_flags_override_config(quick: dict, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"prompt: a cat\nclip: ['{quick['clip'][0]}']\nsize: 24x24\niterations: 50\ndevice: cpu\n")
    result = CliRunner().invoke(main, ["run", "--config", str(config), "--iterations", "2", "--cutn", "2",
                                       "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "Done: 2 iterations" in result.output


BAD_INPUTS = [
    (["--prompt", ""], "empty prompt"),
    (["--prompt", "a cat:nan"], "finite"),
    (["--prompt", "a | | b"], "empty prompt"),
    (["--size", "0x10"], "size"),
    (["--size", "-3x10"], "size"),
    (["--size", "big"], "WIDTHxHEIGHT"),
    (["--drawer", "crayon"], "unknown drawer 'crayon'; choose one of"),
    (["--pixel-sise", "4"], "no option 'pixel_sise'"),
    (["--init-image", "no/such/file.png"], "does not exist"),
    (["--config", "no/such/config.yaml"], "config file"),
    (["--init-noise", "plasma"], "unknown init noise"),
    (["--clip", "NoSuchModel-B-99"], "unknown CLIP model"),
    (["--clip", "ViT-B-32:no_such_tag"], "unknown pretrained tag"),
    (["--clip", "ViT-B-32:missing/weights.pt"], "does not exist"),
]


@pytest.mark.parametrize(("extra", "message"), BAD_INPUTS)
def test_bad_input_is_one_clear_line(quick: dict, tmp_path: Path, extra: list[str], message: str) -> None:
    out = tmp_path / "never"
    result = CliRunner().invoke(main, [*_args(quick), "--out", str(out), *extra])
    assert result.exit_code != 0
    assert message in result.output, result.output
    assert "Traceback" not in result.output
    assert result.output.strip().count("\n") == 0, result.output  # one line
    assert not out.exists()  # nothing half-written


def test_unreadable_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("iterations: [1,\n")
    result = CliRunner().invoke(main, ["run", "--config", str(bad)])
    assert result.exit_code != 0 and "not valid YAML" in result.output and "Traceback" not in result.output


def test_missing_model_offline_is_immediate_and_clear(quick: dict, tmp_path: Path) -> None:
    args = [*_args(quick), "--out", str(tmp_path / "o")]
    args[args.index("--clip") + 1] = "ViT-B-32:openai"
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert "ViT-B-32:openai is not in the cache" in result.output and "--clip" in result.output
    assert str(tmp_path / "cache") in result.output
    assert not (tmp_path / "o").exists()


def test_debug_shows_traceback(quick: dict) -> None:
    result = CliRunner().invoke(main, [*_args(quick), "--size", "0x0", "--debug"])
    assert result.exit_code != 0 and result.exception is not None


def test_list() -> None:
    result = CliRunner().invoke(main, ["list"])
    assert result.exit_code == 0
    assert "pixel" in result.output and "--pixel-size" in result.output and "ViT-B-32: " in result.output


def test_console_script_in_a_subprocess(quick: dict, tmp_path: Path) -> None:
    """The installed entry point works as a user runs it, with a local tiny CLIP."""
    cmd = [sys.executable, "-m", "pixgen", *_args(quick), "--out", str(tmp_path / "sub")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "sub" / "output.png").exists() and "Done: 4 iterations" in proc.stderr
    bad = subprocess.run([*cmd[:-2], "--out", str(tmp_path / "bad"), "--size", "0x1"], capture_output=True,
                         text=True, timeout=240, cwd=tmp_path)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "size 0x1 is impossible" in bad.stderr
