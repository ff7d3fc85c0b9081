"""End to end: the README's shapes demo (preset, shipped models, default augmentations) judged by the oracle.

The full measurement (12 captions x 2 seeds, with and without augmentations, VQGAN and pixel drawers) is
``scripts/eval_shapes.py``; its table is in the README. The shipped models do not yet reach the issue's 70 %
(shape identity is their weak point, above all for the small shapes of two-shape captions), so this test runs
the README's quickstart command, whose caption the preset does satisfy with seed 0, and asks the oracle for a
full pass.
"""

from __future__ import annotations

import pixgen
from pixgen.shapes.oracle import check


def test_shapes_demo_makes_the_quickstart_caption() -> None:
    caption = "a red circle on a blue background"
    result = pixgen.run(caption, preset="shapes", seed=0, save=False, progress=False)
    verdict = check(result.image, caption)
    assert verdict.passed, (verdict.reasons, verdict.details)
    # the code prior's start is already near the caption (loss 0.94); measured 0.66 after 150 steps
    assert result.losses[-1] < 0.8 * result.losses[0]
