"""User-facing errors: one line that names the file (or thing) and says what to do.

The CLI catches :class:`AttiqaError` and prints its message without a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'sac'?)`` for the choice closest to a misspelt ``value``, else "" — the tail of a
    one-line error that already names the valid values."""
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class AttiqaError(Exception):
    """An error whose message is meant for the user, printed as one line by the CLI."""


class ImageLoadError(AttiqaError):
    """An image file could not be decoded (missing, empty, truncated, not an image, too large)."""

    def __init__(self, path: str | Path, reason: str, fix: str = "") -> None:
        self.path = str(path)
        self.reason = reason
        self.fix = fix
        msg = f"{self.path}: {reason}"
        if fix:
            msg += f" — {fix}"
        super().__init__(msg)

    # survive pickling between DataLoader worker processes
    def __reduce__(self) -> tuple[type[ImageLoadError], tuple[str, str, str]]:
        return (type(self), (self.path, self.reason, self.fix))


class ConfigError(AttiqaError):
    """A configuration file or option is invalid.

    ``where`` (the file, or the thing the text is about) is kept apart from the text, so a caller that
    learns the file later (:func:`attiqa.config.load_config`) names it without rewriting the message.
    """

    def __init__(self, text: str, where: str | Path | None = None) -> None:
        self.text = text
        self.where = None if where is None else str(where)
        super().__init__(f"{self.where}: {text}" if self.where else text)

    # keep ``where`` apart through pickling
    def __reduce__(self) -> tuple[type[ConfigError], tuple[str, str | None]]:
        return (type(self), (self.text, self.where))


class ModelLoadError(AttiqaError):
    """A model (checkpoint, CLIP weights, backbone weights) could not be loaded."""
