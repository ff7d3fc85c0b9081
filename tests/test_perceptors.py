from pathlib import Path

import pytest
import torch

from pixgen.errors import ModelUnavailableError
from pixgen.perceptors import _cached_file, load_perceptor, parse_clip_spec


def test_tiny_open_clip_through_the_real_loader(clip_spec: str) -> None:
    spec = parse_clip_spec(clip_spec + "@0.5")
    assert spec.weight == 0.5 and spec.model.endswith(".json")
    perceptor = load_perceptor(spec, "cpu")
    assert perceptor.input_size == 32
    assert load_perceptor(spec, "cpu") is perceptor  # loaded once per process
    images = perceptor.encode_image(torch.rand(3, 3, 32, 32))
    texts = perceptor.encode_text(["a cat", "a dog"])
    assert images.shape == (3, 32) and texts.shape == (2, 32)
    assert torch.allclose(images.norm(dim=-1), torch.ones(3)) and torch.allclose(texts.norm(dim=-1), torch.ones(2))
    resized = perceptor.encode_image(torch.rand(2, 3, 50, 50))  # other sizes are resized
    assert resized.shape == (2, 32)
    assert not any(p.requires_grad for p in perceptor.parameters())


def test_weights_from_the_local_file_are_used(tiny_clip) -> None:
    config, weights = tiny_clip
    state = torch.load(weights, weights_only=True)
    perceptor = load_perceptor(parse_clip_spec(f"{config}:{weights}"), "cpu")
    loaded = perceptor.model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    random = load_perceptor(parse_clip_spec(f"{config}:random"), "cpu")
    assert not torch.equal(random.model.state_dict()["text_projection"], state["text_projection"])


def test_default_tag_and_offline_error(tmp_path: Path) -> None:
    spec = parse_clip_spec("ViT-B-32")
    assert spec.tag == "openai"
    with pytest.raises(ModelUnavailableError) as err:
        load_perceptor(spec, "cpu")
    message = str(err.value)
    assert "not in the cache" in message and str(tmp_path / "cache" / "open_clip") in message
    assert "huggingface.co" in message or "http" in message


def test_finds_weights_in_the_hugging_face_cache_layout(tmp_path: Path) -> None:
    """open_clip downloads through huggingface_hub; a file already in that cache is used without network."""
    repo = tmp_path / "models--timm--vit_base_patch32_clip_224.openai"
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    (snapshot / "open_clip_pytorch_model.bin").write_bytes(b"weights")
    cfg = {"hf_hub": "timm/vit_base_patch32_clip_224.openai/"}
    assert _cached_file(cfg, tmp_path) == str(snapshot / "open_clip_pytorch_model.bin")
    assert _cached_file({"hf_hub": "timm/other/"}, tmp_path) is None
