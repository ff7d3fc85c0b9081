"""The known models: where each file comes from (mirrors first to last), its cache name and checksum.

VQGAN URLs are the ones the anchor tools use (pixray ``vqgan.py``, nerdyrodent ``download_models.sh``,
tnwei/vqgan-clip-app ``download-weights.sh``). Their sha256 is not published anywhere we could find, so it is
recorded on first download and checked afterwards. The cache file names follow pixray's ``models/`` folder
(``vqgan_<name>.yaml``/``.ckpt``), so files users already have can be copied or linked in as they are.
OpenAI CLIP weights carry their sha256 in the URL (as ``clip.load`` and open_clip verify them); every other
open_clip ``MODEL:TAG`` is an entry too, derived from open_clip's pretrained table on demand (``open_clip_entry``).
Models that packages ship (the shapes wing's) come from ``pixgen.registry.MODELS``; this module never names them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pixgen.errors import PixgenError

_HEIBOX = "https://heibox.uni-heidelberg.de"
_MIRROR_IO = "http://mirror.io.community/blob/vqgan"
_PIXRAY_RELEASE = "https://github.com/pixray/pixray/releases/download/v1.7.1"
_ELEIBER = "https://github.com/Eleiber/VQGAN-Mirrors/releases/download/0.0.1"
_OPENAI = "https://openaipublic.azureedge.net/clip/models"
_HF = "https://huggingface.co"
_MB = 1_000_000


@dataclass(frozen=True)
class WeightFile:
    """One file of a model: its path in the cache, its mirrors (tried in order) and what we know of it."""

    filename: str  # relative to the cache dir (or to the package's assets/ folder for packaged models)
    urls: tuple[str, ...] = ()
    sha256: str | None = None  # None: recorded on first download, checked afterwards
    size: int | None = None  # approximate, in bytes, for display only
    magic: tuple[bytes, ...] = ()  # accepted leading bytes; rejects error pages saved as files


@dataclass(frozen=True)
class ModelEntry:
    """A named model: its files by role (``config``/``checkpoint`` for VQGAN, ``weights`` for CLIP)."""

    name: str
    kind: str  # "vqgan", "clip", "denoiser" or "prior"
    files: dict[str, WeightFile]
    description: str = ""
    package: str | None = None  # the Python package whose assets/ folder holds the files; None: the cache
    arch: dict[str, Any] = field(default_factory=dict)  # for VQGAN: {"arch": "f16" | "gumbel_f8", "n_embed": N}
    rebuild: str = ""  # packaged files: how to make them again (a command), named when one is missing

    @property
    def packaged(self) -> bool:
        """True when the files ship inside a package (``package``) and are never downloaded."""
        return self.package is not None


# torch.save files: a zip archive (torch >= 1.6) or the legacy pickle stream
_CKPT_MAGIC = (b"PK\x03\x04", b"\x80")
#: a pseudo magic for ``WeightFile.magic``: a safetensors file (8-byte header length, then its JSON header)
SAFETENSORS_MAGIC = b"<safetensors>"
_WEIGHTS_MAGIC = (*_CKPT_MAGIC, SAFETENSORS_MAGIC)


def _heibox(share: str, config: str, ckpt: str) -> tuple[str, str]:
    base = f"{_HEIBOX}/d/{share}/files/?p="
    return f"{base}{config}&dl=1", f"{base}{ckpt}&dl=1"


def _vqgan(name: str, configs: list[str], ckpts: list[str], *, arch: str, n_embed: int, size: int | None,
           description: str, stem: str | None = None) -> ModelEntry:
    stem = stem or f"vqgan_{name}"
    return ModelEntry(
        name=name,
        kind="vqgan",
        files={
            "config": WeightFile(f"vqgan/{stem}.yaml", tuple(configs)),
            "checkpoint": WeightFile(f"vqgan/{stem}.ckpt", tuple(ckpts), size=size, magic=_CKPT_MAGIC),
        },
        description=description,
        arch={"arch": arch, "n_embed": n_embed},
    )


def _vqgan_entries() -> list[ModelEntry]:
    in1k = _heibox("8088892a516d4e3baf92", "%2Fconfigs%2Fmodel.yaml", "%2Fckpts%2Flast.ckpt")
    in16k = _heibox("a7530b09fed84f80a887", "%2Fconfigs%2Fmodel.yaml", "%2Fckpts%2Flast.ckpt")
    gumbel = _heibox("2e5662443a6b4307b470", "%2Fconfigs%2Fmodel.yaml", "%2Fckpts%2Flast.ckpt")
    sflckr = _heibox("73487ab6e5314cb5adba", "%2Fconfigs%2F2020-11-09T13-31-51-project.yaml",
                     "%2Fcheckpoints%2Flast.ckpt")
    gumbel_args = dict(arch="gumbel_f8", n_embed=8192, size=376 * _MB, stem="vqgan_gumbel_f8_8192")
    return [
        _vqgan("imagenet_f16_1024", [in1k[0], f"{_MIRROR_IO}/vqgan_imagenet_f16_1024.yaml"],
               [in1k[1], f"{_MIRROR_IO}/vqgan_imagenet_f16_1024.ckpt"], arch="f16", n_embed=1024,
               size=958 * _MB, description="ImageNet, f16, 1024 codes (taming)"),
        _vqgan("imagenet_f16_16384",
               [in16k[0], f"{_HEIBOX}/f/274fb24ed38341bfa753/?dl=1", f"{_MIRROR_IO}/vqgan_imagenet_f16_16384.yaml"],
               [in16k[1], f"{_HEIBOX}/f/867b05fc8c4841768640/?dl=1", f"{_MIRROR_IO}/vqgan_imagenet_f16_16384.ckpt"],
               arch="f16", n_embed=16384, size=980 * _MB, description="ImageNet, f16, 16384 codes (default)"),
        _vqgan("gumbel_f8_8192", [gumbel[0]], [gumbel[1]], **gumbel_args,
               description="OpenImages, f8, 8192 codes, Gumbel quantizer (taming)"),
        _vqgan("openimages_f16_8192", [gumbel[0]], [gumbel[1]], **gumbel_args,
               description="pixray's name for gumbel_f8_8192 (same files)"),
        _vqgan("wikiart_1024",
               [f"{_PIXRAY_RELEASE}/vqgan_wikiart_1024.yaml", f"{_MIRROR_IO}/wikiart.yaml",
                f"{_ELEIBER}/wikiart_1024.yaml"],
               [f"{_PIXRAY_RELEASE}/vqgan_wikiart_1024.ckpt", f"{_MIRROR_IO}/wikiart.ckpt",
                f"{_ELEIBER}/wikiart_1024.ckpt"],
               arch="f16", n_embed=1024, size=958 * _MB, description="WikiArt, f16, 1024 codes"),
        _vqgan("wikiart_16384",
               [f"{_PIXRAY_RELEASE}/vqgan_wikiart_16384.yaml", f"{_MIRROR_IO}/wikiart_16384.yaml",
                f"{_ELEIBER}/wikiart_16384.yaml"],
               [f"{_PIXRAY_RELEASE}/vqgan_wikiart_16384.ckpt", f"{_MIRROR_IO}/wikiart_16384.ckpt",
                f"{_ELEIBER}/wikiart_16384.ckpt"],
               arch="f16", n_embed=16384, size=1000 * _MB, description="WikiArt, f16, 16384 codes"),
        _vqgan("coco", ["https://dl.nmkd.de/ai/clip/coco/coco.yaml"], ["https://dl.nmkd.de/ai/clip/coco/coco.ckpt"],
               arch="f16", n_embed=8192, size=8400 * _MB,
               description="COCO scene transformer; only its first-stage VQGAN (f16, 8192) is loaded"),
        _vqgan("faceshq", ["https://drive.google.com/uc?export=download&id=1fHwGx_hnBtC8nsq7hesJvs-Klv-P0gzT"],
               ["https://app.koofr.net/content/links/a04deec9-0c59-4673-8b37-3d696fe63a5d/files/get/last.ckpt"
                "?path=%2F2020-11-13T21-41-45_faceshq_transformer%2Fcheckpoints%2Flast.ckpt"],
               arch="f16", n_embed=1024, size=None,
               description="FacesHQ transformer; only its first-stage VQGAN (f16, 1024) is loaded"),
        _vqgan("sflckr", [sflckr[0]], [sflckr[1]], arch="f16", n_embed=1024, size=None,
               description="S-FLCKR landscapes transformer; only its first-stage VQGAN (f16, 1024) is loaded"),
    ]


#: approximate sizes of OpenAI's archives in MB, for `pixgen models list`
_OPENAI_MB = {"RN50.pt": 244, "RN101.pt": 278, "RN50x4.pt": 402, "RN50x16.pt": 630, "RN50x64.pt": 1260,
              "ViT-B-32.pt": 338, "ViT-B-16.pt": 335, "ViT-L-14.pt": 890, "ViT-L-14-336px.pt": 891}


def _clip(name: str, file: str, sha256: str) -> ModelEntry:
    url = f"{_OPENAI}/{sha256}/{file}"
    size = _OPENAI_MB[file] * _MB if file in _OPENAI_MB else None
    return ModelEntry(name=name, kind="clip", files={"weights": WeightFile(f"clip/{file}", (url,), sha256, size,
                                                                           magic=_CKPT_MAGIC)},
                      description="OpenAI CLIP (TorchScript archive)")


def _clip_entries() -> list[ModelEntry]:
    return [
        _clip("RN50:openai", "RN50.pt", "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762"),
        _clip("RN101:openai", "RN101.pt", "8fa8567bab74a42d41c5915025a8e4538c3bdbe8804a470a72f30b0d94fab599"),
        _clip("RN50x4:openai", "RN50x4.pt", "7e526bd135e493cef0776de27d5f42653e6b4c8bf9e0f653bb11773263205fdd"),
        _clip("RN50x16:openai", "RN50x16.pt", "52378b407f34354e150460fe41077663dd5b39c54cd0bfd2b27167a4a06ec9aa"),
        _clip("RN50x64:openai", "RN50x64.pt", "be1cfb55d75a9666199fb2206c106743da0f6468c9d327f3e0d0a543a9919d9c"),
        _clip("ViT-B-32:openai", "ViT-B-32.pt", "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af"),
        _clip("ViT-B-16:openai", "ViT-B-16.pt", "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f"),
        _clip("ViT-L-14:openai", "ViT-L-14.pt", "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836"),
        _clip("ViT-L-14-336:openai", "ViT-L-14-336px.pt",
              "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02"),
    ]


def open_clip_entry(model: str, tag: str) -> ModelEntry | None:
    """The store entry of open_clip's pretrained ``MODEL:TAG`` (None when open_clip has no such pair).

    OpenAI's files keep their sha256-named URLs; the others come from the Hugging Face hub (safetensors first,
    then the pickled state dict), then open_clip's ``url``, stored as ``clip/MODEL/TAG.weights`` whatever the
    format (``pixgen.clip_weights`` reads it by its contents); their sha256 is recorded on first download."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(model, tag)
    url, hub = cfg.get("url", ""), cfg.get("hf_hub", "")
    if url.startswith(f"{_OPENAI}/"):
        sha256, file = url.split("/")[-2:]
        return _clip(f"{model}:{tag}", file, sha256)
    urls = _hub_urls(hub) + ((url,) if url else ())
    if not urls:
        return None
    stem = tag.lower().replace("-", "_")  # open_clip's spelling of the tag
    wf = WeightFile(f"clip/{model}/{stem}.weights", urls, magic=_WEIGHTS_MAGIC)
    return ModelEntry(f"{model}:{tag}", "clip", {"weights": wf}, description=f"open_clip {model}, {tag} weights")


def _hub_urls(hub: str) -> tuple[str, ...]:
    """Download URLs of an open_clip ``hf_hub`` entry (``org/repo/`` or ``org/repo/FILE``), safetensors first."""
    if not hub:
        return ()
    repo, _, filename = hub.rpartition("/")  # "org/repo/" -> no file name: open_clip's default files
    names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
    if filename.endswith((".bin", ".pth")):
        names.insert(0, filename[:-4] + ".safetensors")
    return tuple(f"{_HF}/{repo}/resolve/main/{name}" for name in names)


def _core_table() -> dict[str, ModelEntry]:
    return {entry.name: entry for entry in _vqgan_entries() + _clip_entries()}


def _plugin_entry(name: str) -> ModelEntry:
    from pixgen.registry import MODELS

    entry = MODELS.get(name)
    if not isinstance(entry, ModelEntry):
        raise PixgenError(f"the model {name!r} that a package registers (entry point group pixgen.models) is "
                          f"a {type(entry).__name__}, not a ModelEntry; update or remove that package")
    return entry


def find_entry(name: str) -> ModelEntry | None:
    """The entry named ``name``: the core table first, then the packages' (``pixgen.registry.MODELS``, imported
    only now), then open_clip's pretrained ``MODEL:TAG``; None when nobody knows it."""
    from pixgen.registry import MODELS

    core = _core_table()
    if name in core:
        return core[name]
    if name in MODELS:
        return _plugin_entry(name)
    model, sep, tag = name.partition(":")
    return open_clip_entry(model, tag) if sep and model and tag else None


def known_models() -> dict[str, ModelEntry]:
    """The listed models, by name (a fresh dict on each call): the core VQGANs, every entry the installed
    packages register (``pixgen.registry.MODELS``), OpenAI's CLIPs. Any other open_clip ``MODEL:TAG`` is known
    too (``find_entry``) but not listed."""
    from pixgen.registry import MODELS

    core = _core_table()
    plugins = {name: _plugin_entry(name) for name in MODELS.names() if name not in core}
    vqgans = {name: entry for name, entry in core.items() if entry.kind == "vqgan"}
    return {**vqgans, **plugins, **{name: entry for name, entry in core.items() if name not in vqgans}}
