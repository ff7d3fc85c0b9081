"""Checks shared by the loss and filter contract tests: the class-level rules every plug-in follows."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from torch import nn

from pixgen.errors import PixgenError
from pixgen.options import plugin_options, resolve_options


def check_identity(cls: type, name: str, base: type) -> None:
    """A subclass of ``base`` whose ``name`` is its registry name, with a docstring whose summary (what
    ``pixgen list`` shows) is one sentence on one line."""
    assert issubclass(cls, base), f"{cls.__name__} must subclass {base.__name__}"
    assert cls.name == name, f"{cls.__name__}.name is {cls.name!r}, registered as {name!r}"
    doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
    assert doc, f"{cls.__name__} needs its own docstring"
    summary = doc.split("\n\n")[0]
    assert "\n" not in summary and summary.endswith("."), f"{cls.__name__}: the docstring's first paragraph " \
        "must be a one-line summary"


def check_options(cls: type, name: str) -> None:
    """Options are keyword-only constructor arguments with defaults, each default reads back from its
    command-line text, ``spec_args`` name options, and unknown options or extra spec args are refused."""
    owner = next(klass for klass in cls.__mro__ if "__init__" in vars(klass))
    params = [] if owner is nn.Module else list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params), \
        f"{cls.__name__}.__init__ takes only keyword-only options (after a '*')"
    options = plugin_options(cls)
    assert set(cls.spec_args) <= set(options), f"{cls.__name__}.spec_args names a missing option"
    for key, param in options.items():
        assert param.annotation is not inspect.Parameter.empty, f"option {key!r} needs a type annotation"
        assert param.default is not inspect.Parameter.empty, f"option {key!r} needs a default"
        text = "none" if param.default is None else str(param.default)
        assert resolve_options(cls, name, (), {key: text}) == {key: param.default}
    with pytest.raises(PixgenError, match="has no option 'no_such_option'"):
        resolve_options(cls, name, (), {"no-such-option": "1"})
    with pytest.raises(PixgenError, match="takes at most"):
        resolve_options(cls, name, ("x",) * (len(cls.spec_args) + 1), {})


def one_line_error(call: Any, match: str) -> str:
    """Run ``call()``; it must raise one ``PixgenError`` whose one-line message matches ``match``."""
    with pytest.raises(PixgenError, match=match) as info:
        call()
    message = str(info.value)
    assert message and "\n" not in message, f"error message is not one line: {message!r}"
    return message
