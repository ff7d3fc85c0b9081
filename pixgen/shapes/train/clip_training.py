"""Pieces of the shapes CLIP's training (``scripts/train_shapes_clip.py``): batches, targets and losses.

- soft targets: caption j is true for image i whenever it describes image i's scene;
- clutter scenes and one-attribute text negatives: what no caption of the batch describes;
- shape twins: a scene again with one shape's kind swapped and nothing else, captioned to match (minimal pairs);
- pair twins: a two-shape scene again with its shapes' colours, kinds or both exchanged (which is where, for the
  last), captioned to match: minimal pairs that only the word order of a caption tells apart;
- a content loss: a linear head on the image embedding names the coloured shapes and where they are;
- a minimal-pair loss: each pair twin and its original must pick their own captions (and the captions their own
  images) against each other, a contrastive loss over two that the batch's hundreds of captions drown otherwise;
- dream negatives: images the current model rates highly without being scenes, as a run's first steps make;
- adversarial views: images moved within an L2 radius to raise the contrastive loss;
- gradient alignment: how well the image gradient of the similarity points from a corrupted scene
  (``blob_corrupt``, ``scene_corrupt``) back to the scene.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F

from pixgen.shapes.render import palette_tensor
from pixgen.shapes.sample import clutter_scene, exchange, in_frame, mutate_spec, rng_from, sample_scene, sample_spec
from pixgen.shapes.world import COLOURS, SHAPES, describes


def normalise(images: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] normalised with CLIP's mean and std, as the perceptor does."""
    import open_clip

    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1)
    return (images - mean) / std


def clutter_scenes(n: int, gen: torch.Generator) -> list:
    """``n`` scenes that no caption describes (several shapes of one colour; see ``clutter_scene``)."""
    rng = rng_from(gen)
    return [clutter_scene(rng) for _ in range(n)]


def text_negatives(specs: list, per_spec: int, gen: torch.Generator) -> list:
    """``per_spec`` one-attribute variants of every spec, changing what is hardest to learn (shape, size,
    position, relation, order): extra captions that sharpen the image->caption direction."""
    rng = rng_from(gen)
    out = []
    for spec in specs:
        kinds = ("shape", "size", "position") if spec.relation is None else ("shape", "relation", "order")
        for _ in range(per_spec):
            other = mutate_spec(spec, rng, rng.choice(kinds))
            if other is not None:
                out.append(other)
    return out


def shape_twins(scenes: list, specs: list, n: int, rng) -> tuple[list, list]:
    """Up to ``n`` minimal pairs: the first scenes again with one shape's kind swapped (same colour, place and
    size), each with its spec changed the same way; a twin its changed spec does not describe is skipped."""
    twins, twin_specs = [], []
    for scene, spec in zip(scenes[:n], specs[:n], strict=True):
        i = rng.randrange(len(scene.objects))
        kind = rng.choice([k for k in SHAPES if k != scene.objects[i].shape])
        objects, wanted = list(scene.objects), list(spec.objects)
        objects[i], wanted[i] = replace(objects[i], shape=kind), replace(wanted[i], shape=kind)
        twin, twin_spec = replace(scene, objects=tuple(objects)), replace(spec, objects=tuple(wanted))
        if describes(twin_spec, twin):
            twins.append(twin)
            twin_specs.append(twin_spec)
    return twins, twin_specs


def pair_twins(scenes: list, specs: list, n: int, rng) -> tuple[list, list, list]:
    """Up to ``n`` minimal pairs of the two-shape scenes: the scene with its two shapes' colours, kinds or both
    exchanged (places and sizes kept), its spec changed the same way; twins that leave the frame, that the old
    spec still describes or the new one does not, are skipped. Returns the twins, their specs and the index of
    each one's original."""
    twins, twin_specs, origins = [], [], []
    for i, (scene, spec) in enumerate(zip(scenes, specs, strict=True)):
        if len(twins) >= n:
            break
        if spec.relation is None:
            continue
        fields = rng.choice((("colour",), ("shape",), ("colour", "shape")))
        twin = replace(scene, objects=exchange(*scene.objects, fields))
        twin_spec = replace(spec, objects=exchange(*spec.objects, fields))
        if in_frame(twin) and describes(twin_spec, twin) and not describes(spec, twin):
            twins.append(twin)
            twin_specs.append(twin_spec)
            origins.append(i)
    return twins, twin_specs, origins


def single_shapes(n: int, rng) -> tuple[list, torch.Tensor]:
    """``n`` one-shape scenes and their shape ids."""
    scenes = []
    while len(scenes) < n:
        spec = sample_spec(rng)
        if spec.relation is None:
            scenes.append(sample_scene(spec, rng))
    return scenes, torch.tensor([SHAPES.index(s.objects[0].shape) for s in scenes])


def soft_targets(scenes: list, specs: list) -> torch.Tensor:
    """(B, B): 1 where caption j describes scene i."""
    return torch.tensor([[float(describes(sp, sc)) for sp in specs] for sc in scenes])


def soft_clip_loss(img: torch.Tensor, txt: torch.Tensor, scale: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Symmetric cross-entropy against row- and column-normalised soft targets; img (N, D), txt (B, D) unit.
    Images no caption describes (all-zero rows) only serve as negatives in the caption->image direction, and
    captions that describe no image (all-zero columns) only in the image->caption direction."""
    logits = scale * img @ txt.T  # (N, B)
    rows = target.sum(1) > 0
    i2t = -(target[rows] / target[rows].sum(1, keepdim=True) * F.log_softmax(logits[rows], 1)).sum(1).mean()
    cols = target.sum(0) > 0  # captions that describe no image (text negatives) only serve image->caption
    t2i = -(target[:, cols] / target[:, cols].sum(0, keepdim=True) * F.log_softmax(logits[:, cols], 0)).sum(0).mean()
    return (i2t + t2i) / 2


def content_targets(scenes: list) -> tuple[torch.Tensor, torch.Tensor]:
    """Per scene: which (colour, shape) pairs it holds (N, 24) and their mean centres (N, 24, 2)."""
    present = torch.zeros(len(scenes), len(COLOURS) * len(SHAPES))
    centres = torch.zeros(len(scenes), len(COLOURS) * len(SHAPES), 2)
    for i, scene in enumerate(scenes):
        for obj in scene.objects:
            k = COLOURS.index(obj.colour) * len(SHAPES) + SHAPES.index(obj.shape)
            present[i, k] += 1
            centres[i, k] += torch.tensor([obj.cx, obj.cy])
    return present.clamp(max=1), centres / present.clamp(min=1).unsqueeze(-1)


def content_loss(head: torch.nn.Linear, emb: torch.Tensor, scenes: list, whole: torch.Tensor) -> torch.Tensor:
    """Auxiliary loss: from the image embedding, predict which coloured shapes a scene holds and, for views
    that show the whole image (``whole``), where they are; it makes the tower encode shape early."""
    present, centres = content_targets(scenes)
    out = head(emb)
    k = present.shape[1]
    loss = F.binary_cross_entropy_with_logits(out[:, :k], present)
    mask = present.unsqueeze(-1) * whole.float().view(-1, 1, 1)
    pos = ((out[:, k:].view(-1, k, 2).sigmoid() - centres) ** 2 * mask).sum() / mask.sum().clamp(min=1)
    return loss + 10 * pos


def dream_negatives(model, txt: torch.Tensor, steps: int, gen: torch.Generator) -> torch.Tensor:
    """Images the current model rates highly for the captions ``txt`` (n, D) that are not scenes: smooth
    colour fields (16x16, upsampled) pushed up each caption's similarity by ``steps`` signed-gradient steps,
    much as a generation run starts. As negatives they teach the model not to be fooled by such blobs."""
    n = txt.shape[0]
    z = F.interpolate(torch.rand(n, 3, 4, 4, generator=gen), size=16, mode="bicubic", align_corners=False)
    training = model.training
    model.eval()  # batch norm with its running statistics while dreaming
    for _ in range(steps):
        z = z.clamp(0, 1).requires_grad_(True)
        image = F.interpolate(z, size=64, mode="bicubic", align_corners=False).clamp(0, 1)
        score = (F.normalize(model.encode_image(normalise(image)), dim=-1) * txt).sum()
        (grad,) = torch.autograd.grad(score, z)
        z = (z + 0.08 * grad.sign()).detach()
    model.train(training)
    return F.interpolate(z.clamp(0, 1), size=64, mode="bicubic", align_corners=False).clamp(0, 1)


def adversarial_views(model, txt: torch.Tensor, images: torch.Tensor, target: torch.Tensor, eps: float,
                      steps: int) -> torch.Tensor:
    """``images`` (N, 3, 64, 64) moved by L2 projected gradient ascent (``steps`` steps, radius ``eps`` per
    image) on the contrastive loss against the fixed unit caption embeddings ``txt``. Training on them
    (adversarial training) makes the image tower's pixel gradients point at visible changes."""
    scale = model.logit_scale.exp().clamp(max=100).detach()
    delta = torch.zeros_like(images)
    for _ in range(steps):
        delta.requires_grad_(True)
        img = F.normalize(model.encode_image(normalise(images + delta)), dim=-1)
        (grad,) = torch.autograd.grad(soft_clip_loss(img, txt, scale, target), delta)
        grad = grad / grad.flatten(1).norm(dim=1).clamp(min=1e-12).view(-1, 1, 1, 1)
        delta = delta.detach() + 0.75 * eps * grad
        delta = delta * (eps / delta.flatten(1).norm(dim=1).clamp(min=1e-12)).clamp(max=1).view(-1, 1, 1, 1)
    return images + delta.detach()


def palette_blocks(pal: torch.Tensor, k: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """(1, 3, size, size): a k x k grid of random colours of ``pal`` (P, 3), nearest-upsampled."""
    field = pal[torch.randint(0, len(pal), (k * k,), generator=gen)].T.reshape(1, 3, k, k)
    return F.interpolate(field, size=size, mode="nearest")


def blob_corrupt(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """``images`` (N, 3, S, S) with random areas painted over by flat palette-coloured blocks (grids of
    2-16 cells, nearest-upsampled, as a VQGAN's first steps look) or, for some, blended wholly into them."""
    n, _, s, _ = images.shape
    out = torch.empty_like(images)
    pal = palette_tensor(images.device)
    for i in range(n):
        k = 2 ** int(torch.randint(1, 5, (1,), generator=gen))
        painted = palette_blocks(pal, k, s, gen)
        m = 2 ** int(torch.randint(1, 4, (1,), generator=gen))
        keep = (torch.rand(1, 1, m, m, generator=gen) < torch.rand(1, generator=gen)).float()
        mask = F.interpolate(keep, size=s, mode="nearest")
        mixed = images[i : i + 1] * mask + painted * (1 - mask)
        alpha = float(torch.rand(1, generator=gen)) if float(torch.rand(1, generator=gen)) < 0.3 else 0.0
        out[i : i + 1] = mixed * (1 - alpha) + painted * alpha
    return out


def stray_colours(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """``images`` (N, 3, S, S) with stray palette-coloured cells (grids of 4-16 cells, each painted with
    probability 0.08-0.3): scenes with the clutter that no caption allows, as negatives."""
    n, _, s, _ = images.shape
    pal = palette_tensor(images.device)
    out = images.clone()
    for i in range(n):
        k = 2 ** int(torch.randint(2, 5, (1,), generator=gen))
        p = 0.08 + 0.22 * float(torch.rand(1, generator=gen))
        cells = (torch.rand(1, 1, k, k, generator=gen) < p).float()
        mask = F.interpolate(cells, size=s, mode="nearest")
        out[i : i + 1] = images[i : i + 1] * (1 - mask) + palette_blocks(pal, k, s, gen) * mask
    return out


def gradient_alignment(model, txt: torch.Tensor, clean: torch.Tensor, corrupted: torch.Tensor,
                       create_graph: bool = True) -> torch.Tensor:
    """Per image, the cosine between the image gradient of the similarity to its caption (``txt`` (N, D),
    unit) at ``corrupted`` and the repair direction ``clean - corrupted``: 1 when ascending the CLIP score
    moves the image straight back to its scene (perceptually aligned gradients)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    x = corrupted.detach().requires_grad_(True)
    with sdpa_kernel(SDPBackend.MATH):  # the fused attention kernels have no double backward
        sim = (F.normalize(model.encode_image(normalise(x)), dim=-1) * txt).sum()
        (grad,) = torch.autograd.grad(sim, x, create_graph=create_graph)
    return F.cosine_similarity(grad.flatten(1), (clean - x).detach().flatten(1), dim=1)


def scene_corrupt(scenes: list, gen: torch.Generator) -> list:
    """Near misses of ``scenes``: each shape may turn into another shape, move, grow or shrink, and some scenes
    get a stray copy of a shape elsewhere; the repair direction then says what is wrong with the shape."""
    rng = rng_from(gen)
    out = []
    for scene in scenes:
        objects = []
        for obj in scene.objects:
            shape = rng.choice([s for s in SHAPES if s != obj.shape]) if rng.random() < 0.5 else obj.shape
            objects.append(replace(obj, shape=shape, cx=obj.cx + rng.uniform(-0.1, 0.1),
                                   cy=obj.cy + rng.uniform(-0.1, 0.1), r=obj.r * rng.uniform(0.7, 1.3)))
        if rng.random() < 0.3:
            twin = rng.choice(objects)
            objects.append(replace(twin, cx=rng.uniform(0.1, 0.9), cy=rng.uniform(0.1, 0.9), r=twin.r * 0.5))
        out.append(replace(scene, objects=tuple(objects)))
    return out


def minimal_pair_loss(img: torch.Tensor, txt: torch.Tensor, pairs: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Contrastive loss within each minimal pair ``(i, j)`` (P, 2) of image rows / caption columns: image i must
    pick caption i over caption j and caption i image i over image j, and the same for j; img, txt unit."""
    i, j = pairs[:, 0], pairs[:, 1]
    same = torch.stack([(img[i] * txt[i]).sum(1), (img[j] * txt[j]).sum(1)])  # (2, P)
    cross = torch.stack([(img[i] * txt[j]).sum(1), (img[j] * txt[i]).sum(1)])  # an image with the other's caption
    return (F.softplus(scale * (cross - same)).mean() + F.softplus(scale * (cross.flip(0) - same)).mean()) / 2
