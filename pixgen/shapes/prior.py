"""The shapes code prior: a small caption-conditioned transformer over the shapes VQGAN's code grid.

It is the second half of taming-transformers' recipe (a VQGAN, then a transformer that writes its codes):
the caption's tokens (the shapes CLIP tokenizer) are a prefix that attends to itself both ways, and the 16×16
code grid of a 64-pixel scene follows in raster order, each code predicted from the caption and the codes
before it. ``sample_codes`` draws grids, optionally with classifier-free guidance (the model also learned
captions left empty); the VQGAN drawer can start from a draw (``--init-noise prior``) before CLIP guidance takes
over. pixgen ships one for the shapes VQGAN (``--code-prior shapes``; ``--preset shapes`` starts from its draw).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pixgen.errors import PixgenError
from pixgen.shapes.denoiser import caption_tokens

TEXT_LEN = 16  # caption tokens kept (the longest shapes caption has 14 with its start and end tokens)
FINGERPRINT = 4  # code vectors of its VQGAN that a prior keeps, to refuse another VQGAN


class Block(nn.Module):
    """Pre-norm transformer block whose attention can extend a key/value cache (for sampling)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, cache: list | None = None) -> torch.Tensor:
        """``x`` (N, L, W); ``mask`` (L, L_total) of allowed attention or None (all allowed); ``cache`` a
        one-item list holding the keys and values of earlier positions, extended in place."""
        n, length, width = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(n, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        if cache is not None:
            if cache:
                k, v = torch.cat([cache[0][0], k], 2), torch.cat([cache[0][1], v], 2)
                cache.clear()
            cache.append((k, v))
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.proj(att.transpose(1, 2).reshape(n, length, width))
        return x + self.mlp(self.norm2(x))


class ShapesPrior(nn.Module):
    """Caption tokens (N, TEXT_LEN) and codes (N, grid²) -> logits (N, grid², n_codes) of each next code."""

    def __init__(self, n_codes: int = 512, grid: int = 16, vocab: int = 755, width: int = 128, depth: int = 4,
                 heads: int = 4, code_dim: int = 16, kinds: int = 0) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not a multiple of heads {heads}")
        self.n_codes, self.grid = n_codes, grid
        self.text = nn.Embedding(vocab, width)
        self.code = nn.Embedding(n_codes + 1, width)  # the last entry starts the grid
        self.text_pos = nn.Parameter(torch.randn(TEXT_LEN, width) * 0.02)
        self.rows, self.cols = (nn.Parameter(torch.randn(grid, 1, width) * 0.02) for _ in range(2))
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(depth))
        self.norm, self.head = nn.LayerNorm(width), nn.Linear(width, n_codes)
        #: training aid (``kinds`` > 0): names the kind of shape (or background) each next code's cell shows
        self.kind_head = nn.Linear(width, kinds) if kinds else None
        self.register_buffer("heads", torch.tensor(heads))  # saved with the weights: the rest shows in shapes
        #: the first code vectors of the VQGAN it was trained for (``fingerprint``): a prior fits that VQGAN only
        self.register_buffer("vqgan_codes", torch.zeros(FINGERPRINT, code_dim))

    def positions(self) -> torch.Tensor:
        """(TEXT_LEN + grid², width) position embeddings: the caption's, then a row plus a column embedding per
        code (the grid is 2-D: a code sees which codes are above it from the first steps of training)."""
        return torch.cat([self.text_pos, (self.rows + self.cols.transpose(0, 1)).flatten(0, 1)])

    def mask(self, length: int, device: Any) -> torch.Tensor:
        """(length, length) allowed attention: the caption sees itself, each code the caption and earlier codes."""
        allowed = torch.ones(length, length, dtype=torch.bool, device=device).tril()
        allowed[:TEXT_LEN, :TEXT_LEN] = True
        return allowed

    def forward(self, text: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits: position i predicts ``codes[:, i]`` from the caption and ``codes[:, :i]``."""
        return self.head(self.hidden(text, codes))

    def hidden(self, text: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """(N, grid², width) teacher-forced features from which the heads predict each next code."""
        start = torch.full_like(codes[:, :1], self.n_codes)
        x = torch.cat([self.text(text[:, :TEXT_LEN]), self.code(torch.cat([start, codes[:, :-1]], 1))], 1)
        x = x + self.positions()[: x.shape[1]]
        mask = self.mask(x.shape[1], x.device)
        for block in self.blocks:
            x = block(x, mask)
        return self.norm(x[:, TEXT_LEN:])

    def draw(self, caption: str, generator: torch.Generator | None = None) -> torch.Tensor:
        """One code grid (1, grid, grid) for ``caption`` ("" for any scene), with the default guidance."""
        tokens = caption_tokens([caption]).to(self.text_pos.device)
        count = int((tokens > 0).sum())
        if count > TEXT_LEN:
            many = f"more than {count - 2}" if count == tokens.shape[1] else str(count)
            raise PixgenError(f"the code prior reads captions of the shapes world, at most {TEXT_LEN} tokens, and "
                              f"{caption!r} has {many} (a word outside the world is spelled letter by letter); "
                              "give a shapes caption such as 'a red circle on a blue background'")
        return self.sample_codes(tokens, generator)

    @torch.no_grad()
    def sample_codes(self, text: torch.Tensor, generator: torch.Generator | None = None, guidance: float = 1.0,
                     temperature: float = 1.0, top_k: int = 32) -> torch.Tensor:
        """Draw code grids (N, grid, grid) for caption tokens (N, TEXT_LEN), guided by ``guidance`` times the
        difference to the empty caption's logits (classifier-free guidance; 1 = plain sampling)."""
        n, guided = text.shape[0], guidance != 1.0
        rows = text[:, :TEXT_LEN]
        if guided:  # (2N, T): the captions, then empty captions
            rows = torch.cat([rows, caption_tokens([""] * n).to(text.device)[:, :TEXT_LEN]])
        caches: list[list] = [[] for _ in self.blocks]
        pos = self.positions()
        x = self.text(rows) + pos[:TEXT_LEN]
        token = torch.full((rows.shape[0], 1), self.n_codes, dtype=torch.long, device=text.device)
        out = []
        for i in range(self.grid * self.grid):
            step = self.code(token) + pos[TEXT_LEN + i]
            x = torch.cat([x, step], 1) if i == 0 else step
            mask = self.mask(TEXT_LEN + 1, x.device) if i == 0 else None
            for block, cache in zip(self.blocks, caches, strict=True):
                x = block(x, mask, cache)
            logits = self.head(self.norm(x[:, -1]))
            if guided:
                logits = logits[n:] + guidance * (logits[:n] - logits[n:])
            choice = pick(logits, temperature, top_k, generator)
            out.append(choice)
            token = (torch.cat([choice, choice]) if guided else choice).unsqueeze(1)
        return torch.stack(out, 1).view(n, self.grid, self.grid)


def prior_for(path: str | None, codebook: torch.Tensor) -> ShapesPrior:
    """The code prior of ``path`` (``"shapes"``: the built-in one, for the shapes VQGAN), on ``codebook``'s
    device; it must have been trained for the VQGAN whose code vectors ``codebook`` (K, D) holds."""
    if path is None:
        raise PixgenError("--init-noise prior needs a code prior: give --code-prior shapes (the shapes VQGAN's) or "
                          "--code-prior FILE (API: code_prior=...), a prior trained for this VQGAN by "
                          "scripts/train_shapes_prior.py")
    if path == "shapes":
        from pixgen.shapes.models import prior_path

        path = str(prior_path())
    prior = load_prior(Path(path).expanduser(), codebook.device)
    if prior.n_codes != codebook.shape[0]:
        raise PixgenError(f"the code prior {path} writes codes of a {prior.n_codes}-entry codebook, but the VQGAN has "
                          f"{codebook.shape[0]}; give a prior trained for this VQGAN")
    if not torch.allclose(prior.vqgan_codes, fingerprint(codebook), rtol=1e-2, atol=1e-3):
        raise PixgenError(f"the code prior {path} was trained for another VQGAN (its codebook differs); give a prior "
                          "trained for this VQGAN by scripts/train_shapes_prior.py")
    return prior


def load_code_prior(file: str | None, codebook: torch.Tensor) -> ShapesPrior:
    """``--code-prior shapes[:FILE]`` (``pixgen.code_priors``): the built-in prior, or a prior FILE trained by
    scripts/train_shapes_prior.py, checked against the VQGAN whose code vectors ``codebook`` holds."""
    return prior_for(file or "shapes", codebook)


def fingerprint(codebook: torch.Tensor) -> torch.Tensor:
    """What a prior keeps of its VQGAN's codebook (K, D): the first ``FINGERPRINT`` code vectors."""
    return codebook[:FINGERPRINT].detach().float()


def pick(logits: torch.Tensor, temperature: float, top_k: int, generator: torch.Generator | None) -> torch.Tensor:
    """One code per row from the ``top_k`` most likely, at ``temperature`` (0: the most likely)."""
    if temperature <= 0:
        return logits.argmax(-1)
    top, idx = logits.topk(min(top_k, logits.shape[-1]), -1)
    probs = F.softmax(top.float() / temperature, -1)
    return idx.gather(-1, torch.multinomial(probs.cpu(), 1, generator=generator).to(idx.device)).squeeze(-1)


def save_prior(model: ShapesPrior, path: Path) -> None:
    """Write the prior's weights to ``path`` (a torch state dict, floats in fp16)."""
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}, path)


def config_of(state: dict[str, torch.Tensor]) -> dict[str, int]:
    """The constructor arguments of a saved prior, read from its tensors' shapes."""
    width = state["text_pos"].shape[1]
    return {"n_codes": state["head.weight"].shape[0], "grid": state["rows"].shape[0],
            "vocab": state["text.weight"].shape[0], "width": width, "heads": int(state["heads"]),
            "depth": len({k.split(".")[1] for k in state if k.startswith("blocks.")}),
            "code_dim": state["vqgan_codes"].shape[1],
            "kinds": state["kind_head.weight"].shape[0] if "kind_head.weight" in state else 0}


def load_prior(path: Path, device: Any = "cpu") -> ShapesPrior:
    """A trained prior from ``path``, in eval mode on ``device``; a file of another kind is a clear error."""
    from pixgen.checkpoints import load_checkpoint_state

    if not Path(path).is_file():
        raise PixgenError(f"code prior {path} is not a file; train one with scripts/train_shapes_prior.py")
    try:
        state = load_checkpoint_state(Path(path))
    except PixgenError:
        raise PixgenError(f"cannot read code prior {path}: it is not a torch file of tensors (corrupt, truncated, "
                          "or carrying code); give a file written by scripts/train_shapes_prior.py") from None
    try:
        model = ShapesPrior(**config_of(state))
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except (KeyError, RuntimeError, ValueError) as exc:
        raise PixgenError(f"{path} is not a shapes code prior ({type(exc).__name__}: {str(exc)[:120]}); give a "
                          "file written by scripts/train_shapes_prior.py") from None
    return model.eval().to(device)
