"""Prompt grammar: ``"text:weight:stop | other text:-0.5"``, numbers parsed from the right.

A trailing ``:NUMBER`` is read as the weight (and a second one before it as weight, the last as stop) only when
the text left of the colon does not end in a digit, so ``"a 4:3 poster"``, ``"12:30"`` and URLs stay text.
Write ``"room 101 :2"`` (a space before the colon) to weight a text that ends in a digit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pixgen.errors import PixgenError

_NUMBER = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$|^\s*[-+]?(inf|infinity|nan)\s*$", re.I)


@dataclass(frozen=True)
class Prompt:
    """One weighted prompt: ``weight`` < 0 pushes away; no gradient once the distance passes ``stop``."""

    text: str
    weight: float = 1.0
    stop: float = -math.inf

    def __str__(self) -> str:
        text = f"{self.text} " if self.text[-1].isdigit() else self.text
        if self.stop != -math.inf:
            return f"{text}:{self.weight:g}:{self.stop:g}"
        return self.text if self.weight == 1.0 else f"{text}:{self.weight:g}"


def parse_prompt(text: str) -> Prompt:
    """Parse one ``text[:weight[:stop]]`` prompt."""
    fields = text.split(":")
    body, numbers = text, []
    for count in (2, 1):
        rest = ":".join(fields[:-count])
        tail = fields[len(fields) - count:]
        if len(fields) <= count or not all(map(_NUMBER.match, tail)):
            continue
        if not rest.strip():
            raise PixgenError(f"empty prompt text in {text!r}; write 'some text[:weight[:stop]]'")
        if not rest[-1].isdigit():
            body, numbers = rest, [float(v) for v in tail]
            break
    body = body.strip()
    if not body:
        raise PixgenError(f"empty prompt text in {text!r}; write 'some text[:weight[:stop]]'")
    for value in numbers:
        if not math.isfinite(value):
            raise PixgenError(f"prompt {text!r}: weight and stop must be finite numbers, got {value}")
    weight = numbers[0] if numbers else 1.0
    stop = numbers[1] if len(numbers) > 1 else -math.inf
    return Prompt(body, weight, stop)


def parse_prompts(text: str | list[str] | None) -> list[Prompt]:
    """Split on ``|`` (a string, or a list of strings each of which may hold ``|``) and parse each prompt."""
    if text is None:
        return []
    parts = [text] if isinstance(text, str) else list(text)
    out = []
    for part in parts:
        pieces = part.split("|")
        for piece in pieces:
            if not piece.strip():
                raise PixgenError(f"empty prompt in {part!r}; remove the extra '|' or write some text")
            out.append(parse_prompt(piece))
    return out


def main_text(prompts: Sequence[Prompt]) -> str:
    """The text of the first positive prompt of the highest weight among parsed ``prompts``, or ""."""
    positive = [p for p in prompts if p.weight > 0 and p.text]
    return max(positive, key=lambda p: p.weight).text if positive else ""


def parse_unit(value: str | int | float, total: int, what: str = "value") -> int:
    """An iteration count from ``"20"``, ``"20i"``, ``"20 iterations"`` or ``"50%"`` (of ``total``)."""
    text = str(value).strip().lower()
    match = re.fullmatch(r"([-+]?\d+(?:\.\d+)?)\s*(%|i|it|iter|iters|iteration|iterations)?", text)
    if not match:
        raise PixgenError(f"cannot read {what} {value!r}; write a number, '20 iterations' or '50%'")
    number, unit = float(match.group(1)), match.group(2)
    return int(round(number * total / 100)) if unit == "%" else int(number)
