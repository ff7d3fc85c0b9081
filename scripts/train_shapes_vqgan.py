"""Train the built-in shapes VQGAN (taming layout) as an autoencoder on procedurally drawn scenes (CPU).

    python scripts/train_shapes_vqgan.py --seed 0 --steps 2400 --minutes 28 --threads 2 --out pixgen/shapes/assets

The shipped weights come from that command on a 2-core CPU: it stopped on time after 2379 steps. Held-out:
PSNR 32.6 dB at 64 px; the oracle passes 70% of random scenes' reconstructions at 64 px, 100% at 128 px, and
77% of the 12 demo captions x 8 scenes at 64 px (the f8 model it replaced: 31%); 475 of 512 codes in use.

Built from taming's Encoder, Decoder and VectorQuantizer2 only. Loss: L1 + MSE + the codebook/commitment
loss + a small "palette" term (each output pixel near some palette colour), so that decoded latents look
like clean flat-colour scenes. The first quarter of the run is a plain autoencoder; then the codebook starts
on encoder outputs and unused codes are re-seeded from them. Trained on 64-pixel crops of 96-pixel scenes and
on whole 64-pixel scenes. ``--factor 4`` (the default) gives a 16x16 latent grid at the preset's 64 px: an f8
grid (8x8 at 64 px) rounds small squares and triangles into circles. ``ch`` is 64, not 32: taming's GroupNorm
has 32 groups, and with one channel per group a flat colour region normalises to nothing, so colours cannot
pass the decoder's last layer. Writes ``shapes_vqgan.yaml`` and ``shapes_vqgan.ckpt`` (fp16 tensors only) and
prints a held-out report, including how many reconstructions of the demo captions' scenes at 64 px the oracle
passes (the ceiling for the VQGAN drawer at the preset's size).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from pathlib import Path

import torch
import yaml
from torch import nn

from pixgen.shapes.models import assets_dir
from pixgen.shapes.render import palette_tensor, random_batch, render_caption
from pixgen.shapes.train.training import base_parser, scheduled_steps
from pixgen.shapes.world import DEMO_CAPTIONS

EMBED_DIM = 16
CH_MULT = {4: [1, 1, 2], 8: [1, 1, 1, 2]}  # downsampling factor -> taming's ch_mult
AE_WARMUP = 0.25  # fraction of the run trained as a plain autoencoder before the codebook is switched on


def ddconfig(factor: int) -> dict:
    """taming's ``ddconfig`` for a shapes VQGAN with downsampling ``factor`` (4 or 8)."""
    return {"double_z": False, "z_channels": 64, "resolution": 128, "in_channels": 3, "out_ch": 3, "ch": 64,
            "ch_mult": CH_MULT[factor], "num_res_blocks": 0, "attn_resolutions": [], "dropout": 0.0}


class ShapesVQ(nn.Module):
    """Encoder -> quant_conv -> VectorQuantizer2 -> post_quant_conv -> Decoder, with taming's key names."""

    def __init__(self, factor: int = 4, n_embed: int = 512) -> None:
        from taming.modules.diffusionmodules.model import Decoder, Encoder
        from taming.modules.vqvae.quantize import VectorQuantizer2

        super().__init__()
        self.n_embed = n_embed
        self.ddconfig = ddconfig(factor)
        self.encoder = Encoder(**self.ddconfig)
        with contextlib.redirect_stdout(io.StringIO()):
            self.decoder = Decoder(**self.ddconfig)
        self.quant_conv = nn.Conv2d(self.ddconfig["z_channels"], EMBED_DIM, 1)
        self.post_quant_conv = nn.Conv2d(EMBED_DIM, self.ddconfig["z_channels"], 1)
        self.quantize = VectorQuantizer2(n_embed, EMBED_DIM, beta=0.25)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] -> continuous latent (N, D, H/f, W/f)."""
        return self.quant_conv(self.encoder(x))

    def forward(self, x: torch.Tensor, quantize: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction in [-1, 1], the VQ loss, and the code indices (N*h*w,); ``quantize=False`` skips
        the codebook (plain autoencoder warm-up)."""
        z = self.encode(x)
        if not quantize:
            return self.decoder(self.post_quant_conv(z)), z.new_zeros(()), z.new_zeros(0, dtype=torch.long)
        zq, vq_loss, (_, _, idx) = self.quantize(z)
        return self.decoder(self.post_quant_conv(zq)), vq_loss, idx


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    p = base_parser(__doc__, steps=2400, batch=8, lr=1e-3, out=assets_dir())
    p.add_argument("--palette-weight", type=float, default=0.05)
    p.add_argument("--factor", type=int, choices=sorted(CH_MULT), default=4, help="image side / latent side")
    p.add_argument("--codes", type=int, default=512, help="codebook entries")
    p.add_argument("--eval-size", type=int, default=64, help="held-out random scenes (at 64 and at 128 px)")
    p.add_argument("--demo-seeds", type=int, default=8, help="true scenes per demo caption in the report")
    return p.parse_args()


def training_images(n: int, gen: torch.Generator) -> torch.Tensor:
    """(n, 3, 64, 64) in [-1, 1]: half are random 64-px crops of 96-px scenes, half whole 64-px scenes."""
    big, _, _ = random_batch(n // 2, 96, gen, hard_negatives=False)
    small, _, _ = random_batch(n - n // 2, 64, gen, hard_negatives=False)
    off = torch.randint(0, 33, (n // 2, 2), generator=gen)
    crops = torch.stack([img[:, y : y + 64, x : x + 64] for img, (y, x) in zip(big, off.tolist(), strict=True)])
    return torch.cat([crops, small]) * 2 - 1


def palette_loss(x: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of each pixel of x (N, 3, H, W) in [-1, 1] to its nearest palette colour."""
    pal = palette_tensor(x.device) * 2 - 1  # (P, 3)
    d = ((x.movedim(1, -1).unsqueeze(-2) - pal) ** 2).sum(-1)  # (N, H, W, P)
    return d.min(-1).values.mean()


@torch.no_grad()
def reseed_dead_codes(model: ShapesVQ, counts: torch.Tensor, z: torch.Tensor, gen: torch.Generator) -> int:
    """Move codes unused since the last call onto random encoder outputs z (N, D, h, w); returns how many."""
    dead = (counts == 0).nonzero().flatten()
    if len(dead):
        flat = z.movedim(1, -1).reshape(-1, z.shape[1])
        pick = torch.randint(0, len(flat), (len(dead),), generator=gen)
        model.quantize.embedding.weight[dead] = flat[pick] + 0.01 * torch.randn(len(dead), z.shape[1], generator=gen)
    counts.zero_()
    return len(dead)


def train(args: argparse.Namespace) -> tuple[ShapesVQ, int]:
    """The training loop; returns the model and the number of steps done."""
    gen = torch.Generator().manual_seed(args.seed)
    model = ShapesVQ(args.factor, args.codes)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.99))
    counts = torch.zeros(args.codes)
    done, started = 0, False
    for step, t, bar in scheduled_steps(opt, args, "shapes VQGAN"):
        done = step + 1
        x = training_images(args.batch, gen)
        quantize = t >= AE_WARMUP
        if quantize and not started:  # after the plain-autoencoder warm-up, codes start on encoder outputs
            started = reseed_dead_codes(model, counts, model.encode(x).detach(), gen) > 0
        rec, vq_loss, idx = model(x, quantize)
        counts += torch.bincount(idx.flatten(), minlength=args.codes)
        l1, l2 = (rec - x).abs().mean(), ((rec - x) ** 2).mean()
        loss = l1 + l2 + vq_loss + args.palette_weight * palette_loss(rec)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if started and step % 25 == 24 and step < 0.8 * args.steps:
            reseed_dead_codes(model, counts, model.encode(x).detach(), gen)
        bar.set_postfix(l1=f"{l1.item():.4f}", vq=f"{vq_loss.item():.4f}")
    return model.eval(), done


def reconstruct(model: ShapesVQ, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode, quantize and decode images (N, 3, H, W) in [0, 1]: the reconstruction in [0, 1] and the codes."""
    rec, _, idx = model(images * 2 - 1)
    return ((rec + 1) / 2).clamp(0, 1), idx


def demo_pass_rate(model: ShapesVQ, size: int = 64, seeds: int = 8) -> float:
    """Share of reconstructed true scenes of the demo captions (``seeds`` scenes each) the oracle passes."""
    from pixgen.shapes.oracle import check

    passed = 0
    for caption in DEMO_CAPTIONS:
        scenes = torch.cat([render_caption(caption, size, torch.Generator().manual_seed(s)) for s in range(seeds)])
        passed += sum(check(r, caption).passed for r in reconstruct(model, scenes)[0])
    return passed / (len(DEMO_CAPTIONS) * seeds)


@torch.no_grad()
def evaluate(model: ShapesVQ, seed: int, n: int = 64, demo_seeds: int = 8) -> dict[str, float]:
    """Held-out reconstruction error at 64 px (the preset's size), code usage, oracle pass rates of
    reconstructions (random scenes at 64 and 128 px; the demo captions at 64 px), and how palette-like decodes
    of perturbed and random latents are (mean squared distance to the palette)."""
    from pixgen.shapes.oracle import check

    gen = torch.Generator().manual_seed(seed + 10_000)
    images, _, specs = random_batch(n, 64, gen, hard_negatives=False)
    rec01, idx = reconstruct(model, images)
    big, _, big_specs = random_batch(n, 128, gen, hard_negatives=False)
    usage = torch.bincount(idx.flatten(), minlength=model.n_embed).float()
    p = usage / usage.sum()
    z = model.encode(images * 2 - 1)
    noisy = model.decoder(model.post_quant_conv(model.quantize(z + z.std() * torch.randn(z.shape, generator=gen))[0]))
    codes = torch.randint(0, model.n_embed, (8, *z.shape[-2:]), generator=gen)
    rand = model.decoder(model.post_quant_conv(model.quantize.embedding(codes).movedim(-1, 1)))
    return {
        "l1": (rec01 - images).abs().mean().item(),
        "psnr": (10 * torch.log10(1 / ((rec01 - images) ** 2).mean())).item(),
        "oracle_pass_reconstructions_64": sum(check(r, s).passed for r, s in zip(rec01, specs, strict=True)) / n,
        "oracle_pass_reconstructions_128": sum(
            check(r, s).passed for r, s in zip(reconstruct(model, big)[0], big_specs, strict=True)) / n,
        "oracle_pass_demo_captions_64": demo_pass_rate(model, seeds=demo_seeds),
        "codes_used": int((usage > 0).sum()),
        "code_perplexity": torch.exp(-(p[p > 0] * p[p > 0].log()).sum()).item(),
        "palette_mse_clean": palette_loss(rec01 * 2 - 1).item() / 4,
        "palette_mse_perturbed_latent": palette_loss(noisy.clamp(-1, 1)).item() / 4,
        "palette_mse_random_codes": palette_loss(rand.clamp(-1, 1)).item() / 4,
    }


def save(model: ShapesVQ, out: Path, steps: int, report: dict) -> tuple[Path, Path]:
    """Write the taming YAML and the checkpoint (fp16 tensors only, loadable with weights_only=True)."""
    out.mkdir(parents=True, exist_ok=True)
    config = {"model": {"base_learning_rate": 4.5e-6, "target": "taming.models.vqgan.VQModel",
                        "params": {"embed_dim": EMBED_DIM, "n_embed": model.n_embed, "ddconfig": model.ddconfig,
                                   "lossconfig": {"target": "taming.modules.losses.vqperceptual.DummyLoss"}}}}
    yaml_path, ckpt_path = out / "shapes_vqgan.yaml", out / "shapes_vqgan.ckpt"
    yaml_path.write_text(yaml.safe_dump(config, sort_keys=False))
    state = {k: v.detach().half().contiguous() for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "epoch": 0, "global_step": steps}, ckpt_path)
    (out / "shapes_vqgan_report.json").write_text(json.dumps({"steps": steps, **report}, indent=2))
    return yaml_path, ckpt_path


def main() -> None:
    """Train, evaluate on held-out scenes, save."""
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.time()
    model, steps = train(args)
    report = evaluate(model, args.seed, args.eval_size, args.demo_seeds)
    minutes = (time.time() - t0) / 60
    yaml_path, ckpt_path = save(model, args.out, steps, report)
    size = (yaml_path.stat().st_size + ckpt_path.stat().st_size) / 2**20
    print(json.dumps({"steps": steps, "minutes": round(minutes, 1), "held_out": report,
                      "files": [str(yaml_path), str(ckpt_path)], "megabytes": round(size, 2)}, indent=2))


if __name__ == "__main__":
    main()
