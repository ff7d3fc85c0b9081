"""The shapes world: caption grammar, meaning (describes), sampling and the renderer."""

from __future__ import annotations

import pytest
import torch

from pixgen.errors import PixgenError
from pixgen.shapes.render import cell_kinds, palette_tensor, render_caption, render_scenes
from pixgen.shapes.sample import clutter_scene, mutate_spec, rng_from, sample_batch, sample_scene, sample_spec
from pixgen.shapes.world import (
    PALETTE,
    ObjectSpec,
    Scene,
    Shape,
    Spec,
    caption_of,
    describes,
    parse_caption,
    scene_spec,
    spec_caption,
)


def test_parse_single_caption_with_all_attributes() -> None:
    spec = parse_caption("A large Red circle on the left on a blue background.")
    assert spec == Spec((ObjectSpec("red", "circle", "large", "left"),), None, "blue")


def test_parse_leaves_omitted_attributes_open() -> None:
    assert parse_caption("an orange triangle") == Spec((ObjectSpec("orange", "triangle"),))
    assert parse_caption("a small green square in the center").objects[0].position == "center"


def test_parse_two_shape_caption() -> None:
    spec = parse_caption("a yellow square left of a purple circle on a white background")
    assert spec.relation == "left of"
    assert [o.colour for o in spec.objects] == ["yellow", "purple"]
    assert spec.background == "white"


@pytest.mark.parametrize("text", ["a cat", "a red hexagon", "a red circle on the moon", "red circle",
                                  "a huge red circle", "a red circle near a blue square", ""])
def test_parse_rejects_captions_outside_the_grammar(text: str) -> None:
    with pytest.raises(PixgenError, match="shapes grammar"):
        parse_caption(text)


def test_parse_rejects_invisible_or_ambiguous_scenes() -> None:
    with pytest.raises(PixgenError, match="background"):
        parse_caption("a red circle on a red background")
    with pytest.raises(PixgenError, match="different colours"):
        parse_caption("a red circle above a red square")


def test_caption_round_trip_over_random_specs() -> None:
    rng = rng_from(torch.Generator().manual_seed(3))
    for _ in range(300):
        spec = sample_spec(rng)
        assert parse_caption(spec_caption(spec)) == spec


def test_sampled_scenes_satisfy_their_spec_and_fit_the_frame() -> None:
    rng = rng_from(torch.Generator().manual_seed(4))
    for _ in range(300):
        spec = sample_spec(rng)
        scene = sample_scene(spec, rng)
        assert describes(spec, scene)
        assert scene.background not in {o.colour for o in scene.objects}
        for o in scene.objects:
            assert 0 < o.cx - o.r and o.cx + o.r < 1


def test_describes_is_false_for_the_wrong_attribute() -> None:
    scene = Scene("blue", (Shape("circle", "red", 0.2, 0.5, 0.1),))
    assert describes(parse_caption("a small red circle on the left on a blue background"), scene)
    assert describes(parse_caption("a red circle"), scene)
    for wrong in ("a large red circle", "a red circle on the right", "a red square", "a green circle",
                  "a red circle on a white background", "a red circle above a blue square"):
        assert not describes(parse_caption(wrong), scene), wrong


def test_relations_need_a_dominant_offset() -> None:
    a, b = Shape("circle", "red", 0.5, 0.2, 0.1), Shape("square", "blue", 0.55, 0.8, 0.1)
    scene = Scene("white", (a, b))
    assert describes(parse_caption("a red circle above a blue square"), scene)
    assert describes(parse_caption("a blue square below a red circle"), scene)
    assert not describes(parse_caption("a red circle below a blue square"), scene)
    assert not describes(parse_caption("a red circle left of a blue square"), scene)


def test_mutated_specs_differ_and_stay_valid() -> None:
    rng = rng_from(torch.Generator().manual_seed(5))
    for _ in range(200):
        spec = sample_spec(rng)
        other = mutate_spec(spec, rng)
        assert other != spec
        parse_caption(spec_caption(other))


def test_mutations_of_a_named_kind_change_that_attribute() -> None:
    rng = rng_from(torch.Generator().manual_seed(8))
    single = parse_caption("a small red circle on the left on a blue background")
    pair = parse_caption("a red circle above a blue square")
    assert mutate_spec(single, rng, "position").objects[0].position != "left"
    assert mutate_spec(single, rng, "size").objects[0].size == "large"
    assert mutate_spec(pair, rng, "order").objects == pair.objects[::-1]
    assert mutate_spec(pair, rng, "relation").relation != "above"
    assert mutate_spec(single, rng, "relation") is None  # a one-shape caption has no relation to change


def test_clutter_scenes_are_described_by_no_caption() -> None:
    rng = rng_from(torch.Generator().manual_seed(9))
    scenes = [clutter_scene(rng) for _ in range(50)]
    specs = [sample_spec(rng) for _ in range(200)] + [scene_spec(Scene(s.background, s.objects[:1])) for s in scenes]
    assert all(len({o.colour for o in s.objects[:2]}) == 1 and s.background != s.objects[0].colour for s in scenes)
    assert not any(describes(spec, scene) for spec in specs for scene in scenes)
    assert render_scenes(scenes, 32).shape == (50, 3, 32, 32)


def test_caption_of_scene_is_true_of_it() -> None:
    scenes, _ = sample_batch(100, torch.Generator().manual_seed(6))
    for scene in scenes:
        assert describes(parse_caption(caption_of(scene)), scene)
        assert describes(scene_spec(scene), scene)


def test_sampling_is_reproducible_from_the_generator() -> None:
    first = sample_batch(32, torch.Generator().manual_seed(7))
    second = sample_batch(32, torch.Generator().manual_seed(7))
    third = sample_batch(32, torch.Generator().manual_seed(8))
    assert first == second
    assert first != third


def test_render_shapes_colours_and_anti_aliasing() -> None:
    scene = Scene("white", (Shape("square", "red", 0.5, 0.5, 0.25),))
    img = render_scenes([scene], 64)
    assert img.shape == (1, 3, 64, 64) and img.dtype == torch.float32
    red, white = palette_tensor()[0], palette_tensor()[6]
    assert torch.allclose(img[0, :, 32, 32], red) and torch.allclose(img[0, :, 2, 2], white)
    # the square spans [0.25, 0.75] -> pixel edges at 16 and 48: fully inside/outside on each side
    assert torch.allclose(img[0, :, 32, 16], red) and torch.allclose(img[0, :, 32, 15], white)
    circle = render_scenes([Scene("black", (Shape("circle", "white", 0.5, 0.5, 0.3),))], 64)[0, 0]
    assert ((circle > 0.1) & (circle < 0.9)).any(), "circle edges should be anti-aliased"


def test_render_areas_match_the_geometry() -> None:
    r = 0.2
    scenes = [Scene("black", (Shape(s, "white", 0.5, 0.5, r),)) for s in ("circle", "square", "triangle")]
    img = render_scenes(scenes, 256)
    white, black = palette_tensor()[6], palette_tensor()[7]
    coverage = ((img[:, 0] - black[0]) / (white[0] - black[0])).mean(dim=(1, 2))  # (3,)
    expected = torch.tensor([torch.pi * r * r, 4 * r * r, 2 * r * r])
    assert torch.allclose(coverage, expected, rtol=0.02)


def test_triangle_centroid_is_the_scene_position() -> None:
    img = render_scenes([Scene("black", (Shape("triangle", "white", 0.4, 0.6, 0.2),))], 256)[0, 0]
    w = (img - img.min()) / (img.max() - img.min())
    grid = (torch.arange(256) + 0.5) / 256
    cy, cx = (w.sum(1) * grid).sum() / w.sum(), (w.sum(0) * grid).sum() / w.sum()
    assert abs(cx - 0.4) < 0.005 and abs(cy - 0.6) < 0.005


def test_cell_kinds_name_the_shape_covering_each_cell() -> None:
    # a square over [0.25, 0.75] (cells 4..11 of 16), and a circle drawn over its top-left corner
    square = Shape("square", "red", 0.5, 0.5, 0.25)
    kinds = cell_kinds([Scene("white", (square,)), Scene("white", (square, Shape("circle", "blue", 0.3, 0.3, 0.1)))],
                       16)
    assert kinds.shape == (2, 16, 16) and kinds.dtype == torch.long
    inside = torch.zeros(16, 16, dtype=torch.bool)
    inside[4:12, 4:12] = True
    assert (kinds[0][inside] == 2).all() and (kinds[0][~inside] == 0).all()  # 1 + "square"'s id, else background
    assert kinds[1][4, 4] == 1 and kinds[1][10, 10] == 2  # the circle is on top where they overlap
    assert (kinds[1][~inside] == 0).sum() < (~inside).sum()  # the circle reaches past the square's edge


def test_render_caption_is_seedable() -> None:
    a = render_caption("a red circle", 32, torch.Generator().manual_seed(1))
    b = render_caption("a red circle", 32, torch.Generator().manual_seed(1))
    c = render_caption("a red circle", 32, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_palette_is_the_documented_one() -> None:
    assert PALETTE["red"] == (220, 30, 30) and PALETTE["black"] == (20, 20, 20) and len(PALETTE) == 8
