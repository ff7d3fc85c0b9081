"""The shapes world: palette, vocabulary, scenes, the caption grammar and what a caption means.

Coordinates are fractions of the image: x to the right, y down, (0, 0) the top-left corner. An object's
``(cx, cy)`` is its area centroid and ``r`` its half-extent (the bounding box is ``2r`` wide and ``2r``
high). Triangles point up; their centroid sits a third of the height above the base.

Semantics (shared by :func:`describes` and the oracle, which measures the same quantities in pixels):

- size: ``small`` = extent ``2r`` at most ``SMALL_MAX_EXTENT``; ``large`` = at least ``LARGE_MIN_EXTENT``.
- position: ``left`` = cx < ``POS_LO``; ``right`` = cx > ``POS_HI`` (same for top/bottom with cy);
  ``center`` = both coordinates within ``CENTER_TOL`` of 0.5. The other coordinate is free.
- relation ``A above B``: B.cy - A.cy >= ``REL_MIN_OFFSET`` and that offset dominates the horizontal one
  (likewise ``below``, ``left of``, ``right of``).
- a one-shape caption describes only scenes with exactly one shape; a two-shape caption only scenes with
  two shapes. An omitted attribute (size, position, background) is true for every value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from pixgen.errors import PixgenError

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (240, 130, 20),
    "yellow": (240, 220, 30),
    "green": (30, 170, 50),
    "blue": (30, 70, 220),
    "purple": (140, 40, 190),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
COLOURS: tuple[str, ...] = tuple(PALETTE)
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
SIZES: tuple[str, ...] = ("small", "large")
POSITIONS: tuple[str, ...] = ("left", "right", "top", "bottom", "center")
RELATIONS: tuple[str, ...] = ("above", "below", "left of", "right of")

SMALL_MAX_EXTENT = 0.30
LARGE_MIN_EXTENT = 0.34
POS_LO, POS_HI = 0.4, 0.6
CENTER_TOL = 0.15
REL_MIN_OFFSET = 0.1

# the demo's 12 captions (single shapes with backgrounds, positions, two-shape relations), measured by
# scripts/eval_shapes.py and by the shapes VQGAN's held-out report
DEMO_CAPTIONS: tuple[str, ...] = (
    "a red circle on a blue background",
    "a yellow square on a black background",
    "a green triangle on a white background",
    "a large purple circle on a yellow background",
    "a blue square on the left",
    "a small orange circle on the right on a white background",
    "a white triangle on the top on a green background",
    "a red square in the center on a white background",
    "a red circle above a blue square",
    "a yellow triangle left of a purple circle on a black background",
    "a green square below a white circle",
    "a blue circle right of an orange triangle",
)

GRAMMAR = (
    "a [small|large] COLOUR SHAPE [on the left|right|top|bottom | in the center] [on a COLOUR background]"
    " or: a COLOUR SHAPE above|below|left of|right of a COLOUR SHAPE [on a COLOUR background];"
    f" COLOUR is one of {', '.join(COLOURS)}; SHAPE is one of {', '.join(SHAPES)}"
)


@dataclass(frozen=True)
class Shape:
    """One drawn shape: kind, palette colour, area centroid ``(cx, cy)`` and half-extent ``r`` (fractions)."""

    shape: str
    colour: str
    cx: float
    cy: float
    r: float


@dataclass(frozen=True)
class Scene:
    """A background colour and one or two shapes (drawn in order)."""

    background: str
    objects: tuple[Shape, ...]


@dataclass(frozen=True)
class ObjectSpec:
    """What a caption says about one shape; ``None`` means the caption leaves it open."""

    colour: str
    shape: str
    size: str | None = None
    position: str | None = None


@dataclass(frozen=True)
class Spec:
    """A parsed caption: one shape (with size/position) or two shapes and a relation; open background."""

    objects: tuple[ObjectSpec, ...]
    relation: str | None = None
    background: str | None = None


_COL = "|".join(COLOURS)
_SHP = "|".join(SHAPES)
_BG = rf"(?: on an? (?P<bg>{_COL}) background)?"
_SINGLE = re.compile(
    rf"an? (?:(?P<size>small|large) )?(?P<col>{_COL}) (?P<shape>{_SHP})"
    rf"(?: on the (?P<pos>left|right|top|bottom)| in the (?P<center>center|centre))?{_BG}"
)
_PAIR = re.compile(
    rf"an? (?P<col1>{_COL}) (?P<shape1>{_SHP}) (?P<rel>above|below|left of|right of)"
    rf" an? (?P<col2>{_COL}) (?P<shape2>{_SHP}){_BG}"
)


def parse_caption(text: str) -> Spec:
    """Parse a caption of the shapes grammar into a :class:`Spec`; anything else raises ``PixgenError``."""
    norm = " ".join(text.lower().replace(",", " ").split()).rstrip(".").strip()
    if m := _SINGLE.fullmatch(norm):
        position = "center" if m["center"] else m["pos"]
        spec = Spec((ObjectSpec(m["col"], m["shape"], m["size"], position),), None, m["bg"])
    elif m := _PAIR.fullmatch(norm):
        objs = (ObjectSpec(m["col1"], m["shape1"]), ObjectSpec(m["col2"], m["shape2"]))
        if objs[0].colour == objs[1].colour:
            raise PixgenError(f"caption {text!r}: the two shapes must have different colours")
        spec = Spec(objs, m["rel"], m["bg"])
    else:
        raise PixgenError(f"caption {text!r} is not in the shapes grammar; write: {GRAMMAR}")
    if spec.background is not None and any(o.colour == spec.background for o in spec.objects):
        raise PixgenError(f"caption {text!r}: a shape cannot have the background's colour; pick another colour")
    return spec


def article(word: str) -> str:
    """``a`` or ``an`` for the word that follows."""
    return "an" if word[0] in "aeiou" else "a"


def spec_caption(spec: Spec) -> str:
    """The canonical caption text of a spec (the inverse of :func:`parse_caption`)."""
    parts = []
    for i, obj in enumerate(spec.objects):
        words = [w for w in (obj.size, obj.colour, obj.shape) if w]
        phrase = f"{article(words[0])} {' '.join(words)}"
        if obj.position == "center":
            phrase += " in the center"
        elif obj.position:
            phrase += f" on the {obj.position}"
        parts.append(phrase)
        if i == 0 and spec.relation:
            parts.append(spec.relation)
    if spec.background:
        parts.append(f"on {article(spec.background)} {spec.background} background")
    return " ".join(parts)


def size_of(obj: Shape) -> str | None:
    """``small``, ``large`` or ``None`` (in between) from the shape's extent ``2r``."""
    if 2 * obj.r <= SMALL_MAX_EXTENT:
        return "small"
    if 2 * obj.r >= LARGE_MIN_EXTENT:
        return "large"
    return None


def position_holds(position: str, cx: float, cy: float) -> bool:
    """Whether a centroid ``(cx, cy)`` is at the named position (see the module docstring)."""
    tests = {
        "left": cx < POS_LO,
        "right": cx > POS_HI,
        "top": cy < POS_LO,
        "bottom": cy > POS_HI,
        "center": abs(cx - 0.5) <= CENTER_TOL and abs(cy - 0.5) <= CENTER_TOL,
    }
    return tests[position]


def relation_holds(relation: str, a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether centroid ``a`` is in ``relation`` to centroid ``b`` (dominant axis, minimum offset)."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    main, other = {"above": (dy, dx), "below": (-dy, dx), "left of": (dx, dy), "right of": (-dx, dy)}[relation]
    return main >= REL_MIN_OFFSET and main >= abs(other)


def _object_matches(spec: ObjectSpec, obj: Shape) -> bool:
    if (spec.colour, spec.shape) != (obj.colour, obj.shape):
        return False
    if spec.size is not None and size_of(obj) != spec.size:
        return False
    return spec.position is None or position_holds(spec.position, obj.cx, obj.cy)


def describes(spec: Spec, scene: Scene) -> bool:
    """True when the caption ``spec`` is a true description of ``scene`` (open attributes match anything)."""
    if spec.background is not None and spec.background != scene.background:
        return False
    if len(spec.objects) != len(scene.objects):
        return False
    if spec.relation is None:
        return _object_matches(spec.objects[0], scene.objects[0])
    for a, b in ((0, 1), (1, 0)):
        sa, sb = scene.objects[a], scene.objects[b]
        if _object_matches(spec.objects[0], sa) and _object_matches(spec.objects[1], sb):
            if relation_holds(spec.relation, (sa.cx, sa.cy), (sb.cx, sb.cy)):
                return True
    return False


def scene_spec(scene: Scene) -> Spec:
    """The most specific spec that is true of ``scene`` (positions and relations only when unambiguous)."""
    if len(scene.objects) == 1:
        obj = scene.objects[0]
        named = [p for p in POSITIONS if position_holds(p, obj.cx, obj.cy)]
        position = "center" if "center" in named else (named[0] if len(named) == 1 else None)
        return Spec((ObjectSpec(obj.colour, obj.shape, size_of(obj), position),), None, scene.background)
    a, b = scene.objects
    rel = next((r for r in RELATIONS if relation_holds(r, (a.cx, a.cy), (b.cx, b.cy))), None)
    if rel is None:
        raise PixgenError("scene_spec: the two shapes are too close for any relation to hold")
    return Spec((ObjectSpec(a.colour, a.shape), ObjectSpec(b.colour, b.shape)), rel, scene.background)


def caption_of(scene: Scene) -> str:
    """The most specific caption that is true of ``scene``."""
    return spec_caption(scene_spec(scene))


#: for a relation, the box (x0, y0, x1, y1) of the first shape and of the second: middle squares of two halves
RELATION_BOXES: dict[str, tuple[tuple[float, float, float, float], tuple[float, float, float, float]]] = {
    "above": ((0.25, 0.0, 0.75, 0.5), (0.25, 0.5, 0.75, 1.0)),
    "below": ((0.25, 0.5, 0.75, 1.0), (0.25, 0.0, 0.75, 0.5)),
    "left of": ((0.0, 0.25, 0.5, 0.75), (0.5, 0.25, 1.0, 0.75)),
    "right of": ((0.5, 0.25, 1.0, 0.75), (0.0, 0.25, 0.5, 0.75)),
}


def relation_boxes(caption: str, size: str | None = None) -> list[tuple[str, tuple[float, float, float, float]]]:
    """For a two-shape caption, each shape's one-shape caption ("in the center", of ``size`` if given, with the
    caption's background) and its box (fractions of the image); ``[]`` for any other caption."""
    try:
        spec = parse_caption(caption)
    except PixgenError:
        return []
    if spec.relation is None:
        return []
    return [(spec_caption(Spec((replace(obj, position="center", size=size),), None, spec.background)), box)
            for obj, box in zip(spec.objects, RELATION_BOXES[spec.relation], strict=True)]
