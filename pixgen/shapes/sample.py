"""Random captions and scenes of the shapes world, reproducible from a ``torch.Generator``.

Scenes are drawn *inside* the caption's meaning with a margin (``left`` puts the centroid at most at
``POS_LO - POS_MARGIN``), so ground-truth renders pass the oracle's fixed thresholds with room to spare.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import torch

from pixgen.errors import PixgenError
from pixgen.shapes.world import (
    CENTER_TOL,
    COLOURS,
    POS_HI,
    POS_LO,
    POSITIONS,
    RELATIONS,
    SHAPES,
    ObjectSpec,
    Scene,
    Shape,
    Spec,
)

SMALL_R = (0.07, 0.12)
LARGE_R = (0.19, 0.24)
PAIR_R = (0.08, 0.15)
FRAME_MARGIN = 0.02
POS_MARGIN = 0.06
REL_MIN_SAMPLED = 0.22
REL_MAX_OTHER = 0.6
PAIR_GAP = 0.04


def rng_from(generator: torch.Generator) -> random.Random:
    """A ``random.Random`` seeded from one draw of ``generator`` (keeps everything reproducible)."""
    return random.Random(int(torch.randint(0, 2**62, (1,), generator=generator)))


def extents(shape: str, r: float) -> tuple[float, float, float]:
    """``(half_width, up, down)``: bounding-box distances from the centroid (triangles sit low)."""
    if shape == "triangle":
        return r, 4 * r / 3, 2 * r / 3
    return r, r, r


def sample_spec(rng: random.Random) -> Spec:
    """A random caption spec; each optional attribute is left open about half the time."""
    background = rng.choice(COLOURS) if rng.random() < 0.6 else None
    free = [c for c in COLOURS if c != background]
    if rng.random() < 0.55:
        obj = ObjectSpec(
            rng.choice(free),
            rng.choice(SHAPES),
            rng.choice(("small", "large")) if rng.random() < 0.5 else None,
            rng.choice(POSITIONS) if rng.random() < 0.6 else None,
        )
        return Spec((obj,), None, background)
    c1, c2 = rng.sample(free, 2)
    objs = (ObjectSpec(c1, rng.choice(SHAPES)), ObjectSpec(c2, rng.choice(SHAPES)))
    return Spec(objs, rng.choice(RELATIONS), background)


def mutate_spec(spec: Spec, rng: random.Random, kind: str | None = None) -> Spec | None:
    """A spec that differs from ``spec`` in one attribute (a hard negative for contrastive training): its
    ``kind`` (colour, shape, background or extra: size/position/relation) or a random one. With a ``kind``
    that cannot apply, ``None``; without one, a fresh random spec when no variant is found."""
    for _ in range(20):
        out = _mutate_once(spec, rng, kind)
        if out != spec and _valid(out):
            return out
    return None if kind else sample_spec(rng)


def clutter_scene(rng: random.Random) -> Scene:
    """A scene no caption describes: two or three shapes of one colour anywhere (overlaps make odd blobs),
    sometimes with one more shape of another colour; teaches that "a red circle" means exactly one."""
    colour = rng.choice(COLOURS)
    others = [c for c in COLOURS if c != colour]
    background = rng.choice(others)
    objects = [_free_shape(colour, rng) for _ in range(rng.choice((2, 2, 3)))]
    if rng.random() < 0.4:
        objects.append(_free_shape(rng.choice([c for c in others if c != background]), rng))
    return Scene(background, tuple(objects))


def _free_shape(colour: str, rng: random.Random) -> Shape:
    r = rng.uniform(SMALL_R[0], LARGE_R[0])
    return Shape(rng.choice(SHAPES), colour, rng.uniform(r, 1 - r), rng.uniform(r, 1 - r), r)


MUTATIONS = ("colour", "shape", "background", "size", "position", "relation", "order", "binding")


def _mutate_once(spec: Spec, rng: random.Random, kind: str | None = None) -> Spec:
    """One attribute changed; ``kind`` is one of ``MUTATIONS`` (random: colour, shape, background or extra)."""
    i = rng.randrange(len(spec.objects))
    obj = spec.objects[i]
    kind = kind or rng.choice(("colour", "shape", "background", "extra"))
    if kind == "extra":
        pair = spec.relation is not None
        kind = rng.choice(("order", "relation") if pair else ("size", "position"))
    if kind == "background":
        return replace(spec, background=rng.choice(COLOURS))
    if kind in ("order", "relation", "binding"):
        if spec.relation is None:
            return spec
        if kind == "order":
            return replace(spec, objects=spec.objects[::-1])
        if kind == "binding":  # the two shapes exchange their colours or their kinds
            return replace(spec, objects=exchange(*spec.objects, (rng.choice(("colour", "shape")),)))
        return replace(spec, relation=rng.choice(RELATIONS))
    if kind in ("size", "position") and spec.relation is not None:
        return spec
    field_values = {"colour": COLOURS, "shape": SHAPES, "size": ("small", "large"), "position": POSITIONS}
    obj = replace(obj, **{kind: rng.choice(field_values[kind])})
    objects = list(spec.objects)
    objects[i] = obj
    return replace(spec, objects=tuple(objects))


def exchange(a: Any, b: Any, fields: tuple[str, ...]) -> tuple[Any, Any]:
    """Two shapes (or object specs) with the named fields (``colour``, ``shape``) exchanged between them."""
    return replace(a, **{f: getattr(b, f) for f in fields}), replace(b, **{f: getattr(a, f) for f in fields})


def in_frame(scene: Scene) -> bool:
    """Whether every shape of ``scene`` keeps the sampler's margin to the image border."""
    for obj in scene.objects:
        half, up, down = extents(obj.shape, obj.r)
        lo, hi = FRAME_MARGIN, 1 - FRAME_MARGIN
        if obj.cx - half < lo or obj.cx + half > hi or obj.cy - up < lo or obj.cy + down > hi:
            return False
    return True


def _valid(spec: Spec) -> bool:
    colours = [o.colour for o in spec.objects]
    return len(set(colours)) == len(colours) and spec.background not in colours


def sample_scene(spec: Spec, rng: random.Random) -> Scene:
    """A random scene that ``spec`` describes, with open attributes filled at random."""
    colours = {o.colour for o in spec.objects}
    background = spec.background or rng.choice([c for c in COLOURS if c not in colours])
    for _ in range(200):
        if spec.relation is None:
            objects = _place_single(spec.objects[0], rng)
        else:
            objects = _place_pair(spec, rng)
        if objects is not None:
            return Scene(background, objects)
    raise PixgenError(f"could not place a scene for {spec}; this is a bug in pixgen.shapes.sample")


def _position_range(position: str | None, axis: int) -> tuple[float, float]:
    lo_hi = {
        "left": ((0.0, POS_LO - POS_MARGIN), (0.0, 1.0)),
        "right": ((POS_HI + POS_MARGIN, 1.0), (0.0, 1.0)),
        "top": ((0.0, 1.0), (0.0, POS_LO - POS_MARGIN)),
        "bottom": ((0.0, 1.0), (POS_HI + POS_MARGIN, 1.0)),
        "center": ((0.5 - CENTER_TOL / 2, 0.5 + CENTER_TOL / 2),) * 2,
    }
    return lo_hi[position][axis] if position else (0.0, 1.0)


def _place_single(spec: ObjectSpec, rng: random.Random) -> tuple[Shape] | None:
    size = spec.size or rng.choice(("small", "large"))
    r = rng.uniform(*(SMALL_R if size == "small" else LARGE_R))
    half, up, down = extents(spec.shape, r)
    fx = (FRAME_MARGIN + half, 1 - FRAME_MARGIN - half)
    fy = (FRAME_MARGIN + up, 1 - FRAME_MARGIN - down)
    px, py = _position_range(spec.position, 0), _position_range(spec.position, 1)
    lo_x, hi_x = max(fx[0], px[0]), min(fx[1], px[1])
    lo_y, hi_y = max(fy[0], py[0]), min(fy[1], py[1])
    if lo_x > hi_x or lo_y > hi_y:
        return None
    return (Shape(spec.shape, spec.colour, rng.uniform(lo_x, hi_x), rng.uniform(lo_y, hi_y), r),)


def _place_pair(spec: Spec, rng: random.Random) -> tuple[Shape, Shape] | None:
    first, second = spec.objects
    if spec.relation in ("below", "right of"):  # place as "second above/left of first"
        first, second = second, first
    axis = 1 if spec.relation in ("above", "below") else 0
    ra, rb = rng.uniform(*PAIR_R), rng.uniform(*PAIR_R)
    ea, eb = extents(first.shape, ra), extents(second.shape, rb)
    # along the main axis: a_low_side = how far a reaches towards b, b_high_side = b's reach towards a
    a_main = (ea[2], ea[1]) if axis == 1 else (ea[0], ea[0])  # (towards b, away from b)
    b_main = (eb[1], eb[2]) if axis == 1 else (eb[0], eb[0])
    d = rng.uniform(max(REL_MIN_SAMPLED, a_main[0] + b_main[0] + PAIR_GAP), 0.8)
    o = rng.uniform(-REL_MAX_OTHER * d, REL_MAX_OTHER * d)
    lo_main, hi_main = FRAME_MARGIN + a_main[1], 1 - FRAME_MARGIN - b_main[1] - d
    a_cross = (ea[0], ea[0]) if axis == 1 else (ea[1], ea[2])  # (low side, high side)
    b_cross = (eb[0], eb[0]) if axis == 1 else (eb[1], eb[2])
    lo_cross = max(FRAME_MARGIN + a_cross[0], FRAME_MARGIN + b_cross[0] - o)
    hi_cross = min(1 - FRAME_MARGIN - a_cross[1], 1 - FRAME_MARGIN - b_cross[1] - o)
    if lo_main > hi_main or lo_cross > hi_cross:
        return None
    m, c = rng.uniform(lo_main, hi_main), rng.uniform(lo_cross, hi_cross)
    pa, pb = ((c, m), (c + o, m + d)) if axis == 1 else ((m, c), (m + d, c + o))
    a = Shape(first.shape, first.colour, pa[0], pa[1], ra)
    b = Shape(second.shape, second.colour, pb[0], pb[1], rb)
    return (a, b) if spec.objects[0] == first else (b, a)


def sample_batch(n: int, generator: torch.Generator, hard_negatives: bool = True) -> tuple[list[Scene], list[Spec]]:
    """``n`` (scene, spec) pairs; with ``hard_negatives`` every second spec is a one-attribute variant of
    the one before it, so a batch contains captions that differ only in a detail."""
    rng = rng_from(generator)
    specs: list[Spec] = []
    while len(specs) < n:
        spec = sample_spec(rng)
        specs.append(spec)
        if hard_negatives and len(specs) < n:
            specs.append(mutate_spec(spec, rng))
    return [sample_scene(s, rng) for s in specs], specs
