"""``scripts/shape_preference.py``: the one-shape swaps it scores and its measurement on the shipped CNN CLIP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from script_loader import load_script

from pixgen.shapes.render import render_scenes
from pixgen.shapes.world import Scene, Shape


def test_swaps_change_one_shape_kind_and_nothing_else() -> None:
    scene = Scene("white", (Shape("square", "red", 0.3, 0.5, 0.15), Shape("circle", "blue", 0.7, 0.5, 0.1)))
    swaps = load_script("shape_preference").shape_swaps(scene)
    assert [name for _, name in swaps] == ["square->circle", "square->triangle", "circle->square", "circle->triangle"]
    for variant, name in swaps:
        changed = [(a, b) for a, b in zip(scene.objects, variant.objects, strict=True) if a != b]
        assert len(changed) == 1 and variant.background == scene.background
        (a, b), = changed
        assert (a.shape, b.shape) == tuple(name.split("->"))
        assert (a.colour, a.cx, a.cy, a.r) == (b.colour, b.cx, b.cy, b.r)


@pytest.mark.slow  # the measurement script over 32 swaps
def test_the_shipped_cnn_prefers_the_right_shape_with_the_same_cutouts_for_every_variant(tmp_path: Path,
                                                                                           capsys) -> None:
    module = load_script("shape_preference")
    out = tmp_path / "pref.json"
    results = module.main(["--clip", "shapes_cnn", "--scenes", "1", "--reps", "1", "--json", str(out)])
    res = results["shapes_cnn"]
    assert res["swaps"] == 8 * 2 + 4 * 4  # eight one-shape demo captions, four two-shape ones
    assert set(res["per_swap"]) <= {
        f"{a}->{b}" for a in ("circle", "square", "triangle") for b in ("circle", "square", "triangle") if a != b}
    # measured 0.91 here (session 18's CNN before its chains fine-tune: 0.94); the shipped ViT: 0.62 here
    assert res["preferred"] >= 0.8 and res["margin"] > 0
    assert json.loads(out.read_text())["shapes_cnn"]["swaps"] == 32
    assert "shapes_cnn: right shape preferred in" in capsys.readouterr().out
    # the same image scores the same (identical cutouts); a different one does not
    from pixgen.engine import Run
    from pixgen.presets import apply_presets

    run = Run(apply_presets({"prompt": "a red square", "preset": "shapes", "clip": ["shapes"], "iterations": 1,
                             "seed": 0}))
    (key,) = run.perceptors
    scene = Scene("white", (Shape("square", "red", 0.5, 0.5, 0.2),))
    other = Scene("white", (Shape("circle", "red", 0.5, 0.5, 0.2),))
    loss = module.loss_of(run, key, render_scenes([scene, scene, other]), "a red square", reps=2)
    assert torch.equal(loss[0], loss[1]) and not torch.equal(loss[0], loss[2])
