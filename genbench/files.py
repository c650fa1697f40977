"""Reading the user's JSON files with one-line errors that name the file; paths in commands we suggest."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from attiqa.errors import ConfigError


def read_json(path: str | Path, what: str) -> Any:
    """Parse ``path`` (UTF-8, with or without a byte-order mark); a missing or malformed file is a
    :class:`ConfigError` naming it and ``what`` it is."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8-sig"))  # Notepad's byte-order mark too
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        reason = (
            f"{exc.msg}, line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else "not UTF-8 text"
        )
        raise ConfigError(f"{path}: the {what} is not valid JSON ({reason})") from None


def shell_arg(path: str | Path) -> str:
    """``path`` as it must be typed in a suggested command: quoted when it holds a space, a quote, ..."""
    return shlex.quote(str(path))
