import pytest

from pixgen.errors import PixgenError
from pixgen.options import resolve_options
from pixgen.registry import DRAWERS, Registry, Spec


@pytest.mark.parametrize(
    ("text", "name", "args", "weight"),
    [
        ("pixel", "pixel", (), None),
        ("vqgan:imagenet_f16_16384", "vqgan", ("imagenet_f16_16384",), None),
        ("ViT-B-32:openai@0.5", "ViT-B-32", ("openai",), 0.5),
        ("saturation@2", "saturation", (), 2.0),
        ("user@host:x", "user@host", ("x",), None),
    ],
)
def test_spec_parse(text, name, args, weight) -> None:
    spec = Spec.parse(text)
    assert (spec.name, spec.args, spec.weight) == (name, args, weight)
    assert Spec.parse(str(spec)) == spec


def test_spec_errors() -> None:
    with pytest.raises(PixgenError, match="empty plug-in name"):
        Spec.parse(":x")
    with pytest.raises(PixgenError, match="finite"):
        Spec.parse("a@inf")


def test_unknown_name_lists_choices() -> None:
    with pytest.raises(PixgenError) as err:
        DRAWERS.get("pixle")
    assert "pixle" in str(err.value) and "pixel" in str(err.value)


def test_missing_dependency_is_reported_when_chosen() -> None:
    registry = Registry("drawer", {"fancy": "no_such_module_xyz:Fancy"})
    assert registry.names() == ["fancy"]
    with pytest.raises(PixgenError, match="needs a package"):
        registry.get("fancy")


def test_options_are_checked_and_coerced() -> None:
    cls = DRAWERS.get("pixel")
    opts = resolve_options(cls, "drawer 'pixel'", ("rect",), {"pixel-size": "8"})
    assert opts == {"shape": "rect", "pixel_size": 8}
    with pytest.raises(PixgenError, match="has no option 'strokes'.*pixel_size"):
        resolve_options(cls, "drawer 'pixel'", (), {"strokes": "3"})
    with pytest.raises(PixgenError, match="cannot read 'big'"):
        resolve_options(cls, "drawer 'pixel'", (), {"pixel_size": "big"})
    with pytest.raises(PixgenError, match="at most 1"):
        resolve_options(cls, "drawer 'pixel'", ("rect", "extra"), {})
