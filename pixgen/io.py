"""Image files: load an init image, save PNGs atomically with text metadata, pick output folders."""

from __future__ import annotations

import datetime as _dt
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, PngImagePlugin

from pixgen.errors import PixgenError


def load_image(path: str | Path, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Read an image as (1, 3, H, W) in [0, 1]; with ``size`` = (w, h), scale to cover it and centre-crop."""
    import imageio.v3 as iio

    try:
        array = np.asarray(iio.imread(path))
    except FileNotFoundError as exc:
        raise PixgenError(f"image {path} does not exist; check the path") from exc
    except Exception as exc:  # noqa: BLE001 - imageio raises many types for unreadable files
        raise PixgenError(f"cannot read image {path} ({exc}); give a PNG or JPEG file") from exc
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    if array.ndim != 3:
        raise PixgenError(f"image {path} has shape {array.shape}; give a single still RGB image")
    scale = 65535.0 if array.dtype == np.uint16 else 255.0
    img = torch.from_numpy(array[..., :3].astype(np.float32) / scale).permute(2, 0, 1)[None]
    return img if size is None else fit(img, size)


def fit(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Scale (1, 3, h, w) to cover ``size`` = (width, height), then centre-crop to it."""
    width, height = size
    h, w = img.shape[-2:]
    scale = max(width / w, height / h)
    new = (max(height, round(h * scale)), max(width, round(w * scale)))
    img = F.interpolate(img, size=new, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
    top, left = (new[0] - height) // 2, (new[1] - width) // 2
    return img[..., top:top + height, left:left + width]


def to_pil(img: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) or (3, H, W) in [0, 1] -> an RGB PIL image."""
    img = img.detach().float().cpu().clamp(0, 1)
    img = img[0] if img.dim() == 4 else img
    return Image.fromarray((img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))


def save_png(image: Image.Image, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write a PNG with tEXt metadata by atomic replace, so readers never see a half-written file."""
    info = PngImagePlugin.PngInfo()
    for key, value in (metadata or {}).items():
        info.add_text(key, str(value))
    path = Path(path)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False) as tmp:
        image.save(tmp, format="PNG", pnginfo=info)
    os.replace(tmp.name, path)
    return path


def write_text(path: str | Path, text: str | bytes) -> Path:
    """Write a text (or bytes) file by atomic replace."""
    path = Path(path)
    data = text.encode("utf-8") if isinstance(text, str) else text
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False) as tmp:
        tmp.write(data)
    os.replace(tmp.name, path)
    return path


def read_png_metadata(path: str | Path) -> dict[str, str]:
    """The tEXt metadata of a PNG written by ``save_png``."""
    with Image.open(path) as image:
        return dict(image.text)


def make_out_dir(out: str | Path | None, root: str | Path = "outputs") -> Path:
    """Create and return the output folder: ``out`` as given, or the first free ``outputs/YYYYMMDD_NN``."""
    if out is not None:
        path = Path(out)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PixgenError(f"cannot create output folder {path} ({exc}); choose another --out") from exc
        return path
    stamp = _dt.date.today().strftime("%Y%m%d")
    Path(root).mkdir(parents=True, exist_ok=True)
    for seq in range(1, 10000):
        path = Path(root) / f"{stamp}_{seq:02d}"
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise PixgenError(f"no free output folder name under {root}; pass --out DIR")
