"""The pure-torch rasterizer: placement, gradients, agreement with a dense reference and with resvg."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from pixgen.bezier import (
    TileDistance,
    closest_param,
    flatten,
    footprint_cdf,
    normal_slant,
    segment_distance,
    tile_origins,
)
from pixgen.errors import PixgenError
from pixgen.raster import Paths, rasterize, stroke_coverage
from pixgen.svg import paths_to_svg

pytestmark = pytest.mark.usefixtures("one_thread")


@dataclass
class Scene:
    """Test paths whose segments share end points through ``index`` into ``points``, as in the drawers."""

    points: torch.Tensor  # (C, 2)
    index: torch.Tensor  # (M, 4)
    seg_path: torch.Tensor  # (M,)
    widths: torch.Tensor  # (P,)
    rgba: torch.Tensor  # (P, 4)
    fill: torch.Tensor | None

    def paths(self) -> Paths:
        return Paths(self.points[self.index], self.seg_path, self.widths, self.rgba, self.fill)

    def leaves(self) -> list[torch.Tensor]:
        """Detached copies of points, widths, colours (and fills) that require grad, installed in place."""
        names = ["points", "widths", "rgba"] + (["fill"] if self.fill is not None else [])
        for name in names:
            setattr(self, name, getattr(self, name).detach().clone().requires_grad_(True))
        return [getattr(self, name) for name in names]


def random_scene(n_paths: int, width: int, height: int, seed: int = 0, fill: bool = False,
                 step: float = 40.0) -> Scene:
    """Random paths of 1-3 joined cubics with translucent colours (optionally closed and filled)."""
    g = torch.Generator().manual_seed(seed)
    n_seg = torch.randint(1, 4, (n_paths,), generator=g)
    points, index, count = [], [], 0
    for p in range(n_paths):
        start = torch.rand(1, 2, generator=g) * torch.tensor([width, height])
        walk = start + ((torch.rand(3 * int(n_seg[p]), 2, generator=g) - 0.5) * step).cumsum(0)
        points += [start, walk]
        index += [count + 3 * s + torch.arange(4) for s in range(int(n_seg[p]))]
        count += 1 + len(walk)
    rgba = torch.rand(n_paths, 4, generator=g)
    rgba[:, 3] = 0.2 + 0.7 * rgba[:, 3]
    fill = torch.rand(n_paths, 4, generator=g) * torch.tensor([1, 1, 1, 0.5]) if fill else None
    widths = 0.5 + 6 * torch.rand(n_paths, generator=g)
    seg_path = torch.repeat_interleave(torch.arange(n_paths), n_seg)
    return Scene(torch.cat(points), torch.stack(index), seg_path, widths, rgba, fill)


def dense_reference(paths: Paths, width: int, height: int, background: torch.Tensor) -> torch.Tensor:
    """Every pixel against every chord, strokes composited one by one (the naive method, plain autograd)."""
    a, b, seg = flatten(paths.ctrl)
    ys, xs = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
    pix = torch.stack([xs, ys], -1).view(-1, 1, 2)  # (HW, 1, 2)
    img = background.view(3, 1).expand(3, height * width)
    for p in range(paths.n_paths):
        mine = paths.seg_path[seg] == p
        d, off = segment_distance(pix, a[mine], b[mine])  # (HW, e), (HW, e, 2)
        d, near = d.min(1)
        with torch.no_grad():
            rows = torch.arange(len(near))
            t = closest_param(pix[:, 0], a[mine][near], b[mine][near])
            slant = normal_slant(t, off[rows, near], (b - a)[mine][near])
        cover = stroke_coverage(d, paths.stroke_width[p] / 2, slant)
        alpha = cover * paths.stroke_rgba[p, 3]
        img = img * (1 - alpha) + alpha * paths.stroke_rgba[p, :3].view(3, 1)
    return img.view(1, 3, height, width)


def test_stroke_renders_where_its_control_points_are() -> None:
    ctrl = torch.tensor([[[20.0, 30.0], [30.0, 30.0], [50.0, 30.0], [60.0, 30.0]]])  # horizontal line y=30
    paths = Paths(ctrl, torch.tensor([0]), torch.tensor([6.0]), torch.tensor([[1.0, 0.0, 0.0, 1.0]]))
    img = rasterize(paths, 80, 50, torch.ones(3))[0]  # (3, H, W)
    red = (img[1] < 0.5) & (img[0] > 0.9)
    ys, xs = red.nonzero(as_tuple=True)
    assert xs.min() == 17 and xs.max() == 62  # round caps reach 3 px beyond the ends
    assert ys.min() == 27 and ys.max() == 32  # 6 px wide, centred on y = 30
    assert torch.equal(img[:, 10, 40], torch.ones(3))
    torch.testing.assert_close(img[:, 30, 40], torch.tensor([1.0, 0, 0]), atol=1e-5, rtol=0)  # opaque core


def test_gradients_reach_points_widths_colours_and_background() -> None:
    scene = random_scene(12, 64, 48, fill=True)
    leaves = [*scene.leaves(), bg := torch.rand(3, requires_grad=True)]
    img = rasterize(scene.paths(), 64, 48, bg)
    (img * torch.rand(img.shape, generator=torch.Generator().manual_seed(1))).sum().backward()
    for leaf in leaves:
        assert torch.isfinite(leaf.grad).all() and leaf.grad.abs().sum() > 0


@pytest.mark.parametrize(("tile", "width", "height", "chunk"), [(16, 70, 45, 1 << 22), (8, 64, 48, 1 << 22),
                                                           (8, 64, 48, 2000)])  # 2000: checkpointed chunks
def test_tiled_render_and_gradients_match_dense_reference(tile: int, width: int, height: int, chunk: int) -> None:
    scene = random_scene(15, width, height, seed=tile)
    bg = torch.tensor([1.0, 0.9, 0.7])
    weights = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(2))
    grads = []
    renders = (lambda p: rasterize(p, width, height, bg, tile=tile, chunk_pixels=chunk),
               lambda p: dense_reference(p, width, height, bg))
    for render in renders:
        leaves = scene.leaves()
        img = render(scene.paths())
        (img * weights).sum().backward()
        grads.append((img.detach(), *(leaf.grad for leaf in leaves)))
    for ours, reference in zip(*grads, strict=True):
        torch.testing.assert_close(ours, reference, rtol=1e-3, atol=2e-4)


def test_pixel_footprint_coverage_is_the_exact_area() -> None:
    g = torch.Generator().manual_seed(0)
    angle = torch.rand(200, generator=g) * torch.pi  # (N,) edge normals in every direction
    normal = torch.stack([angle.cos(), angle.sin()], 1)  # (N, 2)
    x = (torch.rand(200, generator=g) - 0.5) * 2.2  # centre-to-edge distances, both sides
    sub = (torch.arange(400) + 0.5) / 400 - 0.5
    grid = torch.stack(torch.meshgrid(sub, sub, indexing="xy"), -1).view(-1, 2)  # (S, 2) inside one pixel
    truth = ((grid @ normal.T) <= x).float().mean(0)  # (N,) fraction of the pixel on the inner side
    slant = (normal[:, 0] * normal[:, 1]).abs()
    torch.testing.assert_close(footprint_cdf(x, slant), truth, atol=4e-3, rtol=0)
    x64 = x.double().requires_grad_(True)  # its hand-written derivative agrees with finite differences
    assert torch.autograd.gradcheck(lambda x: footprint_cdf(x, slant.double()), (x64,))


def test_tile_distance_backward_passes_gradcheck() -> None:
    a = torch.tensor([[3.0, 4.0], [10.0, 2.0], [5.0, 12.0]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([[9.0, 6.5], [14.0, 13.0], [1.5, 9.0]], dtype=torch.float64, requires_grad=True)
    q_edge, q_slot = torch.tensor([0, 1, 2, 1]), torch.tensor([0, 0, 1, 1])  # slot 0: edges 0, 1; slot 1: 2, 1
    origin = tile_origins(torch.tensor([0, 0]), 1, 8, torch.float64) + torch.tensor([[0.0, 0.0], [4.0, 6.0]],
                                                                                      dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a, b: TileDistance.apply(a, b, q_edge, q_slot, origin, 2, 8)[0], (a, b))


def test_closed_paths_are_filled_with_the_nonzero_rule() -> None:
    square = torch.tensor([[[10.0, 10.0], [50.0, 10.0], [50.0, 10.0], [50.0, 10.0]],
                           [[50.0, 10.0], [50.0, 50.0], [50.0, 50.0], [50.0, 50.0]],
                           [[50.0, 50.0], [10.0, 50.0], [10.0, 50.0], [10.0, 50.0]]])  # closed back to (10, 10)
    paths = Paths(square, torch.zeros(3, dtype=torch.long), torch.tensor([0.0]), torch.tensor([[0.0, 0, 0, 1]]),
                  fill_rgba=torch.tensor([[0.0, 0.0, 1.0, 1.0]]))
    img = rasterize(paths, 64, 64, torch.ones(3))[0]
    blue = (img[0] < 0.5).float()
    assert blue.sum() == 40 * 40 and blue[10:50, 10:50].all()


def test_background_image_and_strokes_off_canvas() -> None:
    bg = torch.rand(1, 3, 30, 40, generator=torch.Generator().manual_seed(0))
    far = Paths(torch.full((1, 4, 2), -100.0), torch.tensor([0]), torch.tensor([3.0]), torch.ones(1, 4))
    assert torch.equal(rasterize(far, 40, 30, bg), bg)
    none = Paths(torch.zeros(0, 4, 2), torch.zeros(0, dtype=torch.long), torch.zeros(0), torch.zeros(0, 4))
    assert torch.equal(rasterize(none, 40, 30, bg), bg)
    assert torch.equal(rasterize(none, 40, 30, torch.ones(3)), torch.ones(1, 3, 30, 40))
    with pytest.raises(PixgenError, match="background"):
        rasterize(far, 40, 30, torch.rand(1, 3, 10, 10))
    with pytest.raises(PixgenError, match="ctrl"):
        rasterize(Paths(torch.zeros(1, 3, 2), torch.tensor([0]), torch.ones(1), torch.ones(1, 4)), 8, 8,
                  torch.ones(3))


@pytest.mark.parametrize("fill", [False, True])
def test_svg_rendered_by_resvg_matches_our_raster(fill: bool) -> None:
    resvg_py = pytest.importorskip("resvg_py")
    from PIL import Image

    width, height, bg = 128, 96, torch.tensor([1.0, 0.95, 0.8])
    paths = random_scene(40, width, height, seed=1, fill=fill).paths()
    ours = rasterize(paths, width, height, bg)[0].permute(1, 2, 0).numpy()
    png = bytes(resvg_py.svg_to_bytes(svg_string=paths_to_svg(paths, width, height, bg)))
    theirs = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32) / 255
    assert theirs.shape == ours.shape
    assert np.abs(ours - theirs).mean() < 0.02  # measured 0.004-0.005


def saved_bytes(n_paths: int, size: int, step: float, chunk: int = 1 << 22) -> int:
    """Bytes autograd keeps for backward when rendering a random scene."""
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    scene = random_scene(n_paths, size, size, step=step)
    scene.leaves()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        rasterize(scene.paths(), size, size, torch.ones(3), chunk_pixels=chunk)
    return total


def test_memory_grows_with_covered_area_not_strokes_times_pixels() -> None:
    few, many = saved_bytes(32, 128, step=20), saved_bytes(128, 128, step=20)
    assert 2 * few < many < 6 * few  # 4x the strokes: about 4x the memory
    small, large = saved_bytes(64, 64, step=10), saved_bytes(64, 256, step=10)
    assert large < 4 * small  # 16x the pixels, same strokes: far below 16x the memory
    assert saved_bytes(128, 128, step=20, chunk=1 << 14) < many / 10  # checkpointed chunks keep far less
