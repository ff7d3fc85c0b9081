"""Train the shapes code prior (``pixgen.shapes.prior``): a caption-conditioned transformer over the code grids
that the shipped shapes VQGAN gives procedurally drawn scenes.

    python scripts/train_shapes_prior.py --seed 0 --minutes 27 --threads 2 --out DIR

Every step draws fresh scenes, encodes them with the VQGAN (nearest codes) and trains next-code prediction
(cross-entropy) with the caption as prefix; a tenth of the captions are left empty, for classifier-free
guidance. Prints the held-out cross-entropy and how many of the demo captions' sampled grids, decoded by the
VQGAN, pass the oracle; writes ``DIR/shapes_prior.pt`` (fp16 weights), for ``--init-noise prior --code-prior``.
``--init-weights`` continues from a prior; ``--kind-weight`` adds a head that names the kind of shape (or
background) of each next cell (``cell_kinds``), as extra supervision. The shipped prior
(``pixgen/shapes/assets/shapes_prior.pt``, ``--code-prior shapes``) is the command above with
``--out pixgen/shapes/assets`` (held-out cross-entropy 0.93; docs/shapes_experiments.md).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from pixgen.errors import PixgenError
from pixgen.shapes.denoiser import caption_tokens
from pixgen.shapes.models import vqgan_paths
from pixgen.shapes.oracle import check
from pixgen.shapes.prior import ShapesPrior, fingerprint, prior_for, save_prior
from pixgen.shapes.render import cell_kinds, render_scenes
from pixgen.shapes.sample import rng_from, sample_scene, sample_spec
from pixgen.shapes.train.training import base_parser, scheduled_steps
from pixgen.shapes.world import DEMO_CAPTIONS, SHAPES, spec_caption
from pixgen.taming_loader import VqganModel, load_vqgan

EMPTY = 0.1  # share of captions left empty (the unconditioned model that guidance compares with)


@torch.no_grad()
def training_batch(n: int, g: torch.Generator, vqgan: VqganModel) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(caption tokens (n, 32), codes (n, grid²), cell kinds (n, grid²))`` of ``n`` fresh random scenes; a
    cell's kind is 0 for background, else 1 + the id of the shape covering it (``cell_kinds``)."""
    rng = rng_from(g)
    specs = [sample_spec(rng) for _ in range(n)]
    scenes = [sample_scene(spec, rng) for spec in specs]
    captions = ["" if rng.random() < EMPTY else spec_caption(spec) for spec in specs]
    codes = vqgan.nearest_codes(vqgan.encode(render_scenes(scenes, 64) * 2 - 1))
    return caption_tokens(captions), codes.flatten(1), cell_kinds(scenes, codes.shape[-1]).flatten(1)


def batch_loss(model: ShapesPrior, batch: tuple, kind_weight: float) -> torch.Tensor:
    """Next-code cross-entropy, plus ``kind_weight`` times the cross-entropy of naming each next cell's kind
    (background or which shape: supervision meant to teach the features what shape is being drawn)."""
    text, codes, kinds = batch
    feats = model.hidden(text, codes)
    loss = F.cross_entropy(model.head(feats).transpose(1, 2), codes)
    if kind_weight:
        loss = loss + kind_weight * F.cross_entropy(model.kind_head(feats).transpose(1, 2), kinds)
    return loss


@torch.no_grad()
def report(model: ShapesPrior, vqgan: VqganModel, seed: int, per_caption: int = 2) -> dict[str, Any]:
    """Held-out cross-entropy, and the oracle's verdict on sampled grids of each demo caption, decoded."""
    g = torch.Generator().manual_seed(10_000 + seed)
    text, codes, _ = training_batch(128, g, vqgan)
    ce = F.cross_entropy(model(text, codes).flatten(0, 1), codes.flatten()).item()
    captions = [c for c in DEMO_CAPTIONS for _ in range(per_caption)]
    grids = model.sample_codes(caption_tokens(captions), generator=g)
    images = vqgan.decode_image(vqgan.tokens_to_latent(grids))
    passed = [check(img, cap).passed for img, cap in zip(images, captions, strict=True)]
    return {"heldout_ce": round(ce, 3), "demo_samples_pass": f"{sum(passed)}/{len(passed)}"}


def main() -> None:
    parser = base_parser(__doc__, steps=2400, batch=24, lr=2e-3, out=Path("shapes_prior"))
    parser.add_argument("--init-weights", type=Path, help="continue from a prior written by this script")
    parser.add_argument("--kind-weight", type=float, default=0.0,
                        help="weight of an auxiliary loss naming the kind of shape of each next cell (experimental)")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(args.seed)
    vqgan = load_vqgan(*vqgan_paths())
    if args.init_weights:
        try:  # refuses a prior of another VQGAN
            model = prior_for(str(args.init_weights), vqgan.codebook).train()
        except PixgenError as exc:
            raise SystemExit(f"--init-weights: {exc}") from None
    else:
        model = ShapesPrior(n_codes=vqgan.codebook.shape[0], code_dim=vqgan.codebook.shape[1])
        model.vqgan_codes.copy_(fingerprint(vqgan.codebook))
    if args.kind_weight and model.kind_head is None:
        model.kind_head = torch.nn.Linear(model.text_pos.shape[1], 1 + len(SHAPES))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    start, done = time.time(), 0
    for step, _, bar in scheduled_steps(opt, args, "prior"):
        loss = batch_loss(model, training_batch(args.batch, g, vqgan), args.kind_weight)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        done = step + 1
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    rep = {"steps": done, "minutes": round((time.time() - start) / 60, 1), **report(model.eval(), vqgan, args.seed)}
    print(json.dumps(rep))
    args.out.mkdir(parents=True, exist_ok=True)
    save_prior(model, args.out / "shapes_prior.pt")


if __name__ == "__main__":
    main()
