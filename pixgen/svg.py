"""SVG export of ``pixgen.raster.Paths``: the same geometry and colours the rasterizer draws.

Colours are written as ``rgb(r,g,b)`` bytes plus a separate ``*-opacity``, strokes with round caps and joins,
fills with the nonzero rule, so an SVG renderer (resvg, cairosvg, a browser) reproduces our raster.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

import torch

from pixgen.raster import Paths


def paths_to_svg(paths: Paths, width: int, height: int, background: torch.Tensor | None = None,
                 *, precision: int = 3) -> str:
    """An SVG document of ``paths`` on a ``width`` x ``height`` canvas over a (3,) ``background`` colour."""
    ctrl = paths.ctrl.detach().cpu().double()  # (M, 4, 2)
    seg_path = paths.seg_path.detach().cpu().tolist()
    widths = paths.stroke_width.detach().cpu().tolist()
    strokes = paths.stroke_rgba.detach().cpu()
    fills = None if paths.fill_rgba is None else paths.fill_rgba.detach().cpu()
    lines = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}">']
    if background is not None:
        lines.append(f'<rect x="0" y="0" width="{width}" height="{height}" fill="{_rgb(background)}"/>')
    first = 0
    for path in range(paths.n_paths):
        last = first
        while last < len(seg_path) and seg_path[last] == path:
            last += 1
        data = _path_data(ctrl[first:last], closed=fills is not None, precision=precision)
        fill = 'fill="none"' if fills is None else _paint("fill", fills[path])
        stroke = _paint("stroke", strokes[path]) if widths[path] > 0 else 'stroke="none"'
        lines.append(f'<path d={quoteattr(data)} {fill} {stroke} stroke-width="{widths[path]:.{precision}f}" '
                     'stroke-linecap="round" stroke-linejoin="round"/>')
        first = last
    lines.append("</svg>")
    return "\n".join(lines) + "\n"


def _path_data(ctrl: torch.Tensor, *, closed: bool, precision: int) -> str:
    """``M x y C ...`` for consecutive cubic segments ``ctrl`` (S, 4, 2); a gap starts a new subpath."""
    def pt(p: torch.Tensor) -> str:
        return f"{p[0]:.{precision}f} {p[1]:.{precision}f}"

    parts: list[str] = []
    for i, seg in enumerate(ctrl):
        if i == 0 or not torch.allclose(seg[0], ctrl[i - 1, 3], atol=10.0 ** -precision):
            parts.append(f"M {pt(seg[0])}")
        parts.append(f"C {pt(seg[1])} {pt(seg[2])} {pt(seg[3])}")
    if closed:
        parts.append("Z")
    return " ".join(parts)


def _rgb(colour: torch.Tensor) -> str:
    """``rgb(r,g,b)`` with 0-255 channels from a colour in [0, 1]."""
    r, g, b = (int(round(float(c) * 255)) for c in colour.detach().cpu().clamp(0, 1)[:3])
    return f"rgb({r},{g},{b})"


def _paint(kind: str, rgba: torch.Tensor) -> str:
    """``fill``/``stroke`` colour and opacity attributes from an RGBA colour in [0, 1]."""
    alpha = float(rgba[3].clamp(0, 1))
    return f'{kind}="{_rgb(rgba)}" {kind}-opacity="{alpha:.4f}"'
