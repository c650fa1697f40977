"""``versions.json``: the :attr:`Distortion.version` each type's images in an output folder were made with.

Why: a set resumed after the library changed a type's bytes kept the images an earlier version made beside new
ones, without a word. Shared by graded sets (:mod:`attiqa.distortions.graded`: `attiqa degrade`, a train's
degrade stage) and ExIQA multi-distortion sets (:mod:`attiqa.distortions.multi`: `attiqa make-distorted`), so
both check and record alike: a type of another version is made again, or refused in one line when the folder
holds images of it the command would not make again; a folder made before the record is told once that its
images cannot be checked, and its types recorded at this library's version once the run that tells it ends.
The record is written only when it changes (a library caller's finished set on read-only storage resumes).

A changed type's images are deleted, all of them, before the record names its new version and before any
image is made: a run stopped midway (Ctrl-C, kill -9) leaves every image of the type on disk of the new
version, so its next run makes only those still missing. (Overwritten one by one under the old number, they
were all made again by every rerun: a job stopped more often than the remake takes never finished it.)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import attiqa.distortions.kadid  # noqa: F401  (registers the KADID-10k types: DISTORTIONS is complete)
from attiqa.distortions.basic import DISTORTIONS
from attiqa.errors import AttiqaError
from attiqa.io.atomic import write_json_atomic

VERSIONS_FILE = "versions.json"
NEW_OUT_FIX = "write to a new --out folder"
"""How `attiqa degrade` and `make-distorted` are pointed at a new folder, in the advice of this module's
messages; a train's degrade stage names its own option (``degrade.out`` in its config) instead."""


def read_versions(path: Path, new_out: str = NEW_OUT_FIX) -> dict[str, int | None] | None:
    """``versions.json``'s ``{type: version or None}``; None when there is no such file. ``new_out``: how
    the caller's command is pointed at a new folder (:data:`NEW_OUT_FIX`), for the advice of its refusal."""
    if not path.exists():
        return None
    try:
        versions = json.loads(path.read_text(encoding="utf-8"))["versions"]
        if not isinstance(versions, dict) or not all(
            v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in versions.values()
        ):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError):
        raise AttiqaError(
            f"{path}: unreadable record of the distortion versions — delete it (the folder's images are then "
            f"taken as not checkable) or {new_out}"
        ) from None
    return versions


@dataclass
class VersionRecord:
    """A folder's ``versions.json`` through one run: what it holds (``on_disk``; None: no file), what it is
    to hold while this run makes images (``versions``), the types the run tells about (``told``: type -> its
    old entry, a number — another version, its images made again — or None — not known, its images not
    checkable) and the images of another version (``stale``: deleted by :meth:`start`). A type not known
    keeps its ``null`` until the run ends: one stopped before tells it again."""

    path: Path
    on_disk: dict[str, int | None] | None
    versions: dict[str, int | None]
    told: dict[str, int | None]
    stale: list[Path]

    @property
    def redone(self) -> dict[str, tuple[int, int]]:
        """Type -> (old, new) version of the types whose images are made again."""
        return {k: (old, DISTORTIONS[k].version) for k, old in sorted(self.told.items()) if old is not None}

    @property
    def unchecked(self) -> list[str]:
        """The types whose images' version is not known (a folder made before the record)."""
        return sorted(k for k, old in self.told.items() if old is None)

    def start(self) -> None:
        """Once every check passed, before any image is made: the images of another version deleted (each is
        one the run makes again: :func:`check_versions` refused the others), then the record written, their
        types at this library's version — none of their old images is left to be taken for one."""
        for image in self.stale:
            image.unlink(missing_ok=True)
        self.versions.update({k: DISTORTIONS[k].version for k in self.redone})
        self.save()

    def save(self, ended: bool = False) -> None:
        """Write the record if it changes (:meth:`start`), and as the run ends (``ended``): each type not
        known then at this library's version (told once)."""
        versions = dict(self.versions)
        if ended:
            versions.update({k: DISTORTIONS[k].version for k in self.unchecked})
        if versions != self.on_disk:
            write_json_atomic(self.path, {"versions": versions})
            self.on_disk = versions


def check_versions(
    folder: Path,
    images: Mapping[str, Sequence[Path]],
    targets: Collection[Path],
    made: Iterable[str],
    had_set: bool,
    delete: Callable[[str], str],
    new_out: str = NEW_OUT_FIX,
) -> VersionRecord:
    """The record of ``folder`` checked against this library; nothing written.

    ``images``: the folder's images by the type they hold (a type this library knows; an image of a mix under
    each of its types); ``targets``: the images this run makes, or keeps when current; ``made``: the types it
    makes; ``had_set``: the folder held a set before this run (a set made before the record when there is
    none). A type of another version with an image not among ``targets`` is refused (it would stay):
    ``delete(type)`` names its images for the fix, ``new_out`` how the caller's command is pointed at a new
    folder (a train's degrade stage: its ``degrade.out``)."""
    path = folder / VERSIONS_FILE
    on_disk = read_versions(path, new_out)
    told: dict[str, int | None] = {}
    stale: list[Path] = []
    for kind, paths in sorted(images.items() if on_disk is not None or had_set else ()):  # else a new folder
        old, now = (on_disk or {}).get(kind), DISTORTIONS[kind].version
        if old == now:
            continue
        left = [p for p in paths if p not in targets]
        if old is not None and left:
            raise AttiqaError(
                f"{folder}: {len(paths)} image(s) of {kind} were made by another version of it ({old}, now "
                f"{now}), {len(left)} of them not by this command (e.g. {left[0].name}) — delete them "
                f"({delete(kind)}) and rerun to make them again, or {new_out}"
            )
        told[kind] = old
        if old is not None:
            stale += paths
    versions = {**(on_disk or {}), **{k: DISTORTIONS[k].version for k in made}, **told}
    return VersionRecord(path, on_disk, versions, told, stale)


def say_versions(record: VersionRecord | None, out: Path, new_out: str = NEW_OUT_FIX) -> None:
    """One line for the types whose images another version made (made again), one for a set made before the
    versions were recorded (its images cannot be checked: said this once, then taken as this version's).
    ``new_out``: how the command is pointed at a new folder (a train's degrade stage: its ``degrade.out``)."""
    from attiqa.progress import console, plain, plain_name

    if record is None:
        return
    if redone := record.redone:
        kinds = ", ".join(f"{plain(k)} (version {old} -> {new})" for k, (old, new) in redone.items())
        console.print(f"[yellow]made again: the images of {kinds}, changed since {plain_name(out)} was made")
    if unchecked := record.unchecked:
        changed = [k for k in unchecked if DISTORTIONS[k].version > 1]
        since = f"; {', '.join(map(plain, changed))} changed since" if changed else ""
        kinds = ", ".join(map(plain, unchecked))
        console.print(
            f"[yellow]{plain_name(out)}: made before its distortions' versions were recorded — its images of "
            f"{kinds} cannot be checked against this version's{since}: to be sure, {new_out} (said this "
            "once: they are taken as this version's from now on)"
        )
