"""Progress videos: a run's frames kept as it goes (``frames/00001.png`` ..., each written atomically, so a killed
run still leaves them) and assembled into ``progress.mp4`` (or ``.gif``) at its end, or later by ``pixgen video``.

An mp4 (H.264 through the ``imageio-ffmpeg`` wheel's own ffmpeg, no system ffmpeg) needs even sides: a frame with
an odd side is padded by one row or column repeating its edge pixels (never scaled), and every frame is written
once, so the video has exactly as many frames as the folder. A GIF keeps the timing, but the format stores
identical consecutive frames once (their durations add up).
"""

from __future__ import annotations

import logging
import math
import os
import re
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pixgen import __version__
from pixgen.errors import PixgenError

log = logging.getLogger("pixgen")

FRAMES = "frames"
FORMATS = ("mp4", "gif")
_FRAME = re.compile(r"\d+\.png")


def check_video_settings(config: Any) -> None:
    """``video_every`` a whole number >= 1, ``fps`` a finite positive number, ``video_format`` mp4 or gif."""
    config.fps = check_fps(config.fps)
    config.video_format = check_format(config.video_format)
    every = config.video_every
    if isinstance(every, bool) or not str(every).strip().isdigit() or int(every) < 1:
        raise PixgenError(f"video_every {every!r} must be a whole number of steps >= 1 (a frame every N steps)")
    config.video_every = int(every)


def check_fps(fps: Any) -> float:
    """``fps`` as a finite positive float, else one line."""
    try:
        value = float(fps)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(fps, bool) or not math.isfinite(value) or value <= 0:
        raise PixgenError(f"fps {fps!r} must be a finite positive number of frames per second, e.g. --fps 12")
    return value


def check_format(kind: Any) -> str:
    """``mp4`` or ``gif`` (any case), else one line."""
    text = str(kind).lower().lstrip(".")
    if text not in FORMATS:
        raise PixgenError(f"video format {kind!r} is not one of {', '.join(FORMATS)}; give --video-format mp4 or gif")
    return text


def frame_name(number: int) -> str:
    """``00001.png`` for frame 1."""
    return f"{number:05d}.png"


def frame_files(folder: str | Path) -> list[Path]:
    """The numbered frames of ``folder/frames`` in order (half-written temporary files are hidden: skipped)."""
    frames = Path(folder) / FRAMES
    if not frames.is_dir():
        return []
    return sorted((p for p in frames.iterdir() if _FRAME.fullmatch(p.name)), key=lambda p: int(p.stem))


def write_video(frames: Sequence[str | Path], path: str | Path, fps: float) -> Path:
    """Write the PNG ``frames`` as an mp4 or GIF (by ``path``'s suffix), atomically: a temporary file beside
    ``path`` renamed over it once complete."""
    path, fps = Path(path), check_fps(fps)
    kind = check_format(path.suffix)
    if not frames:
        raise PixgenError(f"no frames to write into {path.name}; the run kept none (give --video)")
    images = [_read_frame(Path(f)) for f in frames]
    if any(image.shape != images[0].shape for image in images):
        raise PixgenError(f"the frames for {path.name} differ in size; remove the odd ones from "
                          f"{Path(frames[0]).parent}")
    tmp = path.parent / f".{path.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp.{kind}"
    try:
        (_write_mp4 if kind == "mp4" else _write_gif)(images, tmp, fps)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _read_frame(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 of a frame (one line for a damaged file)."""
    from pixgen.io import open_image

    return np.asarray(open_image(path, "frame").convert("RGB"))


def _write_mp4(images: list[np.ndarray], path: Path, fps: float) -> None:
    """H.264 (yuv420p, crf 17 as pixray) at ``fps``; odd sides padded by one edge row or column."""
    import imageio.v2 as imageio

    try:
        import imageio_ffmpeg  # noqa: F401  (the wheel that brings its own ffmpeg)
    except ImportError:
        raise PixgenError("writing mp4 needs the imageio-ffmpeg package; pip install imageio-ffmpeg, or give "
                          "--video-format gif") from None
    height, width = images[0].shape[:2]
    pad = ((0, height % 2), (0, width % 2), (0, 0))
    writer = imageio.get_writer(path, format="FFMPEG", mode="I", fps=fps, codec="libx264", quality=None,
                                pixelformat="yuv420p", macro_block_size=1, ffmpeg_log_level="error",
                                output_params=["-crf", "17"])
    try:
        for image in images:
            writer.append_data(np.pad(image, pad, mode="edge") if any(p[1] for p in pad) else image)
    finally:
        writer.close()


def _write_gif(images: list[np.ndarray], path: Path, fps: float) -> None:
    """An endlessly looping GIF (PIL), each frame shown 1/``fps`` s."""
    from PIL import Image

    frames = [Image.fromarray(image) for image in images]
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=round(1000 / fps),
                   loop=0)


def assemble(folder: str | Path, fps: float | None = None, kind: str | None = None, name: str | None = None) -> Path:
    """Write ``folder``'s frames into ``folder/NAME.mp4`` (or .gif). ``fps`` and the format default to the
    folder's settings (``settings.yaml`` or ``animation.yaml``), else 12 and mp4; ``name`` to ``progress``
    (``animation`` for a ``pixgen animate`` folder)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PixgenError(f"folder {folder} does not exist; give a run's --out folder")
    frames = frame_files(folder)
    if not frames:
        raise PixgenError(f"{folder} has no frames ({FRAMES}/00001.png ...); frames are kept by runs with --video "
                          "and by pixgen animate")
    settings = _folder_settings(folder)
    fps = settings.get("fps", 12.0) if fps is None else fps
    kind = check_format(kind or settings.get("video_format", "mp4"))
    name = name or ("animation" if (folder / "animation.yaml").is_file() else "progress")
    return write_video(frames, folder / f"{name}.{kind}", fps)


def _folder_settings(folder: Path) -> dict[str, Any]:
    """The settings a run or animation recorded in ``folder`` (empty if none can be read)."""
    from pixgen.config import load_yaml

    for name in ("animation.yaml", "settings.yaml"):
        if (folder / name).is_file():
            try:
                return load_yaml(folder / name)
            except PixgenError:
                return {}
    return {}


def save_frame(image: Any, path: Path, metadata: dict[str, str]) -> None:
    """One frame PNG, written atomically (a reader never sees half a frame)."""
    from pixgen.io import save_png

    save_png(image, path, metadata)


class ProgressVideo:
    """A run callback: the image at step 0, every ``every`` steps and at the end as ``frames/NNNNN.png``, then
    ``progress.mp4`` (or .gif) from them. Frame N shows step (N-1)·``every`` (the last one the final step), so a
    resumed run rewrites the same names; frames past a resumed run's step are dropped. It writes into the
    folder of the run's ``SaveImage`` (``saver``), which must come before it in the callbacks."""

    def __init__(self, saver: Any, every: int = 5, fps: float = 12.0, kind: str = "mp4") -> None:
        self.saver, self.every, self.fps, self.kind = saver, int(every), check_fps(fps), check_format(kind)
        self.folder: Path | None = None
        self.failed = False

    def on_start(self, run: Any) -> None:
        """Clear a previous run's frames (or, resuming, those past this step); keep the starting frame."""
        self.folder = Path(self.saver.dir)
        frames = self.folder / FRAMES
        frames.mkdir(exist_ok=True)
        keep = 0 if run.iteration == 0 else run.iteration // self.every + 1
        for old in frame_files(self.folder):
            if int(old.stem) > keep:
                old.unlink()
        if run.iteration == 0:
            (self.folder / f"progress.{self.kind}").unlink(missing_ok=True)
        number = run.iteration // self.every + 1
        if not (frames / frame_name(number)).exists():
            self._save(run, number)

    def on_step(self, run: Any, result: Any) -> None:
        """A frame every ``every`` steps."""
        if result.iteration % self.every == 0:
            self._save(run, result.iteration // self.every + 1)

    def on_end(self, run: Any, result: Any) -> None:
        """The final frame (if the last step was not on the grid), then the video."""
        if run.iteration % self.every:
            self._save(run, run.iteration // self.every + 2, result.image)
        path = self.folder / f"progress.{self.kind}"
        try:
            write_video(frame_files(self.folder), path, self.fps)
        except (OSError, PixgenError) as exc:
            log.warning("cannot write %s (%s); the frames are in %s: run `pixgen video %s` later", path.name,
                        exc, self.folder / FRAMES, self.folder)
            return
        result.files[path.name] = path

    def close(self) -> None:
        """Nothing to let go."""

    def _save(self, run: Any, number: int, image: Any = None) -> None:
        """Write frame ``number``; a failure (a full disk) warns once and the run goes on."""
        image = run.image() if image is None else image
        meta = {"Software": f"pixgen {__version__}", "pixgen_iteration": str(run.iteration),
                "pixgen_seed_used": str(run.seed)}
        try:
            save_frame(image, self.folder / FRAMES / frame_name(number), meta)
        except OSError as exc:
            if not self.failed:
                log.warning("cannot write frame %d in %s (%s); the run goes on", number, self.folder / FRAMES, exc)
            self.failed = True


def progress_video(config: Any, callbacks: Sequence[Any]) -> ProgressVideo:
    """The ``--video`` callback of a run, writing into the folder of the ``SaveImage`` among ``callbacks``."""
    from pixgen.callbacks import SaveImage

    check_video_settings(config)
    savers = [c for c in callbacks if isinstance(c, SaveImage)]
    if not savers:
        raise PixgenError("video frames go into the run's output folder; run with saving on (save=True)")
    return ProgressVideo(savers[0], config.video_every, config.fps, config.video_format)
