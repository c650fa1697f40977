"""The metrics ``genbench score`` may be given, by name: torch-free, so that ``-m ''`` and names that are
all unknown are said before a model (and torch) loads."""

from __future__ import annotations

from attiqa.errors import ConfigError
from attiqa.scorers.zoo import is_checkpoint, suggest, zoo_entry, zoo_table


def default_metrics() -> list[str]:
    """Every scorer and named model in the project's registry that runs under its name alone: not
    ``temu-layer`` / ``exiqa``, which need a layer or a run (``-m temu-layer:20``) and were "skipped" by
    every `genbench score` without ``--metrics``."""
    return [name for name, entry in zoo_table().items() if entry.default_arg != ""]


def refuse_all_unknown(names: list[str]) -> None:
    """One line when no name of ``--metrics`` is a scorer (``NAME`` or ``NAME:ARG`` of the zoo) or a
    checkpoint (:func:`attiqa.scorers.zoo.is_checkpoint`): every one would be skipped and the run end with
    "no metric could score this run" after torch loaded. With one known name the others are skipped in
    turn, as before (the known ones score)."""
    unknown = [n for n in names if not is_checkpoint(n) and zoo_entry(n) is None]
    if names and len(unknown) == len(names):
        more = f" (and {len(unknown) - 1} more unknown)" if len(unknown) > 1 else ""
        raise ConfigError(
            f"--metrics: unknown scorer {unknown[0]!r}{suggest(unknown[0])}{more} — give one or more of "
            f"{', '.join(default_metrics())} (comma-separated), a scorer with its argument (temu-layer:N, "
            "exiqa:RUN) or a checkpoint path; nothing was scored"
        )
