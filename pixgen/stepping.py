"""One gradient pass of a run: render, filter and cut once, then embed and score the cutouts in ``chunks``
(gradient-accumulated, each chunk's terms weighted by its share of the cutouts), so a step that runs out of
memory can be retried in smaller pieces with the same sampled cutouts and the same result up to rounding.
"""

from __future__ import annotations

from typing import Any

import torch

from pixgen.losses.base import LossInput


def is_out_of_memory(exc: BaseException) -> bool:
    """True for an accelerator's out-of-memory error (CUDA's, or the generic one some backends raise)."""
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()[:200]


def render_and_cut(run: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[int, tuple]]:
    """The filtered render (1, 3, H, W), the filters' weighted terms and the sampled cutouts per input size."""
    run.drawer.set_progress(min(1.0, run.iteration / run.span))
    render = run.drawer.render().float()  # (1, 3, H, W); fp32 whatever the autocast computed it in
    terms: dict[str, torch.Tensor] = {}
    for name, (filt, weight) in run.filters.items():
        render, loss = filt(render)
        render = render.float()
        terms[f"filter:{name}"] = weight * loss.float()
    return render, terms, {size: cut(render) for size, cut in run.cutouts.items()}


def chunk_input(run: Any, render: torch.Tensor, sampled: dict[int, tuple], rows: slice) -> LossInput:
    """The ``LossInput`` of the cutouts ``rows`` (the same rows of every size and of every replayed image)."""
    cutouts = {size: cuts[rows] for size, (cuts, _) in sampled.items()}
    embeds = {key: perceptor.encode_image(cutouts[perceptor.input_size])
              for key, (perceptor, _) in run.perceptors.items()}

    def replay(image: torch.Tensor) -> dict[int, torch.Tensor]:
        return {size: run.cutouts[size].replay(image, params)[rows] for size, (_, params) in sampled.items()}

    return LossInput(render, cutouts, embeds, run.iteration, run.span, replay=replay)


def loss_terms(run: Any) -> dict[str, torch.Tensor]:
    """Every weighted loss term of one pass over all the cutouts at once (differentiable)."""
    with run.autocast():
        render, terms, sampled = render_and_cut(run)
        inp = chunk_input(run, render, sampled, slice(None))
    terms.update({name: weight * loss(inp) for name, (loss, weight) in run.losses.items()})
    return terms


def accumulate(run: Any, chunks: int, scale: float, backward: Any) -> dict[str, float]:
    """One pass in ``chunks`` pieces: each piece's terms times its share of the cutouts (and ``scale``) go
    through ``backward``; returns the pass's terms (unscaled) as floats."""
    with run.autocast():
        render, filter_terms, sampled = render_and_cut(run)
    n = run.config.cutn
    bounds = [round(i * n / chunks) for i in range(chunks + 1)]
    totals: dict[str, float] = {}
    for i, (lo, hi) in enumerate(zip(bounds, bounds[1:], strict=False)):
        share = (hi - lo) / n
        with run.autocast():
            inp = chunk_input(run, render, sampled, slice(lo, hi))
        terms = {name: share * weight * loss(inp) for name, (loss, weight) in run.losses.items()}
        terms.update({name: share * value for name, value in filter_terms.items()})
        backward(sum(terms.values()) * scale, retain_graph=i < chunks - 1)
        for name, value in terms.items():
            totals[name] = totals.get(name, 0.0) + float(value.detach())
    return totals
