"""Issue 38: the images people actually have load as they look (``pixgen.io.load_image``, PIL's conversions),
and a file that is not an image is one short line."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image, features

from pixgen.cli import main
from pixgen.errors import PixgenError
from pixgen.io import load_image

RED = (1.0, 0.0, 0.0)


def _png16(path: Path, pixels: np.ndarray, colour_type: int) -> Path:
    """A 16-bit PNG written by hand (PIL writes 16 bits only for grey): colour type 2 RGB, 6 RGBA."""
    height, width = pixels.shape[:2]
    raw = b"".join(b"\0" + pixels[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))
    return path


def _png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _pixel(img: torch.Tensor, x: int = 0, y: int = 0) -> tuple[float, ...]:
    return tuple(round(float(v), 2) for v in img[0, :, y, x])


def test_grey_with_alpha_png(tmp_path: Path) -> None:
    path = tmp_path / "la.png"
    image = Image.new("LA", (4, 4), (64, 255))
    image.putpixel((1, 0), (0, 0))  # transparent: shows as white, not as its hidden grey
    image.save(path)
    img = load_image(path)
    assert img.shape == (1, 3, 4, 4)
    assert _pixel(img) == (0.25, 0.25, 0.25) and _pixel(img, 1) == (1.0, 1.0, 1.0)


@pytest.mark.parametrize("transparent", [False, True])
def test_palette_png(tmp_path: Path, transparent: bool) -> None:
    image = Image.new("P", (4, 4), 0)
    image.putpalette([255, 0, 0, 0, 0, 255])
    image.putpixel((1, 0), 1)
    path = tmp_path / "p.png"
    image.save(path, **({"transparency": 1} if transparent else {}))
    img = load_image(path)
    assert _pixel(img) == RED
    assert _pixel(img, 1) == ((1.0, 1.0, 1.0) if transparent else (0.0, 0.0, 1.0))


def test_sixteen_bit_pngs_are_scaled_not_clipped(tmp_path: Path) -> None:
    grey = tmp_path / "grey16.png"
    Image.fromarray(np.full((2, 2), 32768, np.uint16)).save(grey)
    assert Image.open(grey).mode.startswith("I")
    assert _pixel(load_image(grey)) == (0.5, 0.5, 0.5)
    rgb = _png16(tmp_path / "rgb16.png", np.tile(np.array([65535, 0, 32768], np.uint16), (2, 3, 1)), 2)
    assert _pixel(load_image(rgb)) == (1.0, 0.0, 0.5)
    rgba = _png16(tmp_path / "rgba16.png", np.tile(np.array([0, 65535, 0, 65535], np.uint16), (2, 3, 1)), 6)
    assert _pixel(load_image(rgba)) == (0.0, 1.0, 0.0)


def test_cmyk_jpeg_red_stays_red(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(path, quality=95)
    r, g, b = _pixel(load_image(path))
    assert r > 0.9 and g < 0.1 and b < 0.1, (r, g, b)  # imageio gave cyan: (0, 1, 1)


def test_exif_rotated_jpeg_is_upright(tmp_path: Path) -> None:
    stored = Image.new("RGB", (8, 4), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 2, 2))  # red top-left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    path = tmp_path / "rotated.jpg"
    stored.save(path, exif=exif, quality=95)
    img = load_image(path)
    assert img.shape == (1, 3, 8, 4)  # viewed 4 wide, 8 tall
    r, g, b = _pixel(img, 3, 0)  # after the turn, the red corner is top-right
    assert r > 0.9 and b < 0.1


@pytest.mark.skipif(not features.check("webp"), reason="this PIL has no WebP support")
def test_webp(tmp_path: Path) -> None:
    path = tmp_path / "red.webp"
    Image.new("RGB", (8, 8), (255, 0, 0)).save(path, lossless=True)
    assert _pixel(load_image(path)) == RED


def test_fit_crops_to_the_size(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    Image.new("RGB", (40, 10), (255, 0, 0)).save(path)
    assert load_image(path, (8, 8)).shape == (1, 3, 8, 8)


@pytest.mark.parametrize(("content", "message"), [
    (b"", "is an empty file; give a PNG, JPEG or WebP image"),
    (b"just some notes\n", "is not an image file PIL can read; give a PNG, JPEG or WebP image"),
    (_png_bytes()[:-40], "cannot be read"),  # cut short: a download that stopped
])
def test_not_an_image_is_one_short_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "picture.png"
    path.write_bytes(content)
    with pytest.raises(PixgenError) as error:
        load_image(path)
    assert message in str(error.value) and "\n" not in str(error.value) and "imageio" not in str(error.value)


def test_cli_init_images(quick: dict, tmp_path: Path, one_thread: None) -> None:
    args = ["run", "--prompt", quick["prompt"], "--clip", quick["clip"][0], "--size", "16x16", "--iterations", "1",
            "--cutn", "2", "--device", "cpu"]
    la = tmp_path / "la.png"
    Image.new("LA", (20, 20), (200, 128)).save(la)
    ok = CliRunner().invoke(main, [*args, "--init-image", str(la), "--out", str(tmp_path / "ok")])
    assert ok.exit_code == 0, ok.output
    empty = tmp_path / "empty.png"
    empty.touch()
    bad = CliRunner().invoke(main, [*args, "--init-image", str(empty), "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 1 and "Traceback" not in bad.output
    assert bad.stderr.strip() == f"Error: image {empty} is an empty file; give a PNG, JPEG or WebP image"
