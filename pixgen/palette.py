"""Palette strings (pixray's grammar, ``util.py``) -> a (K, 3) float tensor of colours in [0, 1].

Sections are joined with ``;`` and their colours concatenated (duplicates dropped, order kept):

- ``red->white``, ``black->red->white\\8``: a ramp through the colours in N steps (16 if ``\\N`` is not given);
  one colour alone is a ramp from black (``red`` = ``black->red\\16``, as pixray);
- ``[black, #f00, (0+128+255), [1+1+0]]``, optionally ``\\N``: exactly these colours (or a ramp through them);
- ``@file.png`` (any image PIL reads), optionally ``\\N``: the image's colours, reduced to at most N (256 if
  not given) by median cut; ``@file.act``: an Adobe colour table.

A colour is a CSS name (``red``, ``teal``: PIL's table, since pixray's xkcd names would need matplotlib;
``mat:NAME`` is read as NAME), ``#rgb``/``#rrggbb``, ``rgb(...)``/``hsl(...)``, ``(R+G+B)`` in 0-255,
``[r+g+b]`` in 0-1, or one of pixray's ``pixel_green|orange|blue|red|grayscale``.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import MappingProxyType

import numpy as np
import torch

from pixgen.errors import PixgenError

EXAMPLE = r'write e.g. --palette "[black,#f00,white]", "red->white\16" or "@colours.png"'
DEFAULT_STEPS = 16
FILE_COLOURS = 256
MAX_COLOURS = 4096
PIXEL_COLOURS = MappingProxyType({"pixel_green": (0.44, 1.00, 0.53), "pixel_orange": (1.00, 0.80, 0.20),
                                  "pixel_blue": (0.44, 0.53, 1.00), "pixel_red": (1.00, 0.53, 0.44),
                                  "pixel_grayscale": (1.00, 1.00, 1.00)})
# pixray's built-in lookup table (filters/colorlookup.py), used when no palette is given
PIXRAY_DEFAULT = ("[#000000,#ffffff,#3f2832,#262b44,#5a6988,#8b9bb4,#193c3e,#265c42,#3e8948,#63c74d,#fee761,"
                  "#feae34,#f77622,#b86f50,#743f39]")
_NUMBER = r"\s*(\d+(?:\.\d*)?|\.\d+)\s*"
_TRIPLE = re.compile(rf"([(\[]){_NUMBER}\+{_NUMBER}\+{_NUMBER}[)\]]")
_STEPS = re.compile(r"(.*?)\\\s*(\S*)\s*")


def parse_palette(text: str) -> torch.Tensor:
    """Parse a palette string into a (K, 3) float32 tensor in [0, 1]; bad input raises ``PixgenError``."""
    if not isinstance(text, str) or not text.strip():
        raise PixgenError(f"palette '{text}' is empty; {EXAMPLE}")
    colours: list[tuple[float, float, float]] = []
    sections = [section.strip() for section in text.split(";")]
    for section in sections:
        try:
            colours += _section(section)
        except PixgenError as exc:
            where = f" (in section '{section}')" if len(sections) > 1 and section else ""
            raise PixgenError(f"palette '{text}': {exc}{where}; {EXAMPLE}") from None
    unique = list(dict.fromkeys(colours))
    if len(unique) > MAX_COLOURS:
        raise PixgenError(f"palette '{text}' has {len(unique)} colours, more than {MAX_COLOURS}; ask for fewer steps")
    return torch.tensor(unique, dtype=torch.float32)


def nearest_colour(pixels: torch.Tensor, palette: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
    """Index of the nearest palette colour (Euclidean RGB) of every row of ``pixels`` (M, 3); no gradient."""
    with torch.no_grad():
        palette = palette.to(pixels)
        parts = [torch.cdist(rows, palette, compute_mode="donot_use_mm_for_euclid_dist").argmin(dim=1)
                 for rows in pixels.detach().split(chunk)]
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long, device=pixels.device)



def pick_colours(logits: torch.Tensor, palette: torch.Tensor, share: float = 1.0) -> torch.Tensor:
    """Colours (..., 3) chosen from ``palette`` (K, 3) by ``logits`` (..., K): exactly the argmax colour
    forward (``share`` 1; less: only that share of the way from the softmax mixture to it), the mixture's
    gradient backward (straight-through), so a choice can move to another colour."""
    soft = torch.softmax(logits, dim=-1)
    hard = torch.nn.functional.one_hot(soft.argmax(dim=-1), palette.shape[0]).to(soft)
    return (soft + share * (hard - soft).detach()) @ palette.to(soft)


def choice_logits(colours: torch.Tensor, palette: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Logits (N, K) that ``pick_colours`` turns into the palette colour nearest each of ``colours`` (N, 3),
    ahead of the others by ``margin``."""
    index = nearest_colour(colours, palette)
    return margin * torch.nn.functional.one_hot(index, palette.shape[0]).to(torch.float32)


def _section(section: str) -> list[tuple[float, float, float]]:
    if not section:
        raise PixgenError("empty section (two ';' in a row, or a ';' at an end)")
    if section.startswith(("http://", "https://")):
        raise PixgenError(f"'{section}' is a URL; pixgen does not download palettes: download the file and give "
                          "it as @FILE")
    body, steps = _split_steps(section)
    if body.startswith("@"):
        return _from_file(body[1:].strip(), steps)
    if body.startswith("[") and body.endswith("]") and not _TRIPLE.fullmatch(body):
        colours = [colour(item) for item in _split_list(body[1:-1], section)]
        return colours if steps is None else ramp(colours, _check_steps(steps, 2, section))
    names = [part.strip() for part in body.split("->")]
    colours = [colour(name) for name in names]
    if len(colours) == 1:
        colours = [(0.0, 0.0, 0.0), *colours]
    return ramp(colours, DEFAULT_STEPS if steps is None else _check_steps(steps, 2, section))


def colour(text: str) -> tuple[float, float, float]:
    """One colour (name, hex, ``(R+G+B)``, ``[r+g+b]``, ``pixel_*``) as an RGB triple in [0, 1]."""
    from PIL import ImageColor

    text = text.strip()
    if not text:
        raise PixgenError("an empty colour name")
    triple = _TRIPLE.fullmatch(text)
    if triple:
        scale = 255.0 if triple.group(1) == "(" else 1.0
        rgb = tuple(float(v) / scale for v in triple.groups()[1:])
        if max(rgb) > 1.0:
            raise PixgenError(f"colour '{text}' is out of range: (R+G+B) takes 0-255, [r+g+b] takes 0-1")
        return rgb
    if text.lower() in PIXEL_COLOURS:
        return PIXEL_COLOURS[text.lower()]
    name = text[4:] if text.startswith("mat:") else text
    try:
        rgb = ImageColor.getrgb(name)
    except ValueError:
        raise PixgenError(f"unknown colour '{text}' (give a CSS name such as 'teal', #rgb or #rrggbb)") from None
    return tuple(v / 255.0 for v in rgb[:3])


def ramp(colours: list[tuple[float, ...]], steps: int) -> list[tuple[float, float, float]]:
    """``steps`` colours evenly spaced along the piecewise-linear path through ``colours`` (pixray's
    ``expand_colors``)."""
    stops = np.asarray(colours, dtype=np.float64)  # (C, 3)
    if len(stops) == 1:
        return [tuple(float(v) for v in stops[0])] * steps
    where = np.linspace(0, len(stops) - 1, steps)
    low = np.minimum(where.astype(int), len(stops) - 2)
    frac = where - low
    frac = np.where(np.isclose(frac, np.round(frac), rtol=0, atol=1e-9), np.round(frac), frac)[:, None]
    mixed = stops[low] * (1 - frac) + stops[low + 1] * frac  # (steps, 3)
    return [tuple(float(v) for v in row) for row in mixed]


def _split_steps(section: str) -> tuple[str, str | None]:
    match = _STEPS.fullmatch(section)
    return (match.group(1).strip(), match.group(2)) if match else (section, None)


def _check_steps(steps: str, low: int, section: str) -> int:
    if not re.fullmatch(r"\d+", steps) or not low <= int(steps) <= MAX_COLOURS:
        raise PixgenError(f"steps '{steps}' in '{section}' must be a whole number from {low} to {MAX_COLOURS}")
    return int(steps)


def _split_list(inner: str, section: str) -> list[str]:
    """Split at the commas that are not inside brackets (so ``rgb(1,2,3)`` stays one item)."""
    items, depth, start = [], 0, 0
    for i, char in enumerate(inner):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and depth == 0:
            items.append(inner[start:i])
            start = i + 1
    items.append(inner[start:])
    if any(not item.strip() for item in items):
        raise PixgenError(f"list '{section}' has an empty item")
    return items


def _from_file(path: str, steps: str | None) -> list[tuple[float, float, float]]:
    if not path:
        raise PixgenError("'@' must be followed by a file name, e.g. @colours.png")
    limit = FILE_COLOURS if steps is None else _check_steps(steps, 1, f"@{path}")
    file = Path(path).expanduser()
    if not file.is_file():
        raise PixgenError(f"palette file {file} does not exist; check the path after '@'")
    if file.suffix.lower() == ".act":
        pixels = _read_act(file)
    else:
        pixels = _read_image(file)
    unique, first = np.unique(pixels, axis=0, return_index=True)
    unique = unique[np.argsort(first)]  # in the order the file has them
    if len(unique) > limit:
        unique = _median_cut(pixels, limit)
    return [tuple(float(v) / 255.0 for v in row) for row in unique]


def _read_image(file: Path) -> np.ndarray:
    """Opaque pixels of an image as (M, 3) uint8 rows (read by ``pixgen.io.open_image``, as every image is)."""
    from pixgen.io import open_image

    array = np.asarray(open_image(file, "palette image"))
    rows = array.reshape(-1, array.shape[-1])
    rows = rows[rows[:, 3] > 0, :3] if rows.shape[1] == 4 else rows
    if not len(rows):
        raise PixgenError(f"palette image {file} is fully transparent: it has no colours")
    return rows


def _read_act(file: Path) -> np.ndarray:
    """An Adobe colour table: 256 RGB triples, optionally followed by the colour count and transparent index."""
    data = file.read_bytes()
    if len(data) not in (768, 772):
        raise PixgenError(f"{file} is not an Adobe colour table (.act files are 768 or 772 bytes, got {len(data)})")
    table = np.frombuffer(data[:768], dtype=np.uint8).reshape(256, 3)
    count, transparent = (int.from_bytes(data[768:770], "big"), int.from_bytes(data[770:772], "big")) \
        if len(data) == 772 else (256, 0xFFFF)
    keep = [i for i in range(min(count or 256, 256)) if i != transparent]
    return table[keep]


def _median_cut(pixels: np.ndarray, limit: int) -> np.ndarray:
    """At most ``limit`` representative colours of (M, 3) uint8 pixels (PIL's median cut)."""
    from PIL import Image

    image = Image.fromarray(pixels.reshape(1, -1, 3), "RGB")
    reduced = image.quantize(colors=limit, method=Image.Quantize.MEDIANCUT).convert("RGB")
    return np.unique(np.asarray(reduced).reshape(-1, 3), axis=0)
