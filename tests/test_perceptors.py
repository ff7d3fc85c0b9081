import json
import os
from pathlib import Path

import pytest
import torch
from conftest import TINY_CLIP

from pixgen.errors import ModelUnavailableError, PixgenError
from pixgen.perceptors import load_perceptor, parse_clip_spec


def test_tiny_open_clip_through_the_real_loader(clip_spec: str) -> None:
    spec = parse_clip_spec(clip_spec + "@0.5")
    assert spec.weight == 0.5 and spec.config.endswith(".json") and spec.model == "pixgen-tiny"
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
    assert "not in the cache" in message and str(tmp_path / "cache" / "clip") in message
    assert "huggingface.co" in message or "http" in message


def test_a_config_file_with_the_shapes_cnn_tower_loads_in_a_fresh_process(tmp_path: Path) -> None:
    """``--clip CONFIG.json:WEIGHTS`` of a CNN-tower shapes CLIP (as the training script writes) loads by itself:
    the loader registers pixgen's timm tower that the config names (a fresh process, so nothing did before)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    config = tmp_path / "my_cnn.json"
    config.write_text((root / "scripts" / "configs" / "shapes_clip_cnn.json").read_text())
    code = f"""
import open_clip, torch
from pixgen.shapes.cnn import register_timm_model
register_timm_model()
open_clip.add_model_config({str(config)!r})
torch.save(open_clip.create_model("my_cnn").state_dict(), {str(tmp_path / "w.pt")!r})
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    load = f"""
import torch
from pixgen.perceptors import load_perceptor, parse_clip_spec
p = load_perceptor(parse_clip_spec({f"{config}:{tmp_path / 'w.pt'}"!r}))
print(tuple(p.encode_image(torch.rand(1, 3, 64, 64)).shape))
"""
    done = subprocess.run([sys.executable, "-c", load], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "(1, 64)"


def test_a_config_file_that_is_not_json_is_refused_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    with pytest.raises(PixgenError, match="broken.json is not valid JSON"):
        load_perceptor(parse_clip_spec(f"{bad}:random"), "cpu")


def test_a_config_file_never_replaces_a_registered_model(tmp_path: Path) -> None:
    """``train_shapes_clip.py`` writes ``shapes_clip.json``, the built-in CLIP's name: loaded beside ``--clip
    shapes`` (either order), each keeps its own config (a ``shapes_cnn.json`` registered before ``--clip
    shapes_cnn`` too: the first keeps the name, the other gets a hashed one); so does a file named like an
    open_clip model (a fresh process, since open_clip's registry lives as long as it)."""
    import subprocess
    import sys

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for name in ("a/shapes_clip.json", "a/shapes_cnn.json", "b/ViT-B-32.json"):
        (tmp_path / name).write_text(json.dumps(TINY_CLIP))
    code = f"""
import open_clip, torch
from pixgen.perceptors import load_perceptor, parse_clip_spec, register_config_file
from pixgen.shapes.models import clip_tokenizer
mine = {str(tmp_path / "a" / "shapes_clip.json")!r}
torch.save(open_clip.create_model(register_config_file(mine)).state_dict(), {str(tmp_path / "w.pt")!r})
for order in ([mine + ":" + {str(tmp_path / "w.pt")!r}, "shapes"], ["shapes", mine + ":" + {str(tmp_path / "w.pt")!r}]):
    dims = [load_perceptor(parse_clip_spec(s)).encode_image(torch.rand(1, 3, 64, 64)).shape[-1] for s in order]
    print(dims, end=" ")
cnn = register_config_file({str(tmp_path / "a" / "shapes_cnn.json")!r})  # first: it keeps its stem
alias = parse_clip_spec("shapes_cnn")
print(open_clip.get_model_config(cnn)["embed_dim"], alias.model != cnn,
      load_perceptor(alias).encode_text(["a red square"]).shape[-1])
vit = register_config_file({str(tmp_path / "b" / "ViT-B-32.json")!r})
width = open_clip.get_model_config("ViT-B-32")["embed_dim"]
print(tuple(clip_tokenizer()(["a red circle"]).shape), vit != "ViT-B-32", width)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PIXGEN_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["[32,", "64]", "[64,", "32]", "32", "True", "64", "(1,", "32)", "True", "512"]
