"""A compact tokenizer vocabulary for the shapes CLIPs: CLIP's byte-pair merges cut down to the shapes world.

open_clip's text tower has one embedding row per token of CLIP's 49408-token vocabulary; at the shapes CLIP's
width that table is 6 MB of a 7.7 MB file, and all but a few dozen of its rows never see a training
gradient. ``compact_merges`` keeps every merge whose result occurs inside a word of the shapes world, in CLIP's
own order. BPE applies merges by rank, so open_clip's ``SimpleTokenizer`` built from those merges
(``tokenizer_kwargs.bpe_path`` in the model config) splits every world word into the same token strings as
CLIP's full tokenizer; ``compact_state_dict`` moves each string's embedding row to its new id. Text embeddings
are then bit-identical, and the file is 80 % smaller. Other words still tokenize (into the 512 byte symbols),
as they did before: into rows that were never trained.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import torch

from pixgen.perceptors import FULL_VOCAB
from pixgen.shapes.world import COLOURS, POSITIONS, RELATIONS, SHAPES, SIZES

BPE_NAME = "shapes_bpe.txt.gz"
TEMPLATE_WORDS = ("a", "an", "on", "the", "in", "of", "background")


def world_words() -> tuple[str, ...]:
    """Every word the shapes grammar can write (captions, text negatives and training captions alike)."""
    words = {*TEMPLATE_WORDS, *COLOURS, *SHAPES, *SIZES, *POSITIONS}
    words.update(w for relation in RELATIONS for w in relation.split())
    return tuple(sorted(words))


def compact_merges(words: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """CLIP's merges, in CLIP's order, whose result occurs inside one of ``words`` (default: the world's)."""
    from open_clip.tokenizer import SimpleTokenizer

    full = SimpleTokenizer()
    marked = [f"{w}</w>" for w in (words or world_words())]
    inside = {w[i:j] for w in marked for i in range(len(w)) for j in range(i + 2, len(w) + 1)}
    merges = sorted(full.bpe_ranks.items(), key=lambda item: item[1])
    return [pair for pair, _ in merges if "".join(pair) in inside]


def write_bpe(path: Path, merges: list[tuple[str, str]]) -> Path:
    """Write merges in the format of open_clip's ``bpe_simple_vocab_16e6.txt.gz`` (a header line, then one
    ``a b`` pair per line, no trailing newline: open_clip would read an empty line as a merge)."""
    text = "\n".join(["#version: pixgen shapes world", *(f"{a} {b}" for a, b in merges)])
    with gzip.GzipFile(path, "wb", mtime=0) as f:  # mtime 0: the same merges give the same bytes
        f.write(text.encode("utf-8"))
    return path


def compact_state_dict(state: dict[str, torch.Tensor], bpe_path: Path) -> dict[str, torch.Tensor]:
    """A full-vocabulary open_clip state dict with ``token_embedding.weight`` cut to the tokenizer at
    ``bpe_path``: each token string keeps the row it had under CLIP's full tokenizer."""
    from open_clip.tokenizer import SimpleTokenizer

    full, small = SimpleTokenizer(), SimpleTokenizer(bpe_path=str(bpe_path))
    rows = torch.tensor([full.encoder[token] for token, _ in sorted(small.encoder.items(), key=lambda kv: kv[1])])
    table = state["token_embedding.weight"]
    if table.shape[0] != FULL_VOCAB:
        raise ValueError(f"token_embedding has {table.shape[0]} rows, not CLIP's {FULL_VOCAB}; already compact?")
    return {**state, "token_embedding.weight": table[rows].clone()}


def compact_config(config: dict[str, Any], vocab_size: int) -> dict[str, Any]:
    """The model config for compacted weights: ``vocab_size`` and the BPE file (next to the config)."""
    text = {**config["text_cfg"], "vocab_size": vocab_size, "tokenizer_kwargs": {"bpe_path": BPE_NAME}}
    return {**config, "text_cfg": text}
