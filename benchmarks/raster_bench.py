"""Benchmark of the pure-torch rasterizer: drawer step time against a CLIP step, and memory growth.

    python benchmarks/raster_bench.py [--threads 1] [--device cpu] [--repeats 3] [--skip-memory]

Prints, in one run:
1. forward+backward time of ``--drawer vector`` (256 strokes, 224x224) and of one ViT-B-32 (architecture
   only, random weights) forward+backward over 32 cutouts of 224 px, and their ratio (target: <= 25 %);
2. a memory table: peak memory of one drawer forward+backward (a fresh subprocess per row; peak resident
   size on Linux CPUs, ``max_memory_allocated`` on CUDA) as strokes and pixels grow, tiled as it renders
   by default and with small checkpointed chunks, next to what a dense renderer keeps (one float per
   stroke per pixel).
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

SIZES = [(64, 224), (256, 224), (1024, 224), (256, 448), (1024, 448), (4096, 448)]


def timed(fn, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sync(device: str) -> None:
    """Wait for queued GPU work, so timings are real."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def drawer_step(strokes: int, size: int, device: str, chunk_pixels: int | None = None):
    """A closure doing one vector-drawer forward+backward."""
    from pixgen.drawers.vector import VectorDrawer
    from pixgen.raster import rasterize

    drawer = VectorDrawer(size, size, strokes=strokes).to(device)
    drawer.init_from_noise("pixels", torch.Generator().manual_seed(0))
    options = {} if chunk_pixels is None else {"chunk_pixels": chunk_pixels}

    def step() -> None:
        drawer.zero_grad(set_to_none=True)
        img = rasterize(drawer.paths(), size, size, drawer.background(), **options)
        img.mean().backward()
        sync(device)

    return step


def clip_step(device: str, cutn: int = 32):
    """A closure doing one ViT-B-32 forward+backward over ``cutn`` 224 px cutouts (grad to the pixels)."""
    import open_clip

    model = open_clip.create_model("ViT-B-32", pretrained=None).to(device).eval()
    model.requires_grad_(False)
    images = torch.rand(cutn, 3, 224, 224, device=device, requires_grad=True)

    def step() -> None:
        images.grad = None
        model.encode_image(images).sum().backward()
        sync(device)

    return step


def measure_peak(strokes: int, size: int, device: str, chunk_pixels: int | None) -> float:
    """Peak MiB of one drawer forward+backward (after a warm-up one) beyond what was in use before it."""
    step = drawer_step(strokes, size, device, chunk_pixels)
    step()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand the warm-up's freed memory back, so it is counted again
    before = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as refs:  # Linux: reset the peak resident size (VmHWM)
        refs.write("5")
    step()
    return (_status_kib("VmHWM") - before) / 1024


def _status_kib(field: str) -> int:
    """A ``/proc/self/status`` memory field, in KiB."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1])


def peak_memory(strokes: int, size: int, device: str, chunk_pixels: int | None) -> float:
    """``measure_peak`` in a fresh subprocess, so earlier rows do not raise the high-water mark."""
    code = (f"import sys, torch; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"torch.set_num_threads({torch.get_num_threads()}); import raster_bench; "
            f"print(raster_bench.measure_peak({strokes}, {size}, {device!r}, {chunk_pixels!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Run both benchmarks and print the results."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, device {args.device}, {args.threads} thread(s)")

    drawer_s = timed(drawer_step(256, 224, args.device), args.repeats)
    clip_s = timed(clip_step(args.device), args.repeats)
    ratio = drawer_s / clip_s
    print(f"vector drawer fwd+bwd (256 strokes, 224x224): {drawer_s * 1000:8.1f} ms")
    print(f"ViT-B-32 fwd+bwd (32 cutouts, 224 px):        {clip_s * 1000:8.1f} ms")
    print(f"drawer / CLIP step: {ratio:.1%}  ({'OK' if ratio <= 0.25 else 'OVER'} the 25 % budget)")
    if args.skip_memory:
        return

    print("\npeak memory of one drawer fwd+bwd (MiB); dense = 4 bytes x strokes x pixels")
    print(f"{'strokes':>8} {'size':>5} {'strokes*px':>11} {'dense':>9} {'tiled':>8} {'chunked':>8}")
    rows = []
    for strokes, size in SIZES:
        tiled = peak_memory(strokes, size, args.device, None)
        chunked = peak_memory(strokes, size, args.device, 1 << 18)
        dense = 4 * strokes * size * size / 2**20
        rows.append((strokes * size * size, tiled, chunked))
        print(f"{strokes:>8} {size:>5} {strokes * size * size / 1e6:>10.1f}M {dense:>9.0f} {tiled:>8.1f} "
              f"{chunked:>8.1f}")
    work = torch.tensor([r[0] for r in rows], dtype=torch.float64).log()
    for name, column in (("tiled", 1), ("chunked", 2)):
        mem = torch.tensor([r[column] for r in rows], dtype=torch.float64).log()
        slope = ((work - work.mean()) * (mem - mem.mean())).sum() / ((work - work.mean()) ** 2).sum()
        print(f"{name}: memory ~ (strokes x pixels)^{slope:.2f}  (dense: ^1.00)")


if __name__ == "__main__":
    sys.exit(main())
