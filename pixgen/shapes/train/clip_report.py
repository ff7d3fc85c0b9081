"""The shapes CLIP's held-out report (``scripts/train_shapes_clip.py``): retrieval among random scenes and
accuracy against one-attribute changes, per kind of change."""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F

from pixgen.shapes.render import random_batch, render_scenes
from pixgen.shapes.sample import MUTATIONS, mutate_spec, rng_from, sample_scene, sample_spec
from pixgen.shapes.train.clip_training import blob_corrupt, gradient_alignment, normalise, soft_targets
from pixgen.shapes.train.views import TrainViews
from pixgen.shapes.world import describes, spec_caption

RENDER_SIZE = 128  # scenes are drawn at this size, then resized to the CLIP's 64 px


def encode(model, tokenizer, images: torch.Tensor, captions: list[str]):
    """Unit image and unit text embeddings of (B, 3, 64, 64) images in [0, 1] and captions."""
    img = model.encode_image(normalise(images))
    txt = F.normalize(model.encode_text(tokenizer(captions)), dim=-1)
    return F.normalize(img, dim=-1), txt


@torch.no_grad()
def evaluate(model, tokenizer, seed: int, n: int) -> dict[str, float]:
    """Held-out retrieval: top-1 image->caption and caption->image among ``n`` pairs (a hit is any true
    pair), clean and through the training views, and accuracy against one-attribute hard negatives."""
    gen = torch.Generator().manual_seed(seed + 10_000)
    torch.manual_seed(seed + 10_000)
    images, scenes, specs = random_batch(n, RENDER_SIZE, gen)
    target = soft_targets(scenes, specs)
    out = {}
    for kind, batch in (("clean", clean_views(images)), ("augmented", TrainViews(64)(images))):
        img, txt = encode(model, tokenizer, batch, [spec_caption(s) for s in specs])
        sim = img @ txt.T  # (n, n)
        out[f"i2t_top1_{kind}"] = target[torch.arange(n), sim.argmax(1)].mean().item()
        out[f"t2i_top1_{kind}"] = target[sim.argmax(0), torch.arange(n)].mean().item()
        hard = [(i, i + 1) for i in range(0, n - 1, 2) if target[i, i + 1] == 0]
        out[f"hard_negative_{kind}"] = sum(float(sim[i, i] > sim[i, j]) for i, j in hard) / max(1, len(hard))
    return out


def clean_views(images: torch.Tensor) -> torch.Tensor:
    """Renders resized to the CLIP's 64 px input with no augmentation."""
    return F.interpolate(images, size=(64, 64), mode="bilinear", antialias=True)


def contrast_pairs(kind: str, rng, n: int) -> list[tuple]:
    """``n`` (true scene, true caption, false scene, false caption) held-out pairs of one ``kind``: a
    one-attribute caption change on the same scene, or for ``count`` the same caption on the scene with a
    second same-colour shape added."""
    pairs: list[tuple] = []
    while len(pairs) < n:
        spec = sample_spec(rng)
        scene = sample_scene(spec, rng)
        if kind == "count":
            if spec.relation is None:
                extra = replace(scene.objects[0], cx=1 - scene.objects[0].cx, cy=1 - scene.objects[0].cy)
                pairs.append((scene, spec, replace(scene, objects=(*scene.objects, extra)), spec))
            continue
        other = mutate_spec(spec, rng, kind)
        if other is not None and not describes(other, scene):
            pairs.append((scene, spec, scene, other))
    return pairs


@torch.no_grad()
def hard_negatives_by_kind(model, tokenizer, seed: int, n: int) -> dict[str, float]:
    """Held-out accuracy per kind of one-attribute change: the true (scene, caption) pair must score above
    the false one of ``contrast_pairs``, on clean images."""
    rng = rng_from(torch.Generator().manual_seed(seed + 20_000))
    out = {}
    for kind in (*MUTATIONS, "count"):
        true_scenes, true_specs, false_scenes, false_specs = zip(*contrast_pairs(kind, rng, n // 4), strict=True)
        images = clean_views(render_scenes([*true_scenes, *false_scenes], RENDER_SIZE))
        img, txt = encode(model, tokenizer, images, [spec_caption(s) for s in (*true_specs, *false_specs)])
        m = len(true_scenes)
        good = (img[:m] * txt[:m]).sum(1) > (img[m:] * txt[m:]).sum(1)
        out[f"hard_{kind}"] = round(good.float().mean().item(), 3)
    return out


def gradient_alignment_report(model, tokenizer, seed: int, n: int) -> dict[str, float]:
    """Mean gradient alignment (``clip_training.gradient_alignment``) on ``n`` held-out scenes painted over
    with palette blocks: about 0 for a CLIP whose pixel gradient is noise, 1 if it points straight back."""
    gen = torch.Generator().manual_seed(seed + 30_000)
    images, _, specs = random_batch(n, RENDER_SIZE, gen)
    clean = clean_views(images)
    with torch.no_grad():
        txt = F.normalize(model.encode_text(tokenizer([spec_caption(s) for s in specs])), dim=-1)
    cos = gradient_alignment(model, txt, clean, blob_corrupt(clean, gen), create_graph=False)
    return {"gradient_alignment": round(cos.mean().item(), 3)}
