"""Amendment s27b of decision_rule_s27.txt: the hinge "beyond the range of unedited photos" (H8, H9).

Statistics of every crop (the eight of :mod:`attiqa.models.edit_stats` and its 36-bin hue histogram) are
cached in --work; the base MOS comes from `attiqa score -m attiqa-default` CSVs (ship_*.csv in --scores,
ship_nattrain.csv for the natural training photos). lambda is chosen on the training pairs only, then the
split-0 items are measured.

    python experiments/generalisation/s27/hinge_screen.py --natural runs/guard26/natural \
        --scores runs/s27 --work runs/s27/es --out runs/s27/es/hinge.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from edit_screen import inputs, read_scores  # this folder (sys.path[0] when run)
from edit_stats import NAMES, edit_stats, hue_histogram
from scipy.stats import spearmanr

from attiqa.io.images import load_image
from attiqa.models.transforms import FiveCropTest

DATA = Path("../shared/data")
OVER_TRAIN = ("tr_sharpen", "tr_saturation", "tr_contrast", "tr_exposure", "tr_sat_contrast", "tr_combo",
              "tr_hue")  # fmt: skip
DEG_TRAIN = ("tr_blur", "tr_noise", "tr_dark", "tr_lowcontrast", "tr_desat", "tr_underexp")
OVER_TEST = ("sharpen", "contrast", "saturation", "exposure", "hue", "combo")
DEGRADE_TEST = ("blur", "noise", "underexposure", "lowcontrast", "desaturation")
LAMBDAS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
TF = FiveCropTest((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), 500, 320)


def stats_of(paths: list[Path], cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """(N, 5, 8) statistics and (N, 5, 36) hue histograms of each image's five crops, cached."""
    if cache.is_file():
        got = np.load(cache)
        if list(got["paths"]) == [str(p) for p in paths]:
            return got["stats"], got["hue"]
    st = np.zeros((len(paths), 5, len(NAMES)), np.float32)
    hu = np.zeros((len(paths), 5, 36), np.float32)
    for i, p in enumerate(paths):
        crops = TF(load_image(p))
        st[i], hu[i] = edit_stats(crops).numpy(), hue_histogram(crops).numpy()
        if i % 250 == 0:
            print(f"  {cache.stem}: {i}/{len(paths)}", flush=True)
    np.savez(cache, paths=np.array([str(p) for p in paths]), stats=st, hue=hu)
    return st, hu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--natural", type=Path, required=True)
    ap.add_argument("--scores", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)

    (cp, cm), (bp, bm), (tr, te), nt, ntr = inputs(args.natural)
    ntr = [r for r in ntr if r["kind"] in ("original", *OVER_TRAIN, *DEG_TRAIN)]
    s_c, h_c = stats_of(cp, args.work / "h_clive.npz")
    s_b, h_b = stats_of(bp, args.work / "h_biq.npz")
    s_n, h_n = stats_of([args.natural / r["image"] for r in nt], args.work / "h_nat_test.npz")
    s_t, h_t = stats_of([args.natural / r["image"] for r in ntr], args.work / "h_nat_train.npz")

    orig_t = np.array([r["kind"] == "original" for r in ntr])
    clean_s = np.concatenate([s_c[tr], s_t[orig_t]]).reshape(-1, len(NAMES))
    clean_h = np.concatenate([h_c[tr], h_t[orig_t]]).reshape(-1, 36)
    counts = clean_h.sum(0) * 320 * 320 + 1  # pooled chromatic pixel counts per hue bin, +1 smoothing
    logp = np.log(counts / counts.sum())
    entropy = float(-(np.exp(logp) * logp).sum())

    def hue_nll(h: np.ndarray) -> np.ndarray:
        share = h.sum(-1)
        nll = (h * -logp).sum(-1) / np.maximum(share, 1e-9)
        return np.where(share >= 0.01, nll, entropy)[..., None]

    def full(s: np.ndarray, h: np.ndarray) -> np.ndarray:
        return np.concatenate([s, hue_nll(h)], -1)

    clean9 = np.concatenate([clean_s, hue_nll(clean_h)], -1)
    t = np.quantile(clean9, 0.99, axis=0)
    d = clean9.std(0)
    lo, hi = cm[tr].min(), cm[tr].max()
    width = hi - lo
    base = {k: read_scores(args.scores / f"ship_{k}.csv") for k in ("clive", "biq", "nat", "nattrain")}
    b_c = np.array([base["clive"][p.name] for p in cp])
    b_b = np.array([base["biq"][p.name] for p in bp])
    b_n = np.array([base["nat"][Path(r["image"]).name] for r in nt])
    b_t = np.array([base["nattrain"][Path(r["image"]).name] for r in ntr])

    def rates(rows: list[dict], mos: np.ndarray, kinds: tuple[str, ...]) -> dict[str, float]:
        orig = {r["photo"]: mos[i] for i, r in enumerate(rows) if r["kind"] == "original"}
        out = {}
        for kind in kinds:
            pairs = [(orig[r["photo"]], mos[i]) for i, r in enumerate(rows) if r["kind"] == kind]
            out[kind] = sum(o > e for o, e in pairs) / len(pairs)
        return out

    results: dict[str, dict] = {}
    for name, k in (("H8", 8), ("H9", 9)):

        def excess(s: np.ndarray, h: np.ndarray, k: int = k) -> np.ndarray:
            return (np.clip((full(s, h) - t) / d, 0, None)[..., :k]).sum(-1).mean(1)  # per image

        e_c, e_b, e_n, e_t = excess(s_c, h_c), excess(s_b, h_b), excess(s_n, h_n), excess(s_t, h_t)
        base_deg = np.mean(list(rates(ntr, b_t, DEG_TRAIN).values()))
        table = []
        for lam in LAMBDAS:
            m_t = b_t - lam * width * e_t
            over = float(np.mean(list(rates(ntr, m_t, OVER_TRAIN).values())))
            deg = float(np.mean(list(rates(ntr, m_t, DEG_TRAIN).values())))
            table.append((lam, over, deg))
            print(f"{name} train lambda {lam}: over {over:.3f} deg {deg:.3f} (base {base_deg:.3f})")
        ok = [row for row in table if row[2] >= base_deg - 0.02]
        hit = [row for row in ok if row[1] >= 0.95]
        lam = hit[0][0] if hit else max(ok, key=lambda row: row[1])[0]
        m_c, m_b, m_n = b_c - lam * width * e_c, b_b - lam * width * e_b, b_n - lam * width * e_n
        r = rates(nt, m_n, OVER_TEST + DEGRADE_TEST)
        over = sum(round(r[k] * 32) for k in OVER_TEST)
        deg = [r[k] for k in DEGRADE_TEST]
        res = {"lambda": lam, "train_table": table, "clive0": float(spearmanr(m_c[te], cm[te])[0]),
               "biq": float(spearmanr(m_b, bm)[0]), "over": over, "deg_min": min(deg),
               "deg_mean": float(np.mean(deg)), "rates": r, "open_clive_test": float((e_c[te] > 0).mean()),
               "open_biq": float((e_b > 0).mean()),
               "open_nat_orig": float((e_n[[q["kind"] == "original" for q in nt]] > 0).mean())}  # fmt: skip
        results[name] = res
        print(f"{name} (lambda {lam}): CLIVE0 {res['clive0']:.4f} BIQ {res['biq']:.4f} over {over}/192 deg "
              f"min {res['deg_min']:.3f} mean {res['deg_mean']:.3f} | images with a penalty: CLIVE test "
              f"{res['open_clive_test']:.2f} BIQ {res['open_biq']:.2f} nat originals "
              f"{res['open_nat_orig']:.2f}")  # fmt: skip
        print("   " + " ".join(f"{k} {v:.2f}" for k, v in r.items()), flush=True)
    r0 = rates(nt, b_n, OVER_TEST + DEGRADE_TEST)
    print("base: " + " ".join(f"{k} {v:.2f}" for k, v in r0.items()))
    print(f"thresholds {dict(zip([*NAMES, 'hue_nll'], np.round(t, 3).tolist(), strict=True))}")
    if args.out:
        out = {"thresholds": t.tolist(), "scales": d.tolist(), "hue_logp": logp.tolist()}
        args.out.write_text(json.dumps({**out, "candidates": results}, indent=1))


if __name__ == "__main__":
    main()
