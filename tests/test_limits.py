"""Issue 38: sizes and limits. A --cutn or --size that cannot fit in memory is refused before the first step
with the estimate and a fix; the smallest image (1x1) runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import pixgen
from pixgen import limits
from pixgen.cli import main
from pixgen.config import RunConfig
from pixgen.engine import Run
from pixgen.errors import PixgenError

pytestmark = pytest.mark.usefixtures("one_thread")


def _cli(quick: dict, *extra: str) -> list[str]:
    return ["run", "--prompt", quick["prompt"], "--clip", quick["clip"][0], "--iterations", "2", "--cutn", "2",
            "--device", "cpu", *extra]


def test_estimate_counts_cutouts_per_perceptor_and_the_image() -> None:
    assert limits.estimate_bytes(30, [224], 384, 216) == 30 * 224 * 224 * 768 + 384 * 216 * 192
    assert limits.estimate_bytes(2, [224, 336], 0, 0) == 2 * (224 * 224 + 336 * 336) * 768


def test_available_memory_is_known_on_cpu() -> None:
    free = limits.available_bytes(torch.device("cpu"))
    assert free is not None and 0 < free


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_available_memory_is_known_on_cuda() -> None:
    free = limits.available_bytes(torch.device("cuda"))
    assert free is not None and 0 < free <= torch.cuda.get_device_properties(0).total_memory


def test_cutn_past_the_memory_is_refused_before_any_work(quick: dict, tmp_path: Path) -> None:
    out = tmp_path / "never"
    result = CliRunner().invoke(main, [*_cli(quick, "--out", str(out)), "--cutn", "100000000", "--size", "48x32"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: --cutn 100000000 at --size 48x32 needs about ")
    assert "(estimate), more than the" in line
    assert "free on cpu; use --cutn " in line and "--batches" in line
    assert not out.exists()
    with pytest.raises(PixgenError, match="^--cutn 100000000 at --size 48x32 needs about "):
        pixgen.run(**{**quick, "cutn": 100_000_000}, out=str(out), progress=False)
    assert not out.exists()


def test_a_size_past_the_memory_names_a_size_that_fits(quick: dict, monkeypatch) -> None:
    perceptors = Run(RunConfig.from_dict(quick)).perceptors
    monkeypatch.setattr(limits, "available_bytes", lambda device: 64 << 20)  # a machine with 64 MiB free
    config = RunConfig(size="4096x2048", cutn=2)
    with pytest.raises(PixgenError, match=r"needs about 1\.5 GiB .* use a --size of at most 591x295$"):
        limits.check_memory(config, perceptors, torch.device("cpu"))
    limits.check_memory(config.replace(size="512x256"), perceptors, torch.device("cpu"))  # fits: no error


def test_one_pixel_image_with_the_pixel_drawer(quick: dict, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, _cli(quick, "--size", "1x1", "--out", str(tmp_path / "dot")))
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "dot" / "output.png").size == (1, 1)
