"""Shared fixtures: a tiny real open_clip model (random weights saved as a local file), isolated cache dirs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def write_tiny_clip(folder: Path, name: str = "pixgen-tiny", seed: int = 0) -> tuple[Path, Path]:
    """Write an open_clip model config and random weights for it; returns (config.json, weights.pt)."""
    import open_clip

    folder.mkdir(parents=True, exist_ok=True)
    config = folder / f"{name}.json"
    config.write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(config)
    torch.manual_seed(seed)
    model = open_clip.create_model(name, pretrained=None)
    weights = folder / f"{name}.pt"
    torch.save(model.state_dict(), weights)
    return config, weights


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(config.json, weights.pt) of the tiny CLIP, registered with open_clip."""
    return write_tiny_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="session")
def clip_spec(tiny_clip: tuple[Path, Path]) -> str:
    """A ``--clip`` spec that loads the tiny model through open_clip's real path, from a local file."""
    config, weights = tiny_clip
    return f"{config}:{weights}"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own cache dir, works offline, and writes outputs under its tmp dir."""
    monkeypatch.setenv("PIXGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PIXGEN_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(logging.getLogger("pixgen"), "propagate", True)  # the CLI turns it off; caplog needs it


@pytest.fixture
def quick(clip_spec: str) -> dict:
    """Settings for a fast CPU run with the tiny CLIP."""
    return {"prompt": "a red circle", "clip": [clip_spec], "size": "48x32", "iterations": 6, "cutn": 4,
            "seed": 1, "device": "cpu", "save_every": 2}


@pytest.fixture
def one_thread():
    """Many small tensor ops (rasterizers, cell maps): one intra-op thread is faster on a small, shared CPU;
    it is also how ``scripts/eval_shapes.py`` runs, whose verdicts a test may repeat."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def fit_to_target(drawer, target: torch.Tensor, steps: int, lr: float) -> list[float]:
    """Adam on the MSE between the drawer's render and ``target``, with ``project_`` after each step."""
    optimizer = torch.optim.Adam(drawer.param_groups(lr))
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = ((drawer.render() - target) ** 2).mean()
        loss.backward()
        optimizer.step()
        drawer.project_()
        losses.append(loss.item())
    return losses
