"""Generation chains for the shapes CLIP's training (the VQGAN drawer's optimisation, run in batches) and the
training views they and the script use."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
import torch

from pixgen.losses.functional import spherical_dist
from pixgen.shapes.models import clip_tokenizer, load_clip, vqgan_paths
from pixgen.shapes.render import render_scenes
from pixgen.shapes.sample import sample_scene
from pixgen.shapes.train.chains import ChainSettings, DrawerChains, chain_batch, nearest_scenes
from pixgen.shapes.train.clip_training import normalise
from pixgen.shapes.train.views import TrainViews
from pixgen.shapes.world import describes, parse_caption
from pixgen.taming_loader import load_vqgan


def _parts(n: int, steps: int, lifetime: int = 150, levels: int = 1):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = load_clip().float()
    tokenizer = clip_tokenizer()
    settings = ChainSettings(n=n, steps=steps, lifetime=lifetime, levels=levels)
    chains = DrawerChains(load_vqgan(*vqgan_paths()), settings, random.Random(0))
    return model, tokenizer, chains, TrainViews(64, zoom_fraction=0.1, clean_fraction=1.0)


def _distance(model, tokenizer, chains) -> torch.Tensor:
    with torch.no_grad():
        emb = model.encode_image(normalise(chains.images()))
        return spherical_dist(emb, model.encode_text(tokenizer(chains.captions)))


@pytest.mark.parametrize("levels", [1, 4])
def test_chains_descend_their_captions_loss_and_stay_in_the_codebook_range(levels: int) -> None:
    model, tokenizer, chains, views = _parts(n=3, steps=6, levels=levels)
    chains.life[:] = 1000  # no restarts in this test
    before = _distance(model, tokenizer, chains)
    images = chains.advance(model, tokenizer, views)
    assert images.shape == (3, 3, 64, 64) and 0 <= images.min() and images.max() <= 1
    assert not images.requires_grad and not model.training  # detached; the eval mode is restored
    assert _distance(model, tokenizer, chains).mean() < before.mean()
    book = chains.vqgan.codebook
    assert (chains.latent() >= book.amin(0).view(1, -1, 1, 1) - 1e-6).all()
    assert (chains.latent() <= book.amax(0).view(1, -1, 1, 1) + 1e-6).all()
    assert chains.t.tolist() == [6, 6, 6]
    assert [tuple(g.shape[-2:]) for g in chains.grids] == [(16, 16), (8, 8), (4, 4), (2, 2)][:levels]
    assert all(g.abs().sum() > 0 for g in chains.grids)  # every grid moved


def test_finished_chains_restart_from_noise_with_a_new_caption() -> None:
    model, tokenizer, chains, views = _parts(n=4, steps=2)
    chains.life[:] = torch.tensor([2.0, 2.0, 100.0, 100.0])
    chains.advance(model, tokenizer, views)
    z, captions = chains.latent().clone(), chains.captions
    chains.advance(model, tokenizer, views)  # chains 0 and 1 are done: they restart, then take 2 steps
    assert chains.t.tolist() == [2, 2, 4, 4]
    assert captions[2:] == chains.captions[2:]
    assert not torch.allclose(z[:2], chains.latent()[:2], atol=0.5)


def test_prior_start_chains_begin_on_the_code_priors_grid_and_warm_their_lr_up() -> None:
    model, tokenizer, chains, views = _parts(n=3, steps=1)
    chains = DrawerChains(chains.vqgan, ChainSettings(n=3, steps=1, start="prior", warmup=10), random.Random(0))
    start = chains.latent().clone()
    book = chains.vqgan.codebook
    assert torch.allclose(chains.vqgan.quantize(start), start)  # every cell is one of the prior's codes
    chains.life[:] = 1000
    chains.advance(model, tokenizer, views)
    step = (chains.latent() - start).abs()
    assert 0 < step.max() <= 0.5 / 10 + 1e-6  # Adam's first step is the lr in size: here a tenth of it
    assert (chains.latent() >= book.amin(0).view(1, -1, 1, 1) - 1e-6).all()


def test_chain_denoiser_loss_waits_for_its_step_and_pulls_towards_the_denoised_render() -> None:
    vqgan = load_vqgan(*vqgan_paths())
    chains = DrawerChains(vqgan, ChainSettings(n=2, denoise=15.0, denoise_after=45), random.Random(0))
    images = chains.images()
    assert chains._denoise(images).item() == 0.0  # no chain is 45 steps old yet
    chains.t[:] = torch.tensor([10.0, 45.0])
    with torch.no_grad():
        clean = chains.denoiser(images, None)
    expected = 15.0 * (images[1] - clean[1]).pow(2).mean()
    assert torch.allclose(chains._denoise(images), expected)
    assert expected > 0


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_chain_pairs_sets_the_share_of_two_shape_captions(share: float) -> None:
    vqgan = load_vqgan(*vqgan_paths())
    chains = DrawerChains(vqgan, ChainSettings(n=12, pair_share=share), random.Random(0))
    chains._restart(torch.ones(12, dtype=torch.bool))  # restarts draw captions the same way
    assert [spec.relation is not None for spec in chains.specs] == [share == 1.0] * 12


def test_chain_batch_pairs_every_chain_caption_with_a_true_scene() -> None:
    model, tokenizer, chains, views = _parts(n=3, steps=1)
    scenes, specs, images, negatives, dreams = chain_batch(chains, model, tokenizer, views, random.Random(1), 96)
    assert all(describes(spec, scene) for spec, scene in zip(specs, scenes, strict=True))
    assert images.shape == (3, 3, 96, 96)
    assert negatives.shape[1:] == (3, 64, 64) and len(negatives) <= 3  # one step from noise: all fail
    assert len(negatives) == 3
    assert dreams.shape == (3, 3, 64, 64) and torch.equal(dreams, negatives)


def test_repair_pairs_each_chain_image_with_the_nearest_true_scene_of_its_caption() -> None:
    spec = parse_caption("a red circle on the left")
    rng = random.Random(3)
    scenes = [sample_scene(replace(spec, background=bg), rng) for bg in ("blue", "yellow")]
    images = render_scenes(scenes, 64)
    nearest = nearest_scenes(images, [spec, spec], rng, 64)
    assert all(describes(spec, scene) for scene in nearest)
    assert [scene.background for scene in nearest] == ["blue", "yellow"]  # the open background follows the image
    others = render_scenes([sample_scene(spec, rng) for _ in range(16)], 64)
    for image, scene in zip(images, nearest, strict=True):
        near = (render_scenes([scene], 64)[0] - image).pow(2).sum()
        assert near < (others - image).pow(2).flatten(1).sum(1).min()


def test_chain_batch_with_repair_gives_each_chain_its_nearest_true_scene() -> None:
    model, tokenizer, chains, views = _parts(n=2, steps=1)
    scenes, specs, images, _, dreams = chain_batch(chains, model, tokenizer, views, random.Random(1), 64, repair=32)
    assert all(describes(spec, scene) for spec, scene in zip(specs, scenes, strict=True))
    far = render_scenes(nearest_scenes(dreams, specs, random.Random(2), 1), 64)  # one random scene each
    assert (images - dreams).pow(2).sum() < (far - dreams).pow(2).sum()


@pytest.mark.slow  # a diagnosis-script run: four ways of descent from one start
def test_descent_diagnosis_script_reports_every_way() -> None:
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "scripts" / "diagnose_shapes_descent.py"
    cmd = [sys.executable, str(script), "--steps", "2", "--cutn", "2", "--lrs", "0.1", "--threads", "1"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert 0 < lines[0]["start"] < lines[0]["true_target_scene"] <= 1  # the target scene fits its caption better
    assert [line["way"] for line in lines[1:]] == ["clip-quantized", "clip-ramped", "clip-continuous",
                                                  "mse-quantized"]
    assert all(len(line["corner_rgb"]) == 3 and isinstance(line["oracle"], bool) for line in lines[1:])


def test_training_views_say_which_views_are_zoom_cuts() -> None:
    images = torch.rand(6, 3, 96, 96)
    views, zoom = TrainViews(64, zoom_fraction=1.0, clean_fraction=0.0).cut(images)
    assert views.shape == (6, 3, 64, 64) and zoom.tolist() == [True] * 6
    _, zoom = TrainViews(64, zoom_fraction=0.0, clean_fraction=0.5).cut(images)
    assert zoom.tolist() == [False] * 6
