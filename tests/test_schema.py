"""One schema for every setting (issue 38): the values of a settings file, the CLI's flags and ``pixgen.run()``
are checked against RunConfig's annotations (and a plug-in's options against its own) with one line naming the
key, the value and what is expected, before any model loads; values that fit are converted the same way."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

import pixgen
from pixgen.cli import main
from pixgen.config import RunConfig, check, resolve_seed
from pixgen.errors import PixgenError
from pixgen.io import read_png_metadata
from pixgen.schema import coerce_settings, convert

# (setting, value as YAML reads it, what the one line says)
REFUSED = [
    ("lr_drops", "abc", "lr_drops: cannot read 'abc' as a finite number or a list of them"),
    ("lr_drops", [50, "x"], "lr_drops: cannot read 'x' as a finite number or a list of them"),
    ("iterations", 3.7, "iterations: cannot read 3.7 as a whole number"),
    ("iterations", True, "iterations: cannot read True as a whole number"),
    ("cutn", "many", "cutn: cannot read 'many' as a whole number"),
    ("augment", "maybe", "augment: cannot read 'maybe' as true or false"),
    ("augment", 2, "augment: cannot read 2 as true or false"),
    ("overwrite", [], "overwrite: cannot read [] as true or false"),
    ("cut_zoom", float("nan"), "cut_zoom: cannot read nan as a finite number"),
    ("lr", "fast", "lr: cannot read 'fast' as a finite number or nothing (null)"),
    ("prompt", True, "prompt: cannot read True as text"),  # YAML's `prompt: yes`
    ("prompt", {"a": 1}, "prompt: cannot read {'a': 1} as text"),
    ("size", [256, 256], "size: cannot read [256, 256] as text"),
    ("seed", True, "seed: cannot read True as a whole number or text"),
    ("plugin_options", 7, "plugin_options: cannot read 7 as a mapping of name: value"),
    ("plugin_options", [1], "plugin_options: cannot read [1] as a mapping"),
    ("drawer", 5, "unknown drawer '5'; choose one of"),  # a number is the text '5': no such plug-in
    ("loss", 5, "unknown loss '5'; choose one of"),
    ("filters", 5, "unknown filter '5'; choose one of"),
    ("pixel_size", [1, 2], "drawer 'pixel' option 'pixel_size': cannot read [1, 2] as a whole number"),
    ("pixel_size", 2.5, "option 'pixel_size': cannot read 2.5 as a whole number"),
]
ACCEPTED = [
    ("prompt", 12345, "12345"),  # YAML's `prompt: 12345` means the text
    ("out", 5, "5"),
    ("out", Path("some/dir"), "some/dir"),
    ("drawer", "pixel", "pixel"),
    ("augment", "false", False),
    ("augment", "No", False),
    ("augment", "on", True),
    ("augment", 0, False),
    ("iterations", "12", 12),
    ("iterations", 12.0, 12),
    ("iterations", "1e3", 1000),  # YAML reads 1e3 as text
    ("lr", "0.5", 0.5),
    ("lr", None, None),
    ("lr_drops", 50, [50.0]),
    ("lr_drops", ["25", 50], [25.0, 50.0]),
    ("clip", "ViT-B-32:openai", ["ViT-B-32:openai"]),
    ("filters", "lookup,tiler", ["lookup", "tiler"]),
    ("seed", -5, -5),
    ("seed", "-5", -5),
    ("seed", "hello", "hello"),
]


@pytest.fixture
def never(tmp_path: Path) -> dict[str, Any]:
    """Settings whose CLIP would fail as it loads (no such weights file): a setting refused with its own message
    was refused before any model loaded. ``out`` must stay absent."""
    return {"prompt": "a cat", "clip": [f"ViT-B-32:{tmp_path / 'never_loaded.pt'}"], "size": "8x8",
            "iterations": 1, "cutn": 1, "device": "cpu", "out": str(tmp_path / "never")}


def _cli(args: list[str]) -> Any:
    result = CliRunner().invoke(main, args)
    assert "Traceback" not in result.output and not isinstance(result.exception, (TypeError, AttributeError))
    return result


def _one_line(result: Any, message: str) -> None:
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1, result.output
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert message in lines[0], result.output


@pytest.mark.parametrize(("key", "value", "message"), REFUSED)
def test_refused_in_a_settings_file(never: dict, tmp_path: Path, key: str, value: Any, message: str) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text(yaml.safe_dump({**never, key: value}))
    _one_line(_cli(["run", "--config", str(config)]), message)
    assert not Path(never["out"]).exists()


@pytest.mark.parametrize(("key", "value", "message"), REFUSED)
def test_refused_by_the_api(never: dict, key: str, value: Any, message: str) -> None:
    with pytest.raises(PixgenError) as caught:
        pixgen.run(**{**never, key: value}, progress=False)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not Path(never["out"]).exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--iterations", "3.7"], "iterations: cannot read '3.7' as a whole number"),
        (["--cutn", "x"], "cutn: cannot read 'x' as a whole number"),
        (["--lr-drops", "abc"], "lr_drops: cannot read 'abc' as a finite number or a list of them"),
        (["--cut-zoom", "nan"], "cut_zoom: cannot read 'nan' as a finite number"),
        (["--pixel-size", "[1,2]"], "option 'pixel_size': cannot read '[1,2]' as a whole number"),
        (["--drawer", "vector", "--fill", "maybe"], "drawer 'vector' option 'fill': cannot read 'maybe' as true"),
    ],
)
def test_refused_as_flags_with_the_same_words(never: dict, flags: list[str], message: str) -> None:
    args = ["run", "--prompt", "a cat", "--clip", never["clip"][0], "--size", "8x8", "--out", never["out"]]
    _one_line(_cli([*args, *flags]), message)


@pytest.mark.parametrize(("key", "value", "expected"), ACCEPTED)
def test_accepted_and_converted(key: str, value: Any, expected: Any) -> None:
    config = RunConfig.from_dict({"prompt": "x", key: value})
    check(config)
    assert getattr(config, key) == expected and type(getattr(config, key)) is type(expected)


def test_the_api_refuses_bytes_and_a_file_name_for_settings(never: dict) -> None:
    with pytest.raises(PixgenError, match=r"prompt: cannot read b'a cat' as text .*not bytes"):
        pixgen.run(b"a cat", **{k: v for k, v in never.items() if k != "prompt"}, progress=False)
    with pytest.raises(PixgenError, match="settings must be a mapping .*load_yaml"):
        pixgen.run(config="settings.yaml", progress=False)
    with pytest.raises(PixgenError, match="setting name 5 is not text"):
        RunConfig.from_dict({5: "x"})


def test_a_runconfig_built_directly_is_checked_too() -> None:
    config = RunConfig(prompt="x", iterations="7", augment="off", lr_drops=["50"])  # type: ignore[arg-type]
    check(config)
    assert (config.iterations, config.augment, config.lr_drops) == (7, False, [50.0])
    with pytest.raises(PixgenError, match="augment: cannot read 'sometimes'"):
        check(RunConfig(prompt="x", augment="sometimes"))  # type: ignore[arg-type]


def test_fields_added_later_are_covered_by_their_annotation() -> None:
    @dataclasses.dataclass
    class Later(RunConfig):
        wobble: bool = False
        steps_per_frame: int = 3
        names: list[str] = dataclasses.field(default_factory=list)

    assert coerce_settings(Later, {"wobble": "yes", "steps-per-frame": "4", "names": 7}) == {
        "wobble": True, "steps_per_frame": 4, "names": ["7"]}
    with pytest.raises(PixgenError, match="steps_per_frame: cannot read 4.5 as a whole number"):
        coerce_settings(Later, {"steps_per_frame": 4.5})


def test_unannotated_and_own_types_pass_to_their_owner() -> None:
    class Colour:
        pass

    marker = Colour()
    assert convert(marker, Colour, "colour") is marker
    assert convert([1, "a"], Any, "anything") == [1, "a"]
    with pytest.raises(PixgenError, match="x: cannot read 'b' as one of 'a'"):
        from typing import Literal

        convert("b", Literal["a"], "x")


def test_a_negative_seed_is_the_same_in_the_cli_the_file_and_the_api(quick: dict, tmp_path: Path) -> None:
    assert resolve_seed(-5) == resolve_seed("-5") == resolve_seed(" -5 ") == -5 % 2**63
    settings = {**quick, "iterations": 2, "size": "16x16", "cutn": 2}
    flag_args = ["run", "--prompt", settings["prompt"], "--clip", settings["clip"][0], "--size", "16x16",
                 "--iterations", "2", "--cutn", "2", "--device", "cpu", "--seed", "-5"]
    result = _cli([*flag_args, "--out", str(tmp_path / "flag")])
    assert result.exit_code == 0, result.output
    config = tmp_path / "c.yaml"  # also: a number as the prompt's text, an --out that YAML reads as a number
    config.write_text(yaml.safe_dump({**settings, "seed": -5, "prompt": 12345, "out": 5, "augment": "false"}))
    assert _cli(["run", "--config", str(config)]).exit_code == 0
    written = yaml.safe_load((tmp_path / "5" / "settings.yaml").read_text())
    assert written["prompt"] == "12345" and written["augment"] is False
    pixgen.run(**{**settings, "seed": -5}, out=str(tmp_path / "api"), progress=False)
    seeds = {read_png_metadata(tmp_path / d / "output.png")["pixgen_seed_used"] for d in ("flag", "api")}
    assert seeds == {str(-5 % 2**63)}
    flag, api = (np.asarray(Image.open(tmp_path / d / "output.png")) for d in ("flag", "api"))
    assert np.array_equal(flag, api)
