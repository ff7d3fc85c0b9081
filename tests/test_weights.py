"""The model store: cache dir, table, downloads over a loopback HTTP server (progress, resume, checksums,
mirrors, wrong contents), offline mode, recorded checksums, packages' entries, open_clip's tags, and the
``pixgen models`` CLI."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from pixgen import weights
from pixgen.cli_models import models
from pixgen.errors import ModelUnavailableError, PixgenError
from pixgen.model_table import SAFETENSORS_MAGIC, ModelEntry, WeightFile, known_models
from pixgen.registry import MODELS

PAYLOAD = b"PK\x03\x04" + bytes(range(256)) * 800  # ~200 KB, looks like a zip checkpoint
SHA = hashlib.sha256(PAYLOAD).hexdigest()
ANCHORS = ["imagenet_f16_1024", "imagenet_f16_16384", "openimages_f16_8192", "wikiart_1024", "wikiart_16384",
           "coco", "faceshq", "sflckr", "gumbel_f8_8192"]


class Loopback(BaseHTTPRequestHandler):
    """Serves ``server.files``; ``server.modes[path]``: ``cut`` (first response stops halfway), ``html``,
    ``norange`` (ignores Range). Logs (path, Range header) to ``server.log``."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        srv = self.server
        srv.log.append((self.path, self.headers.get("Range")))
        mode, data = srv.modes.get(self.path, ""), srv.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        if mode == "html":
            data = b"<html><body>Please confirm the download</body></html>"
        start = 0
        if self.headers.get("Range") and mode != "norange":
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "text/html" if mode == "html" else "application/octet-stream")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if mode == "cut" and self.path not in srv.cut_done:
            srv.cut_done.add(self.path)
            body = body[: len(body) // 2]
            self.close_connection = True
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Loopback)
    srv.files, srv.modes, srv.log, srv.cut_done = {}, {}, [], set()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIXGEN_OFFLINE", raising=False)


def entry_for(server: ThreadingHTTPServer, *paths: str, sha256: str | None = SHA) -> ModelEntry:
    wf = WeightFile("vqgan/test.ckpt", tuple(server.url + p for p in paths), sha256, magic=(b"PK\x03\x04",))
    return ModelEntry("test", "vqgan", {"checkpoint": wf})


def cache_files() -> list[str]:
    root = weights.cache_dir()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".locks" not in p.parts)


# -- cache dir, offline flag, table ------------------------------------------------------------------------
def test_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PIXGEN_CACHE", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("PIXGEN_CACHE")
    assert weights.cache_dir() == tmp_path / "xdg" / "pixgen"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert weights.cache_dir() == tmp_path / "home" / ".cache" / "pixgen"


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("yes", True), ("0", False), ("", False)])
def test_offline_flag(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("PIXGEN_OFFLINE", value)
    assert weights.offline() is expected


def test_table_has_every_anchor_model_with_mirrors() -> None:
    table = known_models()
    for name in ANCHORS:
        entry = table[name]
        assert entry.kind == "vqgan" and set(entry.files) == {"config", "checkpoint"}
        assert all(wf.urls and all(u.startswith("http") for u in wf.urls) for wf in entry.files.values())
        assert entry.files["checkpoint"].filename == f"vqgan/{entry.files['config'].filename[6:-5]}.ckpt"
    assert len(table["imagenet_f16_16384"].files["checkpoint"].urls) >= 2  # mirrors
    assert table["openimages_f16_8192"].files == table["gumbel_f8_8192"].files  # pixray's name, same files
    clip = table["ViT-B-32:openai"].files["weights"]
    assert clip.sha256 and clip.sha256 in clip.urls[0]
    with pytest.raises(PixgenError, match="known models: .*imagenet_f16_16384.*any open_clip MODEL:TAG"):
        weights.get_entry("imagenet_f16_999")


def test_every_open_clip_tag_is_a_store_entry() -> None:
    """OpenAI's files keep their sha256 URLs (the -quickgelu names share them); the others are derived from
    open_clip's pretrained table: the hub's safetensors, then its .bin, then open_clip's url."""
    quick = weights.get_entry("ViT-B-32-quickgelu:openai")
    assert quick.files == weights.get_entry("ViT-B-32:openai").files
    laion = weights.get_entry("ViT-B-32:laion2b_s34b_b79k").files["weights"]
    repo = "https://huggingface.co/laion/CLIP-ViT-B-32-laion2B-s34B-b79K/resolve/main"
    assert laion.urls == (f"{repo}/open_clip_model.safetensors", f"{repo}/open_clip_pytorch_model.bin")
    assert laion.filename == "clip/ViT-B-32/laion2b_s34b_b79k.weights" and laion.sha256 is None
    yfcc = weights.get_entry("RN50:yfcc15m").files["weights"]
    assert yfcc.urls[0].endswith("/open_clip_model.safetensors") and "mlfoundations" in yfcc.urls[-1]
    named = weights.get_entry("ViTamin-S:datacomp1b").files["weights"]  # the hub entry names its file
    assert [u.rsplit("/", 1)[1] for u in named.urls] == ["pytorch_model.safetensors", "pytorch_model.bin"]
    assert "ViT-B-32:laion2b_s34b_b79k" not in known_models()  # known, not listed
    with pytest.raises(PixgenError, match="unknown model 'ViT-B-32:nope'"):
        weights.get_entry("ViT-B-32:nope")


def test_packages_add_entries_and_the_core_never_imports_the_shapes_wing() -> None:
    """The wing's entries come from entry points (listed); looking up a core model imports no wing module."""
    listed = known_models()
    assert {"shapes", "shapes_clip", "shapes_cnn", "shapes_denoiser", "shapes_prior"} <= set(listed)
    assert listed["shapes"].package == "pixgen.shapes" and "train_shapes_vqgan.py" in listed["shapes"].rebuild
    assert str(weights.file_path(listed["shapes"], "config")).endswith(os.path.join("shapes", "assets",
                                                                                     "shapes_vqgan.yaml"))
    code = ("import sys; from pixgen.weights import get_entry\n"
            "for name in ('imagenet_f16_16384', 'ViT-B-32:openai'):\n"
            "    assert get_entry(name).package is None\n"
            "print(sorted(m for m in sys.modules if m.startswith(('pixgen.shapes', 'open_clip'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr  # nor open_clip, for these


def test_a_registered_entry_is_listed_and_a_broken_one_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    mine = ModelEntry("mine", "denoiser", {"weights": WeightFile("mine/w.pt")}, description="a test entry")
    monkeypatch.setitem(MODELS.entries, "mine", mine)
    assert known_models()["mine"] is mine and weights.get_entry("mine") is mine
    monkeypatch.setitem(MODELS.entries, "imagenet_f16_16384", mine)  # the core table wins a clash
    assert weights.get_entry("imagenet_f16_16384").kind == "vqgan"
    monkeypatch.setitem(MODELS.entries, "gone", "no_such_package.store:ENTRY")
    with pytest.raises(PixgenError, match="the model 'gone' needs a package that is not installed"):
        known_models()
    monkeypatch.setitem(MODELS.entries, "gone", "pixgen.model_table:WeightFile")
    with pytest.raises(PixgenError, match="not a ModelEntry"):
        weights.get_entry("gone")


# -- downloads ---------------------------------------------------------------------------------------------
def test_download_verifies_records_and_shows_progress(server, online, capsys) -> None:
    server.files["/m.ckpt"] = PAYLOAD
    paths = weights.ensure_files(entry_for(server, "/m.ckpt"))
    assert paths["checkpoint"].read_bytes() == PAYLOAD
    record = weights.read_record(paths["checkpoint"])
    assert record["sha256"] == SHA and record["source"] == server.url + "/m.ckpt"
    err = capsys.readouterr().err
    assert "test" in err and "100%" in err  # tqdm bar on stderr
    assert cache_files() == ["vqgan/test.ckpt", "vqgan/test.ckpt.sha256.json"]
    weights.ensure_files(entry_for(server, "/m.ckpt"))  # cached: no second request
    assert len(server.log) == 1


def test_interrupted_transfer_resumes_with_range_request(server, online) -> None:
    server.files["/m.ckpt"] = PAYLOAD
    server.modes["/m.ckpt"] = "cut"
    wf, dest = entry_for(server, "/m.ckpt").files["checkpoint"], weights.cache_dir() / "vqgan/test.ckpt"
    with pytest.raises(weights.DownloadError, match="interrupted"):
        weights.download_file(wf, dest, progress=False, attempts=1)
    (part,) = dest.parent.glob("test.ckpt.*.part")
    assert part.stat().st_size == len(PAYLOAD) // 2 and not dest.exists()
    weights.download_file(wf, dest, progress=False, timeout=5)
    assert server.log[-1] == ("/m.ckpt", f"bytes={len(PAYLOAD) // 2}-")
    assert dest.read_bytes() == PAYLOAD and not part.exists()


def test_one_call_resumes_by_itself(server, online) -> None:
    server.files["/m.ckpt"] = PAYLOAD
    server.modes["/m.ckpt"] = "cut"
    path = weights.ensure_files(entry_for(server, "/m.ckpt"), progress=False)["checkpoint"]
    assert path.read_bytes() == PAYLOAD and [r for _, r in server.log] == [None, f"bytes={len(PAYLOAD) // 2}-"]


def test_server_without_range_support_restarts_cleanly(server, online) -> None:
    server.files["/m.ckpt"] = PAYLOAD
    wf, dest = entry_for(server, "/m.ckpt").files["checkpoint"], weights.cache_dir() / "vqgan/test.ckpt"
    dest.parent.mkdir(parents=True)
    part = dest.with_name(f"test.ckpt.{hashlib.sha1(wf.urls[0].encode()).hexdigest()[:10]}.part")
    part.write_bytes(b"PK\x03\x04garbage")
    server.modes["/m.ckpt"] = "norange"
    weights.download_file(wf, dest, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_checksum_mismatch_is_rejected_and_leaves_nothing(server, online) -> None:
    server.files["/m.ckpt"] = PAYLOAD[:-1] + b"!"
    with pytest.raises(ModelUnavailableError, match="sha256 mismatch") as info:
        weights.ensure_files(entry_for(server, "/m.ckpt"), progress=False)
    assert "--vqgan-config" in str(info.value) and str(weights.cache_dir() / "vqgan") in str(info.value)
    assert cache_files() == []


def test_web_page_instead_of_file_is_rejected_then_next_mirror_used(server, online) -> None:
    server.files["/page"] = PAYLOAD
    server.modes["/page"] = "html"
    server.files["/good.ckpt"] = PAYLOAD
    path = weights.ensure_files(entry_for(server, "/missing", "/page", "/good.ckpt"), progress=False)["checkpoint"]
    assert path.read_bytes() == PAYLOAD
    assert [p for p, _ in server.log] == ["/missing", "/page", "/good.ckpt"]
    assert cache_files() == ["vqgan/test.ckpt", "vqgan/test.ckpt.sha256.json"]


def test_wrong_contents_without_known_sha_are_rejected_by_magic(server, online) -> None:
    server.files["/m.ckpt"] = b"<?xml version='1.0'?><Error>AccessDenied</Error>"
    with pytest.raises(ModelUnavailableError, match="not a checkpoint"):
        weights.ensure_files(entry_for(server, "/m.ckpt", sha256=None), progress=False)
    assert cache_files() == []


def test_safetensors_files_pass_the_magic_check(server, online) -> None:
    """open_clip's hub files are safetensors (an 8-byte header length, then JSON); a zip is not one."""
    import torch
    from safetensors.torch import save

    server.files["/w.safetensors"] = save({"w": torch.ones(3)})
    server.files["/w.zip"] = PAYLOAD
    wf = WeightFile("clip/w.weights", (server.url + "/w.zip", server.url + "/w.safetensors"),
                    magic=(SAFETENSORS_MAGIC,))
    path = weights.ensure_files(ModelEntry("w", "clip", {"weights": wf}), progress=False)["weights"]
    assert path.read_bytes() == server.files["/w.safetensors"] and [p for p, _ in server.log] == ["/w.zip",
                                                                                                 "/w.safetensors"]


def test_offline_never_touches_the_network(server) -> None:
    server.files["/m.ckpt"] = PAYLOAD
    assert weights.offline()  # conftest sets PIXGEN_OFFLINE=1
    with pytest.raises(ModelUnavailableError, match="PIXGEN_OFFLINE") as info:
        weights.ensure_files(entry_for(server, "/m.ckpt"))
    assert "test.ckpt" in str(info.value) and server.log == []
    with pytest.raises(weights.DownloadError):
        weights.download_file(entry_for(server, "/m.ckpt").files["checkpoint"], weights.cache_dir() / "x.ckpt")
    assert server.log == [] and cache_files() == []


# -- recorded checksums, verify ----------------------------------------------------------------------------
def test_recorded_sha_is_checked_after_the_file_changes(server, online) -> None:
    server.files["/m.ckpt"] = PAYLOAD
    entry = entry_for(server, "/m.ckpt", sha256=None)
    path = weights.ensure_files(entry, progress=False)["checkpoint"]
    assert [s.state for s in weights.verify([entry])] == ["ok"]
    path.write_bytes(PAYLOAD[:-1] + b"?")  # same size, new contents
    os.utime(path, ns=(1, 1))
    with pytest.raises(PixgenError, match="corrupt or not the expected file.*pixgen models download test"):
        weights.ensure_files(entry)
    (status,) = weights.verify([entry])
    assert status.state == "bad" and "sha256" in status.detail


def test_hand_placed_file_is_recorded_then_verified() -> None:
    entry = ModelEntry("mine", "vqgan", {"checkpoint": WeightFile("vqgan/mine.ckpt")})
    path = weights.cache_dir() / "vqgan/mine.ckpt"
    path.parent.mkdir(parents=True)
    path.write_bytes(PAYLOAD)
    assert [s.state for s in weights.verify([entry])] == ["recorded"]
    assert weights.ensure_files(entry)["checkpoint"] == path  # offline, but present
    assert [s.state for s in weights.verify([entry])] == ["ok"]
    assert weights.verify([ModelEntry("gone", "clip", {"w": WeightFile("clip/gone.pt")})])[0].state == "missing"


def test_packaged_model_missing_is_a_clear_error() -> None:
    """A wing's file that is missing: one line naming the file and the command that rebuilds it."""
    entry = dataclasses.replace(weights.get_entry("shapes"), files={"config": WeightFile("no_such_asset.yaml")})
    with pytest.raises(ModelUnavailableError) as info:
        weights.ensure_files(entry)
    message = str(info.value)
    assert "ship inside pixgen.shapes" in message and "no_such_asset.yaml" in message
    assert "rebuild it with `python scripts/train_shapes_vqgan.py --out pixgen/shapes/assets`" in message
    assert "--vqgan-checkpoint" in message and len(message.splitlines()) == 1
    assert weights.file_path(entry, "config").parent.parts[-3:] == ("pixgen", "shapes", "assets")
    out = CliRunner().invoke(models, ["path", "shapes_prior"])
    assert out.exit_code == 0 and out.stdout.strip().endswith("shapes_prior.pt")


# -- CLI ---------------------------------------------------------------------------------------------------
def test_cli_list_path_and_offline_download_error() -> None:
    runner = CliRunner()
    placed = weights.cache_dir() / "vqgan" / "vqgan_wikiart_1024.yaml"
    placed.parent.mkdir(parents=True)
    placed.write_text("model: {}")
    out = runner.invoke(models, ["list"])
    assert out.exit_code == 0, out.output
    lines = {line.split()[0]: line for line in out.output.splitlines()[1:]}
    assert set(ANCHORS) <= set(lines) and "~980.0 MB" in lines["imagenet_f16_16384"]
    assert " partial " in lines["wikiart_1024"] and " - " in lines["coco"]
    out = runner.invoke(models, ["path", "imagenet_f16_16384"])
    assert out.exit_code == 0
    assert out.stdout.splitlines() == [str(weights.cache_dir() / "vqgan" / f"vqgan_imagenet_f16_16384.{ext}")
                                       for ext in ("yaml", "ckpt")]
    out = runner.invoke(models, ["download", "imagenet_f16_16384"])
    assert out.exit_code == 1 and "Traceback" not in out.output
    assert out.output.startswith("Error: vqgan model imagenet_f16_16384 is not in the cache and cannot be "
                                 "downloaded now (PIXGEN_OFFLINE")
    assert len(out.output.strip().splitlines()) == 1
    out = runner.invoke(models, ["path", "nope"])
    assert out.exit_code == 1 and "unknown model 'nope'" in out.output


def test_cli_accepts_any_open_clip_tag_and_finds_it_in_the_cache() -> None:
    """``models path/download/verify MODEL:TAG`` for a tag ``list`` does not show; a file in its place is found."""
    runner = CliRunner()
    name, where = "ViT-B-32:laion2b_s34b_b79k", weights.cache_dir() / "clip" / "ViT-B-32" / "laion2b_s34b_b79k.weights"
    out = runner.invoke(models, ["path", name])
    assert out.exit_code == 0 and out.stdout.strip() == str(where)
    out = runner.invoke(models, ["download", name])
    assert out.exit_code == 1 and len(out.output.strip().splitlines()) == 1
    assert "laion2b_s34b_b79k.weights (from https://huggingface.co/laion/" in out.output
    assert "--clip ViT-B-32:/path/to/weights" in out.output
    listing = runner.invoke(models, ["list"])
    assert name not in listing.output and "Any open_clip MODEL:TAG" in listing.output
    where.parent.mkdir(parents=True)
    where.write_bytes(PAYLOAD)
    assert re.search(rf"{name} +clip +cached", runner.invoke(models, ["list"]).output)
    out = runner.invoke(models, ["verify"])
    assert out.exit_code == 0 and f"{name}: laion2b_s34b_b79k.weights: sha256 recorded" in out.output
    assert runner.invoke(models, ["verify", name]).output.strip() == f"{name}: laion2b_s34b_b79k.weights: ok"


def test_cli_verify_reports_and_fails_on_a_bad_file() -> None:
    runner = CliRunner()
    first = runner.invoke(models, ["verify"])  # an empty cache: only the packaged shapes files
    assert first.exit_code == 0
    assert all("shapes" in line and line.endswith(": ok") for line in first.output.strip().splitlines())
    path = weights.cache_dir() / "clip" / "ViT-B-32.pt"  # sha256 known from the table: this one is wrong
    path.parent.mkdir(parents=True)
    path.write_bytes(PAYLOAD)
    out = runner.invoke(models, ["verify"])
    assert out.exit_code == 1 and "ViT-B-32.pt: bad" in out.output and "Traceback" not in out.output
    path.unlink()
    hand = weights.cache_dir() / "vqgan" / "vqgan_coco.yaml"
    hand.parent.mkdir(parents=True)
    hand.write_text("model: {}")
    out = runner.invoke(models, ["verify"])
    assert out.exit_code == 0 and "vqgan_coco.yaml: sha256 recorded" in out.output
    out = runner.invoke(models, ["verify", "coco"])  # the checkpoint is missing
    assert out.exit_code == 1 and "vqgan_coco.ckpt: missing" in out.output


def test_verify_hashes_packaged_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A packaged file is checked against the sha256 its entry lists: a truncated shipped checkpoint is bad."""
    shipped = weights.get_entry("shapes")
    package = tmp_path / "pkgs" / "copied_shapes"
    (package / "assets").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for role in shipped.files:
        source = weights.file_path(shipped, role)
        (package / "assets" / source.name).write_bytes(source.read_bytes())
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    copy = dataclasses.replace(shipped, name="copied", package="copied_shapes")
    monkeypatch.setitem(MODELS.entries, "copied", copy)
    assert all(wf.sha256 for wf in shipped.files.values())
    assert [s.state for s in weights.verify([copy])] == ["ok", "ok"]
    checkpoint = package / "assets" / shipped.files["checkpoint"].filename
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])  # truncated: present, the right name, wrong bytes
    out = CliRunner().invoke(models, ["verify", "copied"])
    assert out.exit_code == 1 and "Traceback" not in out.output, out.output
    assert "copied: shapes_vqgan.yaml: ok" in out.output and "copied: shapes_vqgan.ckpt: bad" in out.output
    assert "is not the file copied_shapes shipped" in out.output and "reinstall copied_shapes" in out.output
