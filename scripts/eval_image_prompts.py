"""Image prompts with the shapes models: a true scene of each caption as the only prompt (no text), checked by the
shapes oracle against that caption. Prints one row per run and the pass count.

    python scripts/eval_image_prompts.py --captions 2 --seeds 0 1
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    """Run the table and print it."""
    import torch

    import pixgen
    from pixgen.io import save_png, to_pil
    from pixgen.shapes import check, render_caption
    from pixgen.shapes.world import DEMO_CAPTIONS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--captions", type=int, default=2, help="the first N demo captions")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--weight", type=float, default=1.0, help="the image prompt's weight")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra run settings")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.set)
    if args.threads:
        torch.set_num_threads(args.threads)
    passed = total = 0
    with tempfile.TemporaryDirectory() as folder:
        for caption in DEMO_CAPTIONS[: args.captions]:
            scene = Path(folder) / f"{len(list(Path(folder).iterdir()))}.png"
            save_png(to_pil(render_caption(caption, generator=torch.Generator().manual_seed(123))), scene)
            for seed in args.seeds:
                began = time.perf_counter()
                result = pixgen.run(None, preset="shapes", image_prompt=[f"{scene}:{args.weight:g}"], seed=seed,
                                    save=False, progress=False, **extra)
                verdict = check(result.image, caption)
                passed, total = passed + verdict.passed, total + 1
                print(f"{caption:<55} seed {seed}  {'pass' if verdict.passed else 'FAIL'}  "
                      f"{time.perf_counter() - began:5.1f}s  {'; '.join(verdict.reasons)}", flush=True)
    print(f"passed {passed} of {total}")


if __name__ == "__main__":
    main()
