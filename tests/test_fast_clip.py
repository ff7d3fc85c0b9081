"""pixgen.fast_clip: each speed-up computes what open_clip's own modules compute (values and input gradients)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from pixgen.fast_clip import PatchEmbedding, attention_kernels, sequence_first, speed_up


def tiny_tower(tiny_clip) -> nn.Module:
    import open_clip

    config, weights = tiny_clip
    model = open_clip.create_model(config.stem, pretrained=None)
    model.load_state_dict(torch.load(weights, weights_only=True))
    return model.visual.eval().requires_grad_(False)


def value_and_grad(tower: nn.Module, x: torch.Tensor, dtype: torch.dtype | None = None) -> tuple:
    x = x.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None), \
            attention_kernels(x.device, dtype or torch.float32):
        out = tower(x).float()
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    return out.detach(), x.grad


def test_the_sped_up_tower_matches_open_clips(tiny_clip) -> None:
    tower = tiny_tower(tiny_clip)
    fast = speed_up(copy.deepcopy(tower))
    assert isinstance(fast.conv1, PatchEmbedding) and fast.transformer.batch_first is False
    assert all(block.attn.batch_first is False for block in fast.transformer.resblocks)
    assert fast.state_dict().keys() == tower.state_dict().keys()  # weights still load by their names
    x = torch.rand(5, 3, 32, 32)
    (out, grad), (fast_out, fast_grad) = value_and_grad(tower, x), value_and_grad(fast, x)
    assert torch.allclose(out, fast_out, atol=1e-5) and torch.allclose(grad, fast_grad, atol=1e-6)


def test_in_bf16_the_math_attention_kernel_gives_the_same_result_up_to_rounding(tiny_clip) -> None:
    tower = tiny_tower(tiny_clip)
    fast = speed_up(copy.deepcopy(tower)).to(torch.bfloat16)
    x = torch.rand(4, 3, 32, 32)
    (out, grad), (fast_out, fast_grad) = value_and_grad(tower, x), value_and_grad(fast, x, torch.bfloat16)
    assert torch.allclose(out, fast_out, atol=0.05, rtol=0.05)
    assert torch.nn.functional.cosine_similarity(grad.flatten(), fast_grad.flatten(), dim=0) > 0.99


def test_patch_embedding_is_the_convolution_and_falls_back_for_partial_patches() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 6, 4, 4, bias=True)
    patches = PatchEmbedding.of(conv)
    assert patches.weight is conv.weight and patches.bias is conv.bias  # shared, not copied
    for size in (16, 18):  # 18: not whole patches, the convolution itself
        x = torch.rand(2, 3, size, size, requires_grad=True)
        want = conv(x)
        (g,) = torch.autograd.grad(want.sum(), x)
        got = patches(x)
        (h,) = torch.autograd.grad(got.sum(), x)
        assert got.shape == want.shape and torch.allclose(got, want, atol=1e-5) and torch.allclose(g, h, atol=1e-6)


OTHER_CONVS = [nn.Conv2d(3, 8, 3, 2, padding=1), nn.Conv2d(3, 8, 4, 2), nn.Conv2d(4, 8, 2, 2, groups=2)]


@pytest.mark.parametrize("conv", OTHER_CONVS)
def test_other_convolutions_are_not_patch_embeddings(conv: nn.Conv2d) -> None:
    assert not PatchEmbedding.fits(conv)
    tower = nn.Module()
    tower.conv1 = conv
    assert speed_up(tower).conv1 is conv


def test_towers_without_attention_blocks_are_left_alone() -> None:
    tower = nn.Sequential(nn.Conv2d(3, 4, 3))
    sequence_first(tower)
    assert speed_up(tower) is tower and isinstance(tower[0], nn.Conv2d)


def test_attention_kernels_only_change_reduced_precision_on_cpu() -> None:
    import contextlib

    assert isinstance(attention_kernels(torch.device("cpu"), torch.float32), contextlib.nullcontext)
    assert isinstance(attention_kernels(torch.device("cuda"), torch.bfloat16), contextlib.nullcontext)
    assert not isinstance(attention_kernels(torch.device("cpu"), torch.bfloat16), contextlib.nullcontext)


def test_compile_that_fails_stops_the_run_with_one_line_and_the_image_saved(clip_spec, tmp_path) -> None:
    """A real compile failure (inductor pointed at a C++ compiler that does not exist), through the CLI."""
    from click.testing import CliRunner

    from pixgen.cli import main

    args = ["run", "--prompt", "a red circle", "--clip", clip_spec, "--size", "32x32", "--cutn", "2",
            "--iterations", "2", "--device", "cpu", "--compile", "--out", str(tmp_path / "out")]
    with torch._inductor.config.patch({"cpp.cxx": ("no-such-compiler-pixgen",)}):
        result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "--compile failed" in errors[0] and "run without --compile" in errors[0]
    assert "Traceback" not in result.output and (tmp_path / "out" / "output.png").is_file()


@pytest.mark.slow
def test_a_compiled_tower_gives_the_eager_result_and_gradient(clip_spec) -> None:
    """``--compile`` for real (inductor on this CPU, about 20 s for the tiny tower)."""
    from pixgen.perceptors import load_perceptor, parse_clip_spec

    spec = parse_clip_spec(clip_spec)
    eager, compiled = load_perceptor(spec, "cpu"), load_perceptor(spec, "cpu", compile=True)
    assert load_perceptor(spec, "cpu", compile=True) is compiled and compiled.model is not eager.model
    x = torch.rand(4, 3, 32, 32)
    grads = []
    for perceptor in (eager, compiled):
        xi = x.clone().requires_grad_(True)
        out = perceptor.encode_image(xi)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        grads.append((out.detach(), xi.grad))
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-5) and torch.allclose(grads[0][1], grads[1][1], atol=1e-6)
