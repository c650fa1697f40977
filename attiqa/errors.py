"""User-facing errors: one line that names the file (or thing) and says what to do.

The CLI catches :class:`AttiqaError` and prints its message without a traceback.
"""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable, Mapping
from pathlib import Path


def did_you_mean(
    value: str,
    choices: Iterable[str],
    *,
    n: int = 1,
    cutoff: float = 0.6,
    aliases: Mapping[str, str] | None = None,
) -> str:
    """`` (did you mean 'sac'?)`` (or ``'a', 'b' or 'c'`` for ``n`` > 1) for the choices closest to a misspelt
    ``value``, else "" — the tail of a one-line error, worded the same by every command. ``aliases`` (alias
    -> name) are matched too but suggested as the name they stand for."""
    aliases = aliases or {}
    close = difflib.get_close_matches(value, [*choices, *aliases], n=n, cutoff=cutoff)
    close = list(dict.fromkeys(aliases.get(c, c) for c in close))
    if not close:
        return ""
    said = [repr(c) for c in close]
    either = said[0] if len(said) == 1 else f"{', '.join(said[:-1])} or {said[-1]}"
    return f" (did you mean {either}?)"


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxtuple, _SHORT.maxdict = 2, 4, 4, 4
_SHORT.maxstring = _SHORT.maxother = 100


def shown(value: object) -> str:
    """``repr(value)`` cut short (``[[…], …]``) for a one-line error about a value read from a file: a YAML
    config's value may be an alias bomb (1 KB of text, 43 million strings), whose whole repr took 40 s and
    2.4 GB and printed 351 MB."""
    text = _SHORT.repr(value)
    return text if len(text) <= 120 else f"{text[:119]}…"


class AttiqaError(Exception):
    """An error whose message is meant for the user, printed as one line by the CLI."""


class EveryProcessError(AttiqaError):
    """An error every process of a torchrun job meets alike (they read the same files: a resume's saved
    settings, a config), so the command line prints it once, on rank 0 (each printed it). Raised outside
    :func:`attiqa.sharding.alike_on_every_process` nothing checks that the others met it too."""


class Said(AttiqaError):
    """An error the processes of a torchrun job have already said, each that met it on its own line (or rank 0
    once for all, when all met it alike): the command line adds nothing and exits 2
    (:func:`attiqa.sharding.alike_on_every_process`)."""


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


class ConfigError(EveryProcessError):
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
