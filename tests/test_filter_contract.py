"""Every registered filter passes the same contract checks (kornia's CommonTests pattern).

A filter is set up with ``SetupContext(device, size=(W, H))``, then maps a (1, 3, H, W) render in [0, 1] to
(an image in [0, 1] of the shape its documentation gives, an unweighted scalar loss); ``output`` is the saved
image, without gradients.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from plugin_contract import check_identity, check_options, one_line_error

from pixgen.config import RunConfig
from pixgen.context import SetupContext
from pixgen.engine import Run
from pixgen.filters.base import Filter
from pixgen.options import resolve_options
from pixgen.registry import FILTERS

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: one thread is faster on a shared CPU

Shape = Callable[[int, int], tuple[int, int]]  # (H, W) of the render -> (H, W) of an image


def same(h: int, w: int) -> tuple[int, int]:
    return h, w


@dataclass(frozen=True)
class Case:
    """One way to build a filter, and the (H, W) of its forward image and of its saved image."""

    label: str = "defaults"  # the test id
    options: tuple[tuple[str, str], ...] = ()
    forward: Shape = same
    output: Shape = same


@dataclass(frozen=True)
class Recipe:
    """The cases of one filter, and the options its constructor or ``setup`` refuses."""

    cases: tuple[Case, ...] = (Case(),)
    bad: tuple[tuple[dict[str, str], str], ...] = ()
    bad_setup: tuple[tuple[dict[str, str], tuple[int, int], str], ...] = ()  # options, (W, H), message


# filter name -> recipe; a newly registered filter fails test_every_filter_has_a_contract_recipe until it has
# one (its other contract tests run meanwhile with the defaults: Recipe())
RECIPES = {
    "lookup": Recipe(cases=(Case(), Case("own-palette", (("palette", "[black, white, #f00]"), ("lookup_beta", "0")))),
                     bad=(({"lookup_beta": "-1"}, "lookup_beta must be >= 0"),
                          ({"palette": "[notacolour]"}, "unknown colour 'notacolour'"))),
    "tiler": Recipe(),
    "wallpaper": Recipe(
        cases=(Case(), Case("shift", (("wallpaper_type", "shift"),), forward=lambda h, w: (2 * h, w)),
               Case("vertical", (("wallpaper_type", "vertical"),)),
               Case("horizontal-edge-match", (("wallpaper_type", "horizontal"), ("wallpaper_edge_match", "4")),
                    forward=lambda h, w: (h, w - 4), output=lambda h, w: (h, w - 4))),  # 4 // 2 off each end
        bad=(({"wallpaper_type": "diagonal"}, "unknown wallpaper type 'diagonal'"),
             ({"wallpaper_edge_match": "-1"}, "wallpaper_edge_match must be >= 0"),
             ({"wallpaper_edge_match": "4"}, "wallpaper_edge_match works with")),
        bad_setup=(({"wallpaper_type": "vertical", "wallpaper_edge_match": "40"}, (48, 32), "too large"),)),
}
SIZES = [(32, 32), (48, 32), (24, 40)]  # (W, H): square, wide, tall
PRECISIONS = ["fp32", "bf16", "fp16"]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
NAMES = FILTERS.names()
CASES = [pytest.param(name, case, id=f"{name}-{case.label}")
         for name in NAMES for case in RECIPES.get(name, Recipe()).cases]


def test_every_filter_has_a_contract_recipe() -> None:
    assert set(NAMES) <= set(RECIPES), "add a contract recipe (RECIPES) for each new filter"


def _build(name: str, options: dict[str, Any], size: tuple[int, int] = (48, 32), device: str = "cpu") -> Filter:
    """The filter from ``options`` read as the CLI reads them, moved to ``device`` and set up for ``size``."""
    cls = FILTERS.get(name)
    filt = cls(**resolve_options(cls, f"filter {name!r}", (), options)).to(device)
    filt.setup(SetupContext(torch.device(device), size=size))
    return filt


def _render(size: tuple[int, int], device: str = "cpu") -> torch.Tensor:
    width, height = size
    return torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(5)).to(device)


def _check_image(image: torch.Tensor, shape: tuple[int, int]) -> None:
    assert isinstance(image, torch.Tensor) and image.shape == (1, 3, *shape) and image.dtype == torch.float32
    assert torch.isfinite(image).all() and image.min() >= 0 and image.max() <= 1


@pytest.mark.parametrize("name", NAMES)
def test_class_name_docstring_and_options(name: str) -> None:
    cls = FILTERS.get(name)
    check_identity(cls, name, Filter)
    check_options(cls, name)
    assert isinstance(cls(), Filter)


@pytest.mark.parametrize(("name", "options", "match"), [
    pytest.param(n, opts, match, id=f"{n}-{'-'.join(opts.values())}")
    for n, r in RECIPES.items() for opts, match in r.bad])
def test_bad_options_are_one_line_errors(name: str, options: dict, match: str) -> None:
    if name not in FILTERS:
        pytest.skip(f"filter {name!r} is not installed")
    cls = FILTERS.get(name)
    one_line_error(lambda: cls(**resolve_options(cls, name, (), options)), match)


@pytest.mark.parametrize(("name", "options", "size", "match"), [
    pytest.param(n, opts, size, match, id=f"{n}-{'-'.join(opts.values())}")
    for n, r in RECIPES.items() for opts, size, match in r.bad_setup])
def test_bad_setup_is_a_one_line_error(name: str, options: dict, size: tuple[int, int], match: str) -> None:
    if name not in FILTERS:
        pytest.skip(f"filter {name!r} is not installed")
    one_line_error(lambda: _build(name, options, size), match)


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
@pytest.mark.parametrize(("name", "case"), CASES)
def test_forward_gives_an_image_in_range_and_a_scalar_loss(name: str, case: Case, size: tuple[int, int]) -> None:
    filt = _build(name, dict(case.options), size)
    render = _render(size)
    before = render.clone()
    result = filt(render)
    assert isinstance(result, tuple) and len(result) == 2
    image, loss = result
    _check_image(image, case.forward(size[1], size[0]))
    assert isinstance(loss, torch.Tensor) and loss.dim() == 0 and loss.dtype == torch.float32
    assert torch.isfinite(loss)
    assert torch.equal(render, before), "a filter must not change its input"


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
@pytest.mark.parametrize(("name", "case"), CASES)
def test_output_is_the_saved_image_without_gradients(name: str, case: Case, size: tuple[int, int]) -> None:
    filt = _build(name, dict(case.options), size)
    parameters = _render(size).requires_grad_()
    with torch.no_grad():  # as the engine renders the saved image: the drawer's render, then every output()
        image = filt.output(parameters * 1.0)
    _check_image(image, case.output(size[1], size[0]))
    assert not image.requires_grad


@pytest.mark.parametrize(("name", "case"), CASES)
def test_gradient_reaches_the_render(name: str, case: Case) -> None:
    filt = _build(name, dict(case.options))
    render = _render((48, 32)).requires_grad_()
    torch.manual_seed(0)
    image, loss = filt(render)
    weights = torch.rand(image.shape, generator=torch.Generator().manual_seed(1))
    ((image * weights).sum() + loss).backward()
    assert render.grad is not None and torch.isfinite(render.grad).all() and render.grad.abs().sum() > 0
    assert all(p.grad is None for p in filt.parameters())


@pytest.mark.parametrize(("name", "case"), CASES)
def test_forward_is_deterministic(name: str, case: Case) -> None:
    """The same torch seed gives the same image and loss (the engine seeds torch's RNG per step)."""
    filt, render = _build(name, dict(case.options)), _render((48, 32))
    results = []
    for _ in range(2):
        torch.manual_seed(3)
        results.append(filt(render))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])


@pytest.fixture(scope="module")
def tiny_vqgan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Run settings for a tiny real VQGAN (its decoder's render comes out in the autocast dtype)."""
    from vqgan_fixtures import write_tiny_vqgan

    config, checkpoint = write_tiny_vqgan(tmp_path_factory.mktemp("vqgan"))
    return {"drawer": "vqgan", "vqgan_config": str(config), "vqgan_checkpoint": str(checkpoint)}


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize(("name", "case"), CASES)
def test_every_precision_runs_every_filter(name: str, case: Case, precision: str, tiny_vqgan: dict,
                                           quick: dict) -> None:
    """Two steps of a real run: filters see the render under autocast; the saved image stays fp32 in [0, 1]."""
    run = Run(RunConfig.from_dict({**quick, **tiny_vqgan, "size": "32x32", "iterations": 2, "cutn": 2,
                                   "save_every": 0, "precision": precision, "filters": [name], **dict(case.options)}))
    steps = [run.step() for _ in range(2)]
    assert all(math.isfinite(step.loss) for step in steps)
    image = run.render()
    assert image.dtype == torch.float32 and torch.isfinite(image).all() and 0 <= image.min() and image.max() <= 1


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("name", "case"), CASES)
def test_to_device_moves_every_tensor(name: str, case: Case, device: str) -> None:
    filt = _build(name, dict(case.options), (32, 32), device)
    assert filt.to(device) is filt
    assert all(t.device.type == device for t in [*filt.parameters(), *filt.buffers()])
    image, loss = filt(_render((32, 32), device))
    assert image.device.type == device and loss.device.type == device
