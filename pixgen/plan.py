"""A run's settings resolved once, before any model loads: checked settings, parsed prompts, the chosen
plug-ins with their options, and the parsed CLIP specs. ``Run`` and the several-starts trial take a ``Plan``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from pixgen.config import RunConfig, check
from pixgen.errors import PixgenError
from pixgen.image_prompts import ImagePrompt, parse_image_prompts
from pixgen.plugins import Chosen, chosen_plugins, of_kind
from pixgen.prompts import Prompt
from pixgen.schedule import Schedule, parse_schedule
from pixgen.video import check_video_settings


@dataclass(frozen=True)
class Plan:
    """Everything about a run that can be known (and be wrong) before a model loads."""

    config: RunConfig
    prompts: tuple[Prompt, ...]
    plugins: tuple[Chosen, ...]
    clips: tuple[Any, ...]  # pixgen.perceptors.ClipSpec, one per --clip, keys unique
    image_prompts: tuple[ImagePrompt, ...] = ()
    target_images: tuple[ImagePrompt, ...] = ()
    schedule: Schedule | None = None  # the prompt's parts over the run (a story); ``prompts`` is the first part's

    def with_settings(self, **changes: Any) -> Plan:
        """The same plan with some plain settings changed (``seed``, ``starts``...: none that a plug-in reads)."""
        return dataclasses.replace(self, config=dataclasses.replace(self.config, **changes))

    def of_kind(self, kind: str) -> list[Chosen]:
        """The chosen plug-ins of one kind (``drawer``, ``filter``, ``loss``), in order."""
        return of_kind(list(self.plugins), kind)


def plan_run(config: RunConfig | dict[str, Any] | Plan) -> Plan:
    """Check ``config`` and resolve it once; a ``Plan`` is returned as it is. Bad input raises ``PixgenError``."""
    if isinstance(config, Plan):
        return config
    if isinstance(config, dict):
        config = RunConfig.from_dict(config)
    check(config)
    schedule = parse_schedule(config.prompt, config.prompt_every, config.schedule_iterations or config.iterations)
    prompts, plugins = schedule.segments[0].prompts if schedule else (), tuple(chosen_plugins(config))
    check_video_settings(config)
    images = parse_image_prompts(config.image_prompt, "--image-prompt")
    targets = parse_image_prompts(config.target_image, "--target-image")
    return Plan(config, prompts, plugins, _clip_specs(config), images, targets, schedule)


def _clip_specs(config: RunConfig) -> tuple[Any, ...]:
    from pixgen.perceptors import parse_clip_spec

    specs: dict[str, Any] = {}
    for text in config.clip:
        spec = parse_clip_spec(str(text))
        if spec.key in specs:
            raise PixgenError(f"CLIP model {spec.key} is given twice; give each model once (with @WEIGHT)")
        specs[spec.key] = spec
    return tuple(specs.values())
