"""The shapes VQGAN's training script end to end: a few steps, its held-out report, and a checkpoint that
pixgen's VQGAN loader reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow  # training-script runs
@pytest.mark.parametrize("factor", [4, 8])
def test_training_script_writes_a_taming_vqgan_the_loader_reads(tmp_path, factor) -> None:
    from pixgen.taming_loader import load_vqgan

    cmd = [sys.executable, str(ROOT / "scripts" / "train_shapes_vqgan.py"), "--steps", "3", "--minutes", "0",
           "--batch", "4", "--factor", str(factor), "--codes", "64", "--eval-size", "4", "--demo-seeds", "1",
           "--out", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout[done.stdout.index("{"):])
    assert report["steps"] == 3
    held_out = report["held_out"]
    assert 0 <= held_out["oracle_pass_demo_captions_64"] <= 1 and 1 <= held_out["codes_used"] <= 64
    model = load_vqgan(tmp_path / "shapes_vqgan.yaml", tmp_path / "shapes_vqgan.ckpt")
    assert model.factor == factor and model.codebook.shape == (64, 16)
    with torch.no_grad():
        z = model.encode(torch.zeros(1, 3, 64, 64))
        assert z.shape == (1, 16, 64 // factor, 64 // factor)
        assert model.decode(model.quantize(z)).shape == (1, 3, 64, 64)
