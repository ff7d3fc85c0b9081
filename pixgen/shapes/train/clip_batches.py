"""The batches of ``scripts/train_shapes_clip.py``: each step's scenes (random, minimal-pair twins, clutter and,
with ``--chains``, generation runs), the generation runs themselves, and corrupted copies for gradient alignment.

Each takes the script's parsed options (``args``) so that the script's command line stays the one place that
names them.
"""

from __future__ import annotations

import argparse

import torch

from pixgen.shapes.render import random_batch, render_scenes
from pixgen.shapes.sample import rng_from
from pixgen.shapes.train.chains import chain_batch
from pixgen.shapes.train.clip_report import RENDER_SIZE, clean_views
from pixgen.shapes.train.clip_training import blob_corrupt, clutter_scenes, pair_twins, scene_corrupt, shape_twins
from pixgen.shapes.train.views import TrainViews


def corrupted(clean: torch.Tensor, scenes: list, near: int, gen: torch.Generator) -> torch.Tensor:
    """The corrupted copies of the 64 px ``clean`` scenes for gradient alignment: the first ``near`` are
    near-miss scenes (``scene_corrupt``), the rest painted over with palette blocks (``blob_corrupt``)."""
    if near == 0:  # no draws for near misses (the runs made before they existed stay repeatable)
        return blob_corrupt(clean, gen)
    misses = clean_views(render_scenes(scene_corrupt(scenes[:near], gen), RENDER_SIZE))
    return torch.cat([misses, blob_corrupt(clean[near:], gen)])


def make_chains(args: argparse.Namespace, gen: torch.Generator) -> tuple | None:
    """With ``--chains``: the persistent generation runs (shipped shapes VQGAN) and the views they see."""
    if args.chains <= 0:  # off: no draws from the generators
        return None
    from pixgen.shapes.models import vqgan_paths
    from pixgen.shapes.train.chains import ChainSettings, DrawerChains
    from pixgen.taming_loader import load_vqgan

    rng = rng_from(gen)
    settings = ChainSettings(n=args.chains, steps=args.chain_steps, levels=args.chain_levels,
                             pair_share=args.chain_pairs, start=args.chain_start, warmup=args.chain_warmup,
                             smoothness=args.chain_smoothness, denoise=args.chain_denoise)
    views = TrainViews(64, zoom_fraction=args.zoom_fraction, clean_fraction=0.0)
    return DrawerChains(load_vqgan(*vqgan_paths()), settings, rng), views, rng


def real_batch(args: argparse.Namespace, gen: torch.Generator, chains: tuple | None, model, tokenizer,
               twins: int = 0):
    """One step's scenes: ``(images, scenes, specs, negatives, dreams, minimal)``; random scenes (half of them
    one-attribute variants of the other half), ``twins`` of them again with one shape swapped (and, with them,
    ``--pair-twins`` two-shape ones with their shapes' colours or kinds exchanged), clutter scenes
    and, with chains, a true scene per chain caption (first), the chain images the oracle rejects (64 px
    negatives), all chain images and the (original, pair twin) indices, (P, 2)."""
    n_chain = args.chains if chains is not None else 0
    pairs = args.pair_twins if twins > 0 or args.shape_twins == 0 else 0  # with the shape twins (--twins-after)
    images, scenes, specs = random_batch(args.batch - args.clutter - n_chain - twins - pairs, RENDER_SIZE, gen)
    minimal = []  # (original, pair twin) indices: the within-pair loss
    if twins > 0:  # off: no draws, so the runs made before twins existed stay repeatable
        swapped, twin_specs = shape_twins(scenes, specs, twins, rng_from(gen))
        images = torch.cat([images, render_scenes(swapped, RENDER_SIZE)])
        scenes, specs = scenes + swapped, specs + twin_specs
    if pairs > 0:
        swapped, twin_specs, origins = pair_twins(scenes, specs, pairs, rng_from(gen))
        minimal = [(i, len(scenes) + k) for k, i in enumerate(origins)]
        images = torch.cat([images, render_scenes(swapped, RENDER_SIZE)])
        scenes, specs = scenes + swapped, specs + twin_specs
    extra = clutter_scenes(args.clutter, gen)
    scenes, images = scenes + extra, torch.cat([images, render_scenes(extra, RENDER_SIZE)])
    negatives = dreams = torch.zeros(0, 3, 64, 64)
    if chains is not None:
        runs, views, rng = chains
        c_scenes, c_specs, c_images, negatives, dreams = chain_batch(runs, model, tokenizer, views, rng, RENDER_SIZE,
                                                                     args.chain_repair)
        scenes, specs, images = c_scenes + scenes, c_specs + specs, torch.cat([c_images, images])
        minimal = [(i + len(c_scenes), j + len(c_scenes)) for i, j in minimal]
    return images, scenes, specs, negatives, dreams, torch.tensor(minimal, dtype=torch.long).view(-1, 2)
