"""The shapes CLIP's image tower: registered with timm, built by open_clip's timm path, what it computes."""

from __future__ import annotations

import warnings

import pytest
import torch

from pixgen.shapes.cnn import TIMM_NAME, ShapesCNN, register_timm_model


def test_registration_is_idempotent_and_timm_builds_the_model() -> None:
    import timm

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # timm warns when a name is registered twice
        assert register_timm_model() == register_timm_model() == TIMM_NAME
    model = timm.create_model(TIMM_NAME, pretrained=False)
    assert isinstance(model, ShapesCNN)
    with pytest.raises(ValueError, match="no timm weights"):
        timm.create_model(TIMM_NAME, pretrained=True)


def test_features_say_what_is_anywhere_and_where() -> None:
    torch.manual_seed(0)
    model = ShapesCNN().eval()
    x = torch.rand(2, 3, 64, 64)
    out = model(x)
    assert out.shape == (2, model.num_features) and torch.isfinite(out).all()
    shifted = model(torch.roll(x, shifts=(0, 32), dims=(2, 3)))  # same content, moved half the width
    what = model.num_features - 16 * 16  # global max and mean come first, the 4x4 x 16 grid after them
    assert not torch.allclose(out[:, what:], shifted[:, what:])  # the grid part sees where things are
    with pytest.raises(ValueError, match="no classifier"):
        model.reset_classifier(10)


def test_open_clip_builds_the_tower_and_gradients_reach_the_first_layer(tmp_path) -> None:
    import json

    import open_clip

    register_timm_model()
    config = {"embed_dim": 16, "vision_cfg": {"image_size": 64, "timm_model_name": TIMM_NAME, "timm_pool": "",
                                              "timm_proj": "linear"},
              "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1}}
    path = tmp_path / "tiny_cnn_clip.json"
    path.write_text(json.dumps(config))
    open_clip.add_model_config(path)
    model = open_clip.create_model("tiny_cnn_clip")
    image = torch.rand(2, 3, 64, 64, requires_grad=True)
    model.encode_image(image).square().sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    assert model.visual.trunk.features[0].weight.grad.abs().sum() > 0
