"""Prompt selection by proxy tasks (ATTIQA §3.3, supplement §A): encode once, score every pair by arrays.

Steps (the paper's, with our engineering choices marked):

1. candidates: for each attribute, every positive x negative adjective pair of Table 14 in the template
   "[adjective] image"; each prompt is encoded once;
2. proxy task 1, distortion intensity: each photo is degraded by each of the attribute's distortions at
   levels 0..5 (the original is encoded once and shared by all series); a pair's value is the signed SROCC
   between its attribute score and the level, averaged over photos, then over the attribute's distortions
   (supp. §A). Ours: photos are first resized so the shorter edge is ``work_size`` (256 by default, about
   CLIP's input) so the pixel-sized distortion parameters mean the same on every photo;
3. proxy task 2, human perception: SROCC between a pair's scores and SPAQ's human ratings of the same
   attribute (runs when SPAQ's annotation file and images are given). Every SPAQ rating is read as
   "higher = more of the good pole" (for noisiness: cleaner), as :class:`attiqa.datasets.SPAQ` does.
   Ours: that reading cannot be checked offline (SPAQ's noisiness column could as well mean "how noisy"),
   so when the ratings come with SPAQ's MOS (a ``"mos"`` entry), each attribute's direction is checked
   against it (:func:`signs_from_mos`): an attribute whose ratings fall as the MOS rises is flipped and the
   flip reported in :attr:`SelectionResult.human_signs`; ``human_signs`` overrides the check;
4. joint strategy: the sum of both SROCCs; the chosen pair maximises it (§3.3). With one task only, its
   SROCC is the joint value (said in the output).

Embeddings are cached under ``<out>/cache`` as safetensors (one file per photo for task 1, per chunk of
rated images for task 2): a killed run resumes where it stopped, and a rerun with other candidates only
encodes the new prompts.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from safetensors.numpy import load_file, save_file

from attiqa.distortions import NUM_LEVELS, apply_distortion, get_distortion
from attiqa.errors import ConfigError
from attiqa.evaluation.metrics import finite_pairs, srocc
from attiqa.io.atomic import atomic_path
from attiqa.io.run_meta import check_or_write_meta
from attiqa.models.transforms import resize_shorter
from attiqa.prompts.candidates import AttributeCandidates
from attiqa.prompts.encoders import PromptEncoder, encode_files
from attiqa.prompts.proxy_tasks import best_median_worst, distortion_task_srocc, human_task_srocc

if TYPE_CHECKING:
    from attiqa.progress import (
        Advance,  # items done now (the cached ones: the bar's kept, given when it starts)
    )

TASKS = ("distortion", "human", "joint")


# ---------------------------------------------------------------------------------------------------
# embedding cache
# ---------------------------------------------------------------------------------------------------


class EmbeddingCache:
    """A folder of safetensors files plus ``meta.json`` saying what produced them.

    A cache made with another encoder (or other task-1 settings) is refused with a one-line error rather
    than silently mixed.
    """

    def __init__(self, folder: Path, meta: dict) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        check_or_write_meta(
            folder / "meta.json",
            meta,
            "the embeddings cached there come from another model, photos, distortions or work size: "
            "use another --out folder or delete that cache",
        )

    def has(self, key: str) -> bool:
        """Whether ``key`` is cached (an earlier run's: a progress bar counts it as kept from its start)."""
        return (self.folder / f"{key}.safetensors").exists()

    def load(self, key: str) -> dict[str, np.ndarray] | None:
        path = self.folder / f"{key}.safetensors"
        return load_file(str(path)) if path.exists() else None

    def save(self, key: str, tensors: dict[str, np.ndarray]) -> None:
        with atomic_path(self.folder / f"{key}.safetensors") as tmp:
            save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp))


def _digest(items: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(items).encode("utf-8")).hexdigest()[:16]


def series_key(i: int) -> str:
    """The cache key of photo ``i``'s distortion series."""
    return f"series_{i:05d}"


RATED_CHUNK = 64
"""Rated images a cache file holds (run_selection's chunks)."""


def rated_chunks(paths: Sequence[Path], chunk: int) -> list[tuple[int, list[Path], str]]:
    """The rated images in chunks of ``chunk``: each chunk's start, paths and cache key."""
    parts = [(start, list(paths[start : start + chunk])) for start in range(0, len(paths), chunk)]
    return [
        (start, part, f"rated_{start // chunk:05d}_{_digest([str(p) for p in part])}")
        for start, part in parts
    ]


def encode_prompts(
    encoder: PromptEncoder, texts: Sequence[str], cache: EmbeddingCache
) -> dict[str, np.ndarray]:
    """Each distinct prompt text encoded once (cached by the list's digest)."""
    unique = sorted(set(texts))
    key = f"texts_{_digest(unique)}"
    got = cache.load(key)
    if got is None:
        got = {"emb": encoder.encode_texts(unique)}
        cache.save(key, got)
    return {t: got["emb"][i] for i, t in enumerate(unique)}


# ---------------------------------------------------------------------------------------------------
# proxy task 1: distortion series
# ---------------------------------------------------------------------------------------------------


def encode_distortion_series(
    encoder: PromptEncoder,
    photos: Sequence[Image.Image],
    distortions: Sequence[str],
    cache: EmbeddingCache,
    work_size: int = 256,
    seed: int = 0,
    on_photo: Advance | None = None,
) -> dict[str, np.ndarray]:
    """``{distortion: (photos, levels 0..5, D)}``: every photo under every distortion, encoded once each.

    The seed of photo i is ``seed + i`` (noise differs between photos, the same at every level of one
    photo's series: common random numbers, see :mod:`attiqa.distortions.basic`).
    """
    series: dict[str, list[np.ndarray]] = {d: [] for d in distortions}
    for i, photo in enumerate(photos):
        got = cache.load(series_key(i))
        kept = got is not None
        if got is None:
            img = resize_shorter(photo.convert("RGB"), work_size)
            batch = [img] + [
                apply_distortion(img, d, lv, seed=seed + i)
                for d in distortions
                for lv in range(1, NUM_LEVELS + 1)
            ]
            emb = encoder.encode_images(batch)
            got = {"original": emb[0]}
            for k, d in enumerate(distortions):
                got[d] = emb[1 + k * NUM_LEVELS : 1 + (k + 1) * NUM_LEVELS]
            cache.save(series_key(i), got)
        for d in distortions:
            series[d].append(np.concatenate([got["original"][None], got[d]]))
        if on_photo and not kept:  # a kept one: in the bar from its start (run_selection)
            on_photo(1)
    return {d: np.stack(v) for d, v in series.items()}


# ---------------------------------------------------------------------------------------------------
# proxy task 2: rated images
# ---------------------------------------------------------------------------------------------------


@dataclass
class RatedImages:
    """Embeddings of the readable rated images, their ratings per attribute, and the failures."""

    embeddings: np.ndarray  # (N, D)
    ratings: dict[str, np.ndarray]  # attribute -> (N,)
    failed: list[str] = field(default_factory=list)


def encode_rated_images(
    encoder: PromptEncoder,
    paths: Sequence[Path],
    ratings: dict[str, Sequence[float]],
    cache: EmbeddingCache,
    chunk: int = 64,  # RATED_CHUNK
    min_shorter: int | None = None,
    on_image: Advance | None = None,
) -> RatedImages:
    """Encode rated images in chunks (each cached: resumable); unreadable files are skipped and listed."""
    embs: list[np.ndarray] = []
    keep: list[int] = []
    failed: list[str] = []
    for start, part, key in rated_chunks(paths, chunk):
        got = cache.load(key)
        kept = got is not None
        if got is None:
            emb, ok, errors = encode_files(encoder, part, min_shorter)
            failed.extend(str(e) for e in errors)
            got = {"emb": emb, "ok": np.asarray(ok, dtype=np.int64)}
            cache.save(key, got)
        else:
            bad = sorted(set(range(len(part))) - set(got["ok"].tolist()))
            failed.extend(f"{part[j]}: could not be read (cached result)" for j in bad)
        if len(got["ok"]):
            embs.append(got["emb"])
            keep.extend(start + int(j) for j in got["ok"])
        if on_image and not kept:  # a kept one: in the bar from its start (run_selection)
            on_image(len(part))
    if not embs:
        raise ConfigError("none of the rated images could be read — check the image folder")
    idx = np.asarray(keep)
    return RatedImages(
        np.concatenate(embs),
        {a: np.asarray(v, dtype=np.float64)[idx] for a, v in ratings.items()},
        failed,
    )


# ---------------------------------------------------------------------------------------------------
# selection
# ---------------------------------------------------------------------------------------------------


@dataclass
class AttributeSelection:
    """All-pairs SROCC tables of one attribute: ``values[task]`` is (A, B) or absent."""

    candidates: AttributeCandidates
    values: dict[str, np.ndarray]

    def pick(self, task: str) -> dict[str, tuple[int, int]]:
        return best_median_worst(self.values[task])

    def pair(self, ab: tuple[int, int]) -> tuple[str, str]:
        return self.candidates.positive[ab[0]], self.candidates.negative[ab[1]]


@dataclass
class SelectionResult:
    attributes: dict[str, AttributeSelection]
    tasks: tuple[str, ...]  # the tasks that ran, plus "joint"
    encoder: str
    n_photos: int = 0
    n_rated: int = 0
    failed: list[str] = field(default_factory=list)
    seconds_selection: float = 0.0  # the array work only (embeddings cached)
    human_signs: dict[str, int] = field(default_factory=dict)  # -1: the ratings were read as lower = better


def signs_from_mos(ratings: dict[str, Sequence[float]], mos: Sequence[float]) -> dict[str, int]:
    """+1 or -1 per attribute: the sign of the SROCC between its ratings and the overall MOS.

    Each attribute's good pole (sharper, more contrast, brighter, more colourful, cleaner) goes with better
    overall quality (SPAQ, Fang et al. 2020, reports all five ratings correlating positively with MOS), so
    a negative correlation means the column runs the other way (e.g. noisiness recorded as "how noisy").
    Images without a rating or MOS are left out; an attribute with fewer than 3 such images keeps +1.
    """
    m = np.asarray(mos, dtype=np.float64)
    out = {}
    for a, values in ratings.items():
        v = np.asarray(values, dtype=np.float64)
        rho = srocc(v, m) if len(finite_pairs(v, m)[0]) >= 3 else np.nan
        out[a] = -1 if np.isfinite(rho) and rho < 0 else 1
    return out


def select_from_embeddings(
    candidates: dict[str, AttributeCandidates],
    text_emb: dict[str, np.ndarray],
    series: dict[str, np.ndarray] | None,
    proxies: dict[str, Sequence[str]],
    rated: RatedImages | None,
    human_signs: dict[str, int] | None = None,
) -> dict[str, AttributeSelection]:
    """Both proxy tasks and the joint strategy for every attribute, from cached embeddings only."""
    out = {}
    for a, cand in candidates.items():
        pos = np.stack([text_emb[t] for t in cand.prompts("positive")])
        neg = np.stack([text_emb[t] for t in cand.prompts("negative")])
        values: dict[str, np.ndarray] = {}
        if series is not None and proxies.get(a):
            names = list(proxies[a])
            stack = np.stack([series[d] for d in names], axis=1)  # (I, K, L, D)
            signs = [get_distortion(d).direction for d in names]
            values["distortion"] = distortion_task_srocc(stack, pos, neg, signs)
        if rated is not None and a in rated.ratings:
            sign = (human_signs or {}).get(a, 1)
            values["human"] = sign * human_task_srocc(rated.embeddings, rated.ratings[a], pos, neg)
        if values:
            values["joint"] = np.asarray(sum(values[t] for t in ("distortion", "human") if t in values))
            out[a] = AttributeSelection(cand, values)
    return out


def run_selection(
    encoder: PromptEncoder,
    candidates: dict[str, AttributeCandidates],
    cache_dir: Path,
    photos: Sequence[Image.Image] = (),
    photo_names: Sequence[str] = (),
    proxies: Mapping[str, Sequence[str]] | None = None,
    rated_paths: Sequence[Path] = (),
    ratings: Mapping[str, Sequence[float]] | None = None,
    work_size: int = 256,
    seed: int = 0,
    min_shorter: int | None = None,
    progress: Callable[[str, int, int], Advance] | None = None,
    human_signs: dict[str, int] | None = None,
) -> SelectionResult:
    """Encode what is needed (cached), then select. ``progress(description, total, kept)`` returns an
    advance callback (the CLI passes a progress bar; ``kept``: those found in the cache, counted from its
    first frame). A ``"mos"`` entry in ``ratings`` (the rated images' overall MOS) sets each attribute's
    rating direction by :func:`signs_from_mos` unless ``human_signs`` is given."""
    proxies = {a: tuple(v) for a, v in (proxies or {}).items() if a in candidates}
    ratings = dict(ratings or {})
    mos = ratings.pop("mos", None)
    if human_signs is None and mos is not None and rated_paths:
        human_signs = signs_from_mos({a: v for a, v in ratings.items() if a in candidates}, mos)
    dists = list(dict.fromkeys(d for a in candidates for d in proxies.get(a, ())))
    meta = {
        "encoder": encoder.description,
        "work_size": work_size,
        "seed": seed,
        "photos": list(photo_names),
        "distortions": dists,
    }
    cache = EmbeddingCache(Path(cache_dir), meta)
    texts = [t for c in candidates.values() for pol in ("positive", "negative") for t in c.prompts(pol)]
    text_emb = encode_prompts(encoder, texts, cache)
    series = None
    if photos and dists:
        kept = sum(cache.has(series_key(i)) for i in range(len(photos)))
        adv = progress("task 1: distortion series", len(photos), kept) if progress else None
        series = encode_distortion_series(encoder, photos, dists, cache, work_size, seed, adv)
    rated = None
    if rated_paths:
        kept = sum(len(part) for _, part, key in rated_chunks(rated_paths, RATED_CHUNK) if cache.has(key))
        adv = progress("task 2: rated images", len(rated_paths), kept) if progress else None
        rated = encode_rated_images(
            encoder, rated_paths, ratings, cache, RATED_CHUNK, min_shorter=min_shorter, on_image=adv
        )
    if series is None and rated is None:
        raise ConfigError(
            "nothing to select on: give photos for the distortion task and/or SPAQ for the "
            "human-perception task"
        )
    t0 = time.perf_counter()
    sel = select_from_embeddings(candidates, text_emb, series, proxies, rated, human_signs)
    seconds = time.perf_counter() - t0
    tasks = tuple(t for t, ok in (("distortion", series is not None), ("human", rated is not None)) if ok)
    return SelectionResult(
        sel,
        (*tasks, "joint"),
        encoder.description,
        len(photos),
        0 if rated is None else len(rated.embeddings),
        [] if rated is None else rated.failed,
        seconds,
        dict(human_signs or {}) if rated is not None else {},
    )
