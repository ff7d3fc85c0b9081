import math

import pytest

from pixgen.errors import PixgenError
from pixgen.prompts import Prompt, parse_prompt, parse_prompts, parse_unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a cat", Prompt("a cat")),
        ("a cat:2", Prompt("a cat", 2.0)),
        ("a cat:-1:0.9", Prompt("a cat", -1.0, 0.9)),
        ("  a cat : 0.5 ", Prompt("a cat", 0.5)),
        ("a 4:3 poster", Prompt("a 4:3 poster")),
        ("a 4:3 poster:2", Prompt("a 4:3 poster", 2.0)),
        ("12:30", Prompt("12:30")),
        ("http://example.com:8080/cat.png", Prompt("http://example.com:8080/cat.png")),
        ("https://example.com/cat.png:0.5", Prompt("https://example.com/cat.png", 0.5)),
        ("room 101 :2", Prompt("room 101", 2.0)),
        ("x:1e2", Prompt("x", 100.0)),
        ("ratio: high", Prompt("ratio: high")),
    ],
)
def test_parse_prompt(text: str, expected: Prompt) -> None:
    assert parse_prompt(text) == expected


def test_default_stop_is_minus_infinity() -> None:
    assert parse_prompt("a cat:3").stop == -math.inf


def test_pipes_split_prompts() -> None:
    prompts = parse_prompts("a cat:2 | blurry:-1:0.9|a dog")
    assert prompts == [Prompt("a cat", 2.0), Prompt("blurry", -1.0, 0.9), Prompt("a dog")]
    assert parse_prompts(["a | b", "c"]) == [Prompt("a"), Prompt("b"), Prompt("c")]
    assert parse_prompts(None) == []


@pytest.mark.parametrize("bad", ["", "   ", ":2", " :1:2", "a || b", "a |", "a:inf", "a:nan", "a:1:-inf"])
def test_bad_prompts_are_errors(bad: str) -> None:
    with pytest.raises(PixgenError):
        parse_prompts(bad)


@pytest.mark.parametrize("prompt", [Prompt("a cat", 2.0, 0.5), Prompt("room 101", 3.0), Prompt("a 4:3 poster")])
def test_str_round_trips(prompt: Prompt) -> None:
    assert parse_prompt(str(prompt)) == prompt


def test_units() -> None:
    assert parse_unit("50%", 300) == 150
    assert parse_unit("20 iterations", 300) == 20
    assert parse_unit("20i", 300) == 20
    assert parse_unit(7, 300) == 7
    with pytest.raises(PixgenError):
        parse_unit("ten", 300)
