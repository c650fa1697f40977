"""Reading the user's JSON files with one-line errors that name the file; paths in commands we suggest."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

from attiqa.errors import AttiqaError, ConfigError

SCORES_DIR = "scores"  # a run's score files (genbench.run_scores), read by `genbench agree`


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


def refuse_out_among(out_dir: Path, folders: list[tuple[Path, str, bool]], example: str) -> None:
    """Refuse a run folder equal to one of ``folders`` (the path, what it is, whether its subfolders are
    refused too): the run's files (manifest, ``prefs.csv``, later ``scores/`` and ``agreement/``) would mix
    with the dataset's, and the next import with other options would replace this one in the user's copy
    of the data. The one check of both imports; links are resolved (a link into a dataset is inside it)."""
    out = Path(os.path.abspath(out_dir)).resolve()
    for folder, what, subfolders in folders:
        where = Path(os.path.abspath(folder)).resolve()
        if out == where or (subfolders and out.is_relative_to(where)):
            raise AttiqaError(
                f"--out {out_dir} is {'' if out == where else 'inside '}{what} {folder} — a run's files "
                "(manifest, prefs.csv, scores/, agreement/) do not belong among the dataset's: give a run "
                f"folder outside it, e.g. --out {example}"
            )
