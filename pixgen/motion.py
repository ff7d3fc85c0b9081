"""The camera of ``pixgen animate``: per-frame zoom, rotation and shift, each a number or a small expression of
the frame number ``t`` (``"1 + 0.01*sin(t/5)"``), and the warp that moves one frame into the start of the next.

Expressions are read with a whitelist of Python's syntax tree, never ``eval``: numbers, ``t``, ``pi``,
``+ - * / **``, and the functions ``sin cos tan exp log sqrt abs min max``. Everything is computed in floats,
so no expression can build a huge integer.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from pixgen.errors import PixgenError

MAX_LENGTH = 200
FUNCTIONS: dict[str, Callable[..., float]] = {
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "exp": math.exp, "log": math.log, "sqrt": math.sqrt,
    "abs": abs, "min": min, "max": max}
NAMES = {"pi": math.pi}
_BINARY: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.Pow: operator.pow}
_UNARY: dict[type, Callable[[float], float]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_ALLOWED = "numbers, t, pi, + - * / **, sin cos tan exp log sqrt abs min max"


@dataclass(frozen=True)
class Expression:
    """A checked expression of the frame number ``t``; ``what`` names its option in messages."""

    text: str
    what: str
    tree: ast.Expression

    def __call__(self, t: int) -> float:
        """The value at frame ``t``: a finite float, else one line naming the option and the frame."""
        try:
            value = _evaluate(self.tree.body, float(t))
        except (ArithmeticError, ValueError, TypeError) as exc:
            raise PixgenError(f"{self.what} {self.text!r} cannot be computed at frame {t} ({exc}); change the "
                              "expression") from None
        if isinstance(value, complex) or not math.isfinite(value):
            raise PixgenError(f"{self.what} {self.text!r} gives {value} at frame {t}, not a finite number; change "
                              "the expression")
        return float(value)


def parse_expression(value: Any, what: str) -> Expression:
    """Check ``value`` (a number or an expression text) once; bad input is one line naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise PixgenError(f"{what} must be a number or an expression of t such as '1 + 0.01*t', got {value!r}")
    text = repr(float(value)) if isinstance(value, (int, float)) else value.strip()
    if not text or len(text) > MAX_LENGTH:
        raise PixgenError(f"{what} must be a number or an expression of t of at most {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise PixgenError(f"{what} {text!r} is not an expression; write e.g. '1.02' or '1 + 0.01*sin(t/5)'") from None
    for node in ast.walk(tree.body):
        problem = _refused(node)
        if problem:
            raise PixgenError(f"{what} {text!r}: {problem} is not allowed; use only {_ALLOWED}")
    return Expression(text, what, tree)


def _refused(node: ast.AST) -> str:
    """Why ``node`` may not appear in an expression ("" if it may)."""
    if isinstance(node, ast.Constant):
        ok = isinstance(node.value, (int, float)) and not isinstance(node.value, bool)
        return "" if ok else f"the constant {node.value!r}"
    if isinstance(node, ast.Name):
        return "" if node.id == "t" or node.id in NAMES or node.id in FUNCTIONS else f"the name {node.id!r}"
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            return f"calling {ast.unparse(node.func)!r}"
        return "a keyword argument" if node.keywords else ""
    if isinstance(node, ast.BinOp):
        return "" if type(node.op) in _BINARY else f"the operator {type(node.op).__name__}"
    if isinstance(node, ast.UnaryOp):
        return "" if type(node.op) in _UNARY else f"the operator {type(node.op).__name__}"
    if isinstance(node, (ast.operator, ast.unaryop, ast.Load)):
        return ""
    return f"{type(node).__name__}"


def _evaluate(node: ast.AST, t: float) -> float:
    """The checked tree's value, in floats."""
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id in FUNCTIONS:
            raise TypeError(f"{node.id} is a function: call it, e.g. {node.id}(t)")
        return t if node.id == "t" else NAMES[node.id]
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_evaluate(node.left, t), _evaluate(node.right, t))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, t))
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    return FUNCTIONS[node.func.id](*(_evaluate(arg, t) for arg in node.args))


@dataclass(frozen=True)
class Camera:
    """The moves of one frame: ``zoom`` > 1 enlarges the centre, ``rotate`` degrees counter-clockwise,
    ``shift_x``/``shift_y`` pixels right/down."""

    zoom: float = 1.0
    rotate: float = 0.0
    shift_x: float = 0.0
    shift_y: float = 0.0


def camera_path(moves: dict[str, Any], frames: int) -> list[Camera]:
    """The camera of frames 2..``frames`` (frame 1 is not warped), every value checked before any work; a zoom
    that is not a finite positive number is one line."""
    exprs = {name: parse_expression(value, f"--{name.replace('_', '-')}") for name, value in moves.items()}
    path = []
    for t in range(2, frames + 1):
        camera = Camera(**{name: expr(t) for name, expr in exprs.items()})
        if camera.zoom <= 0:
            raise PixgenError(f"--zoom {exprs['zoom'].text!r} gives {camera.zoom:g} at frame {t}; a zoom must be a "
                              "finite positive number (1 stays, 1.02 moves in, 0.98 out)")
        path.append(camera)
    return path


def warp(image: torch.Tensor, camera: Camera) -> torch.Tensor:
    """(1, 3, H, W) moved by ``camera`` about the image's centre (kornia's affine warp, bilinear; what comes in
    from outside the frame is the picture mirrored at its edge)."""
    from kornia.geometry.transform import get_rotation_matrix2d, warp_affine

    if camera == Camera():
        return image.clone()  # a still camera keeps the frame exactly
    _, _, height, width = image.shape
    centre = torch.tensor([[(width - 1) / 2, (height - 1) / 2]], dtype=image.dtype, device=image.device)
    angle = torch.tensor([camera.rotate], dtype=image.dtype, device=image.device)
    scale = torch.tensor([[camera.zoom, camera.zoom]], dtype=image.dtype, device=image.device)
    matrix = get_rotation_matrix2d(centre, angle, scale)  # (1, 2, 3)
    matrix[:, 0, 2] += camera.shift_x
    matrix[:, 1, 2] += camera.shift_y
    return warp_affine(image, matrix, (height, width), mode="bilinear", padding_mode="reflection",
                       align_corners=True).clamp(0, 1)
