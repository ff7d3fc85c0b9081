"""Perceptors: what the losses see of a CLIP model. Nothing else in pixgen imports open_clip.

``--clip`` specs: ``MODEL[:TAG][@WEIGHT]`` where TAG is an open_clip pretrained tag (``openai``,
``laion2b_s34b_b79k``...), a path to a local weights file, or ``random`` (untrained weights, for benchmarks).
MODEL may also be a path to an open_clip model config ``.json`` (registered under the file's stem), or a short
name that a package registers in ``pixgen.registry.CLIP_MODELS`` (the shapes wing's ``shapes``).
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from pixgen.errors import PixgenError
from pixgen.fast_clip import CompiledTower, attention_kernels, speed_up
from pixgen.registry import CLIP_MODELS, TIMM_TOWERS, Spec
from pixgen.weights import cache_dir

log = logging.getLogger("pixgen")


@dataclass(frozen=True)
class ClipSpec:
    """A parsed ``--clip`` spec; ``config`` is the open_clip model config file of a model open_clip does not ship."""

    model: str
    tag: str
    weight: float = 1.0
    config: str | None = None

    @property
    def key(self) -> str:
        """A stable name for this perceptor (used in loss terms and embeddings dicts)."""
        return f"{self.model}:{self.tag}"


@dataclass(frozen=True)
class ClipFiles:
    """A CLIP that a package ships under a short name (``pixgen.registry.CLIP_MODELS``): an open_clip model
    config ``.json`` and its weights file."""

    config: Path
    weights: Path


def parse_clip_spec(text: str) -> ClipSpec:
    """Parse ``MODEL[:TAG][@WEIGHT]``; the tag may itself contain ':' (a Windows path). MODEL may be a name
    registered in ``CLIP_MODELS`` (its files; a TAG then names other weights) or a model config ``.json``."""
    spec = Spec.parse(text)
    model, tag, config = spec.name, ":".join(spec.args), None
    if model in CLIP_MODELS:
        files = CLIP_MODELS.get(model)()
        config, tag = str(files.config), tag or str(files.weights)
        model = register_config_file(files.config)
    elif model.endswith(".json"):
        config, model = model, register_config_file(model)
    weight = 1.0 if spec.weight is None else spec.weight
    return ClipSpec(model=model, tag=tag or _default_tag(model, config), weight=weight, config=config)


def _default_tag(model: str, config: str | None) -> str:
    if config is not None:
        return "random"
    import open_clip

    tags = open_clip.list_pretrained_tags_by_model(model)
    return "openai" if "openai" in tags else (tags[0] if tags else "random")


class OpenClipPerceptor(nn.Module):
    """A frozen open_clip model: ``encode_image`` of (N, 3, s, s) in [0, 1] and ``encode_text``, L2-normalised."""

    def __init__(self, name: str, model: nn.Module, tokenizer, mean, std) -> None:
        super().__init__()
        self.name, self.model, self.tokenizer = name, model.eval().requires_grad_(False), tokenizer
        speed_up(model.visual)
        size = model.visual.image_size
        self.input_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    #: the image tower's weights' dtype: float32, or bfloat16/float16 when cast once for a reduced precision
    compute_dtype: torch.dtype = torch.float32

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, s, s) in [0, 1] -> (N, D) unit vectors; resizes if ``s`` is not the model's input size."""
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", antialias=True)
        x = (x - self.mean) / self.std
        reduced = self.compute_dtype != torch.float32
        with torch.autocast(x.device.type, dtype=self.compute_dtype, enabled=reduced), \
                attention_kernels(x.device, self.compute_dtype):
            return F.normalize(self.model.encode_image(x).float(), dim=-1)

    def reduced(self, dtype: torch.dtype) -> OpenClipPerceptor:
        """A copy whose image tower is cast once to ``dtype`` (run under autocast in ``encode_image``); the text
        tower stays fp32, so prompt embeddings keep full precision."""
        other = self._with_visual(copy.deepcopy(self.model.visual).to(dtype))
        other.compute_dtype = dtype
        return other

    def compiled(self) -> OpenClipPerceptor:
        """A copy whose image tower runs through ``torch.compile`` (``pixgen.fast_clip.CompiledTower``)."""
        return self._with_visual(CompiledTower(self.model.visual))

    def _with_visual(self, visual: nn.Module) -> OpenClipPerceptor:
        """A shallow copy with ``visual`` as its image tower (the text tower and buffers shared)."""
        other = copy.copy(self)
        other._modules = dict(self._modules)
        other.model = copy.copy(self.model)
        other.model._modules = dict(self.model._modules)
        other.model.visual = visual
        return other

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """A list of N strings -> (N, D) unit vectors."""
        unknown = sorted({w for text in texts for w in unknown_words(self.tokenizer, text)})
        if unknown:
            log.warning("CLIP %s does not know the word(s) %s: its vocabulary is cut to a small world's, so they "
                        "read as untrained letters; reword the prompt", self.name, ", ".join(map(repr, unknown)))
        tokens = self.tokenizer(texts).to(self.mean.device)
        return F.normalize(self.model.encode_text(tokens).float(), dim=-1)


#: CLIP's SimpleTokenizer: 512 byte symbols, 48894 merges, start and end of text
FULL_VOCAB = 49408
#: token ids below this are single bytes (with or without the end-of-word mark)
BYTE_SYMBOLS = 512


def unknown_words(tokenizer, text: str) -> list[str]:
    """The words of ``text`` that a compact vocabulary (fewer rows than CLIP's) can only spell with single
    letters; always ``[]`` for CLIP's full vocabulary, whose every word has trained tokens."""
    if getattr(tokenizer, "vocab_size", FULL_VOCAB) >= FULL_VOCAB or not hasattr(tokenizer, "encode"):
        return []
    spelled = [(w, tokenizer.encode(w)) for w in re.findall(r"[a-z]+", text.lower())]
    return [w for w, ids in spelled if len(ids) > 1 and min(ids) < BYTE_SYMBOLS]  # 'a' is one byte, and known


def load_perceptor(spec: ClipSpec, device: torch.device | str = "cpu", dtype: torch.dtype | None = None,
                   compile: bool = False) -> OpenClipPerceptor:
    """Load (once per process, then shared) the open_clip model named by ``spec`` on ``device``; with a reduced
    ``dtype`` (bf16, fp16) its image tower cast once to it; with ``compile`` run through ``torch.compile``."""
    device = str(torch.device(device))
    if dtype in (None, torch.float32):
        perceptor = _load_cached(spec.model, spec.tag, device, spec.config)
    else:
        perceptor = _load_reduced(spec.model, spec.tag, device, spec.config, dtype)
    return _compiled(perceptor) if compile else perceptor


@functools.lru_cache(maxsize=4)
def _compiled(perceptor: OpenClipPerceptor) -> OpenClipPerceptor:
    return perceptor.compiled()


@functools.lru_cache(maxsize=4)
def _load_reduced(model: str, tag: str, device: str, config: str | None, dtype: torch.dtype) -> OpenClipPerceptor:
    return _load_cached(model, tag, device, config).reduced(dtype)


def tokenizer_for(model: str, config: str | Path | None = None):
    """open_clip's tokenizer for ``model``; a ``config`` file naming its own BPE merges
    (``text_cfg.tokenizer_kwargs.bpe_path``, relative to the file) gets them."""
    import open_clip

    bpe = bpe_path_of(Path(config)) if config else None
    return open_clip.get_tokenizer(model, **({"bpe_path": str(bpe)} if bpe else {}))


def bpe_path_of(config: Path) -> Path | None:
    """The BPE merges file an open_clip model config names (``text_cfg.tokenizer_kwargs.bpe_path``, relative to
    the config's folder), or None for CLIP's own; a named file that is missing raises ``PixgenError``."""
    text_cfg = json.loads(Path(config).read_text()).get("text_cfg", {})
    bpe = (text_cfg.get("tokenizer_kwargs") or {}).get("bpe_path")
    if not bpe:
        return None
    path = Path(config).parent / bpe
    if not path.is_file():
        raise PixgenError(f"the BPE merges file {path} named by the CLIP config {config} is missing; keep it next "
                          "to the config")
    return path


@functools.lru_cache(maxsize=8)
def _load_cached(model: str, tag: str, device: str, config: str | None = None) -> OpenClipPerceptor:
    import open_clip

    if model not in open_clip.list_models():
        raise PixgenError(f"unknown CLIP model {model!r}; choose one of: {', '.join(open_clip.list_models())}"
                          " (or pass a model config .json)")
    from pixgen.clip_weights import load_weights, new_model

    clip = new_model(model, tag, device)
    load_weights(clip, model, tag)
    mean = getattr(clip.visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN
    std = getattr(clip.visual, "image_std", None) or open_clip.OPENAI_DATASET_STD
    return OpenClipPerceptor(f"{model}:{tag}", clip, tokenizer_for(model, config), mean, std).to(device)


def register_config_file(path: str | Path) -> str:
    """Add a model config file to open_clip's list (and its timm image tower, if a package registers it in
    ``TIMM_TOWERS``); returns the model name (the file's stem). A missing or malformed file raises ``PixgenError``."""
    import open_clip

    config = Path(path)
    if not config.is_file():
        raise PixgenError(f"CLIP model config {path} does not exist; give the path of an open_clip model .json")
    try:
        cfg = json.loads(config.read_text())
    except ValueError as exc:
        raise PixgenError(f"CLIP model config {path} is not valid JSON ({exc}); give an open_clip model .json") \
            from None
    vision = cfg.get("vision_cfg") if isinstance(cfg, dict) else None
    if not isinstance(vision, dict):
        raise PixgenError(f"CLIP model config {path} has no vision_cfg object; give an open_clip model .json")
    tower = vision.get("timm_model_name")
    if tower in TIMM_TOWERS:  # a package's own tower: timm must know it before open_clip builds the model
        TIMM_TOWERS.get(tower)()
    name = _free_name(config, cfg)
    if name != config.stem:  # open_clip names a config by its file's stem: register a copy under the new name
        config = cache_dir() / "clip-configs" / f"{name}.json"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(json.dumps(cfg))
    open_clip.add_model_config(config)
    return name


def _free_name(config: Path, cfg: dict) -> str:
    """The config file's stem, unless open_clip knows that name with another config: then the stem and a hash
    of the config, so that a file never replaces a model already registered."""
    import hashlib

    import open_clip

    stem = config.stem
    known = open_clip.get_model_config(stem) if stem in open_clip.list_models() else None
    if known in (None, cfg):
        return stem
    return f"{stem}-{hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:10]}"
