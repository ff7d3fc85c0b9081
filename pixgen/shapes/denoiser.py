"""The shapes scene denoiser: a small U-Net that maps a damaged shapes image to the clean scene it came from.

It is a learned image prior for the shapes world. ``--loss denoise`` pulls the render towards the denoiser's
output (regularisation by denoising), so blobs become the nearest circle, square or triangle, fragments and
stray colours fade and the background turns flat. ``corrupt`` makes its training inputs: true scenes warped by
smooth random displacement fields (blob-shaped outlines), with fragments and patches of palette colours,
low-frequency colour casts and pixel noise, at a random strength per image (strength 0 leaves the scene as is);
``round_corners`` rounds outlines as generation's blobs do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pixgen.errors import PixgenError
from pixgen.shapes.render import palette_tensor

WIDTHS = (16, 32, 64, 96, 128)  # channels at 64, 32, 16, 8 and 4 pixels for a 64-pixel input
CONTEXT, VOCAB = 32, 755  # the shapes CLIP tokenizer's context length and vocabulary


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(8, cout), nn.SiLU(),
        nn.Conv2d(cout, cout, 3, padding=1), nn.GroupNorm(8, cout), nn.SiLU(),
    )


def caption_tokens(captions: list[str]) -> torch.Tensor:
    """(N, CONTEXT) tokens of ``captions`` for a conditioned denoiser (the shapes CLIP tokenizer)."""
    from pixgen.shapes.models import clip_tokenizer

    return clip_tokenizer()(captions, context_length=CONTEXT)


class CaptionCode(nn.Module):
    """Caption tokens (N, CONTEXT) of the shapes CLIP tokenizer -> (N, dim) code: learned token and position
    embeddings, flattened (word order matters: which colour is which shape) and mixed by an MLP."""

    def __init__(self, dim: int = 256, width: int = 48) -> None:
        super().__init__()
        self.token = nn.Embedding(VOCAB, width)
        self.position = nn.Parameter(torch.zeros(CONTEXT, width))
        self.mlp = nn.Sequential(nn.Linear(CONTEXT * width, dim), nn.SiLU(), nn.Linear(dim, dim), nn.SiLU())

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """The caption codes."""
        return self.mlp((self.token(tokens) + self.position).flatten(1))


class ShapesDenoiser(nn.Module):
    """U-Net: (N, 3, S, S) in [0, 1] -> (N, 3, S, S) in [0, 1]; S a multiple of 16 (64 for the shapes world).
    With ``conditioned``, each block's output is scaled and shifted by the caption's code (FiLM), so the
    caption says which shape a blob should become."""

    def __init__(self, widths: tuple[int, ...] = WIDTHS, conditioned: bool = False, code_dim: int = 256) -> None:
        super().__init__()
        self.down = nn.ModuleList(_block(cin, cout) for cin, cout in zip((3, *widths[:-1]), widths, strict=True))
        self.up = nn.ModuleList(_block(a + b, b) for a, b in zip(widths[:0:-1], widths[-2::-1], strict=True))
        self.out = nn.Conv2d(widths[0], 3, 1)
        self.caption = CaptionCode(code_dim) if conditioned else None
        if conditioned:
            self.film = nn.ModuleList(nn.Linear(code_dim, 2 * w) for w in (*widths, *widths[-2::-1]))
            for layer in self.film:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    @property
    def conditioned(self) -> bool:
        """Whether the model reads a caption."""
        return self.caption is not None

    def forward(self, x: torch.Tensor, tokens: torch.Tensor | None = None) -> torch.Tensor:
        """The denoised images, same shape as ``x``; a conditioned model needs the captions' ``tokens``
        (N or 1 rows)."""
        films = self._films(tokens)
        skips = []
        h = x * 2 - 1
        for i, block in enumerate(self.down):
            h = films[i](block(h if i == 0 else F.avg_pool2d(h, 2)))
            skips.append(h)
        for i, (block, skip) in enumerate(zip(self.up, skips[-2::-1], strict=True)):
            h = block(torch.cat([F.interpolate(h, scale_factor=2.0, mode="nearest"), skip], dim=1))
            h = films[len(self.down) + i](h)
        return torch.sigmoid(self.out(h) * 2)  # the palette's extremes (0.08-0.96) stay reachable

    def _films(self, tokens: torch.Tensor | None) -> list[Any]:
        """One feature-map transform per block: identity without conditioning, else h * (1 + a) + b."""
        if self.caption is None:
            return [lambda h: h] * (2 * len(self.down) - 1)
        if tokens is None:
            raise PixgenError("this shapes denoiser is conditioned on a caption; pass the caption's tokens")
        code = self.caption(tokens)
        out = []
        for layer in self.film:
            scale, shift = layer(code)[:, :, None, None].chunk(2, dim=1)
            out.append(lambda h, a=scale, b=shift: h * (1 + a) + b)
        return out


def load_denoiser(path: Path, device: Any = "cpu") -> ShapesDenoiser:
    """The denoiser in a weights file of ``scripts/train_shapes_denoiser.py``, on ``device``, frozen, in eval
    mode; a missing, torn or foreign file raises a ``PixgenError`` that names the fix."""
    from pixgen.checkpoints import load_checkpoint_state

    if not path.is_file():
        raise PixgenError(f"denoise loss: no denoiser weights at {path}; give --denoiser a file written by "
                          "scripts/train_shapes_denoiser.py")
    try:
        state = load_checkpoint_state(path)
        model = ShapesDenoiser(conditioned=any(k.startswith("caption.") for k in state))
        model.load_state_dict({k: v.float() for k, v in state.items()})
    except (PixgenError, RuntimeError) as exc:  # unreadable, or the state dict of another model
        raise PixgenError(f"denoise loss: {path} is not a shapes denoiser checkpoint "
                          f"({type(exc).__name__}); rebuild it with scripts/train_shapes_denoiser.py") from exc
    return model.to(device).eval().requires_grad_(False)


def smooth_noise(n: int, channels: int, grid: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """(n, channels, size, size) smooth random field: unit normal noise on a grid x grid, bicubically upsampled."""
    coarse = torch.randn(n, channels, grid, grid, generator=generator)
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True)


def warp(images: torch.Tensor, amount: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Bend images by a smooth random displacement field of about ``amount`` (N,) pixels, at two scales."""
    n, _, size, _ = images.shape
    flow = smooth_noise(n, 2, 4, size, generator) + 0.5 * smooth_noise(n, 2, 8, size, generator)
    flow = flow * (amount.view(n, 1, 1, 1) * 2 / size)  # pixels -> grid_sample's [-1, 1] units
    theta = torch.eye(2, 3).expand(n, 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False) + flow.permute(0, 2, 3, 1)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def blots(images: torch.Tensor, count: int, area: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    """Paint up to ``count`` smooth random blots per image (each present with probability 1/2), each a random
    palette colour covering a share of the image drawn from ``area``."""
    n, _, size, _ = images.shape
    palette = palette_tensor()
    for _ in range(count):
        field = smooth_noise(n, 1, 6, size, generator)
        share = area[0] + (area[1] - area[0]) * torch.rand(n, 1, 1, 1, generator=generator)
        level = torch.quantile(field.flatten(1), 1 - share.flatten(), dim=1).diagonal().view(n, 1, 1, 1)
        mask = torch.sigmoid((field - level) * 12) * (torch.rand(n, 1, 1, 1, generator=generator) < 0.5)
        colour = palette[torch.randint(len(palette), (n,), generator=generator)].view(n, 3, 1, 1)
        images = images * (1 - mask) + colour * mask
    return images


def round_corners(images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Scenes with every outline's corners rounded, by ``sigma`` (N,) pixels: each pixel's nearest palette colour
    is voted on over a Gaussian window and the winner redrawn with an anti-aliased edge (a mode filter; straight
    edges stay, convex corners and thin tips are cut as generation's blobs cut them)."""
    import kornia.filters

    palette = palette_tensor(images.device)
    dist = ((images[:, None] - palette[None, :, :, None, None]) ** 2).sum(2)  # (N, 8, S, S)
    votes = torch.softmax(-200 * dist, dim=1)
    size = 2 * int(3 * sigma.max().clamp(min=0.5).ceil().item()) + 1
    votes = kornia.filters.gaussian_blur2d(votes, (size, size), sigma.view(-1, 1).expand(-1, 2),
                                           border_type="replicate")
    winner = torch.softmax(4 * torch.log(votes + 1e-6), dim=1)
    return torch.einsum("nchw,cd->ndhw", winner, palette).clamp(0, 1)


def corrupt(clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Damaged copies of clean (N, 3, S, S) scenes, each at a random strength (about a fifth left clean)."""
    n, _, size, _ = clean.shape
    strength = (torch.rand(n, generator=generator) * 1.25 - 0.25).clamp(min=0)  # (N,)
    x = warp(clean, strength * size / 20, generator)
    x = blots(x, 3, (0.001, 0.008), generator)  # fragments and speckle
    big = (torch.rand(n, 1, 1, 1, generator=generator) < 0.3 * strength.view(n, 1, 1, 1)).float()
    x = big * blots(x, 1, (0.05, 0.25), generator) + (1 - big) * x  # a wrong-coloured area
    cast = smooth_noise(n, 3, 3, size, generator) * 0.12 + torch.randn(n, 3, size, size, generator=generator) * 0.04
    x = x + cast * strength.view(n, 1, 1, 1)
    keep = (strength == 0).view(n, 1, 1, 1)
    return torch.where(keep, clean, x.clamp(0, 1))
