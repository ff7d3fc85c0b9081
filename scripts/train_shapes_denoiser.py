"""Train the shapes scene denoiser (``pixgen.shapes.denoiser``) on damaged copies of procedurally drawn scenes.

    python scripts/train_shapes_denoiser.py --seed 0 --steps 1700 --minutes 14 --threads 2 --out pixgen/shapes/assets

Inputs are scenes damaged by ``pixgen.shapes.denoiser.corrupt``; the loss is L1 + MSE to the clean scene.
With ``--conditioned`` (experimental, not shipped: docs/shapes_experiments.md) the model also reads the scene's
caption, and its inputs are near misses of the scene first (``pixgen.shapes.train.perturb``: a shape of the wrong
kind, a stray copy, a wrong background), so it learns to fix what the caption contradicts; those pixels weigh
``FIX_WEIGHT`` in the loss. A tenth of the captions are left empty (and their scenes only damaged), as for a
free prompt. ``--init-weights`` starts from a trained denoiser (an unconditioned one gets new caption layers).
``--clean-share``, ``--vqgan-share`` and ``--self-weight`` (experimental) train true scenes to be fixed points:
undamaged inputs, inputs through the shipped VQGAN (as generation's renders are), and the model's own output
denoised again; ``--fixed-point-after F`` starts them after the fraction F of the run. ``--round-share``
(experimental) rounds the corners of a share of the inputs first (``round_corners``; docs/shapes_experiments.md).
Prints the held-out mean absolute error of the damaged and of the denoised scenes and how many demo scenes
survive three denoisings (``true_scenes_kept_3x``); writes ``shapes_denoiser.pt`` (fp16 state dict), which
``--loss denoise`` loads.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from pixgen.checkpoints import load_checkpoint_state
from pixgen.shapes.denoiser import ShapesDenoiser, caption_tokens, corrupt, round_corners
from pixgen.shapes.models import assets_dir
from pixgen.shapes.oracle import check
from pixgen.shapes.render import random_batch, render_caption, render_scenes
from pixgen.shapes.sample import rng_from, sample_scene, sample_spec
from pixgen.shapes.train.perturb import perturb_scene
from pixgen.shapes.train.training import base_parser, scheduled_steps
from pixgen.shapes.world import DEMO_CAPTIONS, spec_caption

ROUND_SIGMA = (0.5, 2.5)  # --round-share: corners rounded by this many pixels (pixgen.shapes.denoiser.round_corners)
FIX_WEIGHT = 5.0  # loss weight of the pixels a conditioned model must change to follow the caption


def training_batch(n: int, g: torch.Generator, tokenizer: Any = None, clean_share: float = 0.0,
                   round_share: float = 0.0) -> tuple[Any, ...]:
    """``(damaged, clean, tokens, weight)``: damaged scenes (the first ``clean_share`` of an unconditioned batch
    left clean, ``round_share`` of the others with rounded corners first), their clean originals, and for a
    conditioned model (with a ``tokenizer``) the captions' tokens and a per-pixel loss weight that is
    ``FIX_WEIGHT`` where the near miss contradicts the caption (else ``None`` and 1)."""
    if tokenizer is None:
        clean, _, _ = random_batch(n, 64, g)
        kept = round(n * clean_share)
        rest = clean[kept:]
        if round_share:
            picked = (torch.rand(len(rest), generator=g) < round_share).view(-1, 1, 1, 1)
            sigma = torch.empty(len(rest)).uniform_(*ROUND_SIGMA, generator=g)
            rest = torch.where(picked, round_corners(rest, sigma), rest)
        return torch.cat([clean[:kept], corrupt(rest, g)]), clean, None, 1.0
    rng = rng_from(g)
    specs = [sample_spec(rng) for _ in range(n)]
    scenes = [sample_scene(spec, rng) for spec in specs]
    keep = [rng.random() < 0.1 for _ in specs]  # caption left empty: the scene is only damaged
    near = [sc if k else perturb_scene(sc, sp, rng) for sc, sp, k in zip(scenes, specs, keep, strict=True)]
    captions = ["" if k else spec_caption(sp) for sp, k in zip(specs, keep, strict=True)]
    near_img, clean = render_scenes(near, 64), render_scenes(scenes, 64)
    weight = 1 + (FIX_WEIGHT - 1) * ((near_img - clean).abs().sum(1, keepdim=True) > 0.1).float()
    return corrupt(near_img, g), clean, tokenizer(captions), weight


def vqgan_round_trip() -> Any:
    """Images (N, 3, 64, 64) in [0, 1] -> their shipped-VQGAN reconstruction (encode, nearest codes, decode)."""
    from pixgen.shapes.models import vqgan_paths
    from pixgen.taming_loader import load_vqgan

    vqgan = load_vqgan(*vqgan_paths())

    @torch.no_grad()
    def apply(images: torch.Tensor) -> torch.Tensor:
        return vqgan.round_trip(images)

    return apply


def report(model: ShapesDenoiser, seed: int, tokenizer: Any = None) -> dict:
    """Held-out mean absolute error of the damaged input and of the denoised output against the clean scenes."""
    g = torch.Generator().manual_seed(10_000 + seed)
    damaged, clean, tokens, _ = training_batch(256, g, tokenizer)
    with torch.no_grad():
        out = torch.cat([model(damaged[i : i + 64], None if tokens is None else tokens[i : i + 64])
                         for i in range(0, 256, 64)])
    return {"mae_input": round((damaged - clean).abs().mean().item(), 4),
            "mae_output": round((out - clean).abs().mean().item(), 4), **fixed_points(model, tokenizer)}


@torch.no_grad()
def fixed_points(model: ShapesDenoiser, tokenizer: Any = None, per_caption: int = 4, times: int = 3) -> dict:
    """How many true scenes of the demo captions the oracle still passes after the model denoised them
    ``times`` times in a row (under ``--loss denoise`` a render is pulled towards its denoised self again and
    again, so true scenes should be fixed points)."""
    captions = [c for c in DEMO_CAPTIONS for _ in range(per_caption)]
    images = torch.cat([render_caption(c, 64, torch.Generator().manual_seed(i)) for i, c in enumerate(captions)])
    tokens = tokenizer(captions) if tokenizer is not None else None
    for _ in range(times):
        images = model(images, tokens)
    passed = sum(check(img, cap).passed for img, cap in zip(images, captions, strict=True))
    return {f"true_scenes_kept_{times}x": f"{passed}/{len(captions)}"}


def start_from(model: ShapesDenoiser, path: Path) -> None:
    """Load a trained denoiser's weights into ``model``; an unconditioned one leaves the caption layers new."""
    state = {k: v.float() for k, v in load_checkpoint_state(path).items()}
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # same names, other shapes
        raise SystemExit(f"--init-weights {path}: not a denoiser of this architecture ({exc})") from exc
    odd = result.unexpected_keys + [k for k in result.missing_keys if not k.startswith(("caption.", "film."))]
    if odd:
        raise SystemExit(f"--init-weights {path}: not a shapes denoiser checkpoint (keys {odd[:3]} do not fit); "
                         "give a file written by this script")


def parse_args() -> Any:
    """Command-line options (shares checked)."""
    parser = base_parser(__doc__, steps=3000, batch=32, lr=2e-3, out=assets_dir())
    parser.add_argument("--conditioned", action="store_true", help="read the caption (see above)")
    parser.add_argument("--init-weights", type=Path, help="start from this denoiser (e.g. an unconditioned one)")
    parser.add_argument("--clean-share", type=float, default=0.0,
                        help="share of (unconditioned) inputs left undamaged: a true scene must come back as it is")
    parser.add_argument("--round-share", type=float, default=0.0,
                        help="share of (unconditioned) damaged inputs whose corners are rounded first, so that the "
                             "model sharpens corners instead of rounding them")
    parser.add_argument("--vqgan-share", type=float, default=0.0,
                        help="share of inputs passed through the shipped VQGAN first, as generation's renders are")
    parser.add_argument("--self-weight", type=float, default=0.0,
                        help="weight of the loss on denoising the model's own output again (true scenes become "
                             "fixed points, so that --loss denoise does not drift)")
    parser.add_argument("--fixed-point-after", type=float, default=0.0,
                        help="--clean-share, --vqgan-share and --self-weight start only after this fraction of the "
                             "run (0: from the start), so that one run first learns to denoise, then to keep scenes")
    args = parser.parse_args()
    if not all(0 <= share <= 1 for share in (args.clean_share, args.vqgan_share, args.round_share)):
        parser.error("--clean-share, --vqgan-share and --round-share are shares of the batch, between 0 and 1")
    if args.conditioned and (args.clean_share or args.round_share):
        parser.error("--clean-share and --round-share are for the unconditioned denoiser; a conditioned one "
                     "already sees a quarter of its near misses unchanged")
    return args


def step_loss(model: ShapesDenoiser, batch: tuple, args: Any, round_trip: Any, g: torch.Generator,
              fixed_point: bool = True) -> torch.Tensor:
    """The loss of one batch: weighted L1 + MSE of the denoised scenes (and, with ``--self-weight`` and
    ``fixed_point``, of the model's own output denoised again) to the clean ones; ``--vqgan-share`` of the inputs
    go through ``round_trip`` (the VQGAN; None: none)."""
    damaged, clean, tokens, weight = batch
    if round_trip is not None:
        picked = torch.rand(len(damaged), generator=g) < args.vqgan_share
        damaged = torch.where(picked.view(-1, 1, 1, 1), round_trip(damaged), damaged)

    def error(out: torch.Tensor) -> torch.Tensor:
        return (weight * ((out - clean).abs() + (out - clean) ** 2)).mean()

    out = model(damaged, tokens)
    loss = error(out)
    return loss + args.self_weight * error(model(out.detach(), tokens)) if args.self_weight and fixed_point else loss


def main() -> None:
    args = parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(args.seed)
    model = ShapesDenoiser(conditioned=args.conditioned)
    tokenizer = caption_tokens if args.conditioned else None
    if args.init_weights:
        start_from(model, args.init_weights)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    round_trip = vqgan_round_trip() if args.vqgan_share else None
    start, done = time.time(), 0
    for step, t, bar in scheduled_steps(opt, args, "denoiser"):
        fixed = t >= args.fixed_point_after
        batch = training_batch(args.batch, g, tokenizer, args.clean_share if fixed else 0.0, args.round_share)
        loss = step_loss(model, batch, args, round_trip if fixed else None, g, fixed)
        opt.zero_grad()
        loss.backward()
        opt.step()
        done = step + 1
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
    rep = {"steps": done, "minutes": round((time.time() - start) / 60, 1), **report(model.eval(), args.seed, tokenizer)}
    print(json.dumps(rep))
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.half() for k, v in model.state_dict().items()}, args.out / "shapes_denoiser.pt")


if __name__ == "__main__":
    main()
