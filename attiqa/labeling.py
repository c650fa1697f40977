"""``attiqa label``: pseudo-label images with a teacher into a Parquet table (paper §3.2).

Resumable and crash-safe by construction:
- finished batches are written as small Parquet *part files* (atomically) in ``<out>.parts/``;
- a rerun reads the finished table and every part, and skips images already labelled;
- a killed run therefore loses at most the batch in flight;
- at the end the parts are merged into ``<out>`` (atomically) and removed.

Sharding: under ``torchrun`` each rank labels ``paths[rank::world_size]`` of the images still to label
(worked out by every rank before any writes a part, so all share out the same list) into its own part
files; rank 0 merges after a barrier. The Parquet schema metadata records the teacher, model id and prompts.

The ``image`` column holds each image's absolute path as UTF-8 text; a file name that is not valid UTF-8
(Parquet strings must be) is stored as a ``file:`` URI with its bytes percent-encoded, and
:func:`label_paths` reads every row back to the very same path (see :mod:`attiqa.io.names`).

Photos replaced in place: each table and part file records its rows' file identities
(:func:`attiqa.io.file_identity.file_identity`) in its schema metadata under :data:`FILES_KEY` (a JSON list
in row order — not a column: pretraining takes every column but ``image`` for a label). A rerun drops the
rows whose photo changed since and labels those again, said in one line; a table of a version before has
no identities and resumes as before (its rows kept).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from attiqa.errors import AttiqaError, ImageLoadError
from attiqa.io.atomic import atomic_path, remove_orphan_temps
from attiqa.io.batching import inference_num_workers
from attiqa.io.file_identity import changed_files, changed_words, file_identity
from attiqa.io.label_tables import FILES_KEY
from attiqa.io.names import common_folder, order_under, path_text, text_path, under_roots
from attiqa.io.run_meta import differing_settings
from attiqa.launch import launched_rank, launched_world_size
from attiqa.progress import shown_name
from attiqa.scoring import score_batches
from attiqa.sharding import barrier, collective
from attiqa.teachers.base import Teacher
from attiqa.teachers.clip import same_clip

META_KEY = b"attiqa_labels"


@dataclass
class LabelResult:
    out: Path
    labelled: int  # newly labelled in this run
    skipped_done: int  # already labelled by an earlier run
    failed: list[ImageLoadError] = field(default_factory=list)
    seconds: float = 0.0


def parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


LABEL_SUFFIXES = (".parquet", ".pq")


def _not_a_label_file(path: Path, why: object) -> AttiqaError:
    return AttiqaError(
        f"{path}: exists and is not a label file ({why}) — choose another --out (or label.out; labels are "
        f"Parquet, e.g. {path.with_name('labels.parquet')}); delete it only if it is a damaged label file "
        "of yours"
    )


def check_label_output(out: Path) -> None:
    """Refuse a label output that would not hold labels, before the teacher loads: another format's name
    (``-o labels.csv`` would get Parquet bytes) or an existing file that is not a label table (a score CSV,
    a photo: resuming would read it, a fresh run would replace it)."""
    if out.exists():
        if not out.is_file():
            raise _not_a_label_file(out, "not a regular file")
        names = _read_schema(out).names
        if "image" not in names:
            raise _not_a_label_file(out, f"a Parquet table without an 'image' column: {names[:6]}")
    elif out.suffix.lower() not in LABEL_SUFFIXES:
        raise AttiqaError(
            f"{out}: label files are Parquet, not {out.suffix or 'a name without suffix'} — "
            f"name it {out.with_suffix('.parquet')}"
        )


def _read_schema(path: Path) -> pa.Schema:
    try:
        return pq.read_schema(path)
    except Exception as exc:  # noqa: BLE001
        raise _not_a_label_file(path, f"not Parquet: {exc}") from None


def _read_table(path: Path) -> pa.Table:
    """The whole table, its footer read once: not Parquet at all is :func:`_not_a_label_file`, a Parquet
    file that fails after its footer is a damaged label file."""
    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001
        raise _not_a_label_file(path, f"not Parquet: {exc}") from None
    try:
        return parquet.read()
    except Exception as exc:  # noqa: BLE001
        raise AttiqaError(f"{path}: unreadable label file ({exc}) — delete it to start over") from None
    finally:
        parquet.close()


def row_identities(table: pa.Table) -> list[str | None]:
    """The file identity of each row of ``table`` (None: not recorded — a table of an earlier version)."""
    raw = (table.schema.metadata or {}).get(FILES_KEY)
    try:
        ids = json.loads(raw) if raw is not None else None
    except ValueError:
        ids = None
    if not isinstance(ids, list) or len(ids) != table.num_rows:
        return [None] * table.num_rows
    return [i if isinstance(i, str) else None for i in ids]


def with_identities(table: pa.Table, ids: Sequence[str | None]) -> pa.Table:
    """``table`` whose metadata records ``ids`` (one per row) under :data:`FILES_KEY`."""
    meta = {k: v for k, v in (table.schema.metadata or {}).items() if k != FILES_KEY}
    return table.replace_schema_metadata({**meta, FILES_KEY: json.dumps(list(ids)).encode()})


def _label_files(out: Path) -> list[Path]:
    """The table and a stopped run's part files, those there."""
    pdir = parts_dir(out)
    return ([out] if out.is_file() else []) + (sorted(pdir.glob("*.parquet")) if pdir.is_dir() else [])


def _held_identities(out: Path) -> dict[str, str | None]:
    """Each labelled image's recorded file identity, in ``out`` and its part files."""
    held: dict[str, str | None] = {}
    for path in _label_files(out):
        table = _read_table(path) if path == out else pq.read_table(path, columns=["image"])
        for image, ident in zip(table.column("image").to_pylist(), row_identities(table), strict=True):
            held.setdefault(image, ident)
    return held


def _drop_rows(path: Path, images: set[str], part: bool) -> None:
    """Rewrite ``path`` (the table or a part, atomically, identities kept in step) without ``images``'
    rows; a part left with none is removed."""
    table = _read_table(path)
    names, ids = table.column("image").to_pylist(), row_identities(table)
    keep = [i for i, im in enumerate(names) if im not in images]
    if len(keep) == len(names):
        return
    if not keep and part:
        path.unlink(missing_ok=True)
        return
    kept = with_identities(table.take(pa.array(keep, pa.int64())), [ids[i] for i in keep])
    with atomic_path(path) as tmp:
        pq.write_table(kept, tmp)


def replaced_images(out: Path, paths: Sequence[Path]) -> set[str]:
    """The rows (``image`` cells) of ``paths`` in ``out`` and its part files whose photo changed since it
    was labelled (another file under the same path): :func:`forget_replaced` labels them again, a train's
    ``--resume`` past pretraining refuses them first. Nothing is written."""
    return changed_files(_held_identities(out), ((path_text(p), p) for p in paths))


def forget_replaced(out: Path, paths: Sequence[Path]) -> int:
    """Drop from ``out`` and its part files the rows of ``paths`` whose photo changed since it was
    labelled (:func:`replaced_images`), so they are labelled again; returns how many."""
    changed = replaced_images(out, paths)
    if changed:
        for path in _label_files(out):
            _drop_rows(path, changed, path != out)
    return len(changed)


def done_images(out: Path) -> set[str]:
    """Image paths already labelled in ``out`` and its part files."""
    done: set[str] = set()
    if out.exists():
        t = _read_table(out)
        done.update(t.column("image").to_pylist())
    pdir = parts_dir(out)
    if pdir.is_dir():
        for part in sorted(pdir.glob("*.parquet")):
            done.update(pq.read_table(part, columns=["image"]).column("image").to_pylist())
    return done


def kept_words(out: Path, paths: Sequence[Path] | None = None) -> str:
    """What a stopped ``attiqa label`` left and what to do, read from the disk (a torchrun job is lost
    after, or before, rank 0 merged): part files -> resume with the same command; the table alone with
    every image of ``paths`` (``None``: not known) -> nothing to resume. The message said "kept in parts"
    also after the merge had made the table whole and removed them."""
    pdir = parts_dir(out)
    parts = sorted(pdir.glob("*.parquet")) if pdir.is_dir() else []
    if parts:
        rows = sum(pq.read_metadata(p).num_rows for p in parts)
        return (
            f"the {rows} image(s) labelled so far are kept in {shown_name(pdir)}; rerun the same command to "
            "continue"
        )
    if not out.is_file():
        return "no image was labelled yet; rerun the same command to label them"
    held = done_images(out)
    if paths is None:  # which images the run was to label is not known: the table may lack some
        return f"{shown_name(out)} holds {len(held)} image(s); rerun the same command to label any left"
    left = sum(path_text(Path(os.path.abspath(p))) not in held for p in paths)
    if left:
        where = f"{shown_name(out)} holds {len(held)} image(s), {left} not yet"
        return f"{where}; rerun the same command to continue"
    return f"{shown_name(out)} is whole ({len(held)} images) — nothing to resume"


def label_paths(table: pa.Table) -> list[Path]:
    """The image paths of a label table, decoded from its ``image`` column (see the module docstring)."""
    return [text_path(t) for t in table.column("image").to_pylist()]


def _schema(columns: Sequence[str], meta: dict[str, Any]) -> pa.Schema:
    fields = [pa.field("image", pa.string())] + [pa.field(c, pa.float32()) for c in columns]
    return pa.schema(fields, metadata={META_KEY: json.dumps(meta, default=str).encode()})


def read_label_metadata(path: str | Path) -> dict[str, Any]:
    """The teacher metadata stored in a label file's schema."""
    md = _read_schema(Path(path)).metadata or {}
    return json.loads(md[META_KEY]) if META_KEY in md else {}


def _earlier_metadata(out: Path) -> tuple[Path, dict[str, Any]] | None:
    """The file holding an earlier run's labels and its metadata: the table, or — a run stopped before
    its merge — its first part file."""
    if out.exists():
        return out, read_label_metadata(out)
    pdir = parts_dir(out)
    parts = sorted(pdir.glob("*.parquet")) if pdir.is_dir() else []
    return (parts[0], read_label_metadata(parts[0])) if parts else None


def check_same_teacher(out: Path, meta: dict[str, Any]) -> None:
    """Refuse to add labels to ``out`` (its table, or a stopped run's part files) from another teacher or
    other teacher settings: one table would silently hold two teachers' labels."""
    found = _earlier_metadata(out)
    if found is None:
        return
    path, old = found
    where = str(out) if path == out else f"{out} (a stopped run's {parts_dir(out).name}/)"
    # the table's own columns too: one without attiqa's metadata (pandas', an older tool's) was found only
    # at the merge, after every image was labelled — pyarrow's cast error as a traceback, on every rerun
    names = [n for n in _read_schema(path).names if n != "image"]
    if names != meta["columns"]:
        raise AttiqaError(
            f"{where}: exists with columns image, {', '.join(names) or '(none)'}, not the teacher's image, "
            f"{', '.join(meta['columns'])} — choose another --out (or label.out)"
        )
    before, now = old.get("teacher"), meta["teacher"]
    if not before or before == now:
        return
    name = before.get("teacher", before) if isinstance(before, dict) else before
    what = f"another teacher ({name})"
    if isinstance(before, dict) and name == now.get("teacher"):
        # the one rule of what a CLIP teacher is (eval's cache key and score -o's record use it too): the
        # weights by their hash, not the spec or path that named them; the prompts by their texts' hash,
        # not the file they came from or its comments
        before, now = same_clip(before, now)
        if before == now:
            return
        what = f"the {name} teacher with other settings ({differing_settings(before, now)})"
    raise AttiqaError(
        f"{where}: was labelled by {what} — choose another --out, or delete it to label with these"
    )


def _write_part(
    pdir: Path,
    rank: int,
    seq: int,
    images: list[str],
    scores: np.ndarray,
    schema: pa.Schema,
    ids: Sequence[str | None],
) -> None:
    arrays = [pa.array(images, pa.string())] + [
        pa.array(scores[:, j], pa.float32()) for j in range(scores.shape[1])
    ]
    table = with_identities(pa.Table.from_arrays(arrays, schema=schema), ids)
    name = f"rank{rank:03d}-{time.time_ns()}-{seq:06d}.parquet"
    with atomic_path(pdir / name) as tmp:
        pq.write_table(table, tmp)


def merge_parts(out: Path, schema: pa.Schema | None = None, roots: Sequence[str | Path] = ()) -> int:
    """Fold ``<out>.parts/*`` into ``out`` (atomic), de-duplicated by image; returns the row count.

    Rows are sorted by their names under ``roots`` (``order_under``: the same order wherever the folders
    are), else by path. Without parts the table is left as it is: a run an earlier version started trains
    in its table's order, which a re-sort would change under its resume."""

    pdir = parts_dir(out)
    tables = []
    parts = sorted(pdir.glob("*.parquet")) if pdir.is_dir() else []
    if out.exists():
        if not parts:  # a rerun with nothing new (or only unreadable files): its empty folder was left
            if pdir.is_dir() and not any(pdir.iterdir()):
                pdir.rmdir()
            return int(pq.read_metadata(out).num_rows)
        tables.append(_read_table(out))
    tables.extend(pq.read_table(p) for p in parts)
    if not tables:
        return 0
    if schema is None:
        schema = tables[-1].schema
    ids = [i for t in tables for i in row_identities(t)]
    tables = [t.cast(schema) if t.schema != schema else t for t in tables]
    merged = pa.concat_tables(tables)
    # keep the first label per image (earlier runs win), then sort by path for stable files
    images = merged.column("image").to_pylist()
    seen: dict[str, int] = {}
    for i, im in enumerate(images):
        seen.setdefault(im, i)
    firsts = list(seen.values())
    if roots:
        keep = [firsts[j] for j in order_under([text_path(images[i]) for i in firsts], roots)]
    else:
        keep = sorted(firsts, key=lambda i: images[i])
    merged = merged.take(pa.array(keep, pa.int64())).replace_schema_metadata(schema.metadata)
    merged = with_identities(merged, [ids[i] for i in keep])
    with atomic_path(out) as tmp:
        pq.write_table(merged, tmp)
    for p in parts:
        p.unlink(missing_ok=True)
    if pdir.is_dir() and not any(pdir.iterdir()):
        pdir.rmdir()
    return merged.num_rows


def _same_size(old: Path, new: Path) -> bool:
    """The cheap content check of a moved image: the old file gone (moved), or the same size as the new."""
    try:
        return old.stat().st_size == new.stat().st_size
    except FileNotFoundError:
        return new.is_file()


MOVED_FIX = "list the moved folder in label.images as it was before, or label into another --out (label.out)"


def moved_rows(
    held: Sequence[str], wanted: Sequence[str], roots: Sequence[str | Path] = ()
) -> dict[str, str]:
    """The one rule of "an images folder moved" (``attiqa label``, the label stage, ``train --resume``'s
    check before the teacher loads): for each folder of ``roots`` (the folders given; none: the one holding
    every ``wanted`` image) whose images ``held`` (a table's rows, path texts) lacks, the earlier folder
    whose rows that ``wanted`` no longer names all have an image of the same name there, of the same size
    (or their old file gone). Returns ``{old row: new image}`` (empty: nothing moved). Several earlier
    folders fitting one folder alike (copies), or one fitting two, is an :class:`AttiqaError` naming it."""
    held_set, wanted_set = set(held), set(wanted)
    gone = [text_path(h) for h in held if h not in wanted_set]
    fresh = [w for w in wanted if w not in held_set]
    if not gone or not fresh:
        return {}
    given = [Path(os.path.abspath(r)) for r in roots] or [Path(common_folder(list(wanted)))]
    # a file given: the folder holding it (files given one by one, their folder moved, are matched together)
    bases = list(dict.fromkeys(b.parent if b.is_file() else b for b in given))
    named: dict[str, list[tuple[int, str]]] = {}  # name under a folder given -> (that folder, new image)
    for w, (j, name) in zip(fresh, under_roots([text_path(w) for w in fresh], bases), strict=True):
        if j < len(bases):
            named.setdefault(name, []).append((j, w))
    under: dict[Path, int] = {}  # rows gone under each folder
    found: list[dict[Path, dict[str, str]]] = [{} for _ in bases]  # per folder: earlier folder -> {old: new}
    for g in gone:
        for parent in g.parents:
            under[parent] = under.get(parent, 0) + 1
        parts = g.parts
        for k in range(len(parts) - 1, 0, -1):
            for j, new in named.get("/".join(parts[k:]), ()):
                found[j].setdefault(Path(*parts[:k]), {})[path_text(g)] = new
    mapping: dict[str, str] = {}
    for base, candidates in zip(bases, found, strict=True):
        fits = [
            (len(m), old, m)
            for old, m in candidates.items()
            if len(m) == under[old] and all(_same_size(text_path(o), text_path(n)) for o, n in m.items())
        ]
        if not fits:
            continue  # not a folder moved: labelled as new images
        best = max(n for n, _, _ in fits)
        fits = [f for f in fits if f[0] == best]
        if len(fits) > 1:  # copies of one folder: the one of the same name, if only one is
            fits = [f for f in fits if f[1].name == base.name] or fits
        if len(fits) > 1 or any(o in mapping for o in fits[0][2]):
            olds = ", ".join(str(f[1]) for f in fits[:3])
            raise AttiqaError(
                f"{base}: the same images as more than one earlier folder of the table ({olds}), so which "
                f"one moved here is not known — {MOVED_FIX}"
            )
        mapping.update(fits[0][2])
    return mapping


def _rename_rows(path: Path, mapping: dict[str, str]) -> int:
    """Rewrite ``path``'s (a table's or a part's) ``image`` column through ``mapping`` (atomically, same
    rows in the same order, its metadata kept); returns the rows renamed."""
    table = _read_table(path)
    images = table.column("image").to_pylist()
    moved = [mapping.get(im, im) for im in images]
    n = sum(a != b for a, b in zip(images, moved, strict=True))
    if n:
        column = table.schema.get_field_index("image")
        # a moved row's photo is the one labelled (moved_rows' rule): its identity is the new file's
        ids = [
            i if a == b else file_identity(text_path(b))
            for a, b, i in zip(images, moved, row_identities(table), strict=True)
        ]
        table = table.set_column(column, table.schema.field(column), pa.array(moved, pa.string()))
        table = with_identities(table, ids)
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
    return n


def follow_moved_folder(out: Path, paths: Sequence[Path], roots: Sequence[str | Path] = ()) -> int:
    """Rewrite the paths of the rows of ``out`` and of a stopped run's part files whose images moved
    (:func:`moved_rows`) to their new place, in place: the images folder moved, and relabelling it (hours
    with CLIP, float differences a resume refuses) is not needed. Returns the rows rewritten."""
    if not paths:
        return 0
    pdir = parts_dir(out)
    files = ([out] if out.is_file() else []) + (sorted(pdir.glob("*.parquet")) if pdir.is_dir() else [])
    if not files:
        return 0
    wanted = [path_text(Path(os.path.abspath(p))) for p in paths]
    mapping = moved_rows(sorted(done_images(out)), wanted, roots)
    return sum(_rename_rows(f, mapping) for f in files) if mapping else 0


def keep_only(out: Path, paths: Sequence[Path]) -> list[str]:
    """Rewrite the label table ``out`` (atomic) without the rows of images not in ``paths`` — a run's own
    table after its label stage, whose images the config may have narrowed since an earlier run labelled
    more (they were pretrained on without a word). Returns the names left out."""
    if not out.exists():
        return []
    table = _read_table(out)
    wanted = {path_text(Path(os.path.abspath(p))) for p in paths}
    images = table.column("image").to_pylist()
    keep = [i for i, im in enumerate(images) if im in wanted]
    if len(keep) == len(images):
        return []
    ids = row_identities(table)
    with atomic_path(out) as tmp:
        pq.write_table(with_identities(table.take(pa.array(keep, pa.int64())), [ids[i] for i in keep]), tmp)
    kept = set(keep)
    return [im for i, im in enumerate(images) if i not in kept]


def label_images(
    paths: Sequence[Path],
    teacher: Teacher,
    out: str | Path,
    batch_size: int = 32,
    num_workers: int | None = None,
    rank: int = 0,
    world_size: int = 1,
    on_batch: Callable[[int, int], None] | None = None,
    merge: bool = True,
    on_start: Callable[[int, int], None] | None = None,
    roots: Sequence[str | Path] = (),
) -> LabelResult:
    """Label ``paths`` with ``teacher`` into ``out`` (Parquet), resuming where an earlier run stopped.

    ``on_batch(n_done_in_batch, n_failed_in_batch)`` is called after each batch (progress bars);
    ``on_start(kept, share)`` once, with this process's share of the images earlier runs labelled and of
    the images left, which it labels now: a bar counts the first apart from its rate, from its first frame,
    and ends at their sum (every process's add up to every image, as `score`'s and `eval`'s shares).
    With ``world_size > 1`` this rank labels its shard only; call :func:`merge_parts` on rank 0
    after a barrier (``merge`` is ignored then). ``roots``: the folders given, which order the merged rows
    (:func:`merge_parts`); a table whose images folder moved is rewritten to the new place
    (:func:`follow_moved_folder`), not labelled again.
    """
    out = Path(out)
    start = time.perf_counter()
    meta = {"teacher": teacher.metadata(), "columns": list(teacher.columns), "created": time.time()}
    check_same_teacher(out, meta)
    schema = _schema(teacher.columns, meta)
    all_paths = [Path(os.path.abspath(p)) for p in paths]  # absolute: the table is usable from any folder
    if rank == 0:
        follow_moved_folder(out, all_paths, roots)
        if changed := forget_replaced(out, all_paths):
            from attiqa.progress import console

            console.print(f"[yellow]{changed_words(changed, 'labelled')}")
    if world_size > 1:  # the table rewritten before any rank reads it
        with collective():
            barrier()
    done = done_images(out)
    todo = [p for p in all_paths if path_text(p) not in done]
    skipped_done = len(all_paths) - len(todo)
    if world_size > 1:  # every rank has read what is done before any writes a part: one `todo` everywhere
        with collective():  # a lost peer: PeerLost, one line
            barrier()
    todo = todo[rank::world_size]
    # taken before the photo is read: one replaced while it is labelled is labelled again by the next run
    identity_at_start = {p: file_identity(p) for p in todo}
    pdir = parts_dir(out)
    pdir.mkdir(parents=True, exist_ok=True)
    if rank == 0:  # temps of a killed run (never a live writer's: see remove_orphan_temps)
        remove_orphan_temps(pdir)
        remove_orphan_temps(out.parent, targets=[out.name])
    workers = inference_num_workers(teacher.device, num_workers)
    failed: list[ImageLoadError] = []
    labelled = 0
    if on_start:
        kept = [p for p in all_paths if path_text(p) in done]
        on_start(len(kept[rank::world_size]), len(todo))
    for seq, batch in enumerate(score_batches(todo, teacher, batch_size, workers)):
        failed.extend(batch.errors)
        if batch.indices:
            scores = batch.scores
            if not np.all(np.isfinite(scores)):
                bad = [str(todo[batch.indices[i]]) for i in np.where(~np.isfinite(scores).all(1))[0]]
                raise AttiqaError(f"teacher produced non-finite scores for {bad[:3]} — report this as a bug")
            names = [path_text(todo[i]) for i in batch.indices]
            ids = [identity_at_start[todo[i]] for i in batch.indices]
            _write_part(pdir, rank, seq, names, scores, schema, ids)
            labelled += len(batch.indices)
        if on_batch:
            on_batch(len(batch.indices), len(batch.errors))
    if merge and world_size == 1:
        merge_parts(out, schema, roots)
        if not out.exists():  # nothing could be labelled: say why instead of leaving no file
            why = "; ".join(str(e) for e in failed[:3]) or "no images were given"
            raise AttiqaError(f"no image could be labelled ({len(failed)} unreadable): {why}")
    return LabelResult(out, labelled, skipped_done, failed, time.perf_counter() - start)


def env_rank_world() -> tuple[int, int]:
    """(rank, world_size) from torchrun's environment, checked (:mod:`attiqa.launch`), (0, 1) otherwise."""
    return launched_rank(), launched_world_size()


def overall_labels(src: str | Path, dst: str | Path, name: str = "overall") -> Path:
    """A one-column label file (``image``, ``name``) = the mean of ``src``'s attribute columns.

    For the ablation "a single overall quality pseudo-label instead of five attributes" (paper
    Table 7) when the teacher has no overall prompt of its own (the ``classical`` teacher).
    """
    src, dst = Path(src), Path(dst)
    table = pq.read_table(src)
    cols = [c for c in table.column_names if c != "image"]
    mean = np.mean(np.stack([table.column(c).to_numpy() for c in cols], 1), axis=1).astype(np.float32)
    meta = read_label_metadata(src)
    meta = {**meta, "columns": [name], "derived": {"from": str(src), "rule": f"mean of {cols}"}}
    out = pa.Table.from_arrays(
        [table.column("image"), pa.array(mean, pa.float32())], schema=_schema([name], meta)
    )
    with atomic_path(dst) as tmp:
        pq.write_table(out, tmp)
    return dst
