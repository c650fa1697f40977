"""Graded degradation sets: every source photo under every chosen distortion at chosen levels.

Widens an unlabelled photo collection so that the five attributes vary (used by the demo and by the
default-model recipe before pseudo-labelling). Idempotent and resumable: existing outputs are skipped,
each file is written atomically, unreadable sources are skipped and reported.

Output names (ours): each source gets one name, kept in ``sources.json`` (name -> absolute source path)
so it never changes on a rerun, even when sources are added (or the collection is moved: a recorded
path that no longer exists hands its name to a new path with the same file name; or copied, the original
still there: a recorded path no longer among the sources hands its name to a file of the same name and the
same bytes). The name is the
file's stem, made safe (no ``__``, which separates the name from the distortion; not-UTF-8 bytes,
separators and control characters become ``_``; at most 100 bytes); when another source already has it
(``A/x.jpg`` and ``B/x.png``, or ``X.jpg`` and ``x.jpg`` on a case-insensitive disk) ``_1``, ``_2``, ...
is appended, skipping suffixes that are other sources' own names (``B/x_1.jpg``). Names are thus the
same as before this rule wherever the old rule (first keeps the stem, then ``_1``, ...) made no collision.

Versions: ``versions.json`` records the :attr:`Distortion.version` each type's images were made with; a
changed type is made again on a rerun, or refused in one line when the folder holds images of it this run
would not make again; a folder made before the record is told once (:mod:`attiqa.distortions.versions`).
Every check (settings, versions) comes before the first write: a refused run leaves the folder as it was.

Sources replaced in place: :data:`SOURCES_RECORD` (one JSON line per source, appended once its images are
all on disk: its absolute path and :func:`attiqa.io.file_identity.file_identity`) tells a source whose file
changed since; its images are made again (each replaced atomically) and the rerun says so in one line. A
source of a folder made before the record is taken as it is now (its images kept, its identity recorded).
"""

from __future__ import annotations

import filecmp
import json
import os
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

import attiqa.distortions.kadid  # noqa: F401  (registers the KADID-10k types: DISTORTIONS is complete)
from attiqa.distortions.basic import DISTORTIONS, apply_distortion, get_distortion
from attiqa.distortions.defaults import DEFAULT_GRADED
from attiqa.distortions.versions import NEW_OUT_FIX, VersionRecord, check_versions
from attiqa.errors import AttiqaError, ImageLoadError
from attiqa.io.atomic import remove_orphan_temps, write_json_atomic
from attiqa.io.file_identity import (
    SOURCES_RECORD,
    append_sources,
    changed_words,
    file_identity,
    read_sources,
)
from attiqa.io.formats import format_name
from attiqa.io.images import load_image, output_damage, save_image, shrink_longer
from attiqa.io.names import portable_stem
from attiqa.io.run_meta import check_meta

if TYPE_CHECKING:
    from collections.abc import Callable

    from attiqa.progress import Advance


@dataclass
class GradedResult:
    written: list[Path] = field(default_factory=list)
    existing: list[Path] = field(default_factory=list)
    failed: list[ImageLoadError] = field(default_factory=list)
    damaged: list[tuple[Path, str]] = field(default_factory=list)  # an earlier run's, cut short: made again
    changed: list[Path] = field(default_factory=list)  # sources replaced since an earlier run: made again
    versions: VersionRecord | None = None  # what the folder's versions.json holds and tells (say_versions)

    @property
    def paths(self) -> list[Path]:
        return sorted(self.written + self.existing)


NAMES_FILE = "sources.json"
_MAX_STEM_BYTES = 100  # + "__saturation_down_5.png" and a hash stays far below the usual 255-byte limit


def safe_stem(stem: str) -> str:
    """A portable stem (see :func:`attiqa.io.names.portable_stem`) without ``__`` (which separates the name
    from the distortion) and not hidden (no leading ``.``); an ordinary stem comes back unchanged."""
    s = re.sub(r"_{2,}", "_", portable_stem(stem, _MAX_STEM_BYTES)).lstrip(".")
    return s or "image"


def _read_names(path: Path, new_out: str = NEW_OUT_FIX) -> dict[str, str]:
    """``sources.json``'s names ({} without one); ``new_out``: the caller's way to a new folder, for the fix
    of its refusal (a train's degrade stage was told "use another --out folder", an option train lacks)."""
    if not path.exists():
        return {}
    try:
        names = json.loads(path.read_text(encoding="utf-8"))["names"]
        if not isinstance(names, dict) or not all(isinstance(v, str) for v in names.values()):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError):
        raise AttiqaError(f"{path}: unreadable list of source names — restore it, or {new_out}") from None
    return names


def is_graded_set(folder: Path) -> bool:
    """Whether ``folder`` holds a graded set (its readable ``sources.json``): an earlier `attiqa degrade`'s
    output, whose images a search of a folder above it must not take for photos (they were degraded
    again, and each original copied under a second name)."""
    try:
        return bool(_read_names(folder / NAMES_FILE))
    except AttiqaError:  # a user's own sources.json: not ours
        return False


SET_DEPTH = 3
"""Folders above an image searched for the set it belongs to: a graded set's own (its files lie flat), a
make-distorted set's ``images/r<round>/`` two above."""


def _made_set(folder: Path, named: set[str], sets: dict[tuple[Path, str], bool]) -> tuple[Path, str] | None:
    """The earlier output (folder, the command that made it) an image in ``folder`` belongs to, read from its
    own record (``sources.json``; make-distorted's ``meta.json``); None when none is, or a folder named as a
    source is met first (the set named, or a folder inside it: read). ``sets``: each record read once, kept
    by (folder, command) — a graded set's folder is one only for its own images, so a folder met first above
    another's images (``photos/degraded/extra``) is still read as a graded set for its own (was: taken for
    photos, by the order the images were found in)."""
    from attiqa.distortions.multi import is_distorted_set

    d = folder
    for depth in range(SET_DEPTH):
        if os.path.realpath(d) in named:
            return None
        for by, test in (("degrade", is_graded_set), ("make-distorted", is_distorted_set)):
            if by == "degrade" and depth:  # a graded set's images lie flat in it
                continue
            if (d, by) not in sets:
                sets[d, by] = test(d)
            if sets[d, by]:
                return d, by
        d = d.parent
    return None


def without_graded_sets(files: list[Path], sources: Sequence[str | Path], say: bool = True) -> list[Path]:
    """``files`` (found in ``sources``) without the images of a graded set below a source folder (an
    earlier `degrade photos -o photos/degraded`) or of a make-distorted set (`make-distorted photos -o
    photos/md`), each set left out said in one line: a later `degrade photos -o other`, `make-distorted` or
    a train's degrade stage took them for photos — 12 written for 2 photos, each original copied again and
    its graded images degraded twice. A set named as a source itself (or an image of it named) is read. The
    one rule of every writer of a set, and of a resume's check of a train's degrade stage (``say=False``:
    the stage says it)."""
    from attiqa.progress import console, plain_name

    named = {os.path.realpath(s) for s in sources}
    found: dict[Path, tuple[Path, str] | None] = {}
    sets: dict[tuple[Path, str], bool] = {}
    kept: list[Path] = []
    left: dict[tuple[Path, str], int] = {}
    for f in files:
        parent = f.parent
        if parent not in found:
            found[parent] = _made_set(parent, named, sets)
        made = found[parent]
        if made is not None and os.path.realpath(f) not in named:
            left[made] = left.get(made, 0) + 1
        else:
            kept.append(f)
    for (folder, by), n in left.items() if say else ():
        kind = "graded" if by == "degrade" else "distorted"
        console.print(f"[yellow]left out {n} image(s) of the {kind} set {plain_name(folder)} (an earlier "
                      f"{by}'s output) — name that folder itself to use its images")  # fmt: skip
    return kept


def _same_bytes(a: str, b: str) -> bool:
    try:
        return filecmp.cmp(a, b, shallow=False)  # sizes first: bytes read only when they agree
    except OSError:
        return False


def _handed_over(names: dict[str, str], keys: Sequence[str]) -> dict[str, str]:
    """``{source: recorded name}`` for the sources of ``keys`` (absolute paths) not recorded in ``names``
    that take over the name of a recorded source of the same file name that is not among ``keys``: one whose
    path is gone (the collection moved) or that has the same bytes (the collection copied — or the folder
    holding it and the run — the original still there: was graded again under ``_1`` names). Their
    graded files are then kept, not made again."""
    current, recorded = set(keys), set(names.values())
    left: dict[str, list[tuple[str, str]]] = {}  # file name -> (name, recorded path) of sources left out
    for old, src in sorted(names.items()):
        if src not in current:
            left.setdefault(os.path.basename(src), []).append((old, src))
    handed: dict[str, str] = {}
    for key in keys:
        candidates = left.get(os.path.basename(key))
        if key in recorded or key in handed or not candidates:
            continue
        for i, (old, src) in enumerate(candidates):
            if not os.path.lexists(src) or _same_bytes(src, key):
                handed[key] = old
                del candidates[i]
                break
    return handed


def new_sources(sources: Sequence[Path], out_dir: Path, new_out: str = NEW_OUT_FIX) -> list[Path]:
    """The ``sources`` :func:`write_graded_set` would make new images of in ``out_dir``: neither recorded in
    its ``sources.json`` nor taking over the name of a recorded source that moved or was copied
    (:func:`output_stems`' rule). Nothing is written. ``new_out``: as :func:`write_graded_set`'s."""
    names = _read_names(out_dir / NAMES_FILE, new_out)
    keys = [os.path.abspath(src) for src in sources]
    recorded = set(names.values())
    handed = _handed_over(names, keys)
    return [src for src, key in zip(sources, keys, strict=True) if key not in recorded and key not in handed]


def _replaced(known: dict[str, str], key: str, now: str | None) -> bool:
    """Whether the source ``key`` (absolute), whose file is ``now``, changed since ``known`` recorded it
    (one not recorded, or unreadable now, has not)."""
    return now is not None and known.get(key, now) != now


def replaced_sources(sources: Sequence[Path], out_dir: Path) -> list[Path]:
    """The ``sources`` replaced since their images in ``out_dir`` were made (:data:`SOURCES_RECORD`):
    :func:`write_graded_set` makes them again — a train's ``--resume`` past its degrade stage refuses
    them first, as it refuses a source added (:func:`new_sources`). Nothing is written."""
    known = read_sources(out_dir / SOURCES_RECORD)
    return [s for s in sources if known and _replaced(known, os.path.abspath(s), file_identity(s))]


def output_stems(sources: Sequence[Path], out_dir: Path) -> list[str]:
    """One output stem per source, unique in ``out_dir`` and the same on every rerun (``sources.json``).

    A source keeps its own (safe) stem when no other source has it; otherwise the first in order keeps
    it and the next get ``_1``, ``_2``, ... — skipping any suffix that is another source's own stem.
    """
    stems, names = _name_sources(sources, out_dir)
    if names is not None:  # before any image is written: a killed run resumes with the same names
        write_json_atomic(out_dir / NAMES_FILE, {"names": names})
    return stems


def _name_sources(
    sources: Sequence[Path], out_dir: Path, new_out: str = NEW_OUT_FIX
) -> tuple[list[str], dict[str, str] | None]:
    """:func:`output_stems`' stems, and the names to record when any is new (else None); nothing written."""
    names = _read_names(out_dir / NAMES_FILE, new_out)
    by_source = {src: name for name, src in names.items()}
    keys = [os.path.abspath(src) for src in sources]
    safe = [safe_stem(Path(src).stem) for src in sources]
    taken = {name.casefold() for name in names}
    # every source's own stem is reserved for it, so B/x.jpg never takes the name of B/x_1.jpg
    reserved = {s.casefold() for s, k in zip(safe, keys, strict=True) if k not in by_source}
    handed = _handed_over(names, keys)
    stems, added = [], False
    next_k: dict[str, int] = {}
    for key, base in zip(keys, safe, strict=True):
        name = by_source.get(key)
        if name is None and key in handed:
            name = handed[key]
            del by_source[names[name]]
            names[name], by_source[key], added = key, name, True
        if name is None:
            name, k = base, 0
            while name.casefold() in taken or (k and name.casefold() in reserved):
                k = max(k + 1, next_k.get(base.casefold(), 1))  # 10,000 x "image.jpg" stays linear
                name = f"{base}_{k}"
            next_k[base.casefold()] = k + 1
            taken.add(name.casefold())
            names[name], by_source[key], added = key, name, True
        stems.append(name)
    return stems, names if added else None


def _types_on_disk(out_dir: Path, fmt: str) -> dict[str, list[Path]]:
    """The graded images in ``out_dir`` by type: ``<stem>__<type>_<level>.<fmt>`` of a type this library
    knows (a user's own ``holiday__beach_1.png`` is no image of a type ``beach``)."""
    found: dict[str, list[Path]] = {}
    for path in sorted(out_dir.glob(f"*__*_[0-9].{fmt}")):
        kind = path.name[: -len(fmt) - 3].rsplit("__", 1)[-1]
        if kind in DISTORTIONS:
            found.setdefault(kind, []).append(path)
    return found


def write_graded_set(
    sources: Sequence[Path],
    out_dir: str | Path,
    distortions: Sequence[str] = DEFAULT_GRADED,
    levels: Sequence[int] = (1, 3, 5),
    include_original: bool = True,
    fmt: str = "png",
    max_side: int | None = None,
    variants_per_source: int | None = None,
    seed: int = 0,
    on_item: Advance | None = None,
    on_start: Callable[[int], None] | None = None,
    new_out: str = NEW_OUT_FIX,
) -> GradedResult:
    """Write ``<stem>.<fmt>`` and ``<stem>__<distortion>_<level>.<fmt>`` for every source into ``out_dir``.
    ``on_start(kept)``: once, before any is made, with the sources an earlier run made whole (a bar counts
    them from its first frame: :class:`attiqa.progress.LateBar`); then ``on_item(1)`` for each other one.
    ``new_out``: how the caller's command is pointed at a new folder, in the advice of a refusal (`attiqa
    degrade`'s ``--out``: :data:`NEW_OUT_FIX`; a train's degrade stage: its config's ``degrade.out``).

    ``max_side`` (optional) downsizes big sources first, so the distortions act at a known scale. The
    seed of each distortion is the level, so a rerun reproduces the same files. ``variants_per_source``
    keeps only that many (distortion, level) combinations per source, drawn at random (seeded by
    ``seed`` and the file name), for collections too large to multiply by every combination.
    """
    for d in distortions:
        get_distortion(d)  # fail early with a clear message on a typo
    fmt = format_name(fmt)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = out_dir / "settings.json"
    meta = {
        "max_side": max_side,
        "fmt": fmt,
        "variants_per_source": variants_per_source,
        "seed": seed if variants_per_source is not None else None,
    }
    new_settings = check_meta(  # what the files' names do not say: the same name at another size or format
        settings,
        meta,
        "its images are of those settings: keep them to add to it (other distortions or levels are files "
        f"of their own), or {new_out}",
    )
    res = GradedResult()
    sources = [Path(src) for src in sources]
    planned: list[tuple[Path, list[tuple[str | None, int, Path]]]] = []
    stems, names = _name_sources(sources, out_dir, new_out)  # recorded once the versions' check passed
    for src, stem in zip(sources, stems, strict=True):
        combos = [(d, lvl) for d in distortions for lvl in levels]
        if variants_per_source is not None and variants_per_source < len(combos):
            rng = random.Random(f"{seed}:{stem}")
            combos = sorted(rng.sample(combos, variants_per_source))
        targets: list[tuple[str | None, int, Path]] = (
            [(None, 0, out_dir / f"{stem}.{fmt}")] if include_original else []
        )
        targets += [(d, lvl, out_dir / f"{stem}__{d}_{lvl}.{fmt}") for d, lvl in combos]
        planned.append((src, targets))
    res.versions = record = check_versions(
        out_dir,
        _types_on_disk(out_dir, fmt),
        {t[2] for _, ts in planned for t in ts},
        distortions,
        had_set=(out_dir / NAMES_FILE).exists(),
        delete=lambda kind: str(out_dir / f"*__{kind}_[0-9].{fmt}"),
        new_out=new_out,
    )
    # every check passed: the first writes (a refused run leaves the folder as it was)
    if new_settings:
        write_json_atomic(settings, meta)
    remove_orphan_temps(out_dir)  # left by a killed run
    if names is not None:  # before any image is written: a killed run resumes with the same names
        write_json_atomic(out_dir / NAMES_FILE, {"names": names})
    stale = set(record.redone)
    files_record = out_dir / SOURCES_RECORD
    known = read_sources(files_record)
    plan: list[tuple[Path, list[tuple[str | None, int, Path]]]] = []
    taken_as_now: list[tuple[str, str]] = []  # whole already, no identity recorded: recorded as they are
    identities: dict[Path, str | None] = {}
    for src, targets in planned:
        damage = {t[2]: why for t in targets if (why := output_damage(t[2]))}  # made again, and said
        res.damaged += damage.items()
        key, now = os.path.abspath(src), file_identity(src)
        identities[src] = now
        replaced = _replaced(known, key, now)
        if replaced:
            res.changed.append(src)
        todo = [t for t in targets if replaced or t[2] in damage or t[0] in stale or not t[2].exists()]
        if not todo and now is not None and known.get(key) != now:
            taken_as_now.append((key, now))
        res.existing.extend(t[2] for t in targets if t not in todo)
        plan.append((src, todo))
    record.start()  # before any image is made: the images of another version deleted, the record written
    append_sources(files_record, taken_as_now)
    if res.changed:
        from attiqa.progress import console

        console.print(f"[yellow]{changed_words(len(res.changed), 'graded')}")
    if on_start:  # every file of a source there already (an earlier run's): counted outside the rate
        on_start(sum(not todo for _, todo in plan))
    for src, todo in plan:
        if not todo:
            continue
        try:
            img = load_image(src)
        except ImageLoadError as exc:
            res.failed.append(exc)
            if on_item:
                on_item(1)
            continue
        if max_side:
            img = shrink_longer(img, max_side, Image.Resampling.BICUBIC)
        for dist, lvl, path in todo:
            out = img if dist is None else apply_distortion(img, dist, lvl, seed=lvl)
            save_image(out, path)
            del out  # written: not held while the next one is made (a 24 MP photo: 96 MB)
            res.written.append(path)
        now = identities[src]
        if now is not None:  # every image of it on disk: a rerun keeps them while the source stays the same
            append_sources(files_record, [(os.path.abspath(src), now)])
        if on_item:
            on_item(1)
    record.save(ended=True)
    return res


def say_damaged(damaged: list[tuple[Path, str]]) -> None:
    """One line for an earlier run's images found empty or cut short and made again (they were kept as
    "already there" for good). Said by every writer of a set (`attiqa degrade`, `make-distorted`, a train's
    degrade stage)."""
    from attiqa.progress import console, plain, plain_name

    if damaged:
        path, why = damaged[0]
        console.print(f"[yellow]{len(damaged)} damaged image(s) on disk made again (e.g. {plain_name(path)}: "
                      f"{plain(why)})")  # fmt: skip
