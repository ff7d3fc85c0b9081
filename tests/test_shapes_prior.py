"""The shapes code prior (``pixgen.shapes.prior``), its training script, and ``--init-noise prior`` of the VQGAN
drawer; on tiny random priors and a tiny taming-format VQGAN (``vqgan_fixtures``)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from vqgan_fixtures import write_tiny_vqgan

from pixgen.context import SetupContext
from pixgen.drawers.vqgan import VqganDrawer
from pixgen.errors import PixgenError
from pixgen.prompts import parse_prompt
from pixgen.shapes.denoiser import caption_tokens
from pixgen.shapes.prior import TEXT_LEN, ShapesPrior, fingerprint, load_prior, save_prior
from pixgen.taming_loader import load_vqgan

ROOT = Path(__file__).resolve().parents[1]
N_CODES = 64  # the tiny VQGAN's codebook


def tiny_prior(grid: int = 4, seed: int = 0, n_codes: int = N_CODES, vqgan: tuple | None = None) -> ShapesPrior:
    """A random prior; with ``vqgan`` files, marked as trained for that VQGAN (as the training script does)."""
    torch.manual_seed(seed)
    codebook = load_vqgan(*vqgan).codebook if vqgan else torch.zeros(n_codes, 16)
    model = ShapesPrior(n_codes=n_codes, grid=grid, width=32, depth=2, heads=2, code_dim=codebook.shape[1])
    model.vqgan_codes.copy_(fingerprint(codebook))
    return model.eval()


@pytest.fixture(scope="module")
def vqgan(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_tiny_vqgan(tmp_path_factory.mktemp("vqgan"), n_embed=N_CODES)


def test_a_code_depends_on_the_caption_and_earlier_codes_only() -> None:
    model = tiny_prior()
    text = caption_tokens(["a red circle", "a blue square"])
    codes = torch.randint(N_CODES, (2, 16), generator=torch.Generator().manual_seed(0))
    logits = model(text, codes)
    assert logits.shape == (2, 16, N_CODES)
    later = codes.clone()
    later[:, 9:] = (later[:, 9:] + 1) % N_CODES
    changed = model(text, later)
    assert torch.allclose(changed[:, :10], logits[:, :10], atol=1e-5)  # position i sees codes before i only
    assert not torch.allclose(changed[:, 10:], logits[:, 10:])
    other = model(caption_tokens(["a green triangle", "a blue square"]), codes)
    assert not torch.allclose(other[0, 0], logits[0, 0]) and torch.allclose(other[1], logits[1], atol=1e-5)


def test_cached_sampling_follows_the_teacher_forced_model() -> None:
    model = tiny_prior()
    text = caption_tokens(["a red circle on a blue background", "a white triangle left of a green square"])
    codes = model.sample_codes(text, guidance=1.0, temperature=0)  # greedy, unguided: the model's own argmax
    assert codes.shape == (2, 4, 4)
    assert torch.equal(model(text, codes.flatten(1)).argmax(-1), codes.flatten(1))


def test_guided_sampling_follows_the_guided_teacher_forced_logits() -> None:
    model = tiny_prior()
    text = caption_tokens(["a red circle on a blue background", "a green square"])[:, :TEXT_LEN]
    codes = model.sample_codes(text, guidance=3.0, temperature=0).flatten(1)
    cond, free = model(text, codes), model(caption_tokens(["", ""]), codes)
    assert torch.equal((free + 3.0 * (cond - free)).argmax(-1), codes)
    assert not torch.equal(model.sample_codes(text, guidance=1.0, temperature=0).flatten(1), codes)


def test_draws_are_seeded_and_differ_between_seeds() -> None:
    model = tiny_prior()
    draws = [model.draw("a red circle", torch.Generator().manual_seed(s)) for s in (1, 1, 2)]
    assert draws[0].shape == (1, 4, 4)
    assert torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])
    with pytest.raises(PixgenError, match="at most 16 tokens, and .* has 19 .*give a shapes caption"):
        model.draw("a red circle left of a blue square on a white background and a green triangle")
    with pytest.raises(PixgenError, match="has more than 30 .*spelled letter by letter"):
        model.draw("a photorealistic astronaut riding a horse on mars")


def test_a_saved_prior_loads_and_other_files_are_clear_errors(tmp_path) -> None:
    model = tiny_prior()
    save_prior(model, tmp_path / "prior.pt")
    loaded = load_prior(tmp_path / "prior.pt")
    text, codes = caption_tokens(["a red circle"]), torch.zeros(1, 16, dtype=torch.long)
    assert torch.allclose(loaded(text, codes), model.half().float()(text, codes), atol=1e-4)
    with_kinds = ShapesPrior(n_codes=N_CODES, grid=4, width=32, depth=2, heads=2, kinds=4)  # a training aid
    save_prior(with_kinds, tmp_path / "kinds.pt")
    assert load_prior(tmp_path / "kinds.pt").kind_head.out_features == 4 and loaded.kind_head is None
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(PixgenError, match="not a shapes code prior \\(KeyError.*train_shapes_prior"):
        load_prior(tmp_path / "other.pt")
    with pytest.raises(PixgenError, match="cannot read code prior .*junk.pt: it is not a torch file"):
        load_prior(tmp_path / "junk.pt")
    with pytest.raises(PixgenError, match="is not a file"):
        load_prior(tmp_path / "missing.pt")


def drawer_with_prior(vqgan, path: Path, width: int = 64, height: int = 64) -> VqganDrawer:
    return VqganDrawer(width, height, vqgan_config=str(vqgan[0]), vqgan_checkpoint=str(vqgan[1]),
                       code_prior=str(path))


def start_from_prior(drawer: VqganDrawer, caption: str, generator: torch.Generator) -> None:
    """What a run does for ``--init-noise prior``: set the drawer up with the prompt, then start it."""
    drawer.setup(SetupContext(torch.device("cpu"), prompts=(parse_prompt(caption),), start="prior"))
    drawer.init_from_noise("prior", generator)


def test_the_drawer_starts_from_the_priors_codes(vqgan, tmp_path) -> None:
    save_prior(tiny_prior(vqgan=vqgan), tmp_path / "prior.pt")
    drawer = drawer_with_prior(vqgan, tmp_path / "prior.pt")  # f16 at 64 px: the prior's 4x4 grid
    start_from_prior(drawer, "a red circle", torch.Generator().manual_seed(3))
    expected = load_prior(tmp_path / "prior.pt").draw("a red circle", torch.Generator().manual_seed(3))
    assert torch.equal(drawer.vqgan().nearest_codes(drawer.latent()), expected)
    assert torch.equal(drawer.vqgan().quantize(drawer.z), drawer.z)  # exactly code vectors
    other = drawer_with_prior(vqgan, tmp_path / "prior.pt", 64, 48)  # a 4x3 latent: decoded and re-encoded
    start_from_prior(other, "a red circle", torch.Generator().manual_seed(3))
    assert other.z.shape[-2:] == (3, 4) and torch.isfinite(other.z).all()


def test_prior_init_without_a_matching_prior_is_a_clear_error(vqgan, tmp_path) -> None:
    plain = VqganDrawer(64, 64, vqgan_config=str(vqgan[0]), vqgan_checkpoint=str(vqgan[1]))
    with pytest.raises(PixgenError, match="needs a code prior: give --code-prior with one of: shapes"):
        start_from_prior(plain, "a red circle", torch.Generator())
    save_prior(tiny_prior(n_codes=32), tmp_path / "small.pt")
    with pytest.raises(PixgenError, match="32-entry codebook, but the VQGAN has 64"):
        start_from_prior(drawer_with_prior(vqgan, tmp_path / "small.pt"), "a red circle", torch.Generator())
    other = write_tiny_vqgan(tmp_path / "other", n_embed=N_CODES, seed=1)  # same size, other codebook
    save_prior(tiny_prior(vqgan=other), tmp_path / "other.pt")
    with pytest.raises(PixgenError, match="trained for another VQGAN"):
        start_from_prior(drawer_with_prior(vqgan, tmp_path / "other.pt"), "a red circle", torch.Generator())


def test_a_run_with_init_noise_prior_starts_from_the_main_prompts_draw(vqgan, tmp_path, quick) -> None:
    from pixgen.config import RunConfig
    from pixgen.engine import Run

    save_prior(tiny_prior(vqgan=vqgan), tmp_path / "prior.pt")
    settings = {**quick, "prompt": "a red circle | a blue square:-1", "size": "64x64", "drawer": "vqgan",
                "vqgan_config": str(vqgan[0]), "vqgan_checkpoint": str(vqgan[1]), "init_noise": "prior",
                "code_prior": str(tmp_path / "prior.pt"), "iterations": 2}
    run = Run(RunConfig.from_dict(settings))
    generator = torch.Generator().manual_seed(quick["seed"])
    torch.randint(2**62, (1,), generator=generator)  # the run first seeds its global RNG scope from it
    expected = load_prior(tmp_path / "prior.pt").draw("a red circle", generator)
    start = run.drawer.vqgan().nearest_codes(run.drawer.latent())
    assert torch.equal(start, expected)
    assert all(math.isfinite(run.step().loss) for _ in range(2))


def test_an_unused_prior_and_a_prompt_without_caption_are_named(vqgan, tmp_path, quick, caplog) -> None:
    from pixgen.config import RunConfig
    from pixgen.engine import Run

    save_prior(tiny_prior(vqgan=vqgan), tmp_path / "prior.pt")
    Run(RunConfig.from_dict({**quick, "size": "64x64", "drawer": "vqgan", "vqgan_config": str(vqgan[0]),
                             "vqgan_checkpoint": str(vqgan[1]), "code_prior": str(tmp_path / "prior.pt")}))
    assert "code_prior is set but the run starts from --init-noise pixels" in caplog.text
    caplog.clear()
    Run(RunConfig.from_dict({**quick, "prompt": "a blue square:-1", "size": "64x64", "drawer": "vqgan",
                             "vqgan_config": str(vqgan[0]), "vqgan_checkpoint": str(vqgan[1]), "init_noise": "prior",
                             "code_prior": str(tmp_path / "prior.pt")}))
    assert "no positive text prompt: the code prior draws a scene for an empty caption" in caplog.text


@pytest.mark.slow  # a training-script run
def test_the_training_script_writes_a_prior_that_loads(tmp_path) -> None:
    out = subprocess.run([sys.executable, str(ROOT / "scripts/train_shapes_prior.py"), "--steps", "2", "--batch",
                          "4", "--minutes", "0", "--kind-weight", "1", "--out",
                          str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert '"demo_samples_pass"' in out.stdout and '"heldout_ce"' in out.stdout
    from pixgen.shapes.models import vqgan_paths
    from pixgen.shapes.prior import prior_for

    model = prior_for(str(tmp_path / "shapes_prior.pt"), load_vqgan(*vqgan_paths()).codebook)  # its VQGAN's
    assert model.n_codes == 512 and model.grid == 16 and TEXT_LEN == 16 and model.kind_head.out_features == 4
