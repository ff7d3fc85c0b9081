"""A batch from start to end: expand and check every job, reach the executor, then run the jobs that are not
done yet, writing each job's files and its manifest row as it finishes; the gallery at the end.

Bad input (a bad jobs file, a bad setting in one job, an unreachable cluster) fails before any job starts and
before anything is written; a failing job is recorded and the others go on.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pixgen.batching.jobs import Job, expand, load_jobs_file, plan_jobs, read_prompts_file
from pixgen.batching.manifest import Manifest, is_done
from pixgen.config import RunConfig
from pixgen.errors import PixgenError

log = logging.getLogger("pixgen")
JobsInput = str | os.PathLike | dict[str, Any] | Sequence[dict[str, Any] | RunConfig] | None


def batch(jobs: JobsInput, executor: str = "local", *, out: str | os.PathLike | None = None,
          prompts_file: str | os.PathLike | None = None, address: str | None = None, workers: int | None = None,
          threads: int | None = None, progress: bool = True, gallery: bool = True) -> list[dict[str, Any]]:
    """Run a batch and return its manifest rows (one per job, in job order: ``id``, ``status`` done or failed,
    ``seconds``, ``loss``, ``error``, ``seed``...). ``jobs`` is a jobs YAML file, its contents as a dict, or a list
    of jobs (settings dicts or ``RunConfig``); ``executor`` ``local`` or ``ray`` (``address`` of a cluster).
    Jobs already done in ``out`` (default ``outputs/<jobs file name>``) are skipped; bad input raises
    ``PixgenError`` before anything runs; a failing job does not raise: its row says why."""
    from pixgen.batching.executors import make_executor

    planned = prepare(jobs, prompts_file)
    folder = Path(out) if out is not None else default_out(jobs, prompts_file)
    runner = make_executor(executor, address=address, workers=workers, threads=threads,
                           gpu=any(job.settings.get("device", "auto") != "cpu" for job in planned))
    manifest = Manifest(folder)
    latest = manifest.latest()
    todo = [job for job in planned if not is_done(latest.get(job.id), job.hash)]
    if todo:
        runner.connect()  # an unreachable cluster fails here, before anything is written
        try:
            make_folder(folder)
            log.info("Batch: %d job(s) to run, %d done already, in %s; %s", len(todo), len(planned) - len(todo),
                     folder, runner.describe())
            run_jobs(todo, len(planned), runner, folder, manifest, progress)
        finally:
            runner.close()
    else:
        log.info("Batch: all %d job(s) are done already in %s", len(planned), folder)
    if gallery:
        from pixgen.batching.gallery import build_gallery

        build_gallery(folder)
    latest = manifest.latest()
    return [latest[job.id] for job in planned if job.id in latest]


def prepare(jobs: JobsInput, prompts_file: str | os.PathLike | None = None) -> list[Job]:
    """The jobs, expanded and checked (the first bad one raises ``PixgenError`` naming it)."""
    extra = read_prompts_file(prompts_file) if prompts_file is not None else []
    if isinstance(jobs, (str, os.PathLike)):
        spec, where = load_jobs_file(jobs), f"jobs file {jobs}"
    elif isinstance(jobs, dict):
        spec, where = dict(jobs), "jobs"
    elif jobs is None:
        if prompts_file is None:
            raise PixgenError("no jobs given; pass a jobs file, a --prompts-file, or both")
        spec, where = {}, f"prompts file {prompts_file}"
    elif isinstance(jobs, Sequence):
        spec, where = {"jobs": [_job_entry(job) for job in jobs]}, "jobs"
    else:
        raise PixgenError(f"jobs must be a jobs file, a dict or a list of settings, not {type(jobs).__name__}")
    return plan_jobs(expand(spec, extra), where)


def default_out(jobs: JobsInput, prompts_file: str | os.PathLike | None = None) -> Path:
    """``outputs/<name of the jobs file>`` (or of the prompts file; ``outputs/batch`` for jobs given in code):
    the same command finds the same folder, so a rerun finishes it."""
    if isinstance(jobs, (str, os.PathLike)):
        return Path("outputs") / Path(jobs).stem
    if jobs is None and prompts_file is not None:
        return Path("outputs") / Path(prompts_file).stem
    return Path("outputs") / "batch"


def _job_entry(job: dict[str, Any] | RunConfig) -> dict[str, Any]:
    if isinstance(job, RunConfig):
        if job.out is not None:
            raise PixgenError("a batch job cannot set out (each job gets a folder in the batch's); pass out= to "
                              "pixgen.batch for the batch's folder")
        return {k: v for k, v in job.to_dict(non_default=True).items() if k != "out"}
    return job


def make_folder(folder: Path) -> None:
    """Create the batch folder (a clear error if it cannot be)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PixgenError(f"cannot create batch folder {folder} ({exc}); choose another --out") from None


def run_jobs(todo: list[Job], total: int, runner: Any, folder: Path, manifest: Manifest, progress: bool) -> None:
    """Run ``todo`` on ``runner`` with a progress bar over all ``total`` jobs (ETA included); each finished job's
    files are written, then its manifest row appended."""
    from tqdm.auto import tqdm

    jobs = {job.id: job for job in todo}
    tasks = [{"id": job.id, "settings": job.settings, "cwd": os.getcwd()} for job in todo]
    bar = tqdm(total=total, initial=total - len(todo), unit="job", desc="batch", dynamic_ncols=True,
               disable=not progress)
    failed = 0
    try:
        for task, result in runner.run(tasks):
            job = jobs[task["id"]]
            files = result.pop("files", None) or {}
            if files:
                write_job_files(folder / job.id, files)
            row = {"id": job.id, "hash": job.hash, "prompt": job.prompt, "index": job.index,
                   "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), **result}
            row["seed"] = row.get("seed") if row.get("seed") is not None else job.settings.get("seed")
            manifest.append(row)
            if row["status"] != "done":
                failed += 1
                message = f"job {job.id} {row['status']}: {row['error']}"
                if progress:
                    bar.write(message, file=sys.stderr)
                else:
                    log.warning(message)
            bar.update(1)
            bar.set_postfix(failed=failed, refresh=False)
    finally:
        bar.close()


def write_job_files(folder: Path, files: dict[str, bytes]) -> None:
    """Write a job's files into a fresh folder next to ``folder``, then put it in place of any older one."""
    partial = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name, data in files.items():
        (partial / Path(name).name).write_bytes(data)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)
