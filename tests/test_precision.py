"""--precision and out-of-memory splitting: every precision runs every drawer; an OOM on the first try splits the
step's cutouts into chunks and gives the unsplit image up to float rounding (CPU; the OOM is raised by a hook)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from test_drawer_contract import FACTORIES

from pixgen.config import RunConfig
from pixgen.engine import Run
from pixgen.errors import PixgenError
from pixgen.precision import FAST_BF16_FLAGS, auto_name, choose
from pixgen.registry import DRAWERS


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
@pytest.mark.parametrize("drawer", DRAWERS.names())
def test_every_precision_runs_every_drawer(drawer: str, precision: str, quick: dict, tmp_path: Path) -> None:
    options = FACTORIES[drawer](tmp_path)
    run = Run(RunConfig.from_dict({**quick, "drawer": drawer, "precision": precision, "size": "64x64",
                                   "iterations": 2, **options}))
    assert run.precision == precision
    before = [p.detach().clone() for p in run.drawer.parameters()]
    losses = [run.step().loss for _ in range(2)]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert all(p.dtype == torch.float32 for p in run.drawer.parameters())  # parameters stay fp32
    assert any(not torch.equal(p, b) for p, b in zip(run.drawer.parameters(), before, strict=True))
    image = run.render()
    assert image.dtype == torch.float32 and 0 <= float(image.min()) and float(image.max()) <= 1


def test_auto_follows_the_cpu_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    monkeypatch.setattr("pixgen.precision.cpu_flags", lambda: {"avx2", FAST_BF16_FLAGS[0]})
    assert auto_name(cpu) == "bf16" and choose("auto", cpu) == ("bf16", torch.bfloat16)
    monkeypatch.setattr("pixgen.precision.cpu_flags", lambda: {"avx2", "avx512f"})
    assert auto_name(cpu) == "fp32" and choose("AUTO", cpu) == ("fp32", None)
    assert choose("fp16", cpu) == ("fp16", torch.float16)
    with pytest.raises(PixgenError, match="unknown precision 'fp8'"):
        choose("fp8", cpu)


def oom_once(monkeypatch: pytest.MonkeyPatch, run: Run, limit: int) -> list[int]:
    """Make every perceptor of ``run`` raise CUDA's out-of-memory error for batches above ``limit``; returns the
    batch sizes it was called with."""
    calls: list[int] = []
    for perceptor, _ in run.perceptors.values():
        original = perceptor.encode_image

        def encode(x: torch.Tensor, original=original) -> torch.Tensor:
            calls.append(len(x))
            if len(x) > limit:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
            return original(x)

        monkeypatch.setattr(perceptor, "encode_image", encode)
    return calls


def test_out_of_memory_splits_the_cutouts_and_keeps_the_result(quick: dict, monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    settings = {**quick, "cutn": 8, "precision": "fp32", "iterations": 4}
    plain = Run(RunConfig.from_dict(settings))
    plain.run()
    split = Run(RunConfig.from_dict(settings))
    calls = oom_once(monkeypatch, split, limit=3)
    with caplog.at_level(logging.WARNING, "pixgen"):
        result = split.run()
    assert split.chunks == 4 and calls[:3] == [8, 4, 2]  # 8 fails, 4 fails, then pieces of 2
    assert caplog.text.count("Out of memory") == 2 and "in 4 chunks" in caplog.text
    assert result.iterations == 4
    assert torch.allclose(split.render(), plain.render(), atol=1e-5)
    assert result.losses == pytest.approx(plain.history, rel=1e-5)


def test_out_of_memory_with_one_cutout_stops_with_one_line_and_the_image_saved(quick: dict, tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import pixgen

    monkeypatch.setattr("pixgen.engine.Run.step", _failing_step)
    with pytest.raises(PixgenError, match="out of memory even with one cutout") as error:
        pixgen.run(**{**quick, "cutn": 2}, out=str(tmp_path / "out"), progress=False)
    assert len(str(error.value).splitlines()) == 1
    assert (tmp_path / "out" / "output.png").is_file()


def _failing_step(run: Run):
    """A step that runs out of memory at every size (it grows the chunks through ``_split`` as a real one)."""
    while True:
        run._split(torch.OutOfMemoryError("CUDA out of memory (simulated)"))
