"""Does a CLIP's loss prefer the right shape? The check to run on a shapes CLIP before generating with it.

    python scripts/shape_preference.py
    python scripts/shape_preference.py --clip shapes --clip DIR/shapes_clip.json:DIR/shapes_clip.safetensors

For each demo caption and ``--scenes`` true scenes of it, every variant with one shape's kind swapped (a square
drawn as a circle or a triangle at the same place, size and colour) is scored with the generation loss: the
mean great-circle distance to the caption over the ``--preset``'s cutouts (the same cutouts for every variant).
Prints, per CLIP, the share of swaps whose loss is higher than the true scene's (1.0: the loss always prefers
the right shape; 0.5: it cannot tell) and the mean margin, overall and per kind of swap.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from pixgen.engine import Run
from pixgen.losses.functional import spherical_dist
from pixgen.presets import apply_presets
from pixgen.shapes.render import render_scenes
from pixgen.shapes.sample import rng_from, sample_scene
from pixgen.shapes.world import DEMO_CAPTIONS, SHAPES, Scene, parse_caption


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clip", action="append", help="a CLIP spec as for --clip (repeat to compare; default: shapes)")
    p.add_argument("--preset", default="shapes", help="whose cutout settings to use")
    p.add_argument("--no-augment", action="store_true", help="plain crops instead of the augmented cutouts")
    p.add_argument("--scenes", type=int, default=5, help="true scenes per caption")
    p.add_argument("--reps", type=int, default=4, help="cutout batches per score")
    p.add_argument("--json", type=Path, help="write the results here")
    return p.parse_args(argv)


def shape_swaps(scene: Scene) -> list[tuple[Scene, str]]:
    """Every scene that differs from ``scene`` in one shape's kind, with its swap named ``"square->circle"``."""
    out = []
    for i, obj in enumerate(scene.objects):
        for kind in SHAPES:
            if kind != obj.shape:
                objects = list(scene.objects)
                objects[i] = dataclasses.replace(obj, shape=kind)
                out.append((dataclasses.replace(scene, objects=tuple(objects)), f"{obj.shape}->{kind}"))
    return out


@torch.no_grad()
def loss_of(run: Run, key: str, images: torch.Tensor, caption: str, reps: int) -> torch.Tensor:
    """Mean distance of each image (N, 3, S, S) to ``caption`` under perceptor ``key``, same cutouts for all."""
    perceptor, _ = run.perceptors[key]
    cutouts, target = run.cutouts[perceptor.input_size], perceptor.encode_text([caption])
    torch.manual_seed(0)  # the same cutouts for every call
    params = [cutouts(images[:1])[1] for _ in range(reps)]
    out = []
    for image in images:
        cuts = [cutouts.replay(image[None], p) for p in params]
        out.append(torch.cat([spherical_dist(perceptor.encode_image(c), target) for c in cuts]).mean())
    return torch.stack(out)


def preference(run: Run, key: str, scenes: int, reps: int) -> dict:
    """Share of one-shape swaps scored worse than the true scene, and the mean margin, overall and per swap."""
    margins: dict[str, list[float]] = {}
    for caption in DEMO_CAPTIONS:
        spec = parse_caption(caption)
        for s in range(scenes):
            scene = sample_scene(spec, rng_from(torch.Generator().manual_seed(100 + s)))
            swaps = shape_swaps(scene)
            loss = loss_of(run, key, render_scenes([scene] + [v for v, _ in swaps]), caption, reps)
            for (_, name), worse in zip(swaps, (loss[1:] - loss[0]).tolist(), strict=True):
                margins.setdefault(name, []).append(worse)
    every = [m for ms in margins.values() for m in ms]
    return {"preferred": _share(every), "margin": sum(every) / len(every), "swaps": len(every),
            "per_swap": {name: _share(ms) for name, ms in sorted(margins.items())}}


def _share(margins: list[float]) -> float:
    return round(sum(m > 0 for m in margins) / len(margins), 3)


def main(argv: list[str] | None = None) -> dict:
    """Measure every ``--clip`` and print one line each."""
    args = parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    results = {}
    for clip in args.clip or ["shapes"]:
        settings = apply_presets({"prompt": DEMO_CAPTIONS[0], "preset": args.preset, "clip": [clip],
                                  "augment": not args.no_augment, "iterations": 1, "seed": 0})
        run = Run(settings)
        (key,) = run.perceptors
        res = results[clip] = preference(run, key, args.scenes, args.reps)
        per = ", ".join(f"{k} {v:.2f}" for k, v in res["per_swap"].items())
        print(f"{clip}: right shape preferred in {res['preferred']:.2f} of {res['swaps']} swaps, "
              f"mean margin {res['margin']:.4f} ({per})", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
