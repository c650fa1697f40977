"""Neutral render against ``rawpy.postprocess()``, every raw of a folder: is the front end right per camera?

Why: renders are checked on cameras we do not have, so camera-specific assumptions (layout, black and white
levels, colour matrix, white balance, orientation) must agree with LibRaw's on every camera we do have. Both
sides develop at half size (our 2x2 binning; LibRaw's ``half_size``), sRGB primaries, camera white balance.

Columns: ``angle`` — mean per-pixel angle (degrees) between our linear front end and rawpy's linear output
(gamma 1, no auto-brightness) over pixels between the 5th luma percentile and 95 % of the maximum;
``angle same WB`` — the same with rawpy given our white-balance gains (isolates matrix, levels and layout
from the white-balance fallback when a camera records none: LibRaw then balances automatically, we use
daylight); ``clip angle`` — the same-WB angle on rawpy's brightest pixels (luma >= 98 % of its maximum:
clipped highlights should stay neutral on both); ``luma r`` — Pearson correlation of the 8-bit neutral
render's luma with rawpy's default 8-bit render (exposure-independent); ``shape`` — ``ok`` when both have the
same orientation and size.

    python benchmarks/isp_rawpy_agreement.py ../shared/data/raw/real --out /tmp/rawpy_agreement

prints a Markdown table and writes ``contact_sheet.png`` (ours | rawpy, one row a raw) to ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from attiqa.cli import run_app
from attiqa.io.images import save_image
from isp_env.isp import develop, finish
from isp_env.params import neutral
from isp_env.raw import RawReadError, find_raws, open_raw, read_raw

LUMA = np.array([0.2126, 0.7152, 0.0722])


def mean_angle(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Mean angle in degrees between the RGB vectors of ``a`` and ``b`` where ``mask``."""
    x, y = a[mask].astype(np.float64), b[mask].astype(np.float64)
    cos = (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1) + 1e-12)
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))).mean()) if mask.any() else float("nan")


def rawpy_linear(path: Path, wb: list[float] | None) -> np.ndarray:
    """rawpy's half-size linear sRGB in [0, 1]; ``wb``: user gains (R, G, B, G2), else the camera's."""
    opts = {"user_wb": wb} if wb is not None else {"use_camera_wb": True}
    with open_raw(path) as r:
        out = r.postprocess(half_size=True, gamma=(1, 1), no_auto_bright=True, output_bps=16, **opts)
    return out.astype(np.float32) / 65535.0


def compare(path: Path) -> tuple[dict[str, str], np.ndarray, np.ndarray]:
    raw = read_raw(path)
    dev = develop(raw, max(raw.shape) // 2)
    ours = finish(dev, neutral())
    with open_raw(path) as r:
        ref8 = r.postprocess(half_size=True, use_camera_wb=True)
    g = raw.wb_gains
    lin, lin_wb = rawpy_linear(path, None), rawpy_linear(path, [float(g[0]), 1.0, float(g[2]), 1.0])
    same = lin.shape[:2] == dev.linear.shape[:2] and ref8.shape[:2] == ours.shape[:2]
    if not same:  # compare what overlaps; the shape column says it is wrong
        h, w = min(lin.shape[0], dev.linear.shape[0]), min(lin.shape[1], dev.linear.shape[1])
        lin, lin_wb, mine = lin[:h, :w], lin_wb[:h, :w], dev.linear[:h, :w]
        h8, w8 = min(ref8.shape[0], ours.shape[0]), min(ref8.shape[1], ours.shape[1])
        luma8 = (ours[:h8, :w8] @ LUMA, ref8[:h8, :w8] @ LUMA)
    else:
        mine, luma8 = dev.linear, (ours @ LUMA, ref8 @ LUMA)
    y = lin @ LUMA
    ok = (y > np.percentile(y, 5)) & (y < 0.95 * y.max())
    clip = y >= 0.98 * y.max()
    row = {
        "raw": path.name,
        "layout": raw.layout,
        "size": f"{raw.shape[1]}x{raw.shape[0]}",
        "angle": f"{mean_angle(mine, lin, ok):.1f}",
        "angle same WB": f"{mean_angle(mine, lin_wb, ok):.1f}",
        "clip angle": f"{mean_angle(mine, lin_wb, clip):.1f}" if clip.mean() > 1e-3 else "-",
        "luma r": f"{np.corrcoef(luma8[0].ravel(), luma8[1].ravel())[0, 1]:.3f}",
        "shape": "ok" if same else f"ours {_wh(ours)}, rawpy {_wh(ref8)}",
    }
    return row, ours, ref8


def _wh(img: np.ndarray) -> str:
    return f"{img.shape[1]}x{img.shape[0]}"


def sheet(pairs: list[tuple[str, np.ndarray, np.ndarray]], path: Path, height: int = 160) -> None:
    """ours | rawpy side by side, two raws a row, each image ``height`` px high."""
    tiles = []
    for _, *two in pairs:
        sizes = [(round(x.shape[1] * height / x.shape[0]) or 1, height) for x in two]
        ims = [Image.fromarray(x).resize(size) for x, size in zip(two, sizes, strict=True)]
        tile = Image.new("RGB", (ims[0].width + ims[1].width + 12, height + 4), "white")
        tile.paste(ims[0], (0, 0))
        tile.paste(ims[1], (ims[0].width + 4, 0))
        tiles.append(tile)
    cols = 2
    cw = max(t.width for t in tiles)
    out = Image.new("RGB", (cw * cols, (height + 4) * -(-len(tiles) // cols)), "white")
    for i, t in enumerate(tiles):
        out.paste(t, ((i % cols) * cw, (i // cols) * (height + 4)))
    save_image(out, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("raws", nargs="+", type=Path, help="raw files or folders")
    ap.add_argument("--out", type=Path, default=Path("/tmp/rawpy_agreement"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    paths = [p for root in args.raws for p in find_raws(root)]
    rows, pairs = [], []
    for p in paths:
        try:
            row, ours, ref = compare(p)
        except RawReadError as exc:
            print(f"skipped: {exc}")
            continue
        rows.append(row)
        pairs.append((p.name, ours, ref))
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |")
    print("| " + " | ".join("---" if c in ("raw", "layout", "shape") else "---:" for c in cols) + " |")
    for r in rows:
        print("| " + " | ".join(r[c] for c in cols) + " |")
    for c in ("angle", "angle same WB", "luma r"):
        v = np.array([float(r[c]) for r in rows])
        print(f"{c}: median {np.median(v):.3f}, worst {v.max() if c != 'luma r' else v.min():.3f}")
    sheet(pairs, args.out / "contact_sheet.png")
    print(f"contact sheet: {args.out / 'contact_sheet.png'} (ours | rawpy)")


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
