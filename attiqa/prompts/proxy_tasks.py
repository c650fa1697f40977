"""The two proxy tasks of ATTIQA §3.3 as array operations over every positive x negative pair at once.

Inputs are L2-normalised embeddings: images encoded once, each adjective prompt encoded once. For a pair
(p, n), eq. (2)'s attribute score is ``softmax(s * [cos(x, p), cos(x, n)])[0] = sigmoid(s * (cos(x, p) -
cos(x, n)))``, a strictly increasing function of ``d = cos(x, p) - cos(x, n)`` for any scale s > 0. SROCC
only sees ranks, so every SROCC below is computed on ``d``: exactly the SROCC of the eq. (2) score, without
the exp/softmax (ties can only be *broken* by the sigmoid's rounding, never created).

Shapes: A positive and B negative prompts give an (A, B) table of SROCCs per task; the number of model
passes is (images + A + B), never A x B.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata


def pair_differences(img: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """``cos(x, p_a) - cos(x, n_b)`` for every image x and pair (a, b): shape ``img.shape[:-1] + (A, B)``."""
    sp = np.asarray(img @ pos.T, dtype=np.float32)
    sn = np.asarray(img @ neg.T, dtype=np.float32)
    return sp[..., :, None] - sn[..., None, :]


def _level_srocc(d: np.ndarray) -> np.ndarray:
    """SROCC between ``d[l, ...]`` and the level ``l`` for every trailing index: (L, ...) -> (...).

    Average ranks (ties averaged, as scipy's ``spearmanr``) from pairwise comparisons between the L
    levels: L(L-1)/2 elementwise passes with small integer counters, no sort. The rank mean is always
    (L+1)/2, so only the rank spread depends on ties. A pair whose score is the same at every level
    gets 0 (no evidence either way).
    """
    n = d.shape[0]
    below = np.zeros(d.shape, dtype=np.uint8)  # how many levels score strictly lower
    above = np.zeros(d.shape, dtype=np.uint8)  # ... strictly higher
    for i in range(n):
        for j in range(i + 1, n):
            lt = d[i] < d[j]
            gt = d[j] < d[i]
            below[j] += lt
            above[i] += lt
            below[i] += gt
            above[j] += gt
    # average rank r = 1 + below + ties / 2 with ties = n - 1 - below - above; centred: r - (n + 1) / 2
    centred = (below.astype(np.float32) - above) * np.float32(0.5)
    lv = np.arange(n, dtype=np.float32) - np.float32((n - 1) / 2)
    num = np.tensordot(lv, centred, axes=(0, 0))
    den = np.sqrt((centred * centred).sum(axis=0)) * np.float32(np.sqrt((lv * lv).sum()))
    out = np.zeros(num.shape, dtype=np.float32)
    np.divide(num, den, out=out, where=den > 1e-12)
    return out


def _rank_corr(ranked: np.ndarray, target_ranks: np.ndarray, axis: int) -> np.ndarray:
    """Pearson correlation along ``axis`` between ranked scores and a ranked 1-D target (0 where either side
    is constant: a pair that cannot tell the items apart carries no evidence)."""
    shape = [1] * ranked.ndim
    shape[axis] = -1
    t = (target_ranks - target_ranks.mean()).reshape(shape).astype(np.float32)
    r = ranked - ranked.mean(axis=axis, keepdims=True)
    num = (r * t).sum(axis=axis)
    den = np.sqrt((r * r).sum(axis=axis)) * np.sqrt(float((t * t).sum()))
    out = np.zeros_like(num, dtype=np.float32)
    np.divide(num, den, out=out, where=den > 1e-12)
    return out


def _untied_level_srocc(sp: np.ndarray, sn: np.ndarray) -> np.ndarray:
    """SROCC with the level for series whose levels all differ: (L, ..., A) and (L, ..., B) -> (..., A, B).

    Without ties, the centred average rank of level i is (1/2) sum_j sign(d_i - d_j), so
    sum_i (i - mean) (r_i - mean) = sum_{i<j} (j - i) [d_j > d_i] - C with C = L(L^2 - 1)/12, which is also
    both sums of squares: SROCC = count / C - 1. One comparison of (A, B) per level pair, no d array, no
    ranks. (Exact equality of two different pairs' score differences is assumed away; identical
    embeddings, the real source of ties, are handled by the caller.)
    """
    n = sp.shape[0]
    count = np.zeros(sp.shape[1:-1] + (sp.shape[-1], sn.shape[-1]), dtype=np.int16)
    for i in range(n):
        for j in range(i + 1, n):
            higher = (sp[j] - sp[i])[..., :, None] > (sn[j] - sn[i])[..., None, :]  # d_j > d_i
            count += higher.astype(np.int16) * np.int16(j - i)
    c = n * (n * n - 1) / 12.0
    return (count / np.float32(c) - np.float32(1.0)).astype(np.float32)


def distortion_task_srocc(
    series: np.ndarray, pos: np.ndarray, neg: np.ndarray, signs: Sequence[float] | np.ndarray, chunk: int = 8
) -> np.ndarray:
    """Proxy task 1 (distortion intensity, §3.3 and supp. §A).

    ``series``: (images, distortions, levels, D) embeddings of each image under each of the attribute's
    distortions at increasing strength (level 0 = the original). ``signs[k]``: +1 if the attribute score
    should rise with distortion k's strength, -1 if it should fall. Returns (A, B): per pair, the SROCC
    between its score and the strength, signed, averaged over images and then over distortions.
    Images are processed ``chunk`` at a time so the working arrays stay in cache. A series in which two
    levels have identical embeddings (a level that changed nothing) has tied scores for every pair and
    goes through the exact tie-averaging path.
    """
    n_img, n_dist, n_lv = series.shape[:3]
    signs = np.asarray(signs, dtype=np.float32).reshape(-1, 1, 1)
    total = np.zeros((pos.shape[0], neg.shape[0]), dtype=np.float64)
    by_level = np.ascontiguousarray(np.moveaxis(series, 2, 0))  # (L, I, K, D): level-major
    sp_all = by_level @ pos.T  # (L, I, K, A)
    sn_all = by_level @ neg.T  # (L, I, K, B)
    tied = np.zeros((n_img, n_dist), dtype=bool)
    for i in range(n_lv):
        for j in range(i + 1, n_lv):
            tied |= np.all(by_level[i] == by_level[j], axis=-1)
    for start in range(0, n_img, chunk):
        sl = slice(start, start + chunk)
        rho = _untied_level_srocc(sp_all[:, sl], sn_all[:, sl])  # (i, K, A, B)
        for ii, k in zip(*np.nonzero(tied[sl]), strict=True):
            # identical levels must score identically: encode-side duplicates are scored once
            uniq, inv = np.unique(by_level[:, start + ii, k], axis=0, return_inverse=True)
            rho[ii, k] = _level_srocc(pair_differences(uniq, pos, neg)[inv.reshape(-1)])  # (L, A, B) in
        total += (rho * signs).sum(axis=0).sum(axis=0)
    return (total / (n_img * n_dist)).astype(np.float32)


def _row_ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (1-based) along the last axis of a 2-D array; ties averaged like ``rankdata``.

    One argsort per row; rows that contain ties (rare with continuous scores) go through scipy."""
    order = np.argsort(x, axis=-1)
    ranks = np.empty(x.shape, dtype=np.float32)
    np.put_along_axis(ranks, order, np.arange(1, x.shape[-1] + 1, dtype=np.float32)[None, :], axis=-1)
    srt = np.take_along_axis(x, order, axis=-1)
    tied = np.nonzero((srt[:, 1:] == srt[:, :-1]).any(axis=-1))[0]
    if tied.size:
        ranks[tied] = rankdata(x[tied], axis=-1)
    return ranks


def human_task_srocc(img: np.ndarray, ratings: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Proxy task 2 (human perception, §3.3): per pair, the SROCC between its scores on N images and the
    human attribute ratings of those images (NaN ratings are left out). Returns (A, B)."""
    ratings = np.asarray(ratings, dtype=np.float64)
    keep = np.isfinite(ratings)
    n_pos, n_neg = pos.shape[0], neg.shape[0]
    x = img[keep]
    sp, sn = (np.asarray(x @ w.T, dtype=np.float32).T for w in (pos, neg))  # (A, N), (B, N)
    ranked = _row_ranks((sp[:, None, :] - sn[None, :, :]).reshape(n_pos * n_neg, -1))  # (A*B, N)
    rho = _rank_corr(ranked, rankdata(ratings[keep]).astype(np.float32), axis=1)
    return rho.reshape(n_pos, n_neg)


def best_median_worst(values: np.ndarray) -> dict[str, tuple[int, int]]:
    """(a, b) indices of the best, median and worst pair of an (A, B) table (NaN counts as worst).

    The median pair is the one ranked at position floor(A*B / 2) from the top (the paper's "median").
    """
    flat = np.where(np.isfinite(values), values, -np.inf).reshape(-1)
    order = np.argsort(-flat, kind="stable")
    pick = {"best": order[0], "median": order[len(order) // 2], "worst": order[-1]}
    out: dict[str, tuple[int, int]] = {}
    for k, v in pick.items():
        a, b = np.unravel_index(v, values.shape)
        out[k] = (int(a), int(b))
    return out
