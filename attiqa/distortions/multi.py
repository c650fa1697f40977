"""The ExIQA multi-distortion dataset generator (Kazemi Ranjbar & Fatemizadeh, ExIQA, §V-A).

The paper's recipe: from N pristine images, repeat R rounds; in each round every image I gets an integer
K_I drawn uniformly from [1, |D|], then K_I distortions drawn from D without replacement, each at a
random one of 5 levels, applied in sequence. D is KADID-10k's set of 25 distortions (§V-A item 2).

Labels (§IV-A): for each image and distortion d, the strength P(I, d) in [0, 1]; 0 when d was not applied,
otherwise level / 5, so strengths lie in {0, 0.2, ..., 1} (the levels of §V-C's accuracy metric).

Engineering (ours):
- everything about item (round r, source i) is drawn from its own generator seeded by (seed, r, i): the
  result does not depend on the order or on what was already done, so a killed run resumes exactly;
- images are written atomically as ``images/r<round>/<index>_<stem>.png`` (the index makes names unique;
  the stem is made portable by :func:`attiqa.io.names.portable_stem`, and ``source`` is written with
  :func:`attiqa.io.names.path_text`, so a file name that is not UTF-8 round-trips); ``labels.csv`` is
  rewritten (atomically) every ``flush_every`` items and at the end from the plans of the images that exist;
- a source that cannot be read is skipped and reported; the rest goes on;
- the distortions are applied in the order drawn (the paper does not say which order; drawing without
  replacement gives a random order);
- ``meta.json`` records the settings; resuming with other settings is refused; ``versions.json`` the
  distortions' versions (:mod:`attiqa.distortions.versions`): an image whose mix holds a type changed since is
  made again. Every check comes before the first write: a refused run leaves the folder as it was.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from attiqa.distortions.basic import NUM_LEVELS, apply_distortion, get_distortion
from attiqa.distortions.kadid import KADID_NAMES
from attiqa.distortions.versions import VersionRecord, check_versions
from attiqa.errors import ConfigError, ImageLoadError
from attiqa.io.atomic import atomic_path, remove_orphan_temps, write_json_atomic, write_text_atomic
from attiqa.io.file_identity import (
    SOURCES_RECORD,
    append_sources,
    changed_words,
    file_identity,
    read_sources,
)
from attiqa.io.images import load_image, output_damage, shrink_longer
from attiqa.io.names import path_text, portable_stem
from attiqa.io.run_meta import check_meta

if TYPE_CHECKING:
    from attiqa.progress import Advance

LABEL_FIXED = ("image", "source", "round", "k", "sequence")


@dataclass(frozen=True)
class Plan:
    """What happens to one source in one round: distortions in order of application and their levels."""

    round: int
    index: int
    names: tuple[str, ...]
    levels: tuple[int, ...]
    seeds: tuple[int, ...]

    def strengths(self, distortions: Sequence[str]) -> dict[str, float]:
        """Label row: strength level / 5 of each applied distortion, 0 for the others."""
        got = dict(zip(self.names, self.levels, strict=True))
        return {d: round(got.get(d, 0) / NUM_LEVELS, 6) for d in distortions}


def plan_item(seed: int, rnd: int, index: int, distortions: Sequence[str], max_k: int | None = None) -> Plan:
    """Draw K ~ U{1..max_k} (default |D|), K distortions without replacement, a level 1..5 for each."""
    rng = np.random.default_rng([seed, rnd, index])
    top = len(distortions) if max_k is None else min(max_k, len(distortions))
    k = int(rng.integers(1, top + 1))
    picks = rng.choice(len(distortions), size=k, replace=False)
    levels = rng.integers(1, NUM_LEVELS + 1, size=k)
    seeds = rng.integers(0, 2**31 - 1, size=k)
    return Plan(
        rnd,
        index,
        tuple(distortions[j] for j in picks),
        tuple(int(x) for x in levels),
        tuple(int(s) for s in seeds),
    )


def apply_plan(img: Image.Image, plan: Plan) -> Image.Image:
    """Apply the plan's distortions in sequence (each output rounded to 8 bits, as a saved image would be)."""
    out = img
    for name, level, s in zip(plan.names, plan.levels, plan.seeds, strict=True):
        out = apply_distortion(out, name, level, seed=s)
    return out


@dataclass
class MultiResult:
    written: int = 0
    existing: int = 0
    failed: list[str] = field(default_factory=list)
    damaged: list[tuple[Path, str]] = field(default_factory=list)  # an earlier run's, cut short: made again
    changed: list[Path] = field(default_factory=list)  # sources replaced since an earlier run: made again
    labels: Path | None = None
    versions: VersionRecord | None = None  # what the folder's versions.json holds and tells (say_versions)
    interruption: KeyboardInterrupt | None = None  # Ctrl-C / SIGTERM: the finished images and labels kept


META_FILE = "meta.json"
RECIPE = "ExIQA §V-A (K ~ U{1..|D|}, without replacement, levels 1..5)"
SET_KEYS = ("rounds", "seed", "distortions", "sources", "recipe")
"""The settings every make-distorted has recorded in its ``meta.json`` (since its first version): a set is
known by them, not by the recipe's text — a set written before a rewording of it is still one."""


def is_distorted_set(folder: Path) -> bool:
    """Whether ``folder`` holds a make-distorted set, by its own record (``meta.json`` holding its settings,
    :data:`SET_KEYS`): a search of a folder above it must not take its images for photos (:func:`attiqa.
    distortions.graded.without_graded_sets`). A user's own ``meta.json`` of other keys is not one."""
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(meta, dict)
        and all(k in meta for k in SET_KEYS)
        and isinstance(meta["sources"], list)
        and isinstance(meta["distortions"], list)
    )


def _item_path(out_dir: Path, rnd: int, index: int, stem: str) -> Path:
    return out_dir / "images" / f"r{rnd:02d}" / f"{index:05d}_{portable_stem(stem)}.png"


def _write_labels(path: Path, rows: list[dict], distortions: Sequence[str]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=[*LABEL_FIXED, *distortions], lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    write_text_atomic(path, buf.getvalue())


def _absolute_sources(sources: list[str]) -> Callable[[Any], Any]:
    """A ``meta.json`` written before sources were recorded as absolute paths holds them as that command gave
    them (``photos/a.png``): when they name ``sources`` from here, it is read as up to date (and rewritten
    once every check passed), so the same command still resumes; otherwise left for the check to refuse."""

    def upgrade(old: Any) -> Any:
        given = old.get("sources") if isinstance(old, dict) else None
        if isinstance(given, list) and given != sources and [os.path.abspath(s) for s in given] == sources:
            return {**old, "sources": sources}
        return old

    return upgrade


def make_distorted_set(
    sources: Sequence[Path],
    out_dir: str | Path,
    rounds: int = 10,
    seed: int = 0,
    distortions: Sequence[str] = KADID_NAMES,
    max_k: int | None = None,
    max_side: int | None = None,
    flush_every: int = 50,
    on_item: Advance | None = None,
    on_start: Callable[[int], None] | None = None,
) -> MultiResult:
    """Write ``rounds`` x ``len(sources)`` multi-distorted images and ``labels.csv`` into ``out_dir``.
    ``on_start(kept)``: once, before any is made, with the images an earlier run made (a bar counts them
    from its first frame: :class:`attiqa.progress.LateBar`); then ``on_item(1)`` for each other one.

    ``max_side`` (optional) downsizes large sources first so pixel-sized distortion parameters act at
    KADID's scale (its images are 512x384). Resumable: finished images are kept and skipped; Ctrl-C /
    SIGTERM end the loop with ``interruption`` set and ``labels.csv`` listing every finished image.
    """
    if rounds < 1:
        raise ConfigError(f"--rounds must be >= 1, got {rounds}")
    if not distortions:  # K ~ U{1..0}: numpy's "low >= high" traceback
        raise ConfigError("no distortion given — name at least one (`attiqa distortions` lists them)")
    for d in distortions:
        get_distortion(d)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = [Path(s) for s in sources]
    absolute = [os.path.abspath(s) for s in sources]  # the same files whatever folder the command runs in
    meta_path = out_dir / META_FILE
    meta = {
        "rounds": rounds,
        "seed": seed,
        "distortions": list(distortions),
        "max_k": max_k,
        "max_side": max_side,
        "sources": absolute,
        "recipe": RECIPE,
    }
    had_set = meta_path.exists()
    fix = "use another --out folder, or the same settings to resume"
    new_meta = check_meta(meta_path, meta, fix, _absolute_sources(absolute))
    labels = out_dir / "labels.csv"
    res = MultiResult(labels=labels)
    rows: list[dict] = []
    unreadable: set[int] = set()
    since_flush = 0

    def row(path: Path, src: Path, rnd: int, plan: Plan) -> dict:
        return {
            "image": str(path.relative_to(out_dir)),
            "source": path_text(src),
            "round": rnd,
            "k": len(plan.names),
            "sequence": ";".join(f"{n}:{lv}" for n, lv in zip(plan.names, plan.levels, strict=True)),
            **plan.strengths(distortions),
        }

    def label(path: Path, src: Path, rnd: int, plan: Plan) -> None:
        rows.append(row(path, src, rnd, plan))

    def written(path: Path, src: Path, rnd: int, plan: Plan) -> None:
        nonlocal since_flush
        label(path, src, rnd, plan)
        res.written += 1
        since_flush += 1

    # sources replaced since an earlier run (SOURCES_RECORD): every image of theirs made again
    record_path = out_dir / SOURCES_RECORD
    known = read_sources(record_path)
    now = [file_identity(a) for a in absolute]
    replaced = {i for i, (a, n) in enumerate(zip(absolute, now, strict=True)) if n and known.get(a, n) != n}
    res.changed = [sources[i] for i in sorted(replaced)]
    items = []
    by_type: dict[str, list[Path]] = {}  # the images on disk under each type of their mix
    on_disk: set[int] = set()
    for rnd in range(rounds):
        for i, src in enumerate(sources):
            path = _item_path(out_dir, rnd, i, src.stem)
            plan = plan_item(seed, rnd, i, distortions, max_k)
            why = output_damage(path)  # an earlier run's image, empty or cut short: made again
            if why:
                res.damaged.append((path, why))
            elif path.exists():
                on_disk.add(i)
                for name in plan.names:
                    by_type.setdefault(name, []).append(path)
            items.append((rnd, i, src, path, plan, path.exists() and not why and i not in replaced))
    res.versions = record = check_versions(
        out_dir,
        by_type,
        {item[3] for item in items},
        distortions,
        had_set,
        delete=lambda kind: str(out_dir / "images"),
    )
    # every check passed: the first writes (a refused run leaves the folder as it was)
    if new_meta:
        write_json_atomic(meta_path, meta)
    for folder in (out_dir, *sorted((out_dir / "images").glob("r*"))):  # temps of a killed run
        remove_orphan_temps(folder)
    stale = set(record.redone)
    items = [(*item[:5], item[5] and not stale.intersection(item[4].names)) for item in items]
    if record.stale:  # labels.csv first without the images start() deletes: a kill -9 leaves none listed
        kept_rows = [row(path, src, rnd, plan) for rnd, _, src, path, plan, kept in items if kept]
        _write_labels(labels, kept_rows, distortions)
    record.start()  # before any image is made: the images of another version deleted, the record written
    # a source with no image yet: recorded now (a kill, then a replacement, is seen); the others once done
    append_sources(record_path, [(a, n) for i, (a, n) in enumerate(zip(absolute, now, strict=True))
                                 if n and a not in known and i not in on_disk])  # fmt: skip
    if res.changed:
        from attiqa.progress import console

        console.print(f"[yellow]{changed_words(len(res.changed), 'distorted')}")
    if on_start:  # an earlier run's images: counted outside the rate, from the bar's first frame
        on_start(sum(item[-1] for item in items))
    try:
        for rnd, i, src, path, plan, existed in items:
            if not existed:
                if i in unreadable:
                    if on_item:
                        on_item(1)
                    continue
                try:
                    img = load_image(src)
                except ImageLoadError as exc:
                    unreadable.add(i)
                    res.failed.append(str(exc))
                    if on_item:
                        on_item(1)
                    continue
                if max_side:
                    img = shrink_longer(img, max_side, Image.Resampling.LANCZOS)
                # labelled and counted with the rename, no Ctrl-C between: an image on disk is labelled
                with atomic_path(path, on_commit=partial(written, path, src, rnd, plan)) as tmp:
                    apply_plan(img, plan).save(tmp, format="PNG")
            else:
                res.existing += 1
                label(path, src, rnd, plan)
            if since_flush >= flush_every:
                _write_labels(labels, rows, distortions)
                since_flush = 0
            if on_item and not existed:
                on_item(1)
    except KeyboardInterrupt as exc:  # keep the labels of every finished image; the caller says so
        res.interruption = exc
    _write_labels(labels, rows, distortions)
    if res.interruption is None:  # a type not known stays null (told again) until a run ends
        record.save(ended=True)
        # every image of each readable source made: its identity recorded (a set made before the record:
        # its sources as they are now)
        fresh = read_sources(record_path)
        append_sources(record_path, [(a, n) for i, (a, n) in enumerate(zip(absolute, now, strict=True))
                                     if n and i not in unreadable and fresh.get(a) != n])  # fmt: skip
    return res
