from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixgen.errors import PixgenError
from pixgen.palette import PIXRAY_DEFAULT, nearest_colour, parse_palette


def rows(palette: torch.Tensor) -> list[tuple[float, ...]]:
    return [tuple(round(v, 4) for v in row) for row in palette.tolist()]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[black, #f00, #00ff00, white]", [(0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 1)]),
        ("[(0+128+255), [1+1+0], rgb(0,0,255), mat:red, pixel_green]",
         [(0, 0.502, 1), (1, 1, 0), (0, 0, 1), (1, 0, 0), (0.44, 1, 0.53)]),
        (r"red->white\3", [(1, 0, 0), (1, 0.5, 0.5), (1, 1, 1)]),
        (r"black->red->white\5", [(0, 0, 0), (0.5, 0, 0), (1, 0, 0), (1, 0.5, 0.5), (1, 1, 1)]),
        (r"blue\2", [(0, 0, 0), (0, 0, 1)]),  # one colour: a ramp from black, as pixray
        (r"[red, blue]\3", [(1, 0, 0), (0.5, 0, 0.5), (0, 0, 1)]),
        (r"red\2; [black, white]", [(0, 0, 0), (1, 0, 0), (1, 1, 1)]),  # sections joined, duplicates dropped
        (r"[1+0+0]->white\2", [(1, 0, 0), (1, 1, 1)]),
    ],
)
def test_grammar(text: str, expected: list[tuple[float, ...]]) -> None:
    palette = parse_palette(text)
    assert palette.dtype == torch.float32 and palette.shape == (len(expected), 3)
    assert torch.allclose(palette, torch.tensor(expected, dtype=torch.float32), atol=1e-3)


def test_ramps_default_to_16_steps_and_pixray_default_has_15_colours() -> None:
    assert parse_palette("red->white").shape == (16, 3)
    assert parse_palette("teal").shape == (16, 3)
    default = parse_palette(PIXRAY_DEFAULT)
    assert default.shape == (15, 3) and 0 <= default.min() and default.max() <= 1


@pytest.mark.parametrize(
    ("text", "bad_part"),
    [
        ("", "is empty"),
        ("blu", "unknown colour 'blu'"),
        ("red->blu->white", "unknown colour 'blu'"),
        ("red->", "empty colour"),
        ("[red,,blue]", "empty item"),
        (r"red\x", "steps 'x'"),
        (r"red->white\1", "steps '1'"),
        (r"red\99999", "steps '99999'"),
        ("red;;blue", "empty section"),
        ("(300+0+0)", "out of range"),
        ("[2+0+0]", "out of range"),
        ("@", "followed by a file name"),
        ("@no/such/file.png", "does not exist"),
        ("https://example.com/palette.png", "download the file and give it as @FILE"),
        ("red; #ggg", "section '#ggg'"),
    ],
)
def test_bad_palettes_name_the_part_and_show_an_example(text: str, bad_part: str) -> None:
    with pytest.raises(PixgenError) as info:
        parse_palette(text)
    message = str(info.value)
    assert bad_part in message and "--palette" in message and "red->white\\16" in message, message
    assert "\n" not in message


def test_colours_of_an_image_file(tmp_path: Path) -> None:
    pixels = np.zeros((4, 4, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    pixels[:2, :, :3] = (255, 0, 0)
    pixels[2:, :, :3] = (0, 0, 255)
    pixels[0, 0] = (0, 255, 0, 0)  # fully transparent: not a colour of the picture
    Image.fromarray(pixels, "RGBA").save(tmp_path / "two.png")
    assert sorted(rows(parse_palette(f"@{tmp_path / 'two.png'}"))) == [(0, 0, 1), (1, 0, 0)]
    assert rows(parse_palette(f"[black];@{tmp_path / 'two.png'}"))[0] == (0, 0, 0)


def test_image_colours_are_capped(tmp_path: Path) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "noise.png")
    assert len(parse_palette(f"@{tmp_path / 'noise.png'}")) <= 256
    small = parse_palette(f"@{tmp_path / 'noise.png'}\\8")
    assert 1 <= len(small) <= 8 and 0 <= small.min() and small.max() <= 1


def test_adobe_colour_table(tmp_path: Path) -> None:
    table = np.zeros((256, 3), dtype=np.uint8)
    table[:3] = [(255, 0, 0), (0, 255, 0), (1, 2, 3)]
    (tmp_path / "c.act").write_bytes(table.tobytes() + (3).to_bytes(2, "big") + (2).to_bytes(2, "big"))
    assert rows(parse_palette(f"@{tmp_path / 'c.act'}")) == [(1, 0, 0), (0, 1, 0)]  # index 2 is transparent
    (tmp_path / "bad.act").write_bytes(b"\x00" * 10)
    with pytest.raises(PixgenError, match="not an Adobe colour table"):
        parse_palette(f"@{tmp_path / 'bad.act'}")


def test_nearest_colour_matches_brute_force() -> None:
    palette = parse_palette("[black,white,red,#0f0,blue]")
    pixels = torch.rand(1000, 3, generator=torch.Generator().manual_seed(0))
    brute = ((pixels[:, None] - palette[None]) ** 2).sum(-1).argmin(1)
    assert torch.equal(nearest_colour(pixels, palette, chunk=77), brute)
