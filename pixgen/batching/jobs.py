"""The jobs of a batch: a jobs file (shared settings, a grid and/or a list of jobs) expanded into ordinary run
settings, each checked with ``plan_run`` before anything starts.

A jobs file is YAML::

    size: 64x64               # shared settings: any run setting or plug-in option
    prompts: [a red circle, a blue square]
    seeds: 3                  # seeds 0, 1, 2 (or a list: [7, 11])
    drawer: [pixel, vqgan]    # a list sweeps a setting that takes one value
    grid:                     # sweeps of any setting; here each value is one clip list
      clip: [[ViT-B-32:openai], [ViT-B-16:openai]]
    jobs:                     # explicit jobs, each crossed with the grid (its own settings win)
      - {prompt: a green triangle, lr: 0.1}

The jobs are the product of the job entries (one empty entry if none), the prompts, the other sweeps and the
seeds; jobs with the same settings are run once.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixgen.config import RunConfig
from pixgen.errors import PixgenError

#: the keys of a jobs file that are not run settings
BATCH_KEYS = ("prompts", "seeds", "grid", "jobs")
#: run settings whose value is itself a list: a list given for one of them is its value, not a sweep
LIST_SETTINGS = ("clip", "loss", "filters", "lr_drops")
_FIELDS = {f.name for f in dataclasses.fields(RunConfig)} - {"plugin_options"}


@dataclass(frozen=True)
class Job:
    """One run of a batch: its checked, non-default settings (without ``out``), their hash and its id."""

    id: str
    index: int
    settings: dict[str, Any]
    hash: str

    @property
    def prompt(self) -> str:
        """The job's prompt (empty if it has none)."""
        return str(self.settings.get("prompt") or "")


def load_jobs_file(path: str | Path) -> dict[str, Any]:
    """Read a jobs YAML file into a mapping; a missing, unreadable or malformed file raises ``PixgenError``."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PixgenError(f"jobs file {path} does not exist; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PixgenError(f"cannot read jobs file {path} ({exc}); give a YAML text file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PixgenError(f"jobs file {path} is not valid YAML ({where}{problem}); write one `setting: value` "
                          "per line (see docs/batch.md)") from None
    if not isinstance(data, dict):
        raise PixgenError(f"jobs file {path} must hold a mapping of setting: value (and prompts, seeds, grid, "
                          f"jobs), not {type(data).__name__}")
    return data


def read_prompts_file(path: str | Path) -> list[str]:
    """The prompts of a text file, one a line (blank lines and lines starting with ``#`` skipped)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise PixgenError(f"prompts file {path} does not exist; check the path given to --prompts-file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PixgenError(f"cannot read prompts file {path} ({exc}); give a UTF-8 text file") from None
    prompts = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not prompts:
        raise PixgenError(f"prompts file {path} has no prompts; write one prompt a line")
    return prompts


def expand(spec: dict[str, Any], extra_prompts: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The settings of every job of a jobs mapping (not yet checked), in order; ``extra_prompts`` (from a
    prompts file) join the ``prompts`` sweep."""
    shared = {str(k).replace("-", "_"): v for k, v in spec.items()}
    if "out" in shared:
        raise PixgenError("out is the batch's folder, not a job setting: remove it and pass --out DIR "
                          "(out= in pixgen.batch)")
    _check_keys(shared)
    entries = _entries(shared.pop("jobs", None))
    axes = _axes(shared, list(extra_prompts))
    keys = [key for key, _ in axes]
    return [{**shared, **dict(zip(keys, combo, strict=True)), **entry}
            for entry in entries for combo in itertools.product(*(values for _, values in axes))]


def _axes(shared: dict[str, Any], extra_prompts: list[str]) -> list[tuple[str, list[Any]]]:
    """Pop the sweeps out of ``shared``: (setting, values) pairs, prompts first and seeds last."""
    prompts = _listed("prompts", shared.pop("prompts", None))
    if isinstance(shared.get("prompt"), list):
        prompts = [*(prompts or []), *_listed("prompt", shared.pop("prompt"))]
    if extra_prompts:
        prompts = [*(prompts or []), *extra_prompts]
    if prompts is not None and "prompt" in shared:
        raise PixgenError("the jobs file gives both prompt and prompts; put every prompt in the prompts list")
    seeds = _seeds(shared.pop("seeds", None))
    if seeds is not None and "seed" in shared:
        raise PixgenError("the jobs file gives both seed and seeds; put every seed in the seeds list")
    axes = [("prompt", prompts)] if prompts is not None else []
    grid = shared.pop("grid", None) or {}
    if not isinstance(grid, dict):
        raise PixgenError(f"grid must be a mapping of setting: [values], not {type(grid).__name__}")
    for key, value in list(shared.items()):
        if isinstance(value, list) and key not in LIST_SETTINGS:
            axes.append((key, _listed(key, shared.pop(key))))
    for key, values in grid.items():
        key = str(key).replace("-", "_")
        taken = {*shared, *(k for k, _ in axes), *(["seed"] if seeds is not None else [])}
        if key in taken:
            raise PixgenError(f"grid sweeps {key}, which the jobs file also sets; give it in one place")
        _check_keys({key: values})
        axes.append((key, _listed(f"grid {key}", values)))
    return axes + ([("seed", seeds)] if seeds is not None else [])


def _listed(name: str, values: Any) -> list[Any] | None:
    if values is None:
        return None
    if not isinstance(values, list):
        raise PixgenError(f"{name} must be a list of values, not {type(values).__name__} {values!r}")
    if not values:
        raise PixgenError(f"{name} is an empty list, so the grid is empty; give at least one value")
    return values


def _seeds(value: Any) -> list[Any] | None:
    """``seeds: N`` means seeds 0..N-1; a list is taken as it is."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise PixgenError(f"seeds: {value} gives no seeds, so the grid is empty; give a count >= 1 or a list")
        return list(range(value))
    return _listed("seeds", value)


def _entries(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return [{}]
    if not isinstance(value, list) or not value:
        raise PixgenError("jobs must be a non-empty list of mappings (- prompt: ...); remove it or add jobs")
    entries = []
    for number, entry in enumerate(value, 1):
        if not isinstance(entry, dict):
            raise PixgenError(f"jobs entry {number} must be a mapping of setting: value, not {entry!r}")
        entry = {str(k).replace("-", "_"): v for k, v in entry.items()}
        if "out" in entry or set(BATCH_KEYS) & set(entry):
            bad = sorted({"out", *BATCH_KEYS} & set(entry))
            raise PixgenError(f"jobs entry {number} sets {', '.join(bad)}, which only the top level may set; "
                              "give each job plain settings")
        _check_keys(entry, f"jobs entry {number}")
        entries.append(entry)
    return entries


def _check_keys(values: dict[str, Any], where: str = "the jobs file") -> None:
    """Reject a key that is neither a run setting, a batch key nor an option of any registered plug-in."""
    unknown = [k for k in values if k not in _FIELDS and k not in BATCH_KEYS]
    if not unknown:
        return
    options = _plugin_option_names()
    for key in unknown:
        if key not in options:
            close = difflib.get_close_matches(key, [*_FIELDS, *BATCH_KEYS, *options], n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise PixgenError(f"{where} has an unknown key {key!r}; {hint}keys are run settings (pixgen run "
                              "--help), plug-in options (pixgen list) and prompts, seeds, grid, jobs")


def _plugin_option_names() -> set[str]:
    from pixgen.options import plugin_options
    from pixgen.registry import DRAWERS, FILTERS, LOSSES

    names: set[str] = set()
    for registry in (DRAWERS, FILTERS, LOSSES):
        for name in registry.names():
            try:
                names.update(plugin_options(registry.get(name)))
            except PixgenError:  # a plug-in whose optional dependency is missing offers nothing here
                continue
    return names


def plan_jobs(settings: list[dict[str, Any]], where: str = "batch") -> list[Job]:
    """Check every job's settings as ``pixgen run`` would (``plan_run``: settings, prompts, plug-ins, CLIP
    specs) and give each an id; the first bad job raises one ``PixgenError`` naming it. Duplicates run once."""
    from pixgen.plan import plan_run

    if not settings:
        raise PixgenError(f"{where} has no jobs; give prompts, a grid or a jobs list")
    varying = _varying(settings)
    jobs: dict[str, Job] = {}
    for number, values in enumerate(settings, 1):
        try:
            config = plan_run(RunConfig.from_dict(values)).config
        except (PixgenError, TypeError, ValueError) as exc:
            raise PixgenError(f"{where}, {describe(number, values, varying)}: {exc}") from None
        if not config.prompt and not config.loss:
            raise PixgenError(f"{where}, {describe(number, values, varying)} has no prompt; give prompts: [...] "
                              "or a prompt in the job")
        kept = config.to_dict(non_default=True)
        kept.pop("out", None)
        digest = settings_hash(kept)
        jobs.setdefault(digest, Job(job_id(kept, digest), len(jobs), kept, digest))
    return list(jobs.values())


def describe(number: int, values: dict[str, Any], varying: Sequence[str] = ()) -> str:
    """``job 3 (prompt 'a red circle', seed 2, drawer 'vqgan')``: how messages name a job (its prompt and seed,
    and the settings that differ between the jobs)."""
    keys = ["prompt", "seed", *(k for k in varying if k not in ("prompt", "seed"))][:5]
    parts = [f"{key} {values[key]!r}" for key in keys if values.get(key) is not None]
    return f"job {number}" + (f" ({', '.join(parts)})" if parts else "")


def _varying(settings: list[dict[str, Any]]) -> list[str]:
    """The keys whose values are not the same in every job, in first-seen order."""
    keys = list(dict.fromkeys(key for values in settings for key in values))
    return [key for key in keys if len({json.dumps(v.get(key), default=str) for v in settings}) > 1]


def settings_hash(settings: dict[str, Any]) -> str:
    """A short sha256 of the settings (order-independent): a job whose settings change is a new job."""
    text = json.dumps(settings, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def job_id(settings: dict[str, Any], digest: str) -> str:
    """A folder name that says what the job is: ``a-red-circle-s2-1f3a9c0e`` (prompt words, seed, hash)."""
    words = re.sub(r"[^a-z0-9]+", "-", str(settings.get("prompt") or "").lower()).strip("-")
    slug = words[:32].rstrip("-") or "job"
    seed = settings.get("seed")
    if seed is not None:
        slug += "-s" + (re.sub(r"[^a-z0-9]+", "", str(seed).lower())[:12] or "x")
    return f"{slug}-{digest[:8]}"
