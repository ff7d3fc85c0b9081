"""Faster ways to run an open_clip image tower that give the same result (found with ``torch.profiler``).

Each one is a measured fix of a slow torch path, applied by ``speed_up`` when a perceptor is built:

- ``sequence_first``: ``nn.MultiheadAttention(batch_first=True)`` hands its projections a transposed view, and
  torch multiplies that by copying the projection weight once per token. Run the blocks sequence-first (L, N, D),
  as OpenAI's CLIP does. ViT-B/32 forward+backward over 32 cutouts, bf16 on CPU: 4.2 s -> 2.5 s.
- ``PatchEmbedding``: a ViT's patch convolution (kernel = stride) as one matrix product. CPU convolution's input
  gradient for this shape takes 220 ms in bf16 (285 ms fp32); the product's 21 ms (40 ms).
- ``attention_kernels``: on CPU in bf16/fp16, the "math" attention kernel; the fused one's backward is 3x
  slower for CLIP's 50-token sequences (40 ms against 12 ms per block). fp32 and CUDA keep torch's choice.

``CompiledTower`` is the opt-in ``--compile``: ``torch.compile`` of the image tower (measured on CPU: a VQGAN
step at 256x256 in bf16 2-7% faster, after a first step of about 40 s with an empty compile cache; compiling the
VQGAN decoder gained nothing there, so it is not compiled).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from pixgen.errors import PixgenError


def speed_up(tower: nn.Module) -> nn.Module:
    """``tower`` (an open_clip image tower) with the fixes above that apply to it, changed in place."""
    sequence_first(tower)
    conv = getattr(tower, "conv1", None)
    if type(conv) is nn.Conv2d and PatchEmbedding.fits(conv):
        tower.conv1 = PatchEmbedding.of(conv)
    return tower


def sequence_first(tower: nn.Module) -> None:
    """Run a ViT tower's attention blocks on (L, N, D) (open_clip's own ``batch_first=False`` mode)."""
    transformer = getattr(tower, "transformer", None)
    blocks = getattr(transformer, "resblocks", ())
    if not getattr(transformer, "batch_first", False) or not all(
            isinstance(getattr(b, "attn", None), nn.MultiheadAttention) for b in blocks):
        return
    transformer.batch_first = False
    for block in blocks:
        block.attn.batch_first = False


class PatchEmbedding(nn.Conv2d):
    """A ``Conv2d`` whose kernel equals its stride, computed as one matrix product over the image's patches
    (the same parameters and state-dict names as the convolution it replaces)."""

    @staticmethod
    def fits(conv: nn.Conv2d) -> bool:
        """True for a plain patch convolution: kernel = stride, no padding, dilation or groups."""
        return (conv.kernel_size == conv.stride and conv.padding == (0, 0) and conv.dilation == (1, 1)
                and conv.groups == 1 and conv.padding_mode == "zeros")

    @classmethod
    def of(cls, conv: nn.Conv2d) -> PatchEmbedding:
        """A ``PatchEmbedding`` sharing ``conv``'s weight and bias (no copy)."""
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, bias=False, device="meta")
        new.weight, new.bias = conv.weight, conv.bias
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, out_channels, H / ph, W / pw); sizes that are not whole patches use the conv."""
        (ph, pw), (n, c, h, w) = self.kernel_size, x.shape
        if h % ph or w % pw:
            return super().forward(x)
        gh, gw = h // ph, w // pw
        patches = x.reshape(n, c, gh, ph, gw, pw).permute(0, 2, 4, 1, 3, 5).reshape(n, gh * gw, c * ph * pw)
        out = F.linear(patches, self.weight.reshape(self.out_channels, -1), self.bias)  # (N, gh*gw, out)
        return out.permute(0, 2, 1).reshape(n, self.out_channels, gh, gw)


def attention_kernels(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """The attention kernel choice for an image tower running in ``dtype`` on ``device`` (see above)."""
    if device.type != "cpu" or dtype == torch.float32:
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.MATH])


class CompiledTower(nn.Module):
    """An image tower run through ``torch.compile`` (``--compile``): compiled at its first call (about 40 s
    for ViT-B/32 on a CPU), and again for a new batch size. A tower that cannot be compiled (no C++ compiler for
    a CPU, no Triton for a GPU) stops the run with one line instead of a compiler's traceback."""

    def __init__(self, tower: nn.Module) -> None:
        super().__init__()
        self.compiled = torch.compile(tower)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The tower's output for ``x``, computed by the compiled code."""
        from torch._dynamo.exc import TorchDynamoException

        try:
            return self.compiled(x)
        except TorchDynamoException as exc:
            first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            raise PixgenError(f"--compile failed: torch.compile could not compile the CLIP image tower ({first[:160]});"
                              " run without --compile") from exc
