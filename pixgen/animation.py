"""``pixgen animate``: a zoom / feedback animation as a loop of Runs (VQGAN-CLIP's ``zoom.sh``).

Frame 1 is an ordinary run (``iterations`` steps from the usual start). Each later frame ``t`` starts from frame
``t-1`` as written (its PNG) moved by the camera at ``t`` (``pixgen.motion``), through the drawer's
``init_from_image``, and takes ``steps_per_frame`` steps with its own seed derived from the animation's; the
prompt schedule (``pixgen.schedule``) runs over frames. Models are cached per process, so they load once.

A frame depends only on the frame before it, its number and the seed, so an animation resumes at frame
granularity: ``resume=DIR`` continues after the last complete frame (frames are written atomically) with the
settings recorded in ``DIR/animation.yaml``, and gives the frames an uninterrupted animation would have given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixgen.errors import PixgenError

ANIMATION_FILE = "animation.yaml"
MOVES = ("zoom", "rotate", "shift_x", "shift_y")
DEFAULTS: dict[str, Any] = {"frames": 30, "steps_per_frame": 20, "zoom": 1.02, "rotate": 0.0, "shift_x": 0.0,
                            "shift_y": 0.0}
#: settings a resumed animation may change: how many frames, how the video is written, where it runs
RESUMABLE_CHANGES = ("frames", "fps", "video_format", "device", "out", "overwrite")
_SEED_STRIDE = 0x9E3779B97F4A7C15


@dataclass
class AnimationResult:
    """The outcome of ``animate``: the folder, every frame written, the video, and whether it was stopped."""

    folder: Path
    frames: list[Path]
    video: Path | None
    interrupted: bool = False


def frame_seed(seed: int, t: int) -> int:
    """The seed of frame ``t`` (frame 1 uses the animation's seed: it is the plain run of the settings)."""
    return (seed + (t - 1) * _SEED_STRIDE) % 2**63


def animate(prompt: Any = None, *, resume: str | Path | None = None, progress: bool = True,
            callbacks: Sequence[Any] = (), config: Any = None, **options: Any) -> AnimationResult:
    """Make an animation; ``options`` are ``frames``, ``steps_per_frame``, ``zoom``, ``rotate``, ``shift_x``,
    ``shift_y`` (numbers or expressions of ``t``) and any run setting (``size``, ``preset``, ``fps``...).
    ``resume=DIR`` continues the animation in DIR. ``callbacks`` are given to every frame's run."""
    from pixgen.config import RunConfig

    base = config.to_dict(non_default=True) if isinstance(config, RunConfig) else dict(config or {})
    given = {k.replace("-", "_"): v for k, v in {**base, **options}.items()}
    if prompt is not None:
        given["prompt"] = prompt
    job = _Job.prepare(given, resume)
    return job.run(list(callbacks), progress)


def _normal(value: Any) -> Any:
    """A setting's value in a comparable form (CLI strings, YAML numbers and lists alike)."""
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    try:
        return float(value) if not isinstance(value, bool) else value
    except (TypeError, ValueError):
        return str(value).strip()


def _resumed_settings(given: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The recorded settings of the animation in ``folder`` with ``given`` checked against them."""
    from pixgen.config import RunConfig, load_yaml

    if not (folder / ANIMATION_FILE).is_file():
        raise PixgenError(f"{folder} holds no animation to resume ({ANIMATION_FILE} is missing); give the --out "
                          "folder of a pixgen animate, or start a new one without --resume")
    recorded = load_yaml(folder / ANIMATION_FILE)
    recorded.pop("pixgen_version", None)
    defaults = {**RunConfig().to_dict(), **DEFAULTS}
    for key, value in given.items():
        if key in RESUMABLE_CHANGES or key == "resume":
            continue
        before = recorded.get(key, defaults.get(key))
        if key in MOVES:
            same = str(_move_text(value)) == str(_move_text(before))
        else:
            same = _normal(value) == _normal(before)
        if not same:
            raise PixgenError(f"the animation in {folder} was made with {key} {before!r}, not {value!r}; resume it "
                              f"with the same settings (leave --{key.replace('_', '-')} out), or start a new one")
    return {**recorded, **{k: v for k, v in given.items() if k in RESUMABLE_CHANGES}, "out": str(folder)}


def _move_text(value: Any) -> str:
    from pixgen.motion import parse_expression

    return parse_expression(value, "move").text if value is not None else ""


class _Job:
    """One animation's checked settings, folder and frame loop."""

    def __init__(self, settings: dict[str, Any], resume: bool) -> None:
        from pixgen.config import RunConfig, resolve_seed
        from pixgen.motion import camera_path
        from pixgen.plan import plan_run
        from pixgen.schedule import parse_schedule
        from pixgen.video import check_format, check_fps

        self.settings, self.resume = settings, resume
        self.frames = _whole(settings.get("frames", DEFAULTS["frames"]), "frames")
        self.steps = _whole(settings.get("steps_per_frame", DEFAULTS["steps_per_frame"]), "steps_per_frame")
        self.cameras = camera_path({m: settings.get(m, DEFAULTS[m]) for m in MOVES}, self.frames)
        run = {k: v for k, v in settings.items() if k not in DEFAULTS}
        if run.get("video") or "video_every" in run:
            raise PixgenError("--video and --video-every are for pixgen run; pixgen animate always writes every "
                              "frame and animation.mp4 (choose --fps and --video-format)")
        self.fps = check_fps(run.pop("fps", 12.0))
        self.kind = check_format(run.pop("video_format", "mp4"))
        self.schedule = parse_schedule(run.get("prompt"), run.pop("prompt_every", None), self.frames, "frame")
        self.seed = resolve_seed(run.get("seed"))
        settings["seed"] = run["seed"] = self.seed
        self.base = RunConfig.from_dict({**run, "prompt": self._prompt(1)})
        plan_run(self.first_config())  # every setting checked before any model loads
        self.out = run.get("out")

    @classmethod
    def prepare(cls, given: dict[str, Any], resume: str | Path | None) -> _Job:
        """Check the settings (merged with the recorded ones when resuming)."""
        from pixgen.io import require_utf8

        require_utf8(given)
        if resume is not None:
            folder = Path(resume)
            if given.get("out") is not None and Path(given["out"]).resolve() != folder.resolve():
                raise PixgenError(f"--resume {resume} and --out {given['out']} differ; give only --resume DIR")
            return cls(_resumed_settings(given, folder), True)
        return cls(given, False)

    def _prompt(self, t: int) -> str | None:
        """The prompt text of frame ``t`` (its part of the schedule)."""
        return self.schedule.at(t - 1).text if self.schedule else None

    def first_config(self) -> Any:
        """Frame 1: the plain run of the settings (``init_weight`` only with an ``init_image``)."""
        weight = self.base.init_weight if self.base.init_image else 0.0
        return self.base.replace(init_weight=weight, out=None, video=False)

    def frame_config(self, t: int, start: Path) -> Any:
        """Frame ``t`` >= 2: ``steps_per_frame`` steps from ``start`` (the warped frame before) with its seed."""
        return self.base.replace(prompt=self._prompt(t), iterations=self.steps, seed=frame_seed(self.seed, t),
                                 starts=1, init_image=str(start), out=None, video=False)

    def run(self, callbacks: list[Any], progress: bool) -> AnimationResult:
        """Claim the folder, make the missing frames, write the video; the folder is let go at the end."""
        from pixgen.animation_loop import make_frames

        return make_frames(self, callbacks, progress)


def _whole(value: Any, name: str) -> int:
    """A whole number >= 1, else one line."""
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
        raise PixgenError(f"{name} must be a whole number >= 1, got {value!r}")
    return int(text)
