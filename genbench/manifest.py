"""The run folder's manifest: one record per image pair, as JSON Lines (``manifest.jsonl``) and CSV.

Every command reads pairs from here: ``genbench run`` and ``genbench import-imagereward`` write it;
``score``, ``vote`` and ``agree`` read it. A record has at least ``pair_id``, ``image_a`` and ``image_b``
(paths relative to the run folder, or absolute); the rest (prompt, seeds, model, settings) is kept as is.

Image roots (ours, a security rule): every image a manifest names must lie, after resolving ``..`` and
symbolic links, inside the run folder or inside the run's recorded image root (``image_root.json``,
written by an importer whose images live elsewhere). Reading a run refuses any other path, and the vote
server checks again before serving a file, so a crafted manifest or rankings file cannot make genbench
read or serve ``/etc/passwd``. The run folder itself is trusted: it is what genbench wrote.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from attiqa.errors import AttiqaError, ImageLoadError
from attiqa.io.atomic import write_bytes_atomic, write_text_atomic
from attiqa.io.tables import safe_dict
from attiqa.progress import counted, shown_name
from genbench.files import shell_arg
from genbench.vote.store import check_votes_kept

MANIFEST = "manifest.jsonl"
MANIFEST_CSV = "manifest.csv"
RUN_FILE = "run.json"  # a generated run's settings (genbench run)
IMAGE_ROOT_FILE = "image_root.json"
SIDES = ("a", "b")
# a pair record's "source": the import that wrote it (a generated run's pairs have none)
AGIQA3K_SOURCE = "agiqa3k"
IMAGEREWARD_SOURCE = "imagereward"


@dataclass(frozen=True)
class Pair:
    pair_id: str
    image_a: str
    image_b: str
    record: dict = field(default_factory=dict, compare=False, repr=False)

    def image(self, side: str) -> str:
        return self.image_a if side == "a" else self.image_b


def resolve(run_dir: Path, image: str) -> Path:
    p = Path(image)
    return p if p.is_absolute() else Path(run_dir) / p


def real_path(path: Path) -> Path | None:
    """``path`` with ``..`` and symbolic links resolved; None when that fails (a link loop, a NUL byte)."""
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError, ValueError):
        return None


def is_inside(path: Path, roots: list[Path]) -> bool:
    """Whether ``path`` (resolved) lies in one of ``roots`` (already resolved)."""
    real = real_path(path)
    return real is not None and any(real == r or real.is_relative_to(r) for r in roots)


REMAKE = "rerun `genbench run` with this run's options (run.json) to make it again"


def image_problem(run_dir: Path, error: ImageLoadError) -> str:
    """One line for a run's image that cannot be read: ``PATH: reason — fix``, the fix of a generated run
    (it has run.json) being to make the image again with `genbench run` — not a photo's "check the path",
    "re-export or re-download it" — for every command that says it (`score`, `vote`)."""
    fix = (REMAKE if (Path(run_dir) / RUN_FILE).is_file() else error.fix) if error.fix else ""
    return f"{shown_name(error.path)}: {error.reason}" + (f" — {fix}" if fix else "")


def unfinished_run(run_dir: Path, made: int) -> str:
    """A line for a generated run that holds fewer finished pairs than its ``genbench run --pairs`` asked
    for (run.json's ``pairs``: killed, images failed, or resumed on a machine without the weights): `score`,
    `agree` and `vote` took it as the run and said nothing; "" for a whole run or an import."""
    try:
        planned = json.loads((Path(run_dir) / RUN_FILE).read_text(encoding="utf-8")).get("pairs")
    except (OSError, ValueError, AttributeError):
        return ""
    if type(planned) is not int or made >= planned:
        return ""
    return (
        f"{shown_name(run_dir)}: {made} of {counted(planned, 'pair')} made — `genbench run` did not finish: "
        "rerun it with this run's options (run.json) to make the rest; until then only the pairs made count"
    )


def image_roots(run_dir: Path) -> list[Path]:
    """The folders a run's images may come from: the run folder and its recorded image root."""
    run_dir = Path(run_dir)
    roots = [run_dir.resolve()]
    path = run_dir / IMAGE_ROOT_FILE
    if path.exists():
        try:
            root = json.loads(path.read_text(encoding="utf-8"))["image_root"]
            if not isinstance(root, str) or not root:
                raise TypeError
        except (OSError, ValueError, KeyError, TypeError):
            raise AttiqaError(
                f'{path}: unreadable (expected {{"image_root": FOLDER}}) — restore it or re-import the run'
            ) from None
        roots.append(resolve(run_dir, root).resolve())
    return roots


def _json_line(record: dict) -> str:
    """One JSON line, readable UTF-8; a file name that is not UTF-8 (a lone surrogate from os.fsdecode)
    is written as a \\udcNN escape, which json.loads turns back into the same name."""
    line = json.dumps(record, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(record)
    return line + "\n"


def _csv_text(records: list[dict]) -> str:
    cols: list[str] = []
    for r in records:
        cols.extend(k for k in r if k not in cols)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    for r in records:
        w.writerow(safe_dict({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in r.items()}))
    return buf.getvalue()


IMPORT_UNFINISHED = ".import-unfinished"
"""Made before an import's first write and removed after its last: each of its files (image_root.json, the
manifest, prefs.csv, import.json) is atomic, not the set, and a kill between two left the new pairs with the
old votes for `genbench score` / `genbench agree` to run on. :func:`load_pairs` refuses a run that has it."""


def write_manifest(
    run_dir: Path, records: list[dict], image_root: Path | None = None, also: dict[str, str] | None = None
) -> None:
    """Write both forms atomically (a killed run leaves the previous complete manifest).

    ``image_root``: the folder the images live in when it is not the run folder (an import); it is
    recorded, and a record naming an image outside it (and outside the run folder) is refused. An import
    into a folder holding a generated run's pairs is refused: it would replace them. ``also``: an import's
    other files (name -> text), written after the manifest as one commit with it (:data:`IMPORT_UNFINISHED`).
    """
    run_dir = Path(run_dir)
    if image_root is not None and (run_dir / RUN_FILE).exists() and (made := read_records(run_dir)):
        raise AttiqaError(
            f"{run_dir} holds a generated run ({counted(len(made), 'pair')} of `genbench run`) — an import "
            "would replace its manifest; pass another --out"
        )
    if image_root is not None:  # an import: the study's votes keep their pairs
        _check_same_source(run_dir, records)
        check_votes_kept(run_dir, {str(r.get("pair_id")) for r in records})
    roots = image_roots(run_dir) if image_root is None else [run_dir.resolve(), Path(image_root).resolve()]
    # an import's refusal names the folder imported from: its manifest is never written ("RUN/manifest.jsonl:
    # pair …: image_a … is a symbolic link" named a file that was not there)
    _check_images(run_dir, records, roots, f"{run_dir / MANIFEST}" if image_root is None else f"{image_root}")
    unfinished = run_dir / IMPORT_UNFINISHED
    if image_root is not None:  # checked: the writes begin
        write_text_atomic(unfinished, "an import into this folder did not finish: rerun the same command\n")
        write_text_atomic(
            run_dir / IMAGE_ROOT_FILE, json.dumps({"image_root": str(Path(image_root).resolve())}) + "\n"
        )
    text = "".join(_json_line(r) for r in records)
    write_text_atomic(run_dir / MANIFEST, text)
    # the CSV is a convenience copy for spreadsheets: a non-UTF-8 file name shows as \xNN there
    write_bytes_atomic(run_dir / MANIFEST_CSV, _csv_text(records).encode("utf-8", "backslashreplace"))
    for name, other in (also or {}).items():
        write_text_atomic(run_dir / name, other)
    unfinished.unlink(missing_ok=True)


def _check_same_source(run_dir: Path, records: list[dict]) -> None:
    """Refuse an import into a folder holding pairs of another source (an ImageReward import, AGIQA-3k's,
    a hand-made manifest): its pairs, prefs.csv and the scores beside them were replaced without a word.
    The same source again (another --margin, the images moved) goes ahead."""
    try:
        old = read_records(run_dir)
    except AttiqaError:  # a damaged manifest: the import writes it whole
        return
    before = {str(r.get("source", "none")) for r in old}
    after = {str(r.get("source")) for r in records}
    if old and before != after:
        raise AttiqaError(
            f"{run_dir} holds {counted(len(old), 'pair')} (source: {', '.join(sorted(before))}) — this "
            f"import (source: {', '.join(sorted(after))}) would replace them and their prefs.csv; "
            "pass another --out"
        )


def read_records(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / MANIFEST
    if not path.exists():
        return []
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            raise AttiqaError(f"{path}:{i}: not valid JSON — restore the file or rerun the command") from None
    return out


def _check_images(
    run_dir: Path, records: list[dict], roots: list[Path], where: str, seen: set[str] | None = None
) -> None:
    seen = set() if seen is None else seen  # images shared by many pairs are resolved once
    for r in records:
        for side in SIDES:
            image = r.get(f"image_{side}")
            if not isinstance(image, str) or not image or image in seen:
                continue
            seen.add(image)
            path = resolve(run_dir, image)
            if not is_inside(path, roots):
                if path.is_symlink() and is_inside(path.parent, roots):  # a dataset of links to elsewhere
                    raise AttiqaError(
                        f"{where}: pair {r.get('pair_id')!r}: image_{side} {image!r} is a symbolic link to "
                        f"{real_path(path)}, outside the run's image folders ({', '.join(map(str, roots))}) "
                        "— genbench follows no link out of them (a link in a downloaded set could lead to "
                        "any file): import from the folder the links lead to, or copy the images in place "
                        "of the links (cp -L)"
                    )
                raise AttiqaError(
                    f"{where}: pair {r.get('pair_id')!r}: image_{side} {image!r} is outside the run's image "
                    f"folder{'s' if len(roots) > 1 else ''} ({', '.join(map(str, roots))}) — genbench reads "
                    "images only there; fix the manifest or re-import the run"
                )


def load_pairs(run_dir: Path) -> list[Pair]:
    """The run's pairs; a clear error when the folder holds no manifest or names an image outside the
    run's image folders (see the module docstring)."""
    run_dir = Path(run_dir)
    if run_dir.is_file():
        raise AttiqaError(f"{run_dir}: a file, not a run folder — pass the folder holding {MANIFEST}")
    if (run_dir / IMPORT_UNFINISHED).exists():
        raise AttiqaError(f"the import into {run_dir} did not finish: rerun the same import command")
    if not (run_dir / MANIFEST).exists():
        raise AttiqaError(
            f"{run_dir}: no {MANIFEST} — make a run with `genbench run --out {shell_arg(run_dir)}` "
            "(or `genbench import-imagereward` / `genbench import-agiqa3k`)"
        )
    roots = image_roots(run_dir)
    pairs, seen = [], set()
    checked: set[str] = set()
    for r in read_records(run_dir):
        if not all(isinstance(r.get(k), str) and r.get(k) for k in ("pair_id", "image_a", "image_b")):
            raise AttiqaError(f"{run_dir / MANIFEST}: a record lacks pair_id/image_a/image_b: {r}")
        if r["pair_id"] in seen:
            raise AttiqaError(f"{run_dir / MANIFEST}: pair_id {r['pair_id']!r} appears twice")
        seen.add(r["pair_id"])
        _check_images(run_dir, [r], roots, str(run_dir / MANIFEST), checked)
        pairs.append(Pair(r["pair_id"], r["image_a"], r["image_b"], r))
    return pairs


def missing_images(run_dir: Path, pairs: list[Pair]) -> list[Path]:
    """The run's image files that are not on disk (each once, in manifest order); none at all on disk is
    one line, before any work: `score` loaded every metric to list ten "file not found" per metric, and
    `vote` said "serving N pairs", then logged every image at a rater's first request and told the rater
    all was done (an ImageReward import without its images, images moved after an import)."""
    files = dict.fromkeys(resolve(run_dir, p.image(s)) for p in pairs for s in SIDES)
    missing = [f for f in files if not f.is_file()]
    if files and len(missing) == len(files):
        raise AttiqaError(
            f"{run_dir}: none of the {len(files)} images its manifest names is on disk (e.g. "
            f"{shown_name(missing[0])}) — copy them there, or {_made_again(run_dir, pairs)}"
        )
    return missing


def _made_again(run_dir: Path, pairs: list[Pair]) -> str:
    """How the run's images are found again: its own import's command (an AGIQA-3k run was sent to
    `genbench import-imagereward`, whose JSON its user does not have), or `genbench run`'s."""
    sources = {str(p.record.get("source") or "") for p in pairs}
    out = shell_arg(run_dir)
    if sources == {AGIQA3K_SOURCE}:
        how = f"`genbench import-agiqa3k FOLDER --out {out}`"
    elif sources == {IMAGEREWARD_SOURCE}:
        how = f"`genbench import-imagereward JSON --images FOLDER --out {out}`"
    else:  # generated: its images are made again from their seeds
        return f"rerun the `genbench run --out {out}` command that made them: it makes missing images again"
    return f"import the run again from the folder that holds them ({how})"
