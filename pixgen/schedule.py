"""Prompt schedules (stories): the prompt changes as the run goes.

Two spellings, parsed once (``pixgen.plan``):

- nerdyrodent's ``"a forest ^ a desert ^ the sea"``: the parts split the run evenly, or with ``prompt_every N``
  each holds N steps and the parts repeat in order until the run ends (VQGAN-CLIP's ``-cpe``);
- an explicit list in a settings file: ``prompt: [{prompt: "a forest", until: 100}, {prompt: "a desert"}]``,
  each part holding until its ``until`` (steps, or ``"50%"`` of the run; the last one may leave it out and
  holds to the end).

The ``|`` multi-prompt grammar (``text:weight:stop``) works inside each part. ``pixgen animate`` reads the same
schedule over frames instead of steps.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass
from typing import Any

from pixgen.errors import PixgenError
from pixgen.prompts import Prompt, parse_prompts, parse_unit

log = logging.getLogger("pixgen")

SEPARATOR = "^"
_KEYS = ("prompt", "until")


@dataclass(frozen=True)
class Segment:
    """One part of a story: its parsed prompts hold for the steps before ``until`` (within a cycle)."""

    prompts: tuple[Prompt, ...]
    until: int

    @property
    def text(self) -> str:
        """The part's prompts written back in the prompt grammar (``"a forest | trees:-0.5"``)."""
        return " | ".join(str(p) for p in self.prompts)


@dataclass(frozen=True)
class Schedule:
    """The parts of a run's prompt, in order; ``cycle`` > 0: the parts repeat every ``cycle`` steps."""

    segments: tuple[Segment, ...]
    cycle: int = 0

    def index_at(self, step: int) -> int:
        """The part that holds at ``step`` (0-based; after the last ``until`` the last part holds)."""
        if self.cycle:
            step %= self.cycle
        index = bisect.bisect_right([s.until for s in self.segments], step)
        return min(index, len(self.segments) - 1)

    def at(self, step: int) -> Segment:
        """The part that holds at ``step``."""
        return self.segments[self.index_at(step)]

    @property
    def is_story(self) -> bool:
        """More than one part."""
        return len(self.segments) > 1


def parse_schedule(prompt: Any, every: int | str | None, total: int, unit: str = "iteration") -> Schedule | None:
    """The schedule of a ``prompt`` setting over ``total`` steps (None without a prompt). ``every`` is
    ``prompt_every`` (steps per ``^`` part, or ``"25%"``); ``unit`` names a step in messages."""
    if prompt is None:
        return None
    items = list(prompt) if isinstance(prompt, (list, tuple)) else [prompt]
    kinds = {isinstance(item, dict) for item in items}
    if kinds == {True}:
        if every not in (None, "", 0):
            raise PixgenError("prompt_every applies to 'a ^ b' stories; a prompt list gives its own 'until' "
                              "values: remove prompt_every")
        return _explicit(items, total, unit)
    if kinds != {False} or not all(isinstance(item, str) for item in items):
        raise PixgenError(f"prompt must be text, a list of texts, or a list of {{prompt, until}} entries, got "
                          f"{prompt!r}")
    if not any(SEPARATOR in item for item in items):
        return Schedule((Segment(tuple(parse_prompts(items if len(items) > 1 else items[0])), total),))
    if len(items) > 1:
        raise PixgenError(f"a story ('{SEPARATOR}') is one prompt text; join {items!r} into one 'a ^ b' text")
    return _story(items[0], every, total, unit)


def _story(text: str, every: int | str | None, total: int, unit: str) -> Schedule:
    """``"a ^ b ^ c"``: even parts, or ``every`` steps each, repeating."""
    pieces = text.split(SEPARATOR)
    parts = []
    for number, piece in enumerate(pieces, 1):
        if not piece.strip():
            raise PixgenError(f"story part {number} of {text!r} has no text; remove the extra '{SEPARATOR}' or "
                              "write some text")
        parts.append(tuple(parse_prompts(piece)))
    if every in (None, "", 0):
        ends = [round(i * total / len(parts)) for i in range(1, len(parts) + 1)]
        return Schedule(tuple(Segment(p, end) for p, end in zip(parts, ends, strict=True)))
    step = parse_unit(every, total, "prompt_every")
    if step < 1:
        raise PixgenError(f"prompt_every {every!r} must be at least one {unit}; give a positive number or "
                          "leave it out (the parts then split the run evenly)")
    return Schedule(tuple(Segment(p, step * i) for i, p in enumerate(parts, 1)), cycle=step * len(parts))


def _explicit(items: list[dict[str, Any]], total: int, unit: str) -> Schedule:
    """``[{prompt, until}, ...]``: ``until`` values increasing; the last may be left out (to the end)."""
    segments: list[Segment] = []
    for number, item in enumerate(items, 1):
        unknown = sorted(set(item) - set(_KEYS))
        if unknown:
            raise PixgenError(f"prompt entry {number} has unknown key(s) {', '.join(unknown)}; each entry is "
                              "{prompt: TEXT, until: N or 'N%'}")
        text = item.get("prompt")
        if not isinstance(text, (str, list)) or not str(text).strip():
            raise PixgenError(f"prompt entry {number} has no text; write {{prompt: 'some text', until: N}}")
        if "until" not in item and number < len(items):
            raise PixgenError(f"prompt entry {number} has no 'until'; only the last entry may leave it out")
        until = parse_unit(item["until"], total, "until") if "until" in item else max(total, 1)
        previous = segments[-1].until if segments else 0
        if until <= previous:
            raise PixgenError(f"prompt entry {number}: until {item.get('until')!r} ({until} {unit}s) must be after "
                              f"the entry before it ({previous}); give increasing 'until' values")
        if previous >= total:
            log.warning("prompt entry %d starts at %s %d, after the last of %d: it is never used", number, unit,
                        previous, total)
        segments.append(Segment(tuple(parse_prompts(text)), until))
    return Schedule(tuple(segments))
