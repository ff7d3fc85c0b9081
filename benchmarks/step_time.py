"""Seconds per optimization step and peak memory of a full pixgen step (render, cutouts, CLIP, backward).

    python benchmarks/step_time.py                       # the standard table on this machine
    python benchmarks/step_time.py --drawer pixel --size 512x512 --cutn 64 --device cuda

CLIP and VQGAN weights are random (``ViT-B-32:random``; the imagenet_f16_16384 architecture written to a temp
folder in taming's format): the cost of a step does not depend on the weights. Run one
configuration per process (peak memory is per process); the default table spawns one subprocess per row.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time

STANDARD = [
    ["--drawer", "pixel", "--size", "256x256"],
    ["--drawer", "vqgan", "--size", "256x256"],
    ["--drawer", "vqgan", "--size", "384x208"],
]


def random_vqgan_options(folder: str) -> dict:
    """Write the imagenet_f16_16384 architecture with random weights in taming's format; the drawer options."""
    from pixgen.taming_arch import random_model, write_taming_files

    config, checkpoint = write_taming_files(random_model("imagenet_f16_16384"), folder, "imagenet_f16_16384")
    return {"vqgan_config": str(config), "vqgan_checkpoint": str(checkpoint)}


def measure(args: argparse.Namespace) -> dict:
    """Build a Run, warm up, then time ``args.steps`` steps; returns the figures."""
    import torch

    from pixgen.config import RunConfig
    from pixgen.engine import Run

    options = json.loads(args.options)
    if args.drawer.split(":")[0] == "vqgan" and "vqgan_checkpoint" not in options:
        options.update(random_vqgan_options(tempfile.mkdtemp(prefix="pixgen-bench-")))
    config = RunConfig.from_dict({"prompt": "a watercolor of a lighthouse at dawn", "drawer": args.drawer,
                                  "clip": [args.clip], "size": args.size, "cutn": args.cutn, "seed": 0,
                                  "iterations": args.warmup + args.steps, "device": args.device,
                                  "precision": args.precision, "compile": args.compile, **options})
    run = Run(config)
    start = time.perf_counter()
    for _ in range(args.warmup):
        run.step()
    warmup = time.perf_counter() - start
    cuda = run.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        run.step()
    if cuda:
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / args.steps
    peak = torch.cuda.max_memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"drawer": args.drawer, "size": f"{run.size[0]}x{run.size[1]}", "cutn": args.cutn, "clip": args.clip,
            "device": str(run.device), "precision": run.precision, "cpu_flags": cpu_summary(),
            "threads": torch.get_num_threads(), "compile": args.compile,
            "warmup_s": round(warmup, 1), "s_per_it": round(seconds, 4),
            "peak_mib": round(peak / 2**20, 1), "peak_kind": "cuda allocated" if cuda else "process max RSS"}


def cpu_summary() -> str:
    """The CPU flags that decide ``--precision auto`` (printed with every figure: machines here differ)."""
    from pixgen.precision import FAST_BF16_FLAGS, cpu_flags

    flags = cpu_flags()
    return ",".join(f for f in ("avx2", "avx512f", *FAST_BF16_FLAGS, "amx_tile") if f in flags) or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--drawer")
    parser.add_argument("--size", default="256x256")
    parser.add_argument("--cutn", type=int, default=32)
    parser.add_argument("--clip", default="ViT-B-32:random")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto", help="auto (default), fp32, bf16, fp16")
    parser.add_argument("--compile", action="store_true", help="torch.compile the CLIP image tower (--compile)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--options", default="{}", help="JSON dict of drawer options, e.g. '{\"strokes\": 256}'")
    args = parser.parse_args()
    if args.drawer:
        print(json.dumps(measure(args)))
        return
    print(f"CPU flags: {cpu_summary()}")
    print(f"{'drawer':<28} {'size':>9} {'cutn':>5} {'device':>7} {'prec':>5} {'s/it':>8} {'peak MiB':>9}  peak kind")
    for row in STANDARD:
        extra = ["--cutn", str(args.cutn), "--clip", args.clip, "--device", args.device, "--steps", str(args.steps),
                 "--precision", args.precision] + (["--compile"] if args.compile else [])
        out = subprocess.run([sys.executable, __file__, *row, *extra], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        name = r["drawer"] + (" " + row[row.index("--options") + 1] if "--options" in row else "")
        print(f"{name:<28} {r['size']:>9} {r['cutn']:>5} {r['device']:>7} {r['precision']:>5} {r['s_per_it']:>8.3f} "
              f"{r['peak_mib']:>9.0f}  {r['peak_kind']}")


if __name__ == "__main__":
    main()
