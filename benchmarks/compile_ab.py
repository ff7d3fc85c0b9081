"""``--compile`` against eager, side by side: two runs in one process (same settings, one with ``compile``),
stepping in turn, so machine noise hits both alike. Prints the first compiled step (the compile) and the median
step of each.

    python benchmarks/compile_ab.py                          # VQGAN 256x256, 32 cutouts, this machine's precision
    TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) python benchmarks/compile_ab.py --size 384x208   # a cold compile
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time


def main() -> None:
    """Build both runs, time the compile, then alternate ``--steps`` steps each."""
    from step_time import random_vqgan_options

    from pixgen.config import RunConfig
    from pixgen.engine import Run

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="256x256")
    parser.add_argument("--cutn", type=int, default=32)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    base = {"prompt": "a watercolor of a lighthouse at dawn", "drawer": "vqgan", "clip": ["ViT-B-32:random"],
            "size": args.size, "cutn": args.cutn, "seed": 0, "iterations": args.steps + 1, "device": args.device,
            "precision": args.precision, **random_vqgan_options(tempfile.mkdtemp(prefix="pixgen-bench-"))}
    runs = {flag: Run(RunConfig.from_dict({**base, "compile": flag})) for flag in (False, True)}
    first = {flag: timed(run) for flag, run in runs.items()}
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.steps):
        for flag, run in runs.items():
            times[flag].append(timed(run))
    eager, compiled = statistics.median(times[False]), statistics.median(times[True])
    print(json.dumps({"size": args.size, "cutn": args.cutn, "precision": runs[True].precision,
                      "first_step_s": {"eager": round(first[False], 1), "compiled": round(first[True], 1)},
                      "eager_s_per_it": round(eager, 3), "compiled_s_per_it": round(compiled, 3),
                      "compiled_faster": round(eager / compiled, 3)}))


def timed(run) -> float:
    """Seconds of one ``run.step()``."""
    start = time.perf_counter()
    run.step()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
