"""Train the shapes scene denoiser (``pixgen.shapes.denoiser``) on damaged copies of procedurally drawn scenes.

    python scripts/train_shapes_denoiser.py --seed 0 --steps 1700 --minutes 14 --threads 2 --out pixgen/assets

Inputs are scenes damaged by ``pixgen.shapes.denoiser.corrupt``; the loss is L1 + MSE to the clean scene.
Prints the held-out mean absolute error of the damaged and of the denoised scenes; writes
``shapes_denoiser.pt`` (fp16 state dict), which ``--loss denoise`` loads.
"""

from __future__ import annotations

import json
import time

import torch
import torch.nn.functional as F

from pixgen.shapes.denoiser import ShapesDenoiser, corrupt
from pixgen.shapes.models import assets_dir
from pixgen.shapes.render import random_batch
from pixgen.shapes.training import base_parser, scheduled_steps


def report(model: ShapesDenoiser, seed: int) -> dict:
    """Held-out mean absolute error of the damaged input and of the denoised output against the clean scenes."""
    g = torch.Generator().manual_seed(10_000 + seed)
    clean, _, _ = random_batch(256, 64, g)
    damaged = corrupt(clean, g)
    with torch.no_grad():
        out = torch.cat([model(damaged[i : i + 64]) for i in range(0, 256, 64)])
    return {"mae_input": round((damaged - clean).abs().mean().item(), 4),
            "mae_output": round((out - clean).abs().mean().item(), 4)}


def main() -> None:
    args = base_parser(__doc__, steps=3000, batch=32, lr=2e-3, out=assets_dir()).parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(args.seed)
    model = ShapesDenoiser()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    start, done = time.time(), 0
    for step, _, bar in scheduled_steps(opt, args, "denoiser"):
        clean, _, _ = random_batch(args.batch, 64, g)
        out = model(corrupt(clean, g))
        loss = F.l1_loss(out, clean) + F.mse_loss(out, clean)
        opt.zero_grad()
        loss.backward()
        opt.step()
        done = step + 1
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
    rep = {"steps": done, "minutes": round((time.time() - start) / 60, 1), **report(model.eval(), args.seed)}
    print(json.dumps(rep))
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.half() for k, v in model.state_dict().items()}, args.out / "shapes_denoiser.pt")


if __name__ == "__main__":
    main()
