"""Near-miss scenes for the caption-conditioned denoiser (``pixgen.shapes.train.perturb``)."""

from __future__ import annotations

import random

from pixgen.shapes.sample import sample_scene
from pixgen.shapes.train.perturb import perturb_scene
from pixgen.shapes.world import describes, parse_caption


def near_misses(caption: str, n: int, seed: int = 0) -> list:
    spec, rng = parse_caption(caption), random.Random(seed)
    pairs = []
    for _ in range(n):
        scene = sample_scene(spec, rng)
        pairs.append((scene, perturb_scene(scene, spec, rng)))
    return pairs


def test_near_misses_break_the_caption_often_and_leave_some_scenes_alone() -> None:
    spec = parse_caption("a red circle above a blue square on a white background")
    pairs = near_misses("a red circle above a blue square on a white background", 400)
    unchanged = sum(a == b for a, b in pairs)
    broken = sum(not describes(spec, b) for _, b in pairs)
    assert 80 < unchanged < 200  # a quarter, and those whose draws changed nothing
    assert broken > 160
    assert any(b.background != "white" for _, b in pairs)  # the caption names it, so it may go wrong
    assert any(len(b.objects) == 3 for _, b in pairs)  # a stray copy


def test_place_size_and_an_open_background_stay() -> None:
    for scene, near in near_misses("a green triangle", 300, seed=1):
        assert near.background == scene.background  # no background named: never changed
        a, b = scene.objects[0], near.objects[0]
        assert (a.cx, a.cy, a.r) == (b.cx, b.cy, b.r)  # place and size stay: the true ones could not be told
    assert near_misses("a green triangle", 5, seed=2) == near_misses("a green triangle", 5, seed=2)
