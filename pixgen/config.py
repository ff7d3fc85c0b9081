"""RunConfig: every setting of one run. Same names in the CLI (``--pixel-size``), YAML and ``pixgen.run()``.

Keys that are not RunConfig fields are options of the chosen plug-ins (the keyword-only constructor arguments of
the drawer, filters and losses, see ``pixgen.plugins``); anything else is rejected with the list of valid keys.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixgen.errors import PixgenError

MAX_SIDE = 8192
#: ``--optimizer`` names -> torch.optim classes (torch's defaults apart from the learning rate)
OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW", "adagrad": "Adagrad", "adamax": "Adamax", "radam": "RAdam",
              "nadam": "NAdam", "sgd": "SGD"}


@dataclass
class RunConfig:
    """The settings of one optimization run (defaults follow pixray's ``normal`` quality where it has one)."""

    prompt: str | list[Any] | None = None  # text, "a ^ b" story, or a list of {prompt, until} (pixgen.schedule)
    prompt_every: int | str | None = None  # steps per part of an "a ^ b" story (default: even parts)
    drawer: str = "pixel"
    clip: list[str] = field(default_factory=lambda: ["ViT-B-32:openai"])
    loss: list[str] = field(default_factory=list)
    filters: list[str] = field(default_factory=list)
    size: str = "384x216"
    iterations: int = 250
    schedule_iterations: int | None = None  # the length schedules follow: an extended run's first (resume)
    seed: int | str | None = None
    cutn: int = 30
    batches: int = 1
    augment: bool = True
    cut_noise: float = 0.1
    cut_zoom: float = 0.6
    lr: float | None = None
    lr_drops: list[float] = field(default_factory=lambda: [75.0])
    lr_warmup: float = 0.0
    starts: int = 1
    start_trial: float = 20.0
    save_every: int = 10
    video: bool = False  # keep frames/ and write progress.mp4 (pixgen.video)
    video_every: int = 5
    fps: float = 12.0
    video_format: str = "mp4"
    out: str | None = None
    overwrite: bool = False  # reuse an --out that holds another run's results (pixgen.outdir)
    device: str = "auto"
    init_image: str | None = None
    init_noise: str = "pixels"
    init_weight: float = 0.0
    init_latent_weight: float = 0.0
    image_prompt: list[str] = field(default_factory=list)
    target_image: list[str] = field(default_factory=list)
    optimizer: str = "adam"
    precision: str = "auto"
    compile: bool = False  # torch.compile the CLIP image towers (pixgen.fast_clip.CompiledTower)
    auto_stop: int = 0
    preset: str | None = None
    quality: str | None = None
    aspect: str | None = None
    plugin_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunConfig:
        """Build from a flat dict (``preset``/``quality`` expanded under the explicit settings); unknown keys
        must be options of the chosen plug-ins. ``filters`` may be one comma-separated string."""
        from pixgen.presets import apply_presets
        from pixgen.schema import coerce_settings

        # every field checked against its annotation (pixgen.schema), before and after a preset's own values
        values = coerce_settings(cls, apply_presets(coerce_settings(cls, values)))
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in values.items() if k in names}
        extra = {k: v for k, v in values.items() if k not in names}
        if "filters" in known:
            known["filters"] = split_filters(known["filters"])
        config = cls(**known)
        if extra:
            config.plugin_options = {**config.plugin_options, **extra}
        return config

    def to_dict(self, non_default: bool = False) -> dict[str, Any]:
        """A flat dict (plug-in options inline); only the settings that differ from the defaults if asked."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "plugin_options"}
        out.update(self.plugin_options)
        if non_default:
            defaults = RunConfig().to_dict()
            out = {k: v for k, v in out.items() if k not in defaults or defaults[k] != v}
        return out

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with some settings changed (same rules as ``from_dict``)."""
        return RunConfig.from_dict({**self.to_dict(), **changes})

    def dimensions(self) -> tuple[int, int]:
        """``size`` as (width, height), checked."""
        return parse_size(self.size)


def split_filters(value: str | list[str] | None) -> list[str]:
    """``"lookup,wallpaper:shift"`` (or a list of such strings) -> ``["lookup", "wallpaper:shift"]``."""
    items = [value] if isinstance(value, str) else list(value or [])
    if not all(isinstance(item, str) for item in items):
        raise PixgenError(f"filters must be names such as 'lookup,tiler', got {value!r}")
    return [name.strip() for item in items for name in item.split(",") if name.strip()]


def parse_size(size: str | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``"WxH"`` (or a pair) -> (width, height); both sides in 1..8192."""
    if isinstance(size, (tuple, list)) and len(size) == 2:
        width, height = size
    else:
        match = re.fullmatch(r"\s*(-?\d+)\s*[xX×,]\s*(-?\d+)\s*", str(size))
        if not match:
            raise PixgenError(f"size {size!r} is not WIDTHxHEIGHT; write e.g. --size 384x216")
        width, height = int(match.group(1)), int(match.group(2))
    if not (0 < int(width) <= MAX_SIDE and 0 < int(height) <= MAX_SIDE):
        raise PixgenError(f"size {width}x{height} is impossible; both sides must be between 1 and {MAX_SIDE}")
    return int(width), int(height)


def resolve_seed(seed: int | str | None) -> int:
    """An int seed: ints and integer strings (``"-5"`` as -5) modulo 2**63, other strings hashed (sha512, as
    pixray), None random; so ``--seed -5`` and ``seed=-5`` are the same seed."""
    if seed is None or (isinstance(seed, str) and not seed.strip()):
        return secrets.randbelow(2**32)
    if isinstance(seed, bool):
        raise PixgenError(f"seed {seed!r} is not an integer or a string")
    if isinstance(seed, int):
        return seed % 2**63
    text = str(seed).strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text) % 2**63
    return int.from_bytes(hashlib.sha512(text.encode()).digest(), "big") % 2**32


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a settings YAML file into a dict, with a clear error if it is missing or malformed."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise PixgenError(f"config file {path} does not exist; check the path given to --config") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise PixgenError(f"cannot read config file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise PixgenError(f"config file {path} is not valid YAML ({exc}); fix the file or remove it") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PixgenError(f"config file {path} must hold a mapping of setting: value, not {type(data).__name__}")
    return data


def dump_yaml(values: dict[str, Any]) -> str:
    """Settings as YAML text (the format ``--config`` reads)."""
    import yaml

    return yaml.safe_dump(values, sort_keys=False, allow_unicode=True)


def check(config: RunConfig) -> None:
    """Reject impossible settings with one clear message each (types from YAML/API are coerced in place); the
    prompts, plug-ins and CLIP specs are checked when the run is planned (``pixgen.plan.plan_run``)."""
    from pixgen.schema import coerce_fields

    coerce_fields(config)  # the declared types, also for a RunConfig built directly
    config.dimensions()
    for name, low in (("iterations", 1), ("cutn", 1), ("batches", 1), ("save_every", 0), ("starts", 1)):
        setattr(config, name, _number(config, name, int, low))
    config.cut_noise = _number(config, "cut_noise", float, 0.0)
    config.cut_zoom = _number(config, "cut_zoom", float, 0.0, high=1.0)
    if config.lr is not None:
        config.lr = _number(config, "lr", float, 1e-12)
    config.lr_drops = [float(v) for v in config.lr_drops]
    if any(not 0 < v < 100 for v in config.lr_drops):
        raise PixgenError(f"lr_drops {config.lr_drops} must be percentages between 0 and 100")
    config.lr_warmup = _number(config, "lr_warmup", float, 0.0, high=100.0)
    config.start_trial = _number(config, "start_trial", float, 0.0, high=100.0)
    config.init_weight = _number(config, "init_weight", float, 0.0)
    config.init_latent_weight = _number(config, "init_latent_weight", float, 0.0)
    config.auto_stop = _number(config, "auto_stop", int, 0)
    if config.init_weight and not config.init_image:
        raise PixgenError("init_weight keeps the render near the init image: give --init-image too (or use "
                          "--init-latent-weight to keep the drawer near its start)")
    if str(config.precision).lower() not in ("auto", "fp32", "bf16", "fp16"):
        raise PixgenError(f"unknown precision {config.precision!r}; choose one of: auto, fp32, bf16, fp16")
    if str(config.optimizer).lower() not in OPTIMIZERS:
        raise PixgenError(f"unknown optimizer {config.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")
    if config.schedule_iterations is not None:
        config.schedule_iterations = _number(config, "schedule_iterations", int, 1)
    if config.starts > 1 and config.iterations < 2:
        raise PixgenError(f"starts {config.starts} needs at least 2 iterations (a trial, then the run); "
                          "give more --iterations or --starts 1")
    if not config.clip:
        raise PixgenError("no CLIP model given; pass at least one --clip MODEL[:TAG]")
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", str(config.device)):
        raise PixgenError(f"device {config.device!r} is not one of auto, cpu, cuda, cuda:N, mps")
    if config.init_image is not None and not Path(config.init_image).is_file():
        raise PixgenError(f"init image {config.init_image} does not exist; check the path given to --init-image")


def _number(config: RunConfig, name: str, kind: type, low: float, high: float = float("inf")) -> Any:
    value = getattr(config, name)
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise PixgenError(f"{name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not low <= number < float("inf") or number > high:
        bound = f">= {low:g}" if high == float("inf") else f"between {low:g} and {high:g}"
        raise PixgenError(f"{name} must be a finite number {bound}, got {value!r}")
    return number
