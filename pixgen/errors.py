"""The one exception type users see: a message that names the problem and the fix."""

from __future__ import annotations


class PixgenError(Exception):
    """A user-facing error: bad input, a missing file or model. The CLI prints it without a traceback."""


class ModelUnavailableError(PixgenError):
    """A model's weights are not cached and cannot be downloaded (offline, or the download failed)."""
