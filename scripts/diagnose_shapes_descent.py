"""Can gradient descent through the shapes VQGAN change what a scene shows? A diagnosis for the shapes demo.

    python scripts/diagnose_shapes_descent.py
    python scripts/diagnose_shapes_descent.py --clip-config DIR/shapes_cnn.json \
        --clip-weights DIR/shapes_clip.safetensors

Starts from a true scene of ``--start`` ("a green triangle on a purple background"), encoded by the shapes
VQGAN, and descends towards ``--target`` (the same scene on a white background) for ``--steps`` Adam steps in
four ways: the CLIP loss through the quantized latent (the VQGAN drawer, straight-through); the same with the
drawer's ``quantize_ramp`` 0.7 (the render blends from the continuous latent to the codes over the first 70 %
of the steps); the CLIP loss through the continuous latent (no quantizer); and the pixel MSE to a true target
scene through the quantized latent. Prints, per way and learning rate, the CLIP similarity (and a true target
scene's), the colour of the top-left corner (the background) and the oracle's verdict. Views are the training
views (as cutouts).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from pixgen.drawers.base import ramp_share
from pixgen.losses.functional import spherical_dist
from pixgen.perceptors import register_config_file, tokenizer_for
from pixgen.shapes.models import clip_config_path, clip_weights_path, vqgan_paths
from pixgen.shapes.oracle import check
from pixgen.shapes.render import render_caption
from pixgen.shapes.train.clip_training import normalise
from pixgen.shapes.train.views import TrainViews
from pixgen.taming_loader import load_vqgan


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--start", default="a green triangle on a purple background")
    p.add_argument("--target", default="a green triangle on a white background")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--cutn", type=int, default=16)
    p.add_argument("--lrs", type=float, nargs="+", default=[0.1, 0.5])
    p.add_argument("--clip-config", type=Path, default=clip_config_path(), help="open_clip config (JSON)")
    p.add_argument("--clip-weights", type=Path, default=None, help="its weights (default: the shipped ones)")
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args()


def load_model(config: Path, weights: Path | None):
    """The CLIP (eval mode) and its tokenizer; a config other than the shipped one registers under its stem."""
    import open_clip

    name = register_config_file(config)
    model = open_clip.create_model(name, pretrained=str(weights or clip_weights_path())).eval()
    return model.requires_grad_(False), tokenizer_for(name, config)


def descend(way: str, lr: float, model, txt: torch.Tensor, vqgan, start: torch.Tensor, goal: torch.Tensor,
            args: argparse.Namespace) -> torch.Tensor:
    """Adam on the start scene's latent for ``args.steps`` steps; returns the final image (1, 3, 64, 64)."""
    views = TrainViews(64, zoom_fraction=0.1, clean_fraction=0.0)
    z = vqgan.encode(start * 2 - 1).detach().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)

    def image(share: float = 1.0) -> torch.Tensor:
        latent = z if way == "clip-continuous" else vqgan.quantize(z, share)
        return vqgan.decode_image(latent)

    for step in range(args.steps):
        x = image(ramp_share(step / args.steps, 0.7) if way == "clip-ramped" else 1.0)
        if way == "mse-quantized":
            loss = (x - goal).pow(2).mean()
        else:
            loss = spherical_dist(model.encode_image(normalise(views(x.repeat(args.cutn, 1, 1, 1)))), txt).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return image()


def main() -> None:
    """Run every (way, lr) and print one JSON line each."""
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, tokenizer = load_model(args.clip_config, args.clip_weights)
    vqgan = load_vqgan(*vqgan_paths())
    start = render_caption(args.start, 64, torch.Generator().manual_seed(1))
    goal = render_caption(args.target, 64, torch.Generator().manual_seed(1))
    with torch.no_grad():
        txt = model.encode_text(tokenizer([args.target]))

    @torch.no_grad()
    def similarity(x: torch.Tensor) -> float:
        return F.cosine_similarity(model.encode_image(normalise(x)), txt).item()

    print(json.dumps({"start": round(similarity(start), 3), "true_target_scene": round(similarity(goal), 3)}))
    for way in ("clip-quantized", "clip-ramped", "clip-continuous", "mse-quantized"):
        for lr in args.lrs:
            x = descend(way, lr, model, txt, vqgan, start, goal, args)
            verdict = check(x, args.target)
            print(json.dumps({"way": way, "lr": lr, "similarity": round(similarity(x), 3),
                              "corner_rgb": [round(v, 2) for v in x[0, :, :8, :8].mean((1, 2)).tolist()],
                              "oracle": verdict.passed, "why": verdict.reasons[:1]}), flush=True)


if __name__ == "__main__":
    main()
