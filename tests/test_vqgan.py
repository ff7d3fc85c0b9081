"""The VQGAN loader and drawer, on tiny taming-format models written by ``vqgan_fixtures``."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from vqgan_fixtures import F16, GUMBEL_F8, TamingLayout, ddconfig, fit_tiny_vqgan, write_tiny_vqgan

from pixgen.checkpoints import load_checkpoint_state
from pixgen.drawers.vqgan import VqganDrawer
from pixgen.errors import ModelUnavailableError, PixgenError
from pixgen.noise import noise_image
from pixgen.taming_arch import architecture
from pixgen.taming_loader import (
    VqganModel,
    build_from_files,
    clear_model_cache,
    load_vqgan,
    model_cache_info,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """kind -> (yaml, ckpt) for the three taming layouts."""
    root = tmp_path_factory.mktemp("vqgan")
    return {kind: write_tiny_vqgan(root / kind, kind=kind) for kind in ("vq", "gumbel", "transformer")}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, torch.Tensor]:
    """A small VQGAN fitted to one 32x32 image: (yaml, ckpt, image)."""
    image = noise_image("pixels", 32, 32, torch.Generator().manual_seed(3))
    return (*fit_tiny_vqgan(tmp_path_factory.mktemp("fitted"), image, steps=50), image)


def drawer_for(files: tuple[Path, ...], width: int = 64, height: int = 48) -> VqganDrawer:
    return VqganDrawer(width, height, vqgan_config=str(files[0]), vqgan_checkpoint=str(files[1]))


# -- loading -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "factor"), [("vq", 16), ("gumbel", 8), ("transformer", 16)])
def test_loads_each_taming_layout_with_its_real_key_names(tiny, kind: str, factor: int) -> None:
    model = load_vqgan(*tiny[kind])
    saved = load_checkpoint_state(tiny[kind][1])
    prefix = "first_stage_model." if kind == "transformer" else ""
    expected = {k[len(prefix):]: v for k, v in saved.items() if k.startswith(prefix) and ".loss." not in f".{k}"}
    ours = model.checkpoint_state_dict()
    assert set(ours) == {k for k in expected if not k.startswith("loss.")}
    assert all(torch.equal(ours[k], expected[k]) for k in ours)
    assert model.factor == factor and model.codebook.shape == (64, 32)
    assert ("quantize.embed.weight" in ours) == (kind == "gumbel")
    x = torch.rand(1, 3, 32, 48) * 2 - 1
    z = model.encode(x)
    assert z.shape == (1, 32, 32 // factor, 48 // factor)
    assert model.decode(model.quantize(z)).shape == (1, 3, 32, 48)


def test_lightning_extras_that_break_plain_weights_only_loading_are_skipped(tiny) -> None:
    ckpt = tiny["vq"][1]
    found = set(torch.serialization.get_unsafe_globals_in_checkpoint(str(ckpt)))
    assert {"pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint",
            "pytorch_lightning.utilities.parsing.AttributeDict", "numpy.dtype"} <= found
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(ckpt, weights_only=True)
    state = load_checkpoint_state(ckpt)
    assert "encoder.conv_in.weight" in state and "loss.logvar" in state and "epoch" not in state


@pytest.mark.parametrize(("name", "arch"), [("imagenet_f16_16384", F16), ("gumbel_f8_8192", GUMBEL_F8)])
def test_known_architectures_match_taming_at_full_size(name: str, arch: dict) -> None:
    ours = VqganModel(architecture(name)).checkpoint_state_dict()
    theirs = TamingLayout(ddconfig(arch, 128, 256), ours["quantize.embed.weight" if "gumbel" in name
                                                        else "quantize.embedding.weight"].shape[0], 256,
                          gumbel="gumbel" in name).state_dict()
    theirs = {k: v.shape for k, v in theirs.items() if not k.startswith("loss.")}
    assert {k: v.shape for k, v in ours.items()} == theirs
    assert theirs["encoder.conv_in.weight"] == (128, 3, 3, 3)
    if "gumbel" in name:
        assert theirs["quantize.proj.weight"] == (8192, 256, 1, 1)
    else:
        assert theirs["quantize.embedding.weight"] == (16384, 256)
        assert theirs["decoder.up.4.attn.2.q.weight"] == (512, 512, 1, 1)


def test_loading_imports_neither_lightning_nor_taming_models(tiny) -> None:
    code = ("import sys; from pixgen.taming_loader import load_vqgan; from pixgen.drawers.vqgan import VqganDrawer;"
            f"d = VqganDrawer(32, 32, vqgan_config={str(tiny['vq'][0])!r}, vqgan_checkpoint={str(tiny['vq'][1])!r});"
            "d.render();"
            "print(sorted(m for m in sys.modules if 'lightning' in m or m.startswith(('taming.models', "
            "'taming.main', 'taming.modules.losses', 'omegaconf', 'torchvision.models'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_model_is_loaded_once_per_process_and_reloaded_when_the_file_changes(tiny, tmp_path) -> None:
    yaml_path, ckpt = write_tiny_vqgan(tmp_path, seed=1)
    clear_model_cache()
    first = load_vqgan(yaml_path, ckpt)
    a, b = drawer_for((yaml_path, ckpt)), drawer_for((yaml_path, ckpt))
    assert a.vqgan() is b.vqgan() is first and model_cache_info().misses == 1
    assert not any(p is first.codebook for p in a.parameters())  # the frozen model is not a submodule
    assert list(a.trainable_state()) == ["z"]
    a.render()
    os.utime(ckpt, ns=(1, 1))
    assert load_vqgan(yaml_path, ckpt) is not first
    ckpt.unlink()  # a running drawer keeps its model even if the file goes away
    assert a.vqgan() is first and a.render().shape == (1, 3, 48, 64)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_checkpoint_is_a_clear_error(tiny, tmp_path, damage: str) -> None:
    data = tiny["vq"][1].read_bytes()
    bad = tmp_path / "last.ckpt"
    bad.write_bytes({"truncated": data[: len(data) // 2], "garbage": os.urandom(4096), "empty": b""}[damage])
    with pytest.raises(PixgenError, match="truncated or corrupt") as info:
        build_from_files(tiny["vq"][0], bad)
    assert str(bad) in str(info.value)


def test_checkpoint_that_does_not_match_its_config(tiny, tmp_path) -> None:
    with pytest.raises(PixgenError, match="does not match its config") as info:
        build_from_files(tiny["vq"][0], tiny["gumbel"][1])
    text = str(info.value)
    assert str(tiny["gumbel"][1]) in text and str(tiny["vq"][0]) in text
    assert "the checkpoint has a Gumbel quantizer but the config builds a vector one" in text
    assert "missing keys: encoder.down.3.downsample.conv.weight" in text and " and 95 more" in text
    assert "unexpected keys: encoder.down.3.block.0.nin_shortcut.weight" in text
    wider_yaml, _ = write_tiny_vqgan(tmp_path, n_embed=128)
    with pytest.raises(PixgenError, match=r"wrong shapes: quantize.embedding.weight is \(64, 32\), config wants "
                                          r"\(128, 32\)"):
        build_from_files(wider_yaml, tiny["vq"][1])


def test_checkpoint_carrying_code_is_refused_and_not_run(tmp_path) -> None:
    target = tmp_path / "was_run"

    class Payload:
        def __reduce__(self):
            return os.mkdir, (str(target),)

    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"w": torch.ones(1)}, "callbacks": Payload()}, path)
    with pytest.raises(PixgenError, match="will not unpickle.*mkdir"):
        load_checkpoint_state(path)
    assert not target.exists()


@pytest.mark.parametrize(("text", "match"), [("model: [unclosed", "not valid YAML"),
                                             ("data: {}", "no model.target"),
                                             ("model: {target: taming.models.vqgan.EMAVQ}", "not supported"),
                                             ("model: {target: taming.models.vqgan.VQModel, params: {}}", "lack")])
def test_bad_configs_are_clear_errors(tiny, tmp_path, text: str, match: str) -> None:
    path = tmp_path / "model.yaml"
    path.write_text(text)
    with pytest.raises(PixgenError, match=match) as info:
        build_from_files(path, tiny["vq"][1])
    assert str(path) in str(info.value)


# -- the drawer --------------------------------------------------------------------------------------------
def test_size_is_trimmed_to_the_factor_and_the_run_says_so(tiny, caplog) -> None:
    from pixgen.config import RunConfig
    from pixgen.parts import build_drawer
    from pixgen.plugins import chosen_plugins, of_kind

    config, ckpt = tiny["vq"]
    run_config = RunConfig.from_dict({"drawer": "vqgan", "size": "70x50", "vqgan_config": str(config),
                                      "vqgan_checkpoint": str(ckpt)})
    with caplog.at_level(logging.INFO, logger="pixgen"):
        drawer = build_drawer(run_config, of_kind(chosen_plugins(run_config), "drawer")[0], torch.device("cpu"))
    assert (drawer.width, drawer.height) == (64, 48) and drawer.z.shape == (1, 32, 3, 4)
    assert "Size 70x50 trimmed to 64x48 (the vqgan drawer needs a multiple of 16)" in caplog.text
    assert (drawer_for(tiny["gumbel"], 70, 50).width, drawer_for(tiny["gumbel"], 70, 50).height) == (64, 48)
    with pytest.raises(PixgenError, match="smaller than the VQGAN's downsampling factor 16"):
        drawer_for(tiny["vq"], 8, 64)


@pytest.mark.parametrize("kind", ["vq", "gumbel"])
def test_render_is_in_range_and_differentiable(tiny, kind: str) -> None:
    drawer = drawer_for(tiny[kind])
    drawer.init_from_noise("pixels", torch.Generator().manual_seed(0))
    render = drawer.render()
    assert render.shape == (1, 3, 48, 64) and 0 <= render.min() and render.max() <= 1
    render.mean().backward()
    assert torch.isfinite(drawer.z.grad).all() and drawer.z.grad.abs().sum() > 0


def test_quantize_ramp_blends_from_the_latent_to_the_codes(tiny) -> None:
    files = tiny["vq"]
    drawer = VqganDrawer(64, 48, vqgan_config=str(files[0]), vqgan_checkpoint=str(files[1]), quantize_ramp=0.5)
    drawer.init_from_noise("pixels", torch.Generator().manual_seed(0))
    model = drawer.vqgan()
    with torch.no_grad():
        z, codes = drawer.z.clone(), model.quantize(drawer.z)
        assert not torch.allclose(z, codes)
        expect = {0.0: z, 0.25: (z + codes) / 2, 0.5: codes, 1.0: codes}
        for progress, latent in expect.items():
            drawer.set_progress(progress)
            want = model.decode(latent).add(1).div(2).clamp(0, 1)
            assert torch.allclose(drawer.render(), want, atol=1e-5), progress
    drawer.set_progress(0.25)
    drawer.render().mean().backward()
    assert torch.isfinite(drawer.z.grad).all() and drawer.z.grad.abs().sum() > 0
    assert drawer.to_config()["quantize_ramp"] == 0.5
    with pytest.raises(PixgenError, match="quantize_ramp 1.5 is out of range"):
        VqganDrawer(64, 48, vqgan_config=str(files[0]), vqgan_checkpoint=str(files[1]), quantize_ramp=1.5)


def test_latent_levels_add_coarse_grids_whose_gradient_is_the_sum_over_their_block(tiny) -> None:
    files = tiny["vq"]
    drawer = VqganDrawer(64, 48, vqgan_config=str(files[0]), vqgan_checkpoint=str(files[1]), latent_levels=2)
    (grid,) = drawer.coarse
    h, w = drawer.z.shape[-2:]
    assert grid.shape[-2:] == (-(-h // 2), -(-w // 2))
    drawer.init_from_noise("pixels", torch.Generator().manual_seed(0))
    assert not grid.abs().any()  # a start sets the finest grid only
    with torch.no_grad():
        grid.normal_()
    latent = drawer.latent()
    assert torch.allclose(latent[..., 1, 1], drawer.z[..., 1, 1] + grid[..., 0, 0])
    assert torch.allclose(latent[..., 2, 0], drawer.z[..., 2, 0] + grid[..., 1, 0])
    model = drawer.vqgan()
    with torch.no_grad():
        want = model.decode(model.quantize(latent)).add(1).div(2).clamp(0, 1)
        assert torch.allclose(drawer.render(), want, atol=1e-6)
    drawer.render().square().mean().backward()
    block_sums = torch.nn.functional.pad(drawer.z.grad, (0, w % 2, 0, h % 2)).unfold(2, 2, 2).unfold(3, 2, 2)
    assert torch.allclose(grid.grad, block_sums.sum((-1, -2)), atol=1e-6) and grid.grad.abs().sum() > 0
    with torch.no_grad():
        grid.fill_(1e3)
    drawer.project_()
    assert torch.allclose(drawer.latent(), model.clamp_to_codebook(drawer.latent()), atol=1e-4)
    assert drawer.to_config()["latent_levels"] == 2
    with pytest.raises(PixgenError, match="latent_levels 0 is out of range"):
        VqganDrawer(64, 48, vqgan_config=str(files[0]), vqgan_checkpoint=str(files[1]), latent_levels=0)


def test_loss_falls_toward_a_target_under_adam(fitted) -> None:
    drawer = drawer_for(fitted[:2], 32, 32)
    drawer.init_from_noise("snow", torch.Generator().manual_seed(0))
    target = noise_image("gradient", 32, 32, torch.Generator().manual_seed(1))
    opt = torch.optim.Adam(drawer.param_groups(drawer.default_lr))
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(drawer.render(), target)
        loss.backward()
        opt.step()
        drawer.project_()
        losses.append(loss.item())
    assert max(losses[-3:]) < 0.9 * losses[0], losses


def test_clip_guided_run_loss_falls(fitted, quick, monkeypatch) -> None:
    from pixgen.config import RunConfig
    from pixgen.engine import Run
    from pixgen.registry import DRAWERS

    monkeypatch.setitem(DRAWERS.entries, "vqgan", "pixgen.drawers.vqgan:VqganDrawer")
    run = Run(RunConfig.from_dict({**quick, "drawer": "vqgan", "vqgan_config": str(fitted[0]),
                                   "vqgan_checkpoint": str(fitted[1]), "iterations": 30, "cutn": 8}))
    losses = [run.step().loss for _ in range(30)]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.01, losses


def test_init_from_image_reproduces_it(fitted) -> None:
    yaml_path, ckpt, image = fitted
    drawer = drawer_for((yaml_path, ckpt), 32, 32)
    drawer.init_from_image(image)
    with torch.no_grad():
        err = torch.mean((drawer.render() - image) ** 2).item()
    assert err < 0.25 * torch.var(image).item(), err
    drawer.init_from_image(torch.nn.functional.interpolate(image, size=(64, 64)))  # other sizes are resized
    with torch.no_grad():
        assert torch.mean((drawer.render() - image) ** 2).item() < 0.25 * torch.var(image).item()


def test_token_init_is_codebook_vectors_and_seeded(tiny) -> None:
    drawer = drawer_for(tiny["vq"])
    drawer.init_from_noise("tokens", torch.Generator().manual_seed(5))
    z = drawer.z.detach().clone()
    assert torch.equal(drawer.vqgan().quantize(z), z)
    drawer.init_from_noise("tokens", torch.Generator().manual_seed(5))
    assert torch.equal(drawer.z, z)
    drawer.init_from_noise("tokens", torch.Generator().manual_seed(6))
    assert not torch.equal(drawer.z, z)
    assert "tokens" in VqganDrawer.extra_init_noise


def test_project_clamps_z_to_the_codebook_range(tiny) -> None:
    drawer = drawer_for(tiny["gumbel"])
    with torch.no_grad():
        drawer.z.normal_(0, 100)
    drawer.project_()
    book = drawer.vqgan().codebook
    per_channel = drawer.z.detach().movedim(1, -1).reshape(-1, book.shape[1])
    assert torch.all(per_channel >= book.amin(0)) and torch.all(per_channel <= book.amax(0))
    assert torch.all(per_channel.amax(0) == book.amax(0))  # some values hit the bound


def test_missing_model_offline_names_the_path_and_the_flags() -> None:
    from pixgen.weights import cache_dir

    with pytest.raises(ModelUnavailableError) as info:
        VqganDrawer(64, 64)
    text = str(info.value)
    assert "imagenet_f16_16384" in text and str(cache_dir() / "vqgan") in text
    assert "vqgan_imagenet_f16_16384.ckpt" in text and "--vqgan-config" in text and "--vqgan-checkpoint" in text
    with pytest.raises(PixgenError, match="give both --vqgan-config and --vqgan-checkpoint"):
        VqganDrawer(64, 64, vqgan_config="model.yaml")
    with pytest.raises(PixgenError, match="not a VQGAN model"):
        VqganDrawer(64, 64, model="ViT-B-32:openai")


def test_named_model_uses_files_placed_in_the_cache(tiny) -> None:
    from pixgen.weights import cache_dir, read_record

    folder = cache_dir() / "vqgan"
    folder.mkdir(parents=True)
    for source, ext in zip(tiny["gumbel"], ("yaml", "ckpt"), strict=True):
        (folder / f"vqgan_gumbel_f8_8192.{ext}").write_bytes(source.read_bytes())
    drawer = VqganDrawer(40, 24, model="openimages_f16_8192")  # pixray's name for the same files
    assert (drawer.width, drawer.height) == (40, 24) and drawer.vqgan().factor == 8
    assert read_record(folder / "vqgan_gumbel_f8_8192.ckpt")["source"] == "placed by hand"
    assert drawer.to_config()["model"] == "openimages_f16_8192"


def test_packaged_shapes_model_loads_or_says_what_is_missing() -> None:
    from pixgen.weights import ensure_model

    try:
        ensure_model("shapes")
    except ModelUnavailableError as exc:
        assert "shapes_vqgan" in str(exc) and "reinstall pixgen" in str(exc)
        return
    drawer = VqganDrawer(64, 64, model="shapes")
    assert drawer.render().shape[-2:] == (drawer.height, drawer.width)
