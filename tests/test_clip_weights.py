"""CLIP weights through the one model store and from local files: ``models download`` then ``run --clip`` reads
the downloaded file; OpenAI's TorchScript archive, open_clip state dicts (safetensors, torch zip, legacy pickle);
bad files are one line. Tiny real open_clip models, a loopback HTTP server, no network."""

from __future__ import annotations

import functools
import json
import os
import pickle
import threading
import zipfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from pixgen.cli import main
from pixgen.clip_weights import OPENAI_EXTRAS, load_weights, read_state_dict, wants_quick_gelu, weights_file
from pixgen.errors import ModelUnavailableError, PixgenError
from pixgen.model_table import SAFETENSORS_MAGIC, ModelEntry, WeightFile
from pixgen.perceptors import _load_cached, load_perceptor, parse_clip_spec
from pixgen.registry import MODELS

#: OpenAI's layout: CLIP with QuickGELU and a plain text tower, so its keys are OpenAI's
TINY_OPENAI = {
    "embed_dim": 32, "quick_gelu": True,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
MODEL = "pixgen-tiny-openai"
PLAIN = "pixgen-tiny-gelu"  # the same shapes without QuickGELU


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> None:
    import open_clip

    folder = tmp_path_factory.mktemp("configs")
    for name, cfg in ((MODEL, TINY_OPENAI), (PLAIN, {**TINY_OPENAI, "quick_gelu": False})):
        (folder / f"{name}.json").write_text(json.dumps(cfg))
        open_clip.add_model_config(folder / f"{name}.json")


def make_model(seed: int, name: str = MODEL) -> torch.nn.Module:
    import open_clip

    torch.manual_seed(seed)
    return open_clip.create_model(name, pretrained=None).eval()


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k].float(), b[k].float()) for k in a)


def run_args(clip: str, out: Path) -> list[str]:
    return ["run", "--prompt", "a red circle", "--clip", clip, "--size", "32x32", "--iterations", "2",
            "--cutn", "2", "--seed", "1", "--device", "cpu", "--out", str(out)]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on 127.0.0.1: (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


# -- one store: download, then run ------------------------------------------------------------------------------
def test_models_download_then_run_reads_the_downloaded_file(registered, served, monkeypatch, tmp_path) -> None:
    """`pixgen models download NAME` puts the file where `pixgen run --clip NAME` reads it; path and verify
    agree; the run's CLIP holds exactly the downloaded weights."""
    from safetensors.torch import load_file, save_file

    folder, url = served
    save_file(make_model(seed=3).state_dict(), folder / "tiny.safetensors")
    name = f"{MODEL}:served"
    wf = WeightFile(f"clip/{MODEL}/served.weights", (f"{url}/missing.bin", f"{url}/tiny.safetensors"),
                    magic=(b"PK\x03\x04", SAFETENSORS_MAGIC))
    monkeypatch.setitem(MODELS.entries, name, ModelEntry(name, "clip", {"weights": wf}))
    runner = CliRunner()

    early = runner.invoke(main, run_args(name, tmp_path / "early"))  # offline, not downloaded yet
    assert early.exit_code == 1 and "Traceback" not in early.output
    assert f"served.weights (from {url}/missing.bin)" in early.output and f"--clip {MODEL}:/path/to" in early.output

    monkeypatch.delenv("PIXGEN_OFFLINE")
    down = runner.invoke(main, ["models", "download", name])
    assert down.exit_code == 0, down.output
    stored = tmp_path / "cache" / "clip" / MODEL / "served.weights"
    assert down.stdout.strip() == f"weights: {stored}"
    assert stored.read_bytes() == (folder / "tiny.safetensors").read_bytes()

    monkeypatch.setenv("PIXGEN_OFFLINE", "1")
    (folder / "tiny.safetensors").unlink()  # the run can only use the stored copy
    assert runner.invoke(main, ["models", "path", name]).stdout.strip() == str(stored)
    verified = runner.invoke(main, ["models", "verify", name])
    assert verified.exit_code == 0 and verified.stdout.strip() == f"{name}: served.weights: ok"

    _load_cached.cache_clear()
    result = runner.invoke(main, run_args(name, tmp_path / "run"))
    assert result.exit_code == 0, result.output
    assert _load_cached.cache_info().currsize == 1  # the run loaded one CLIP...
    used = load_perceptor(parse_clip_spec(name))  # ...this one (a cache hit, not a new load)
    assert _load_cached.cache_info().hits >= 1
    assert same(used.model.state_dict(), load_file(stored))


def test_an_open_clip_tag_offline_names_the_file_its_source_and_the_flag(registered) -> None:
    with pytest.raises(ModelUnavailableError) as info:
        weights_file("ViT-B-16", "laion2b_s34b_b88k")
    message = str(info.value)
    assert "ViT-B-16:laion2b_s34b_b88k is not in the cache" in message and "PIXGEN_OFFLINE" in message
    assert "laion2b_s34b_b88k.weights (from https://huggingface.co/" in message
    assert "pixgen models download ViT-B-16:laion2b_s34b_b88k" in message and "--clip ViT-B-16:/path/to" in message
    assert wants_quick_gelu("ViT-B-16", "openai") and not wants_quick_gelu("ViT-B-16", "laion2b_s34b_b88k")
    with pytest.raises(PixgenError, match="unknown pretrained tag 'nope' for ViT-B-16; choose one of: .*openai"):
        weights_file("ViT-B-16", "nope")
    with pytest.raises(PixgenError, match="does not exist; check the path"):
        weights_file(MODEL, "no/such/file.pt")


# -- OpenAI's TorchScript archive ---------------------------------------------------------------------------------
def openai_archive(path: Path, seed: int = 5) -> dict[str, torch.Tensor]:
    """An archive made as OpenAI's are: fp16 weights, the three int entries, traced with TorchScript and saved
    with ``torch.jit.save``; returns the weights it holds (fp16, as float32)."""
    model = make_model(seed)
    for key, value in zip(OPENAI_EXTRAS, (32, 16, 49408), strict=True):
        if hasattr(model, key):
            delattr(model, key)
        model.register_buffer(key, torch.tensor(value))
    for p in model.parameters():
        p.data = p.data.half().float()  # OpenAI's weights are fp16; keep the fp16 values
    image, text = torch.rand(1, 3, 32, 32), torch.randint(0, 49408, (1, 16))
    traced = torch.jit.trace(model, (image, text), check_trace=False)
    traced.half()
    torch.jit.save(traced, str(path))
    return {k: v for k, v in model.state_dict().items() if k not in OPENAI_EXTRAS}


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::torch.jit.TracerWarning")
def test_openai_torchscript_archive_loads_as_a_file(registered, tmp_path: Path, caplog) -> None:
    """``--clip MODEL:/path/ViT-B-32.pt`` with OpenAI's archive: read without unpickling objects, int entries
    dropped, cast to fp32; a model config without QuickGELU gets it (as OpenAI's CLIP has)."""
    path = tmp_path / "ViT-tiny.pt"
    expected = openai_archive(path)
    caplog.clear()
    with zipfile.ZipFile(path) as archive:
        assert any(n.endswith("constants.pkl") for n in archive.namelist())  # a TorchScript archive indeed
    state = read_state_dict(path)
    assert not set(OPENAI_EXTRAS) & set(state) and state["visual.conv1.weight"].dtype == torch.float16
    perceptor = load_perceptor(parse_clip_spec(f"{MODEL}:{path}"))
    loaded = perceptor.model.state_dict()
    assert same(loaded, expected) and all(v.dtype == torch.float32 for v in loaded.values())
    assert wants_quick_gelu(PLAIN, str(path)) and not wants_quick_gelu(PLAIN, "random")
    plain = load_perceptor(parse_clip_spec(f"{PLAIN}:{path}")).model
    assert type(plain.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"
    image = torch.rand(2, 3, 32, 32)
    assert torch.allclose(plain.encode_image(image), perceptor.model.encode_image(image))
    assert "No pretrained weights loaded" not in caplog.text  # open_clip's warning, before pixgen loads them


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_archive_reader_gives_what_torchscript_gives(tmp_path: Path) -> None:
    """A scripted module with a plain tensor attribute (no parameter, no buffer): the reader keeps exactly the
    parameters and buffers, as ``torch.jit.load(...).state_dict()`` does."""
    from pixgen.torchscript_archive import read_archive

    class Block(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(3, 2)
            self.register_buffer("steps", torch.arange(4))
            self.plain = torch.ones(2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lin(x) + self.plain

    path = tmp_path / "block.pt"
    torch.jit.save(torch.jit.script(torch.nn.Sequential(Block(), torch.nn.ReLU())), str(path))
    mine, theirs = read_archive(path), torch.jit.load(str(path)).state_dict()
    assert sorted(mine) == ["0.lin.bias", "0.lin.weight", "0.steps"] and same(mine, theirs)


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::torch.jit.TracerWarning")
def test_a_torchscript_archive_carrying_code_runs_nothing(registered, tmp_path: Path) -> None:
    path, marker = tmp_path / "evil.pt", tmp_path / "ran"
    openai_archive(path)

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    with zipfile.ZipFile(path) as archive:
        entries = {n: archive.read(n) for n in archive.namelist()}
    data = next(n for n in entries if n.endswith("/data.pkl"))
    entries[data] = pickle.dumps(Evil(), protocol=2)
    with zipfile.ZipFile(path, "w") as archive:
        for name, blob in entries.items():
            archive.writestr(name, blob)
    with pytest.raises(PixgenError, match=r"TorchScript archive that names (posix|nt)\.system") as info:
        read_state_dict(path)
    assert len(str(info.value).splitlines()) == 1 and not marker.exists()


# -- open_clip state dicts ---------------------------------------------------------------------------------------
def _safetensors(state: dict, path: Path) -> None:
    from safetensors.torch import save_file

    save_file(state, path)


WRITERS = {
    "model.safetensors": _safetensors,
    "open_clip_pytorch_model.bin": lambda state, path: torch.save(state, path),
    "legacy.pt": lambda state, path: torch.save(state, path, _use_new_zipfile_serialization=False),
    "wrapped.pt": lambda state, path: torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in
                                                                             state.items()}}, path),
    "half.safetensors": lambda state, path: _safetensors({k: v.half() for k, v in state.items()}, path),
}


@pytest.mark.parametrize("filename", list(WRITERS))
def test_open_clip_state_dicts_load(registered, tmp_path: Path, filename: str) -> None:
    source = make_model(seed=7)
    state = {k: v.half().float() if "half" in filename else v for k, v in source.state_dict().items()}
    path = tmp_path / filename
    WRITERS[filename](state, path)
    target = make_model(seed=8)
    assert not same(target.state_dict(), state)
    load_weights(target, MODEL, str(path))
    assert same(target.state_dict(), state)
    assert not wants_quick_gelu(MODEL, str(path))


# -- bad files: one line ----------------------------------------------------------------------------------------
class Payload:
    """Pickles as a call of ``os.system``: loading it the unsafe way would run a command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _bad_files(folder: Path) -> dict[str, tuple[Path, str]]:
    marker = folder / "ran"
    files = {
        "empty": (b"", "is empty"),
        "garbage": (b"<html>not found</html>", "is not a weights file (it starts with b'<html>no')"),
        "zip": (b"PK\x03\x04 truncated", "is a damaged zip archive"),
        "pickle": (pickle.dumps({"w": Payload(marker)}, protocol=2), "pickle holding more than tensors (it names"),
        "list": (None, "holds a list, not a state dict"),
        "other": (None, "holds weights of another architecture: 2 tensors, 37 missing (e.g. positional_embedding)"
                        ", 1 unexpected (e.g. conv.weight), 1 of another shape (e.g. logit_scale (3,) vs ())"),
    }
    out = {}
    for name, (blob, message) in files.items():
        path = folder / f"{name}.pt"
        if name == "list":
            torch.save([torch.zeros(1)], path)
        elif name == "other":
            torch.save({"conv.weight": torch.zeros(4, 3, 3, 3), "logit_scale": torch.zeros(3)}, path)
        else:
            path.write_bytes(blob)
        out[name] = (path, message)
    return out


def test_bad_files_are_one_line_and_run_nothing(registered, tmp_path: Path) -> None:
    for name, (path, message) in _bad_files(tmp_path).items():
        with pytest.raises(PixgenError) as info:
            load_weights(make_model(0), MODEL, str(path))
        text = str(info.value)
        assert message in text, (name, text)
        assert text.startswith(f"CLIP weights {path} ") and len(text.splitlines()) == 1
        assert text.endswith(f"expected an open_clip state dict (.pt, .bin, .safetensors) or OpenAI's "
                             f"TorchScript .pt archive for {MODEL}")
    assert not (tmp_path / "ran").exists()


def test_a_bad_file_on_the_command_line_is_one_error_line(registered, tmp_path: Path) -> None:
    path = tmp_path / "empty.safetensors"
    path.write_bytes(b"")
    result = CliRunner().invoke(main, run_args(f"{MODEL}:{path}", tmp_path / "o"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip() == (f"Error: CLIP weights {path} is empty; expected an open_clip state dict "
                                     f"(.pt, .bin, .safetensors) or OpenAI's TorchScript .pt archive for {MODEL}")


@pytest.mark.parametrize("name", ["empty", "garbage", "zip", "pickle", "list", "other", "pickle4", "safetensors"])
def test_every_bad_file_on_the_command_line_is_one_error_line(registered, tmp_path: Path, name: str) -> None:
    """Each kind of bad file given as --clip MODEL:FILE: exit 1, one line, no traceback, no 'Aborted!', no torch
    warning (a protocol-4 pickle made torch warn before the refusal), nothing run."""
    files = _bad_files(tmp_path)
    files["pickle4"] = (tmp_path / "p4.pt", "pickle holding more than tensors")
    files["pickle4"][0].write_bytes(pickle.dumps({"w": Payload(tmp_path / "ran")}, protocol=4))
    files["safetensors"] = (tmp_path / "bad.safetensors", "is not a readable safetensors file")
    files["safetensors"][0].write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{notjson")
    path, message = files[name]
    result = CliRunner().invoke(main, run_args(f"{MODEL}:{path}", tmp_path / "o"))
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: CLIP weights {path} ") and message in lines[0], lines
    assert not (tmp_path / "ran").exists()
