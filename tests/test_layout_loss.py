"""The layout loss: a two-shape shapes caption scored shape by shape in boxes on its sides of the relation."""

from __future__ import annotations

import pytest

from pixgen.errors import PixgenError
from pixgen.losses.layout import LayoutLoss
from pixgen.shapes.world import relation_boxes


def test_relation_boxes_split_a_pair_caption_into_one_shape_captions_on_their_sides() -> None:
    (first, box_a), (second, box_b) = relation_boxes("a red circle above a blue square on a black background")
    assert first == "a red circle in the center on a black background"
    assert second == "a blue square in the center on a black background"
    assert box_a[1] + box_a[3] < box_b[1] + box_b[3]  # the first box is higher
    (_, left), (_, right) = relation_boxes("an orange triangle right of a green circle")
    assert left[0] > right[0]


@pytest.mark.parametrize("caption", ["a red circle on a blue background", "a photo of a dog"])
def test_other_captions_have_no_boxes(caption: str) -> None:
    assert relation_boxes(caption) == []


def test_layout_cutn_must_be_positive() -> None:
    with pytest.raises(PixgenError, match="layout_cutn"):
        LayoutLoss(layout_cutn=0)
