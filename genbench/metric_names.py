"""The metrics ``genbench score`` may be given, by name: torch-free, so that ``-m ''``, an unknown name or
a checkpoint path that is not there is said before a model (and torch) loads."""

from __future__ import annotations

from pathlib import Path

from attiqa.errors import ConfigError
from attiqa.scorers.zoo import is_checkpoint, suggest, zoo_entry, zoo_table


def default_metrics() -> list[str]:
    """Every scorer and named model in the project's registry that runs under its name alone: not
    ``temu-layer`` / ``exiqa``, which need a layer or a run (``-m temu-layer:20``) and were "skipped" by
    every `genbench score` without ``--metrics``."""
    return [name for name, entry in zoo_table().items() if entry.default_arg != ""]


def refuse_unknown(names: list[str]) -> None:
    """One line, before a model (and torch) loads, when a name of ``--metrics`` is no scorer (``NAME`` or
    ``NAME:ARG`` of the zoo) and no checkpoint (:func:`attiqa.scorers.zoo.is_checkpoint`), or names a
    checkpoint file that is not there: a typo. Among known names a typo was "skipped" after the others had
    scored (minutes), and names that were all unknown ended in "no metric could score this run" after torch
    loaded. A known metric whose weights are missing is still skipped in turn, as before."""
    unknown = [n for n in names if not is_checkpoint(n) and zoo_entry(n) is None]
    if unknown:
        more = f" (and {len(unknown) - 1} more unknown)" if len(unknown) > 1 else ""
        raise ConfigError(
            f"--metrics: unknown scorer {unknown[0]!r}{suggest(unknown[0])}{more} — give one or more of "
            f"{', '.join(default_metrics())} (comma-separated), a scorer with its argument (temu-layer:N, "
            "exiqa:RUN) or a checkpoint path; nothing was scored"
        )
    absent = [n for n in names if zoo_entry(n) is None and not Path(n).exists()]
    if absent:
        more = f" (and {len(absent) - 1} more)" if len(absent) > 1 else ""
        raise ConfigError(
            f"--metrics: {absent[0]}{more}: no such checkpoint file — check the path (a checkpoint is a "
            ".safetensors file written by attiqa train or export); nothing was scored"
        )
