"""Image files: read the images people have, save PNGs and text atomically, check text that goes into files.

``open_image`` is the one place an image file is read (init images, palette images); ``save_png`` and
``write_text`` replace a file only once its new bytes are complete, never leave a temporary file behind, and
create files with the user's umask.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from pixgen.errors import PixgenError

_SIXTEEN_BIT_GREY = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def load_image(path: str | Path, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Read an image as (1, 3, H, W) in [0, 1], upright, transparent parts on white; with ``size`` = (w, h),
    scale to cover it and centre-crop."""
    image = open_image(path)
    if image.mode == "RGBA":
        image = Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image)
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    img = torch.from_numpy(array).permute(2, 0, 1)[None]
    return img if size is None else fit(img, size)


def open_image(path: str | Path, what: str = "image") -> Image.Image:
    """An image file as an RGB or RGBA PIL image: EXIF rotation applied, CMYK, palette, grey and 16-bit
    images converted by PIL; one clear line for a missing, empty, damaged or non-image file."""
    path = Path(path)
    try:
        with Image.open(path) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)
    except FileNotFoundError:
        raise PixgenError(f"{what} {path} does not exist; check the path") from None
    except IsADirectoryError:
        raise PixgenError(f"{what} {path} is a folder; give an image file") from None
    except UnidentifiedImageError:
        kind = "an empty file" if path.stat().st_size == 0 else "not an image file PIL can read"
        raise PixgenError(f"{what} {path} is {kind}; give a PNG, JPEG or WebP image") from None
    except Image.DecompressionBombError:
        raise PixgenError(f"{what} {path} is too large to read safely; give a smaller image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise PixgenError(f"{what} {path} cannot be read ({exc}); give an intact PNG, JPEG or WebP image") from None
    return _rgb_or_rgba(image)


def _rgb_or_rgba(image: Image.Image) -> Image.Image:
    """PIL's conversions to RGB, or RGBA where the image has transparency (16-bit grey scaled, not clipped)."""
    if image.mode in _SIXTEEN_BIT_GREY:
        image = image.convert("I").point(lambda v: v * (1 / 257)).convert("L")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    return image.convert("RGBA" if has_alpha else "RGB")


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
    return atomic_write(path, lambda file: image.save(file, format="PNG", pnginfo=info))


def write_text(path: str | Path, text: str | bytes) -> Path:
    """Write a text (or bytes) file by atomic replace."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return atomic_write(path, lambda file: file.write(data))


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write`` on a new hidden temporary file beside ``path``, flush it to disk, then rename it over
    ``path``. On any failure (a full disk, Ctrl-C) the temporary file is removed and ``path`` is untouched.
    The file is created with mode 0666 less the umask, as ``open()`` would."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def read_png_metadata(path: str | Path) -> dict[str, str]:
    """The tEXt metadata of a PNG written by ``save_png``."""
    with Image.open(path) as image:
        return dict(image.text)


def require_utf8(values: Mapping[str, Any]) -> None:
    """Reject text that is not valid UTF-8 (bytes a command line could not decode arrive as surrogate
    escapes): it could not be written into ``settings.yaml`` or the PNG, so say so before any work."""
    for key, value in values.items():
        for text in _strings(value):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                shown = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
                raise PixgenError(f"{key} '{shown}' is not valid UTF-8 (the bytes shown as \\x..); give UTF-8 text "
                                  "(rename such a file, or set a UTF-8 locale)") from None


def _strings(value: Any) -> list[str]:
    """The strings in a setting's value (itself, or inside a list, tuple or dict)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, dict):
        return [s for item in (*value.keys(), *value.values()) for s in _strings(item)]
    return []


def os_cause(exc: OSError) -> str:
    """The short cause of an OS error, e.g. ``No space left on device`` or ``Read-only file system``."""
    return exc.strerror or str(exc) or type(exc).__name__
