"""The layout loss: a two-shape shapes caption scored shape by shape in boxes on its sides of the relation."""

from __future__ import annotations

import pytest
import torch

from pixgen.engine import Run
from pixgen.errors import PixgenError
from pixgen.shapes.losses.layout import LayoutLoss, outside_spread
from pixgen.shapes.world import relation_boxes


def test_relation_boxes_split_a_pair_caption_into_one_shape_captions_on_their_sides() -> None:
    (first, box_a), (second, box_b) = relation_boxes("a red circle above a blue square on a black background")
    assert first == "a red circle in the center on a black background"
    assert second == "a blue square in the center on a black background"
    assert box_a[1] + box_a[3] < box_b[1] + box_b[3]  # the first box is higher
    assert relation_boxes("a red circle above a blue square", size="large")[0][0] == "a large red circle in the center"
    (_, left), (_, right) = relation_boxes("an orange triangle right of a green circle")
    assert left[0] > right[0]


@pytest.mark.parametrize("caption", ["a red circle on a blue background", "a photo of a dog"])
def test_other_captions_have_no_boxes(caption: str) -> None:
    assert relation_boxes(caption) == []


def test_layout_cutn_must_be_positive() -> None:
    with pytest.raises(PixgenError, match="layout_cutn"):
        LayoutLoss(layout_cutn=0)


def test_layout_clear_must_not_be_negative_and_defaults_are_the_presets() -> None:
    assert (LayoutLoss().cutn, LayoutLoss().clear) == (8, 10.0)
    with pytest.raises(PixgenError, match="layout_clear"):
        LayoutLoss(layout_clear=-1.0)


def test_outside_spread_sees_only_pixels_outside_the_boxes() -> None:
    boxes = [box for _, box in relation_boxes("a red circle above a blue square")]
    image = torch.zeros(1, 3, 32, 32)
    image[:, 0, 4:12, 12:20] = 1.0  # a shape inside the top box
    assert outside_spread(image, boxes).item() == 0.0
    image[:, 2, 2:6, 1:5] = 1.0  # a stray shape in the left strip, outside both boxes
    image.requires_grad_()
    spread = outside_spread(image, boxes)
    spread.backward()
    assert spread.item() > 0
    assert image.grad[:, :, :, 8:24].abs().sum() == 0 and image.grad[:, :, 2:6, 1:5].abs().sum() > 0
    assert outside_spread(image, [(0.0, 0.0, 1.0, 1.0)]).item() == 0.0


def test_layout_scores_a_pair_caption_in_a_run_and_leaves_other_captions_alone() -> None:
    settings = {"clip": ["shapes"], "drawer": "pixel", "size": "32x32", "iterations": 2, "cutn": 2, "seed": 0,
                "loss": ["layout:2:1"]}
    pair = Run({**settings, "prompt": "a red circle above a blue square on a black background"})
    terms = pair.loss_terms()
    assert terms["layout"].item() > 0
    terms["layout"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in pair.drawer.parameters())
    single = Run({**settings, "prompt": "a red circle on a black background"})
    assert single.loss_terms()["layout"].item() == 0.0
