"""The frame loop of ``pixgen animate`` (``pixgen.animation``): the folder, one Run per frame, the video."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pixgen import __version__
from pixgen.errors import PixgenError

log = logging.getLogger("pixgen")
START_NAME = ".start.png"  # the warped previous frame: the next frame's init image


class _Once(logging.Filter):
    """Each distinct log line once (every frame's run would repeat its device and start notes)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        new = message not in self.seen
        self.seen.add(message)
        return new


class _Bar:
    """A run callback that advances one tqdm bar over every step of the frames still to make."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def on_start(self, run: Any) -> None:
        """Nothing before a frame."""

    def on_step(self, run: Any, result: Any) -> None:
        """One step done."""
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{result.loss:.4f}", refresh=False)

    def on_end(self, run: Any, result: Any) -> None:
        """Nothing after a frame."""


def claim_folder(job: Any) -> Any:
    """The animation's folder, locked: a new one (refusing another run's or animation's files unless
    ``overwrite``), or, resuming, the folder being resumed."""
    from pixgen.animation import ANIMATION_FILE
    from pixgen.outdir import OutDir, check_out_dir
    from pixgen.video import FRAMES

    overwrite = bool(job.base.overwrite)
    if not job.resume and job.out is not None:
        check_out_dir(job.out, overwrite)
        folder = Path(job.out)
        if not overwrite and ((folder / ANIMATION_FILE).exists() or (folder / FRAMES).exists()):
            raise PixgenError(f"folder {folder} holds another animation; continue it with --resume {folder}, pass "
                              "--overwrite, or choose another --out")
    return OutDir.claim(job.out, overwrite)


def start_folder(job: Any, folder: Path) -> int:
    """Prepare ``folder``; returns the number of complete frames to keep (0 for a new animation)."""
    from pixgen.animation import ANIMATION_FILE
    from pixgen.config import dump_yaml
    from pixgen.io import write_text
    from pixgen.video import FRAMES, frame_files

    (folder / FRAMES).mkdir(exist_ok=True)
    done = 0
    if job.resume:
        while (folder / FRAMES / f"{done + 1:05d}.png").is_file():
            done += 1
        if done > job.frames:
            raise PixgenError(f"{folder} already has {done} frames, more than --frames {job.frames}; give --frames "
                              f"{done} or more")
    for old in frame_files(folder):
        if int(old.stem) > done:
            old.unlink()  # a new animation's folder, or frames after a gap: made again
    recorded = {k: v for k, v in job.settings.items() if k not in ("out", "overwrite")}
    write_text(folder / ANIMATION_FILE, dump_yaml({**recorded, "pixgen_version": __version__}))
    return done


def make_frames(job: Any, callbacks: list[Any], progress: bool) -> Any:
    """Make frames ``done+1 .. job.frames``, then ``animation.mp4``; Ctrl-C keeps the frames made so far."""
    from tqdm.auto import tqdm

    from pixgen.animation import AnimationResult
    from pixgen.video import FRAMES, frame_files, write_video

    claimed = claim_folder(job)
    folder, once = claimed.path, _Once()
    interrupted = False
    try:
        done = start_folder(job, folder)
        total = (job.base.iterations if done == 0 else 0) + job.steps * max(0, job.frames - max(done, 1))
        bar = tqdm(total=total, desc="frames", unit="it", dynamic_ncols=True, disable=not progress)
        log.addFilter(once)
        try:
            for t in range(done + 1, job.frames + 1):
                bar.set_description(f"frame {t}/{job.frames}")
                if not _make_frame(job, folder, t, [_Bar(bar), *callbacks]):
                    interrupted = True
                    break
        finally:
            log.removeFilter(once)
            bar.close()
            (folder / START_NAME).unlink(missing_ok=True)
        frames = frame_files(folder)
        video = None
        if frames:
            video = write_video(frames, folder / f"animation.{job.kind}", job.fps)
        log.info("%s: %d of %d frames in %s%s", "Interrupted" if interrupted else "Done", len(frames), job.frames,
                 folder / FRAMES, f", video {video}" if video else "")
        return AnimationResult(folder, frames, video, interrupted)
    finally:
        claimed.release()


def _make_frame(job: Any, folder: Path, t: int, callbacks: list[Any]) -> bool:
    """Run frame ``t`` and write it; False if it was interrupted (nothing written then)."""
    from pixgen.io import save_png
    from pixgen.starts import best_start
    from pixgen.video import FRAMES, frame_name

    try:
        config = job.first_config() if t == 1 else job.frame_config(t, _warped_start(job, folder, t))
        run = best_start(config, callbacks)
        result = run.run()
    except KeyboardInterrupt:
        return False
    if result.interrupted:
        return False
    meta = {"Software": f"pixgen {__version__}", "pixgen_frame": str(t), "pixgen_seed_used": str(run.seed),
            "Description": str(config.prompt or "")}
    save_png(result.image, folder / FRAMES / frame_name(t), meta)
    return True


def _warped_start(job: Any, folder: Path, t: int) -> Path:
    """Frame ``t-1`` as written, moved by frame ``t``'s camera, saved as the start of frame ``t``."""
    from pixgen.io import load_image, save_png, to_pil
    from pixgen.motion import warp
    from pixgen.video import FRAMES, frame_name

    previous = load_image(folder / FRAMES / frame_name(t - 1))  # (1, 3, H, W)
    return save_png(to_pil(warp(previous, job.cameras[t - 2])), folder / START_NAME)
