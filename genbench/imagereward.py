"""Import the ImageReward test format (Xu et al., ImageReward): prompts, their images, a human ranking.

Each item is ``{"id", "prompt", "generations": [paths], "ranking": [ints]}`` with rank 1 = best. It is
expanded to every pair of images with *distinct* ranks (equal ranks say nothing about preference and are
left out); the better-ranked image is the preferred one. A generation path that leads outside the image
folder (``..``, an absolute path, a link out of it) is refused: the item is skipped and reported.

Pair ids are ``ID:i-j``: the item's ``id`` (``#k`` for the k-th item when it has none, or null) and the
two generation indices. An item repeating an earlier item with its ``id`` (same prompt, generations and
ranking) is left out: its pairs would count twice. Another item under an ``id`` already used is renamed
``ID#2`` (``#3``, ...; the first free one): every first-used ``id`` keeps its pair ids, so a re-import
keeps the votes of an earlier one.

The result is an ordinary genbench run folder —
``manifest.jsonl`` (image paths under ``--images``) and ``prefs.csv`` — so ``genbench score`` and
``genbench agree`` work on it when the images are on disk.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from attiqa.errors import AttiqaError
from attiqa.io.tables import safe_dict
from genbench.files import read_json, refuse_out_among
from genbench.manifest import IMAGEREWARD_SOURCE, SIDES, is_inside, resolve, write_manifest

PREFS = "prefs.csv"
RATER = "imagereward-ranking"


@dataclass
class ImportResult:
    prompts: int = 0
    pairs: int = 0
    equal_rank_pairs: int = 0
    skipped: list[str] = field(default_factory=list)  # "item: reason"
    repeated_items: int = 0  # items equal to an earlier item of their id: left out
    renamed: list[str] = field(default_factory=list)  # "ID -> ID#2": items whose id an earlier item had
    images: int = 0  # distinct images the pairs name
    missing: list[str] = field(default_factory=list)  # of those, not on disk (yet): scored as unreadable
    repeated_images: list[str] = field(default_factory=list)  # "ID: generation j repeats i": left out
    single_image: list[str] = field(default_factory=list)  # items of one image: well formed, no pair


def _load(path: Path) -> list:
    data = read_json(path, "ImageReward rankings")
    if not isinstance(data, list):
        raise AttiqaError(f"{path}: expected a JSON list of {{id, prompt, generations, ranking}} items")
    return data


def item_names(items: list, res: ImportResult) -> list[str | None]:
    """Each item's name in pair ids (see the module docstring); None for a repeat of an earlier item."""
    given = [f"#{k}" if not isinstance(it, dict) or it.get("id") is None else str(it["id"])
             for k, it in enumerate(items)]  # fmt: skip
    taken = set(given)
    first: dict[str, object] = {}
    names: list[str | None] = []
    for name, item in zip(given, items, strict=True):
        if name not in first:
            first[name] = item
            names.append(name)
        elif item == first[name]:
            res.repeated_items += 1
            names.append(None)
        else:
            n = 2
            while f"{name}#{n}" in taken:
                n += 1
            taken.add(f"{name}#{n}")
            res.renamed.append(f"{name} -> {name}#{n}")
            names.append(f"{name}#{n}")
    return names


def expand_rankings(items: list, images_root: Path) -> tuple[list[dict], list[dict], ImportResult]:
    """Manifest records and preference rows for every distinct-rank pair; malformed items are skipped."""
    res = ImportResult()
    records, prefs = [], []
    root = Path(images_root).resolve()
    for name, item in zip(item_names(items, res), items, strict=True):
        if name is None:
            continue
        gens = item.get("generations") if isinstance(item, dict) else None
        ranks = item.get("ranking") if isinstance(item, dict) else None
        if isinstance(gens, list) and isinstance(ranks, list) and len(gens) == len(ranks) == 1:
            res.single_image.append(name)  # a prompt with one image: nothing to compare, not malformed
            continue
        if not (isinstance(gens, list) and isinstance(ranks, list) and len(gens) == len(ranks) >= 2):
            res.skipped.append(f"{name}: needs 'generations' and 'ranking' lists of the same length (>= 2)")
            continue
        if not all(isinstance(g, str) and g for g in gens) or not all(
            type(r) is int for r in ranks
        ):  # not a bool
            res.skipped.append(f"{name}: generations must be paths and ranking integers")
            continue
        outside = [g for g in gens if not is_inside(root / g, [root])]
        if outside:  # "../x", "/etc/passwd", a link out of the folder: never read, never served
            res.skipped.append(f"{name}: generation {outside[0]!r} is outside the image folder {root}")
            continue
        res.prompts += 1
        first: dict[Path, int] = {}  # an image listed twice: paired with itself, its pairs counted twice
        for k, g in enumerate(gens):
            if first.setdefault((root / g).resolve(), k) != k:
                res.repeated_images.append(
                    f"{name}: generation {k} {g!r} repeats generation {first[(root / g).resolve()]}"
                )
        keep = set(first.values())
        for i in range(len(gens)):
            for j in range(i + 1, len(gens)):
                if i not in keep or j not in keep:
                    continue
                if ranks[i] == ranks[j]:
                    res.equal_rank_pairs += 1
                    continue
                pid = f"{name}:{i}-{j}"
                records.append(
                    {
                        "pair_id": pid,
                        "prompt": item.get("prompt", ""),
                        "prompt_id": name,
                        "image_a": str(root / gens[i]),
                        "image_b": str(root / gens[j]),
                        "rank_a": ranks[i],
                        "rank_b": ranks[j],
                        "source": IMAGEREWARD_SOURCE,
                    }
                )
                prefs.append({"pair_id": pid, "rater": RATER, "choice": "a" if ranks[i] < ranks[j] else "b"})
                res.pairs += 1
    return records, prefs, res


def prefs_text(prefs: list[dict]) -> str:
    """An import's ``prefs.csv`` (pair_id, rater, choice): a pair id from a file name is no formula cell."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["pair_id", "rater", "choice"])
    w.writeheader()
    w.writerows(safe_dict(r) for r in prefs)
    return buf.getvalue()


def import_imagereward(json_path: Path, images_root: Path | None, out_dir: Path) -> ImportResult:
    """Write ``out_dir/manifest.jsonl`` (+ CSV) and ``out_dir/prefs.csv`` from an ImageReward JSON file."""
    items = _load(json_path)
    root = images_root if images_root is not None else Path(json_path).parent
    if root.exists() and not root.is_dir():  # a folder not made yet: the images may come later
        raise AttiqaError(
            f"--images {root}: a file, not a folder — pass the folder the 'generations' paths are relative to"
        )
    records, prefs, res = expand_rankings(items, root)
    if not records:  # every item malformed (a file of another format): say why, not only "nothing"
        why = (
            f" ({len(res.skipped)} of {len(items)} items malformed, e.g. {res.skipped[0]}) — nothing to "
            'import; an item is {"id", "prompt", "generations": [paths], "ranking": [ranks, 1 = best]}'
            if res.skipped
            else " — nothing to import"
        )
        raise AttiqaError(f"{json_path}: no item with two differently ranked images{why}")
    # a run in a subfolder of the rankings file's folder is the usual layout (`--out ir_run` beside it);
    # one in the folder itself, or anywhere in an --images folder, writes among the dataset's files
    folders = [
        (Path(json_path).parent, "the rankings file's folder", False),
        (root, "the --images folder", True),
    ]
    refuse_out_among(out_dir, folders[: 1 if images_root is None else 2], "ir_run")
    write_manifest(out_dir, records, image_root=root, also={PREFS: prefs_text(prefs)})
    named = sorted({resolve(Path(out_dir), r[f"image_{s}"]) for r in records for s in SIDES}, key=str)
    res.images, res.missing = len(named), [str(p) for p in named if not p.is_file()]
    return res
