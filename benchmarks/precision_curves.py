"""Loss curves of one real-architecture run (ViT-B-32 and the imagenet_f16_16384 VQGAN, random weights in the
real formats) in two precisions, side by side, and how far apart they end.

    python benchmarks/precision_curves.py --size 128x128 --cutn 8 --steps 12 --precisions fp32 bf16
"""

from __future__ import annotations

import argparse
import json
import tempfile


def curve(precision: str, args: argparse.Namespace, options: dict) -> list[float]:
    """The loss at every step of a seeded run in ``precision``."""
    from pixgen.config import RunConfig
    from pixgen.engine import Run

    run = Run(RunConfig.from_dict({"prompt": "a watercolor of a lighthouse at dawn", "drawer": "vqgan",
                                   "clip": ["ViT-B-32:random"], "size": args.size, "cutn": args.cutn, "seed": 0,
                                   "iterations": args.steps, "device": args.device, "precision": precision,
                                   **options}))
    return [run.step().loss for _ in range(args.steps)]


def main() -> None:
    """Print both curves and their largest relative gap."""
    import sys

    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from step_time import cpu_summary, random_vqgan_options

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="128x128")
    parser.add_argument("--cutn", type=int, default=8)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    args = parser.parse_args()
    options = random_vqgan_options(tempfile.mkdtemp(prefix="pixgen-bench-"))
    curves = {p: curve(p, args, options) for p in args.precisions}
    print(f"CPU flags: {cpu_summary()}")
    for step in range(args.steps):
        print(f"step {step + 1:3d}  " + "  ".join(f"{p} {c[step]:.5f}" for p, c in curves.items()))
    base = curves[args.precisions[0]]
    for p, c in curves.items():
        gap = max(abs(a - b) / abs(a) for a, b in zip(base, c, strict=True))
        print(json.dumps({"precision": p, "final": round(c[-1], 5), "max_rel_gap_to_" + args.precisions[0]:
                          round(gap, 5)}))


if __name__ == "__main__":
    main()
