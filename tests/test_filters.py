from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import pixgen
from pixgen.cli import main
from pixgen.config import load_yaml
from pixgen.drawers.pixel import PixelDrawer
from pixgen.errors import PixgenError
from pixgen.palette import parse_palette
from pixgen.registry import FILTERS

PALETTE = "[black, white, #f00, #00f]"


def picture(height: int = 6, width: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(seed))


def colours_of(image: torch.Tensor) -> set[tuple[float, ...]]:
    return {tuple(v) for v in image[0].permute(1, 2, 0).reshape(-1, 3).tolist()}


def roll_of(out: torch.Tensor, image: torch.Tensor) -> tuple[int, int] | None:
    """The (dy, dx) with ``torch.roll(image, (dy, dx)) == out``, if there is one."""
    for dy in range(image.shape[-2]):
        for dx in range(image.shape[-1]):
            if torch.equal(torch.roll(image, (dy, dx), dims=(-2, -1)), out):
                return dy, dx
    return None


def test_lookup_outputs_only_palette_colours_and_a_commitment_loss() -> None:
    lookup = FILTERS.get("lookup")(palette=PALETTE)
    palette = {tuple(c) for c in parse_palette(PALETTE).tolist()}
    image = picture()
    out, loss = lookup(image)
    assert out.shape == image.shape and colours_of(out) <= palette
    assert colours_of(lookup.output(image)) <= palette and torch.equal(lookup.output(image), out)
    assert loss.item() == pytest.approx(10 * torch.mean((image - out) ** 2).item())  # lookup_beta 10
    on_palette, zero = lookup(out)
    assert torch.equal(on_palette, out) and zero.item() == 0.0


def test_lookup_is_straight_through_to_the_drawer_parameters() -> None:
    drawer = PixelDrawer(8, 6, pixel_size=2)
    with torch.no_grad():
        drawer.colors.uniform_(0.2, 0.8, generator=torch.Generator().manual_seed(0))
    weights = torch.rand(1, 3, 6, 8, generator=torch.Generator().manual_seed(1))
    out, _ = FILTERS.get("lookup")(palette=PALETTE, lookup_beta=0)(drawer.render())
    (out * weights).sum().backward()
    through_filter = drawer.colors.grad.clone()
    drawer.colors.grad = None
    (drawer.render() * weights).sum().backward()
    assert through_filter.abs().sum() > 0 and torch.allclose(through_filter, drawer.colors.grad)


def test_commitment_loss_pulls_the_render_onto_the_palette() -> None:
    lookup = FILTERS.get("lookup")(palette=PALETTE, lookup_beta=2.5)
    image = torch.full((1, 3, 4, 4), 0.3, requires_grad=True)  # nearest palette colour: black
    _, loss = lookup(image)
    loss.backward()
    assert loss.item() == pytest.approx(2.5 * 0.09) and (image.grad > 0).all()


def test_lookup_default_palette_and_bad_options() -> None:
    assert len(FILTERS.get("lookup")().palette) == 15  # pixray's built-in table
    with pytest.raises(PixgenError, match="lookup_beta must be >= 0"):
        FILTERS.get("lookup")(lookup_beta=-1)
    with pytest.raises(PixgenError, match="unknown colour 'blu'"):
        FILTERS.get("lookup")(palette="[red,blu]")


def test_tiler_rolls_randomly_and_saves_the_tile() -> None:
    tiler, image = FILTERS.get("tiler")(), picture()
    torch.manual_seed(0)
    outs = [tiler(image) for _ in range(6)]
    shifts = [roll_of(out, image) for out, _ in outs]
    assert None not in shifts and len(set(shifts)) > 1
    assert all(loss.item() == 0 for _, loss in outs) and torch.equal(tiler.output(image), image)


@pytest.mark.parametrize(("kind", "axis"), [("both", None), ("horizontal", 1), ("vertical", 0)])
def test_wallpaper_rolls_along_its_axes(kind: str, axis: int | None) -> None:
    wallpaper, image = FILTERS.get("wallpaper")(wallpaper_type=kind), picture()
    torch.manual_seed(1)
    shifts = [roll_of(wallpaper(image)[0], image) for _ in range(8)]
    assert None not in shifts
    if axis is not None:  # the other axis is never moved
        assert all(shift[1 - axis] == 0 for shift in shifts) and len({s[axis] for s in shifts}) > 1
    assert torch.equal(wallpaper.output(image), image)


def test_wallpaper_shift_is_a_brick_pattern() -> None:
    wallpaper, image = FILTERS.get("wallpaper")(wallpaper_type="shift"), picture(height=5, width=8)
    torch.manual_seed(2)
    out, loss = wallpaper(image)
    assert out.shape == (1, 3, 10, 8) and loss.item() == 0
    # one tile down is the same as half a tile across: rows of tiles offset by half a tile
    assert torch.equal(torch.roll(out, 5, dims=-2), torch.roll(out, 4, dims=-1))
    bricks = torch.cat([image, torch.roll(image, 4, dims=-1)], dim=-2)
    assert roll_of(out, bricks) is not None


def test_wallpaper_edge_match_loss_and_crop() -> None:
    wallpaper = FILTERS.get("wallpaper")(wallpaper_type="horizontal", wallpaper_edge_match=2)
    wallpaper.setup(SimpleNamespace(size=(8, 6)))
    image = picture()
    seamless = image.clone()
    seamless[..., -2:] = seamless[..., :2]
    assert wallpaper(seamless)[1].item() == 0 and wallpaper(image)[1].item() > 0
    assert wallpaper(image)[0].shape == (1, 3, 6, 6) and torch.equal(wallpaper.output(image), image[..., 1:7])
    too_wide = FILTERS.get("wallpaper")(wallpaper_type="horizontal", wallpaper_edge_match=4)
    with pytest.raises(PixgenError, match="too large for a 3x6 image"):
        too_wide.setup(SimpleNamespace(size=(3, 6)))


@pytest.mark.parametrize(
    ("options", "match"),
    [({"wallpaper_type": "diagonal"}, "unknown wallpaper type 'diagonal'; choose one of: both, shift"),
     ({"wallpaper_type": "shift", "wallpaper_edge_match": 2}, "horizontal or vertical"),
     ({"wallpaper_edge_match": -1}, ">= 0")],
)
def test_wallpaper_bad_options(options: dict, match: str) -> None:
    with pytest.raises(PixgenError, match=match):
        FILTERS.get("wallpaper")(**options)


def test_run_with_lookup_saves_only_palette_colours(quick: dict, tmp_path: Path) -> None:
    result = pixgen.run(**quick, filters=["lookup"], palette=PALETTE, lookup_beta=5, out=str(tmp_path / "o"),
                        progress=False)
    palette = {tuple(round(v * 255) for v in c) for c in parse_palette(PALETTE).tolist()}
    saved = np.asarray(Image.open(result.path).convert("RGB")).reshape(-1, 3)
    assert {tuple(int(v) for v in c) for c in saved} <= palette
    assert np.array_equal(np.asarray(result.image), np.asarray(Image.open(result.path).convert("RGB")))
    settings = load_yaml(tmp_path / "o" / "settings.yaml")
    assert settings["filters"] == ["lookup"] and settings["palette"] == PALETTE and settings["lookup_beta"] == 5
    again = pixgen.run(config=settings, out=str(tmp_path / "again"), progress=False)
    assert np.array_equal(np.asarray(again.image), np.asarray(result.image))


def test_run_filters_and_palette_loss_share_the_palette(quick: dict) -> None:
    from pixgen.engine import Run

    run = Run({**quick, "filters": "wallpaper:shift,lookup@0.5", "loss": ["palette@2"], "palette": "[red,blue]"})
    assert list(run.filters) == ["wallpaper", "lookup"] and run.filters["lookup"][1] == 0.5
    assert torch.equal(run.filters["lookup"][0].palette, run.losses["palette"][0].palette)
    terms = run.loss_terms()
    assert set(terms) == {"filter:wallpaper", "filter:lookup", "clip", "palette"}
    assert run.step().loss > 0 and run.render().shape == (1, 3, 32, 48)  # saved: the tile, not the bricks


def test_cli_filters_palette_and_lookup_beta(quick: dict, tmp_path: Path) -> None:
    args = ["run", "--prompt", "a red circle", "--clip", quick["clip"][0], "--size", "24x16", "--iterations", "2",
            "--cutn", "2", "--seed", "3", "--device", "cpu", "--out", str(tmp_path / "o"), "--filters", "lookup",
            "--palette", r"black->red\4", "--lookup-beta", "2"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    saved = np.asarray(Image.open(tmp_path / "o" / "output.png")).reshape(-1, 3)
    assert {tuple(int(v) for v in c) for c in saved} <= {(0, 0, 0), (85, 0, 0), (170, 0, 0), (255, 0, 0)}


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--filters", "blur"], "unknown filter 'blur'; choose one of: lookup, tiler, wallpaper"),
     (["--filters", "lookup", "--palette", "red->blu"], "unknown colour 'blu'"),
     (["--filters", "lookup,lookup"], "given twice"),
     (["--palette", "[red]"], "palette is an option of drawer 'vector', filter 'lookup', loss 'palette'"),
     (["--filters", "wallpaper:diagonal"], "unknown wallpaper type 'diagonal'")],
)
def test_cli_bad_filter_input_is_one_clear_line(quick: dict, tmp_path: Path, extra: list[str], message: str) -> None:
    args = ["run", "--prompt", "x", "--clip", quick["clip"][0], "--size", "24x16", "--device", "cpu",
            "--out", str(tmp_path / "never"), *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0 and message in result.output, result.output
    assert "Traceback" not in result.output and result.output.strip().count("\n") == 0, result.output
    assert not (tmp_path / "never").exists()
