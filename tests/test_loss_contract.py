"""Every registered loss passes the same contract checks (kornia's CommonTests pattern), the wing's included.

A loss is built from its options, set up once with a ``SetupContext`` (real CLIPs: conftest's tiny open_clip
model, or a CLIP the loss's wing ships), then scores ``LossInput``s of real cutouts of a render.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from plugin_contract import check_identity, check_options, one_line_error

from pixgen.augment import Cutouts
from pixgen.config import RunConfig
from pixgen.context import SetupContext
from pixgen.engine import Run
from pixgen.losses.base import Loss, LossInput
from pixgen.options import resolve_options
from pixgen.perceptors import load_perceptor, parse_clip_spec
from pixgen.prompts import parse_prompts
from pixgen.registry import LOSSES

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: one thread is faster on a shared CPU

PAIR = "a red circle left of a blue square on a white background"


def _style_image(tmp: Path) -> dict[str, Any]:
    """A small striped PNG: the style loss's one required option."""
    stripes = np.zeros((24, 24, 3), dtype=np.uint8)
    stripes[::4] = (200, 40, 40)
    Image.fromarray(stripes).save(tmp / "style.png")
    return {"style_file": str(tmp / "style.png")}


@dataclass(frozen=True)
class Recipe:
    """How to set up one loss for the contract checks."""

    minimal: Callable[[Path], dict[str, Any]] = lambda tmp: {}  # its documented required options, if any
    clip: str = "tiny"  # "tiny": conftest's tiny open_clip model; else a --clip spec (a wing's CLIP)
    prompt: str = "a red circle"
    bad: tuple[tuple[dict[str, Any], str], ...] = ()  # options (over the minimal ones) the constructor refuses
    bad_setup: tuple[tuple[dict[str, Any], str], ...] = ()  # options that setup() refuses
    moves_image: bool = True  # its gradient moves the render (every loss so far)


# loss name -> recipe; a newly registered loss fails test_every_loss_has_a_contract_recipe until it has one
# (its other contract tests run meanwhile with the defaults: Recipe())
RECIPES = {
    "edge": Recipe(bad=(({"edge_thickness": "60"}, "edge_thickness must be a percentage"),
                        ({"edge_margins": "1,2,3"}, "edge_margins '1,2,3' must be four percentages"),
                        ({"edge_color_weight": "-1"}, "edge_color_weight must be"),
                        ({"edge_color": "notacolour"}, "notacolour"))),
    "palette": Recipe(bad=(({"palette": "[notacolour]"}, "unknown colour 'notacolour'"),)),
    "saturation": Recipe(),
    "smoothness": Recipe(bad=(({"kind": "wavy"}, "unknown smoothness kind 'wavy'"),
                              ({"cap": "0"}, "cap must be > 0"))),
    "style": Recipe(minimal=_style_image, bad=(({"style_file": "none"}, "needs a style image"),
                                               ({"style_file": "missing.png"}, "missing.png does not exist"),
                                               ({"styleloss_skip": "-1"}, "styleloss_skip must be"),
                                               ({"styleloss_every": "0"}, "styleloss_every must be"))),
    "symmetry": Recipe(bad=(({"symmetry_axis": "diagonal"}, "unknown symmetry_axis 'diagonal'"),)),
    # the shapes wing's losses (entry points), with its built-in models and a two-shape caption
    "denoise": Recipe(clip="shapes", prompt=PAIR, bad=(({"denoise_start": "1"}, r"denoise_start must be in"),),
                      bad_setup=(({"denoiser": "missing.pt"}, "no denoiser weights at missing.pt"),)),
    "layout": Recipe(clip="shapes", prompt=PAIR, bad=(({"layout_cutn": "0"}, "layout_cutn must be at least 1"),
                                                      ({"layout_clear": "-1"}, "layout_clear must be 0 or more"))),
}
PRECISIONS = ["fp32", "bf16", "fp16"]  # --precision: bf16 is "auto" on CPUs with AVX-512 BF16 or AMX
SIZES = [(32, 32), (48, 32), (24, 40), (64, 64)]  # (W, H): square, wide, tall, the shapes world's size
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
NAMES = LOSSES.names()


def test_every_loss_has_a_contract_recipe() -> None:
    assert set(NAMES) <= set(RECIPES), "add a contract recipe (RECIPES) for each new loss"


def _recipe(name: str) -> Recipe:
    return RECIPES.get(name, Recipe())


def _build(name: str, tmp: Path, options: dict[str, Any] | None = None) -> Loss:
    """The loss from its minimal options and ``options``, read as the CLI reads them (strings)."""
    cls = LOSSES.get(name)
    merged = {**_recipe(name).minimal(tmp), **(options or {})}
    return cls(**resolve_options(cls, f"loss {name!r}", (), merged))


def _perceptors(recipe: Recipe, clip_spec: str, device: str) -> dict[str, tuple[Any, float]]:
    spec = parse_clip_spec(clip_spec if recipe.clip == "tiny" else recipe.clip)
    return {spec.key: (load_perceptor(spec, device), 1.0)}


def _context(recipe: Recipe, perceptors: dict, size: tuple[int, int], device: str = "cpu") -> SetupContext:
    sizes = sorted({perc.input_size for perc, _ in perceptors.values()})
    return SetupContext(device=torch.device(device), prompts=tuple(parse_prompts(recipe.prompt)),
                        perceptors=perceptors, make_cutouts=lambda cutn: {s: Cutouts(s, cutn) for s in sizes},
                        size=size, iterations=10)


def _inputs(render: torch.Tensor, context: SetupContext, cutn: int = 4) -> LossInput:
    """Cutouts of ``render`` for every CLIP of ``context`` and their embeddings, as the engine makes them."""
    cutouts = {s: cut(render)[0] for s, cut in context.make_cutouts(cutn).items()}
    embeds = {key: perc.encode_image(cutouts[perc.input_size]) for key, (perc, _) in context.perceptors.items()}
    return LossInput(render=render, cutouts=cutouts, embeds=embeds, step=5, total_steps=context.iterations)


def _render(size: tuple[int, int], device: str = "cpu") -> torch.Tensor:
    width, height = size
    image = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(7))
    return image.to(device).requires_grad_()


@pytest.fixture(scope="module")
def tiny_vqgan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Run settings for a tiny real VQGAN (its decoder's render comes out in the autocast dtype)."""
    from vqgan_fixtures import write_tiny_vqgan

    config, checkpoint = write_tiny_vqgan(tmp_path_factory.mktemp("vqgan"))
    return {"drawer": "vqgan", "vqgan_config": str(config), "vqgan_checkpoint": str(checkpoint)}


@pytest.fixture(params=NAMES)
def name(request: pytest.FixtureRequest) -> str:
    return request.param


def _set_up(name: str, clip_spec: str, size: tuple[int, int], device: str = "cpu") -> tuple[Loss, SetupContext]:
    recipe = _recipe(name)
    context = _context(recipe, _perceptors(recipe, clip_spec, device), size, device)
    loss = _build(name, Path.cwd()).to(context.device)  # cwd: the test's tmp dir (conftest)
    loss.setup(context)
    return loss, context


def test_class_name_docstring_and_options(name: str, tmp_path: Path) -> None:
    cls = LOSSES.get(name)
    check_identity(cls, name, Loss)
    check_options(cls, name)
    assert isinstance(cls(**_recipe(name).minimal(tmp_path)), Loss)  # the defaults, but for required options


@pytest.mark.parametrize(("name", "options", "match"), [
    pytest.param(n, opts, match, id=f"{n}-{'-'.join(opts)}") for n, r in RECIPES.items() for opts, match in r.bad])
def test_bad_options_are_one_line_errors(name: str, options: dict, match: str, tmp_path: Path) -> None:
    if name not in LOSSES:
        pytest.skip(f"loss {name!r} is not installed")
    one_line_error(lambda: _build(name, tmp_path, options), match)


@pytest.mark.parametrize(("name", "options", "match"), [
    pytest.param(n, opts, match, id=f"{n}-{'-'.join(opts)}")
    for n, r in RECIPES.items() for opts, match in r.bad_setup])
def test_bad_setup_is_a_one_line_error(name: str, options: dict, match: str, clip_spec: str,
                                       tmp_path: Path) -> None:
    if name not in LOSSES:
        pytest.skip(f"loss {name!r} is not installed")
    recipe = RECIPES[name]
    loss = _build(name, tmp_path, options)
    context = _context(recipe, _perceptors(recipe, clip_spec, "cpu"), (48, 32))
    one_line_error(lambda: loss.setup(context), match)


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_forward_is_a_finite_scalar_with_a_finite_gradient(name: str, size: tuple[int, int], clip_spec: str) -> None:
    loss, context = _set_up(name, clip_spec, size)
    render = _render(size)
    before = render.detach().clone()
    torch.manual_seed(0)
    value = loss(_inputs(render, context))
    assert isinstance(value, torch.Tensor) and value.dim() == 0 and value.dtype == torch.float32
    assert torch.isfinite(value) and value.requires_grad
    value.backward()
    assert torch.equal(render.detach(), before), "a loss must not change the render"
    assert render.grad is not None and render.grad.shape == render.shape and torch.isfinite(render.grad).all()
    if _recipe(name).moves_image:
        assert render.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters()), "a loss's own models stay frozen"


def test_forward_is_deterministic_and_a_second_setup_starts_afresh(name: str, clip_spec: str) -> None:
    """Two calls give the same value, and so does the loss set up again (a new run in the same process) and
    a fresh instance."""
    loss, context = _set_up(name, clip_spec, (48, 32))
    torch.manual_seed(1)
    inputs = _inputs(_render((48, 32)), context)
    values = []
    for scorer in (loss, loss, _set_up(name, clip_spec, (48, 32))[0], loss):
        if len(values) == 3:
            loss.setup(context)
        torch.manual_seed(2)  # the engine seeds torch's RNG per step: a loss's own cutouts replay with it
        values.append(scorer(inputs).detach())
    assert all(torch.equal(values[0], value) for value in values[1:]), values


@pytest.mark.parametrize("precision", PRECISIONS)
def test_every_precision_runs_every_loss(name: str, precision: str, tiny_vqgan: dict, clip_spec: str,
                                         tmp_path: Path) -> None:
    """Two steps of a real run: under bf16/fp16 the render a VQGAN decodes reaches the loss in that dtype."""
    recipe = _recipe(name)
    run = Run(RunConfig.from_dict({
        "prompt": recipe.prompt, "clip": [clip_spec if recipe.clip == "tiny" else recipe.clip], "size": "32x32",
        "iterations": 2, "cutn": 2, "seed": 0, "device": "cpu", "save_every": 0, "precision": precision,
        "loss": [name], **tiny_vqgan, **recipe.minimal(tmp_path)}))
    steps = [run.step() for _ in range(2)]
    assert all(math.isfinite(step.terms[name]) and math.isfinite(step.loss) for step in steps)


@pytest.mark.parametrize("device", DEVICES)
def test_to_device_moves_every_tensor(name: str, device: str, clip_spec: str) -> None:
    loss = _build(name, Path.cwd())
    assert loss.to(device) is loss
    loss, context = _set_up(name, clip_spec, (32, 32), device)
    tensors = [*loss.parameters(), *loss.buffers()]
    assert all(t.device.type == device for t in tensors)
    torch.manual_seed(0)
    value = loss(_inputs(_render((32, 32), device), context))
    assert value.device.type == device and torch.isfinite(value)
