"""Near-miss scenes for the caption-conditioned denoiser: a true scene with what its caption says made wrong.

Generation's failures are scenes that are almost right: a blob of the right colour that is the wrong shape,
a background of the wrong colour, an extra copy of a shape. The conditioned denoiser
(``pixgen.shapes.denoiser``) learns to map such scenes, further damaged by ``corrupt``, back to the true
scene, reading from the caption what to fix. Every change can be undone from the caption and the image alone:
shapes keep their place and size (a moved shape's true place could not be told), and the background changes
only where the caption names it.
"""

from __future__ import annotations

import random
from dataclasses import replace

from pixgen.shapes.world import COLOURS, SHAPES, Scene, Shape, Spec


def _perturb_object(obj: Shape, rng: random.Random) -> Shape:
    """One shape as another kind (half the time) or rarely in another colour, in the same place and size."""
    shape = rng.choice([s for s in SHAPES if s != obj.shape]) if rng.random() < 0.5 else obj.shape
    colour = rng.choice(COLOURS) if rng.random() < 0.08 else obj.colour
    return replace(obj, shape=shape, colour=colour)


def perturb_scene(scene: Scene, spec: Spec, rng: random.Random) -> Scene:
    """A near miss of ``scene`` (which ``spec`` describes, objects in the spec's order); a quarter come back
    unchanged, so that the denoiser also learns to leave right scenes alone."""
    if rng.random() < 0.25:
        return scene
    objects = [_perturb_object(obj, rng) for obj in scene.objects]
    if rng.random() < 0.2:  # a stray copy of one shape's colour somewhere else
        src = rng.choice(objects)
        objects.append(Shape(rng.choice(SHAPES), src.colour, rng.uniform(0.15, 0.85), rng.uniform(0.15, 0.85),
                             rng.uniform(0.04, 0.1)))
    background = scene.background
    if spec.background is not None and rng.random() < 0.3:
        background = rng.choice(COLOURS)
    return replace(scene, background=background, objects=tuple(objects))
