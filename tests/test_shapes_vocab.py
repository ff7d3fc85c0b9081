"""The shapes CLIPs' compact vocabulary: same tokens and text embeddings as CLIP's full one, 80 % less file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from pixgen.errors import PixgenError
from pixgen.perceptors import register_config_file, tokenizer_for
from pixgen.shapes.models import assets_dir, clip_config_path, clip_tokenizer
from pixgen.shapes.render import random_batch
from pixgen.shapes.train.clip_training import text_negatives
from pixgen.shapes.vocab import (
    BPE_NAME,
    FULL_VOCAB,
    compact_config,
    compact_merges,
    compact_state_dict,
    world_words,
    write_bpe,
)
from pixgen.shapes.world import DEMO_CAPTIONS, spec_caption

ROOT = Path(__file__).resolve().parent.parent
FULL_CONFIG = ROOT / "scripts" / "configs" / "shapes_clip_vit.json"


def _captions(n: int = 200) -> list[str]:
    gen = torch.Generator().manual_seed(0)
    _, _, specs = random_batch(n, 64, gen)
    return [*DEMO_CAPTIONS, *(spec_caption(s) for s in specs + text_negatives(specs, 2, gen))]


def _strings(tokenizer, captions: list[str]) -> list[list[str]]:
    return [[tokenizer.decoder[int(i)] for i in row if i] for row in tokenizer(captions)]


def test_world_words_cover_every_caption_the_training_writes() -> None:
    words = {w for caption in _captions() for w in caption.split()}
    assert words <= set(world_words())


def test_compact_tokenizer_splits_the_world_as_clip_does() -> None:
    import open_clip

    captions = _captions()
    full = open_clip.get_tokenizer("ViT-B-32", context_length=32)
    small = clip_tokenizer()
    assert _strings(small, captions) == _strings(full, captions)
    assert small.eot_token_id == small.vocab_size - 1  # open_clip pools the text at the highest id (argmax)
    assert small(["a pink dog"]).shape == (1, 32)  # other words still tokenize, into byte symbols


def test_compacted_weights_give_identical_text_embeddings(tmp_path) -> None:
    import open_clip

    torch.manual_seed(0)
    model = open_clip.create_model(register_config_file(FULL_CONFIG)).eval()
    bpe = write_bpe(tmp_path / BPE_NAME, compact_merges())
    state = compact_state_dict(model.state_dict(), bpe)
    config = tmp_path / "shapes_small.json"
    rows = len(state["token_embedding.weight"])
    config.write_text(json.dumps(compact_config(json.loads(FULL_CONFIG.read_text()), rows)))
    small = open_clip.create_model(register_config_file(config)).eval()
    small.load_state_dict(state)
    captions = _captions(40)
    with torch.no_grad():
        before = model.encode_text(tokenizer_for("shapes_clip_vit")(captions))
        after = small.encode_text(tokenizer_for("shapes_small", config)(captions))
    assert torch.equal(before, after)
    assert state["token_embedding.weight"].shape[0] < FULL_VOCAB // 40
    with pytest.raises(ValueError, match="already compact"):
        compact_state_dict(state, bpe)


def test_shipped_merges_are_what_compact_merges_writes(tmp_path) -> None:
    again = write_bpe(tmp_path / BPE_NAME, compact_merges())
    assert again.read_bytes() == (assets_dir() / BPE_NAME).read_bytes()
    assert json.loads(clip_config_path().read_text())["text_cfg"]["vocab_size"] == clip_tokenizer().vocab_size


def test_a_config_whose_merges_file_is_missing_gets_a_clear_error(tmp_path) -> None:
    shutil.copy(clip_config_path(), tmp_path / "lonely.json")
    with pytest.raises(PixgenError, match="BPE merges file .* is missing; keep it next to the config"):
        tokenizer_for("lonely", tmp_path / "lonely.json")


def test_words_outside_the_world_are_named_in_a_warning(caplog) -> None:
    import open_clip

    from pixgen.perceptors import load_perceptor, parse_clip_spec, unknown_words

    assert unknown_words(clip_tokenizer(), " ".join(world_words())) == []
    assert unknown_words(clip_tokenizer(), "A red dog, on a Blue background!") == ["dog"]
    assert unknown_words(open_clip.get_tokenizer("ViT-B-32"), "a red dog") == []  # full vocabulary: never
    perceptor = load_perceptor(parse_clip_spec("shapes"))
    with caplog.at_level("WARNING", logger="pixgen"):
        perceptor.encode_text(["a pink circle"])
    assert "does not know the word(s) 'pink'" in caplog.text
