"""Batch throughput: jobs per minute for 16 shapes-preset jobs (8 captions x 2 seeds), on the local executor
and on a local Ray cluster, with 1 and 2 workers.

    python benchmarks/batch_throughput.py                                  # the preset's 150 iterations
    python benchmarks/batch_throughput.py --iterations 5 --configs local:1,ray:1,local:2,ray:2 --keep out/

Wall time includes everything a user waits for: starting the workers (and the Ray cluster), loading the models
once per worker, and the jobs. ``job s`` is the mean time of one job inside its worker (the first job of each
worker also loads the models). On a shared machine the figures are noisy: run it when it is quiet, and compare
``--threads 1`` (on an oversubscribed CPU one torch thread per worker is several times faster per step).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path


def measure(executor: str, workers: int, spec: dict, out: Path, threads: int | None = None) -> dict:
    """Run the batch once into ``out``; returns the figures."""
    import pixgen

    start = time.perf_counter()
    rows = pixgen.batch(spec, executor=executor, workers=workers, threads=threads, out=out, progress=False,
                        gallery=False)
    wall = time.perf_counter() - start
    done = [row for row in rows if row["status"] == "done"]
    return {"config": f"{executor}:{workers}", "jobs": len(rows), "done": len(done), "wall": wall,
            "per_min": 60 * len(done) / wall, "job_s": sum(row["seconds"] for row in done) / max(1, len(done)),
            "workers": len({row["worker"] for row in rows})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, help="iterations per job (default: the preset's 150)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per caption (2: 16 jobs)")
    parser.add_argument("--configs", default="local:1,ray:1,local:2,ray:2", help="EXECUTOR:WORKERS,...")
    parser.add_argument("--threads", type=int, help="torch threads per worker (default: the CPUs shared out)")
    parser.add_argument("--keep", type=Path, help="keep the first configuration's batch folder here (with gallery)")
    args = parser.parse_args()
    from pixgen.shapes.world import DEMO_CAPTIONS

    captions = list(DEMO_CAPTIONS[:8])  # the one-shape demo captions
    spec = {"preset": "shapes", "prompts": captions, "seeds": args.seeds}
    if args.iterations:
        spec["iterations"] = args.iterations
    print(f"{len(captions) * args.seeds} shapes-preset jobs, iterations {args.iterations or 'of the preset (150)'}, "
          f"torch threads per worker {args.threads or 'CPUs / workers'}")
    print(f"{'config':>8} {'done':>5} {'wall s':>8} {'jobs/min':>9} {'job s':>7} {'workers':>8}")
    for number, config in enumerate(args.configs.split(",")):
        executor, _, workers = config.partition(":")
        with tempfile.TemporaryDirectory() as tmp:
            figures = measure(executor, int(workers or 1), spec, Path(tmp) / "batch", args.threads)
            if args.keep and number == 0:
                import pixgen.batching.gallery as gallery

                shutil.copytree(Path(tmp) / "batch", args.keep, dirs_exist_ok=True)
                gallery.build_gallery(args.keep)
        print(f"{figures['config']:>8} {figures['done']:>2}/{figures['jobs']:<2} {figures['wall']:8.1f} "
              f"{figures['per_min']:9.2f} {figures['job_s']:7.1f} {figures['workers']:>8}", flush=True)


if __name__ == "__main__":
    main()
