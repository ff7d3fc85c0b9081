"""An analytic checker of shapes images against captions: palette labels, coverage, centroids, boxes.

It never uses a CLIP score. The image is resized to ``WORK_SIZE`` square, each pixel gets the nearest palette
colour (or "off-palette" when none is within ``OFF_PALETTE_DIST``), a ``MODE_KERNEL`` majority filter removes
speckle and anti-aliasing seams, and then, with every threshold fixed here:

- background: the most frequent colour; it must cover at least ``MIN_BACKGROUND`` of the image, be the
  caption's background colour when one is named, and never be a shape's colour;
- each shape: the pixels of its colour (thin seams removed by ``clean_mask``) cover at least
  ``MIN_COVERAGE`` and span at least ``MIN_EXTENT``; its box's aspect ratio stays within ``MAX_ASPECT``;
  the shape is the ideal circle / square / up-pointing triangle inscribed in the box that overlaps the mask
  best, with IoU at least ``MIN_SHAPE_IOU`` (more robust than the box fill ratio alone: circle ~0.785,
  square ~1, triangle ~0.5, which is reported as ``fill``);
- size, position and relation use the world's thresholds (``pixgen.shapes.world``) on the measured extent
  (largest side of the box) and the area centroid;
- no shape may touch the image border: a shape cut off by the frame has no knowable shape, size or centre
  (its visible part can fill its box like a square), and true scenes keep a margin to the frame;
- clutter: pixels that are neither the background nor a named shape's colour (off-palette included)
  cover at most ``MAX_CLUTTER``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from pixgen.errors import PixgenError
from pixgen.shapes.render import palette_tensor
from pixgen.shapes.world import (
    COLOURS,
    LARGE_MIN_EXTENT,
    SMALL_MAX_EXTENT,
    Spec,
    parse_caption,
    position_holds,
    relation_holds,
)

WORK_SIZE = 128
PURE_DIST = 0.12
MIN_PRESENT = 0.001
OFF_PALETTE_DIST = 0.3
MIN_BACKGROUND = 0.3
MIN_COVERAGE = 0.004
MIN_EXTENT = 0.08
MAX_ASPECT = 1.6
MAX_CLUTTER = 0.06
MIN_SHAPE_IOU = 0.7


@dataclass
class OracleResult:
    """Whether the image satisfies the caption, why not (``reasons``) and what was measured (``details``)."""

    passed: bool
    reasons: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


def to_chw(image: Any) -> torch.Tensor:
    """A PIL image or a (3,H,W)/(1,3,H,W) tensor in [0, 1] as a float (3, H, W) CPU tensor."""
    if hasattr(image, "convert") and hasattr(image, "size"):
        import numpy as np

        arr = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0  # (H, W, 3)
        return torch.from_numpy(arr).permute(2, 0, 1).contiguous()
    if not isinstance(image, torch.Tensor):
        raise PixgenError(f"oracle: expected a PIL image or a tensor, got {type(image).__name__}")
    img = image.detach().float().cpu()
    if img.dim() == 4 and img.shape[0] == 1:
        img = img[0]
    if img.dim() != 3 or img.shape[0] != 3:
        raise PixgenError(f"oracle: expected an image of shape (3,H,W) or (1,3,H,W), got {tuple(image.shape)}")
    return img.clamp(0, 1)


def working_image(image: Any) -> torch.Tensor:
    """The image as (1, 3, WORK_SIZE, WORK_SIZE): area-downsampled or bilinearly upsampled."""
    img = to_chw(image).unsqueeze(0)  # (1, 3, H, W)
    mode = "area" if min(img.shape[-2:]) >= WORK_SIZE else "bilinear"
    return F.interpolate(img, size=(WORK_SIZE, WORK_SIZE), mode=mode)


def palette_labels(image: Any) -> torch.Tensor:
    """(S, S) long labels: palette index (``COLOURS`` order) or ``len(COLOURS)`` for off-palette pixels.

    Only colours *present* in the image compete: a colour is present when, after a 3x3 box blur, at least
    ``MIN_PRESENT`` of the pixels are within ``PURE_DIST`` of it and survive a 3x3 erosion (so the blended
    seam between red and yellow is not mistaken for an orange shape). A 3x3 majority filter removes speckle.
    """
    img = working_image(image)
    size = img.shape[-1]
    pal = palette_tensor()  # (P, 3)
    smooth = F.avg_pool2d(F.pad(img, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    dist = torch.cdist(smooth[0].permute(1, 2, 0).reshape(-1, 3), pal)  # (S*S, P)
    best, label = dist.min(dim=1)
    pure = F.one_hot(label, len(pal)).T.float() * (best < PURE_DIST).float()  # (P, S*S)
    eroded = -F.max_pool2d(-pure.view(1, -1, size, size), 3, stride=1, padding=1)
    present = eroded[0].flatten(1).mean(dim=1) >= MIN_PRESENT  # (P,)
    if not present.any():
        return torch.full((size, size), len(COLOURS), dtype=torch.long)
    ids = torch.cat([present.nonzero().flatten(), torch.tensor([len(COLOURS)])])  # (K+1,) last: off-palette
    best, label = torch.cdist(img[0].permute(1, 2, 0).reshape(-1, 3), pal[ids[:-1]]).min(dim=1)  # (S*S,)
    label[best > OFF_PALETTE_DIST] = len(ids) - 1
    onehot = F.one_hot(label, len(ids)).T.float().reshape(1, -1, size, size)  # (1, K+1, S, S)
    votes = F.avg_pool2d(onehot, 3, stride=1, padding=1, count_include_pad=False)[0]
    return ids[votes.argmax(dim=0)]


def clean_mask(mask: torch.Tensor) -> torch.Tensor:
    """Opening by reconstruction of a boolean (S, S) mask: drops parts under 3 pixels wide (seams between
    two other colours) but keeps every pixel connected to a thicker core (sharp corners survive)."""
    m = mask.float().view(1, 1, *mask.shape)
    core = -F.max_pool2d(-m, 3, stride=1, padding=1)
    for _ in range(mask.shape[-1]):
        grown = F.max_pool2d(core, 3, stride=1, padding=1) * m
        if torch.equal(grown, core):
            break
        core = grown
    return core[0, 0] > 0.5


def measure(mask: torch.Tensor) -> dict[str, float]:
    """Coverage, centroid, robust box extent, fill ratio and aspect of a boolean (S, S) mask (fractions)."""
    size = mask.shape[-1]
    ys, xs = torch.nonzero(mask, as_tuple=True)
    if len(xs) < 4:
        return {"coverage": len(xs) / mask.numel(), "extent": 0.0}
    xs, ys = xs.float(), ys.float()
    x0, x1, y0, y1 = xs.min().item(), xs.max().item(), ys.min().item(), ys.max().item()
    w, h = x1 - x0 + 1, y1 - y0 + 1
    inside = ((xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)).sum().item()
    return {
        "coverage": len(xs) / mask.numel(),
        "cx": (xs.mean().item() + 0.5) / size,
        "cy": (ys.mean().item() + 0.5) / size,
        "extent": max(w, h) / size,
        "fill": inside / (w * h),
        "aspect": w / h,
        "box": (x0, x1, y0, y1),
        "cut": x0 == 0 or y0 == 0 or x1 == size - 1 or y1 == size - 1,  # touches the image border
    }


def templates(box: tuple[float, float, float, float], size: int) -> dict[str, torch.Tensor]:
    """Ideal (size, size) masks of each shape inscribed in the pixel box ``(x0, x1, y0, y1)`` (inclusive)."""
    x0, x1, y0, y1 = box
    c = torch.arange(size, dtype=torch.float32)
    xs, ys = c.view(1, -1), c.view(-1, 1)
    hw, hh = (x1 - x0 + 1) / 2, (y1 - y0 + 1) / 2
    u, v = (xs - (x0 + x1) / 2) / hw, (ys - (y0 + y1) / 2) / hh  # box -> [-1, 1]^2
    in_box = (u.abs() <= 1) & (v.abs() <= 1)
    return {
        "circle": u * u + v * v <= 1,
        "square": in_box,
        "triangle": in_box & (u.abs() <= (v + 1) / 2),  # apex at the top, base at the bottom
    }


def shape_of(mask: torch.Tensor, m: dict[str, float]) -> tuple[str | None, dict[str, float]]:
    """The shape whose ideal template in the mask's box overlaps it best (IoU), and all IoUs."""
    if m.get("extent", 0) < MIN_EXTENT or not 1 / MAX_ASPECT <= m["aspect"] <= MAX_ASPECT:
        return None, {}
    ious = {}
    for name, tpl in templates(m["box"], mask.shape[-1]).items():
        ious[name] = round(((tpl & mask).sum() / (tpl | mask).sum()).item(), 3)
    best = max(ious, key=ious.__getitem__)
    return (best if ious[best] >= MIN_SHAPE_IOU else None), ious


def check(image: Any, caption: str | Spec) -> OracleResult:
    """Does ``image`` satisfy ``caption``? Returns the verdict, the failed tests and the measurements."""
    spec = parse_caption(caption) if isinstance(caption, str) else caption
    labels = palette_labels(image)
    fractions = torch.bincount(labels.flatten(), minlength=len(COLOURS) + 1).float() / labels.numel()
    bg = int(fractions[: len(COLOURS)].argmax())
    details: dict[str, Any] = {
        "background": COLOURS[bg],
        "fractions": {name: round(float(f), 4) for name, f in zip((*COLOURS, "off"), fractions, strict=True) if f > 0},
    }
    reasons = _check_background(spec, bg, float(fractions[bg]))
    named = {COLOURS.index(o.colour) for o in spec.objects} | {bg}
    clutter = 1.0 - sum(float(fractions[i]) for i in named)
    details["clutter"] = round(clutter, 4)
    if clutter > MAX_CLUTTER:
        reasons.append(f"other colours cover {clutter:.1%} of the image (at most {MAX_CLUTTER:.0%})")
    objects = []
    for obj in spec.objects:
        mask = clean_mask(labels == COLOURS.index(obj.colour))
        m = measure(mask)
        m["shape"], m["iou"] = shape_of(mask, m)
        objects.append(m)
        reasons += _check_object(obj, m)
    details["objects"] = objects
    if spec.relation is not None and not reasons:
        a, b = objects
        if not relation_holds(spec.relation, (a["cx"], a["cy"]), (b["cx"], b["cy"])):
            first, second = spec.objects
            reasons.append(f"the {first.colour} shape is not {spec.relation} the {second.colour} one")
    return OracleResult(not reasons, reasons, details)


def _check_background(spec: Spec, bg: int, fraction: float) -> list[str]:
    reasons = []
    if fraction < MIN_BACKGROUND:
        reasons.append(f"no background: the most frequent colour covers only {fraction:.1%}")
    if spec.background is not None and COLOURS[bg] != spec.background:
        reasons.append(f"background is {COLOURS[bg]}, not {spec.background}")
    if any(o.colour == COLOURS[bg] for o in spec.objects):
        reasons.append(f"the {COLOURS[bg]} shape's colour fills the background")
    return reasons


def _check_object(obj: Any, m: dict[str, Any]) -> list[str]:
    what = f"{obj.colour} {obj.shape}"
    if m["coverage"] < MIN_COVERAGE or m["extent"] < MIN_EXTENT:
        return [f"no {obj.colour} shape: {obj.colour} covers {m['coverage']:.2%} (needs {MIN_COVERAGE:.1%})"]
    reasons = []
    if m["cut"]:  # its shape, size and centre are unknown: scenes are drawn with a margin to the frame
        reasons.append(f"the {obj.colour} shape is cut off by the image border (nothing of it may touch the edge)")
    if m["shape"] != obj.shape:
        reasons.append(f"the {obj.colour} shape looks like a {m['shape'] or 'blob'} (IoU {m['iou']}), "
                       f"not a {obj.shape}")
    if obj.size == "small" and m["extent"] > SMALL_MAX_EXTENT:
        reasons.append(f"the {what} is not small (extent {m['extent']:.2f} > {SMALL_MAX_EXTENT})")
    if obj.size == "large" and m["extent"] < LARGE_MIN_EXTENT:
        reasons.append(f"the {what} is not large (extent {m['extent']:.2f} < {LARGE_MIN_EXTENT})")
    if obj.position and not position_holds(obj.position, m["cx"], m["cy"]):
        reasons.append(f"the {what} is not at the {obj.position} (centroid {m['cx']:.2f}, {m['cy']:.2f})")
    return reasons
