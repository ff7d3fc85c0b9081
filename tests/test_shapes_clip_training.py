"""The shapes CLIP's training pieces (targets, losses, dream negatives) and its script end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open

from pixgen.shapes.sample import in_frame, mutate_spec, rng_from, sample_batch
from pixgen.shapes.train.clip_training import (
    adversarial_views,
    blob_corrupt,
    content_loss,
    content_targets,
    dream_negatives,
    gradient_alignment,
    minimal_pair_loss,
    normalise,
    pair_twins,
    scene_corrupt,
    shape_twins,
    soft_clip_loss,
    soft_targets,
    stray_colours,
)
from pixgen.shapes.world import Scene, Shape, describes, parse_caption

ROOT = Path(__file__).resolve().parent.parent
SCENE = Scene("blue", (Shape("circle", "red", 0.3, 0.5, 0.1), Shape("square", "yellow", 0.7, 0.5, 0.1)))


def test_soft_targets_count_every_caption_that_describes_the_scene() -> None:
    specs = [parse_caption(c) for c in ("a red circle left of a yellow square on a blue background",
                                        "a red circle left of a yellow square",
                                        "a red square left of a yellow square")]
    assert soft_targets([SCENE], specs).tolist() == [[1.0, 1.0, 0.0]]


def test_soft_clip_loss_prefers_matching_pairs() -> None:
    torch.manual_seed(0)
    emb = F.normalize(torch.randn(6, 16), dim=-1)
    target = torch.eye(6)
    scale = torch.tensor(10.0)
    assert soft_clip_loss(emb, emb, scale, target) < soft_clip_loss(emb, emb.roll(1, 0), scale, target)
    uncaptioned = torch.cat([target, torch.zeros(2, 6)])  # extra images no caption describes
    loss = soft_clip_loss(torch.cat([emb, emb[:2]]), emb, scale, uncaptioned)
    assert torch.isfinite(loss)


def test_content_targets_name_coloured_shapes_and_their_centres() -> None:
    present, centres = content_targets([SCENE])
    assert present.sum() == 2
    red_circle, yellow_square = 0 * 3 + 0, 2 * 3 + 1  # COLOURS: red, orange, yellow...; SHAPES: circle, square
    assert present[0, red_circle] == 1 and present[0, yellow_square] == 1
    assert torch.allclose(centres[0, yellow_square], torch.tensor([0.7, 0.5]))
    head = torch.nn.Linear(8, 72)
    loss = content_loss(head, torch.randn(1, 8), [SCENE], torch.tensor([True]))
    loss.backward()
    assert head.weight.grad.abs().sum() > 0


def test_dream_negatives_raise_the_similarity_they_climb() -> None:
    from pixgen.shapes.models import load_clip

    torch.set_num_threads(1)
    model = load_clip()
    model.float()
    txt = F.normalize(torch.randn(3, model.text_projection.shape[1]), dim=-1)

    def score(images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return (F.normalize(model.encode_image(normalise(images)), dim=-1) * txt).sum(1)

    start = dream_negatives(model, txt, 0, torch.Generator().manual_seed(3))
    dreamt = dream_negatives(model, txt, 4, torch.Generator().manual_seed(3))
    assert dreamt.shape == (3, 3, 64, 64) and 0 <= dreamt.min() and dreamt.max() <= 1
    assert (score(dreamt) > score(start)).all()
    assert not model.training  # the model's mode is restored


def test_adversarial_views_raise_the_loss_within_their_radius() -> None:
    from pixgen.shapes.models import load_clip

    torch.set_num_threads(1)
    model = load_clip()
    model.float()
    images = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    txt = F.normalize(torch.randn(4, model.text_projection.shape[1], generator=torch.Generator().manual_seed(1)),
                      dim=-1)
    target = torch.eye(4)
    scale = model.logit_scale.exp().clamp(max=100).detach()

    def loss(x: torch.Tensor) -> float:
        with torch.no_grad():
            return soft_clip_loss(F.normalize(model.encode_image(normalise(x)), dim=-1), txt, scale, target).item()

    moved = adversarial_views(model, txt, images, target, eps=1.5, steps=2)
    assert (moved - images).flatten(1).norm(dim=1).max() <= 1.5 + 1e-4
    assert loss(moved) > loss(images) + 0.01


def test_blob_corrupt_paints_palette_blocks_over_parts_of_the_images() -> None:
    from pixgen.shapes.render import palette_tensor, render_caption

    caption = "a red circle on a blue background"
    clean = torch.cat([render_caption(caption, 64, torch.Generator().manual_seed(i)) for i in range(8)])
    bad = blob_corrupt(clean, torch.Generator().manual_seed(0))
    assert bad.shape == clean.shape and 0 <= bad.min() and bad.max() <= 1
    changed = (bad - clean).abs().amax(1) > 1e-6  # (8, 64, 64)
    assert changed.flatten(1).any(1).sum() >= 6  # most images are corrupted somewhere...
    assert (~changed).sum() > 0  # ...and some pixels are left as they were
    pal = palette_tensor()
    painted = [torch.cdist(bad[i].permute(1, 2, 0)[changed[i]], pal).amin(1).max() < 1e-3 for i in range(8)]
    assert sum(painted) >= 3  # unless blended wholly into the blocks, what is painted is palette colours


def test_stray_colours_paint_some_cells_with_palette_colours() -> None:
    from pixgen.shapes.render import palette_tensor, render_caption

    clean = torch.cat([render_caption("a red circle on a blue background", 64, torch.Generator().manual_seed(i))
                       for i in range(8)])
    bad = stray_colours(clean, torch.Generator().manual_seed(0))
    assert torch.equal(bad, stray_colours(clean, torch.Generator().manual_seed(0)))  # seeded
    changed = (bad - clean).abs().amax(1) > 1e-6  # (8, 64, 64)
    share = changed.flatten(1).float().mean(1)
    assert (share > 0.01).all() and (share < 0.45).all()  # 8-30 % of the cells, some painted their own colour
    assert torch.cdist(bad.permute(0, 2, 3, 1)[changed], palette_tensor()).amin(1).max() < 1e-3


def test_scene_corrupt_changes_shapes_and_adds_stray_copies_but_keeps_colours() -> None:
    bad = scene_corrupt([SCENE] * 20, torch.Generator().manual_seed(0))
    assert all(b.background == SCENE.background for b in bad)
    assert all([o.colour for o in b.objects[:2]] == ["red", "yellow"] for b in bad)
    assert any(b.objects[0].shape != "circle" for b in bad) and any(b.objects[0].shape == "circle" for b in bad)
    assert 1 <= sum(len(b.objects) == 3 for b in bad) < 20
    assert all(abs(b.objects[0].cx - 0.3) <= 0.1 + 1e-9 for b in bad)


class _Flat(torch.nn.Module):
    """An image tower whose embedding is the (linearly mapped) image itself: its similarity gradient is known."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x.flatten(1)


def test_shape_twins_swap_one_shape_kind_and_their_captions_tell_them_apart() -> None:
    scenes, specs = sample_batch(40, torch.Generator().manual_seed(0))
    twins, twin_specs = shape_twins(scenes, specs, 30, rng_from(torch.Generator().manual_seed(1)))
    assert 25 <= len(twins) <= 30  # a twin its changed caption does not describe is skipped

    def placed(scene: Scene) -> tuple:
        return tuple((o.colour, o.cx, o.cy, o.r) for o in scene.objects)

    by_objects = {placed(s): (s, sp) for s, sp in zip(scenes, specs, strict=True)}
    for twin, twin_spec in zip(twins, twin_specs, strict=True):
        scene, spec = by_objects[placed(twin)]
        kinds = [(a.shape, b.shape) for a, b in zip(scene.objects, twin.objects, strict=True) if a.shape != b.shape]
        assert len(kinds) == 1 and twin.background == scene.background  # one shape's kind, nothing else
        assert describes(twin_spec, twin) and not describes(spec, twin) and not describes(twin_spec, scene)


def test_pair_twins_exchange_colours_or_kinds_in_place_and_their_captions_tell_them_apart() -> None:
    scenes, specs = sample_batch(80, torch.Generator().manual_seed(0))
    twins, twin_specs, origins = pair_twins(scenes, specs, 20, rng_from(torch.Generator().manual_seed(1)))
    assert 15 <= len(twins) <= 20 and len(origins) == len(twins)  # twins leaving the frame are skipped
    changed = set()
    for twin, twin_spec, i in zip(twins, twin_specs, origins, strict=True):
        scene, spec = scenes[i], specs[i]
        assert spec.relation is not None and twin_spec.relation == spec.relation and in_frame(twin)
        assert [(o.cx, o.cy, o.r) for o in twin.objects] == [(o.cx, o.cy, o.r) for o in scene.objects]  # in place
        for field in ("colour", "shape"):  # exchanged or kept, never new
            values = [getattr(o, field) for o in scene.objects]
            twin_values = [getattr(o, field) for o in twin.objects]
            assert twin_values in (values, values[::-1])
            changed |= {field} if twin_values != values else set()
        assert describes(twin_spec, twin) and not describes(spec, twin) and not describes(twin_spec, scene)
    assert changed == {"colour", "shape"}


def test_binding_mutation_exchanges_the_two_shapes_colours_or_kinds() -> None:
    spec = parse_caption("a red circle above a blue square")
    seen = {mutate_spec(spec, rng_from(torch.Generator().manual_seed(k)), "binding") for k in range(12)}
    assert seen == {parse_caption(c) for c in ("a blue circle above a red square", "a red square above a blue circle")}
    assert mutate_spec(parse_caption("a red circle"), rng_from(torch.Generator().manual_seed(0)), "binding") is None


def test_minimal_pair_loss_is_low_only_when_each_image_picks_its_own_caption() -> None:
    emb = F.normalize(torch.randn(4, 8, generator=torch.Generator().manual_seed(0)), dim=-1)
    pairs = torch.tensor([[0, 1], [2, 3]])
    right = minimal_pair_loss(emb, emb, pairs, torch.tensor(20.0))
    wrong = minimal_pair_loss(emb, emb[[1, 0, 3, 2]], pairs, torch.tensor(20.0))  # captions of each pair swapped
    blind = minimal_pair_loss(emb, emb[[0, 0, 2, 2]], pairs, torch.tensor(20.0))  # both captions the same
    assert right < 0.1 * blind and blind < wrong


def test_gradient_alignment_is_high_when_the_score_points_back_to_the_scene() -> None:
    gen = torch.Generator().manual_seed(1)
    clean = torch.rand(4, 3, 8, 8, generator=gen)
    bad = blob_corrupt(clean, gen)
    model = _Flat()
    txt = F.normalize(normalise(clean).flatten(1), dim=-1)  # the caption's embedding is the clean image's
    toward = gradient_alignment(model, txt, clean, bad)
    away = gradient_alignment(model, -txt, clean, bad)
    moved = (bad - clean).flatten(1).norm(dim=1) > 0
    assert (toward[moved] > 0.3).all() and (away[moved] < -0.3).all()
    toward[moved].sum().backward()  # second-order: the alignment trains the model
    assert model.scale.grad is not None and torch.isfinite(model.scale.grad).all()


@pytest.mark.slow  # a training-script run
def test_training_script_writes_weights_that_open_clip_loads(tmp_path) -> None:
    cmd = [sys.executable, str(ROOT / "scripts" / "train_shapes_clip.py"), "--steps", "2", "--shape-warmup", "2",
           "--minutes", "0", "--batch", "24", "--clutter", "4", "--dreams", "4", "--eval-size", "32",
           "--chains", "2", "--chain-steps", "1", "--chain-levels", "2", "--chain-repair", "4", "--aux-weight", "1",
           "--adv-eps", "1", "--align", "4", "--chains-after", "0.5",
           "--out", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout[done.stdout.index("{"):])
    assert report["steps"] == 2 and {"hard_shape", "i2t_top1_clean", "gradient_alignment"} <= set(report["held_out"])
    assert (tmp_path / "shapes_clip.safetensors").is_file() and (tmp_path / "shapes_bpe.txt.gz").is_file()
    assert json.loads((tmp_path / "shapes_clip.json").read_text())["text_cfg"]["vocab_size"] < 1000  # compacted
    assert 0 <= report["held_out_after_fp16_reload"]["i2t_top1_clean"] <= 1  # the fp16 file reloads
    with safe_open(str(tmp_path / "shapes_clip.safetensors"), "pt") as saved:  # the options are recorded
        assert saved.metadata()["chains_after"] == "0.5" and saved.metadata()["chains"] == "2"


@pytest.mark.slow  # a training-script run
def test_training_script_trains_the_region_tower(tmp_path) -> None:
    config = ROOT / "scripts" / "configs" / "shapes_clip_regions.json"
    cmd = [sys.executable, str(ROOT / "scripts" / "train_shapes_clip.py"), "--config", str(config), "--steps", "2",
           "--shape-warmup", "2", "--minutes", "0", "--batch", "24", "--clutter", "4", "--stray", "4", "--dreams",
           "2", "--shape-twins", "6", "--pair-twins", "4", "--twins-after", "0.5", "--eval-size", "32", "--name",
           "regions", "--out", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout[done.stdout.index("{"):])
    assert report["steps"] == 2 and 0 <= report["held_out_after_fp16_reload"]["i2t_top1_clean"] <= 1
    saved = json.loads((tmp_path / "regions.json").read_text())
    assert saved["vision_cfg"]["timm_model_name"] == "pixgen_shapes_regions"
