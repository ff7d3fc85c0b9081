import pytest

from pixgen.config import RunConfig, check, load_yaml, parse_size, resolve_seed
from pixgen.errors import PixgenError
from pixgen.plan import plan_run


def test_size() -> None:
    assert parse_size("384x216") == (384, 216)
    assert parse_size(" 64 X 32 ") == (64, 32)
    assert parse_size((10, 20)) == (10, 20)


@pytest.mark.parametrize("bad", ["0x10", "10x0", "-5x10", "10", "axb", "10x10x10", "99999x10", ""])
def test_bad_sizes(bad: str) -> None:
    with pytest.raises(PixgenError, match="size"):
        parse_size(bad)


def test_seeds() -> None:
    assert resolve_seed(5) == 5
    assert resolve_seed("5") == 5
    assert resolve_seed("hello") == resolve_seed("hello") != resolve_seed("hello!")
    assert 0 <= resolve_seed("hello") < 2**32
    assert isinstance(resolve_seed(None), int)


def test_unknown_keys_become_plugin_options_and_are_checked() -> None:
    config = RunConfig.from_dict({"prompt": "x", "pixel-size": 8, "clip": "ViT-B-32:openai"})
    assert config.plugin_options == {"pixel_size": 8} and config.clip == ["ViT-B-32:openai"]
    plan_run(config)
    with pytest.raises(PixgenError, match="has no option 'colour'"):
        plan_run(RunConfig.from_dict({"prompt": "x", "colour": "red"}))


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"iterations": 0}, "iterations"),
        ({"iterations": "many"}, "iterations"),
        ({"cutn": -1}, "cutn"),
        ({"lr": float("nan")}, "lr"),
        ({"lr": -0.1}, "lr"),
        ({"device": "gpu"}, "device"),
        ({"init_image": "missing.png"}, "does not exist"),
        ({"drawer": "nope"}, "unknown drawer"),
        ({"prompt": "a | | b"}, "empty prompt"),
        ({"lr_drops": [150]}, "lr_drops"),
        ({"lr_warmup": 120}, "lr_warmup"),
        ({"cut_zoom": 1.5}, "cut_zoom .* between 0 and 1"),
        ({"cut_zoom": -0.1}, "cut_zoom"),
    ],
)
def test_plan_rejects(changes: dict, match: str) -> None:
    with pytest.raises(PixgenError, match=match):
        plan_run(RunConfig.from_dict({"prompt": "x", **changes}))


def test_check_alone_leaves_plugins_and_prompts_to_the_plan() -> None:
    config = RunConfig.from_dict({"prompt": "a red circle", "drawer": "nope"})
    check(config)  # plain settings only: no plug-in module is imported by pixgen.config
    with pytest.raises(PixgenError, match="unknown drawer"):
        plan_run(config)


def test_round_trip() -> None:
    config = RunConfig.from_dict({"prompt": "x", "iterations": 7, "pixel_size": 4})
    assert RunConfig.from_dict(config.to_dict()) == config
    assert config.to_dict(non_default=True) == {"prompt": "x", "iterations": 7, "pixel_size": 4}


def test_yaml_errors(tmp_path) -> None:
    with pytest.raises(PixgenError, match="does not exist"):
        load_yaml(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("prompt: [unclosed\n")
    with pytest.raises(PixgenError, match="not valid YAML"):
        load_yaml(bad)
    bad.write_text("- a list\n")
    with pytest.raises(PixgenError, match="mapping"):
        load_yaml(bad)


def test_presets_fill_in_under_explicit_settings() -> None:
    config = RunConfig.from_dict({"prompt": "x", "quality": "draft", "iterations": 5})
    assert config.iterations == 5 and config.cutn == 24 and config.size == "192x108"
    assert config.clip == ["ViT-B-16:openai"]
    square = RunConfig.from_dict({"prompt": "x", "quality": "best", "aspect": "square"})
    assert square.size == "576x576" and square.batches == 2
    shapes = RunConfig.from_dict({"prompt": "x", "preset": "shapes", "size": "64x64"})
    assert shapes.clip == ["shapes", "shapes_cnn@2"] and shapes.size == "64x64" and shapes.drawer == "vqgan:shapes"
    assert shapes.plugin_options == {"latent_levels": 4, "code_prior": "shapes"} and shapes.init_noise == "prior"
    # the preset's VQGAN-only options are left out when another drawer is chosen (unknown there)
    pixel = RunConfig.from_dict({"prompt": "x", "preset": "shapes", "drawer": "pixel"})
    assert pixel.drawer == "pixel" and pixel.plugin_options == {} and pixel.init_noise == "pixels"
    with pytest.raises(PixgenError, match="unknown preset 'nope'; choose one of: shapes"):
        RunConfig.from_dict({"preset": "nope"})
    with pytest.raises(PixgenError, match="unknown quality"):
        RunConfig.from_dict({"quality": "ultra"})
