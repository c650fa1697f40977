"""What a resume pays to check a held-out render (``isp_env.run.save_render``): a SHA-256 of the whole PNG
against a hash of its first and last 64 KiB (the check before session 52, blind to damage in the middle
of a file that keeps its size) and against decoding the PNG (the check before session 51).

Why: a resume must never keep a damaged render, and should not decode every render either (minutes at
FiveK scale). Each raw's neutral full-resolution render is written as the run writes it
(``attiqa.io.images.save_image``); the three checks are timed in turns (best of ``--repeats``), so the
ratios are of one moment of a shared machine. ``--upscale WxH`` also times the largest raw's render resized
to that size (the shared real raws are at most 3.2 MP; FiveK's are 10-25 MP).

    python benchmarks/isp_render_check.py ../shared/data/raw/real --n 4 --upscale 6000x4000
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from isp_speed import best_of_interleaved  # noqa: E402

from attiqa.cli import run_app  # noqa: E402
from attiqa.io.images import load_image, save_image  # noqa: E402
from isp_env.isp import develop, finish  # noqa: E402
from isp_env.params import file_stamp, neutral  # noqa: E402
from isp_env.raw import find_raws, read_raw  # noqa: E402
from isp_env.run_inputs import ends  # noqa: E402


def timed(png: Path, repeats: int) -> tuple[float, float, float]:
    """Seconds for the whole file's SHA-256 (:func:`isp_env.params.file_stamp`), the ends' hash, a decode."""
    return tuple(  # type: ignore[return-value]
        best_of_interleaved(
            [
                lambda: file_stamp(png, hashed=True),
                lambda: hashlib.sha256(ends(png)).hexdigest(),
                lambda: np.asarray(load_image(png)),
            ],
            repeats,
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("raw_dir", type=Path)
    ap.add_argument("--n", type=int, default=4, help="the N largest raws (by pixels)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--upscale", default="", help="WxH: also the largest raw's render resized to this size")
    args = ap.parse_args()
    raws = sorted(((read_raw(p), p) for p in find_raws(args.raw_dir)), key=lambda rp: -rp[0].mosaic.size)
    work = Path(tempfile.mkdtemp(prefix="isp-render-check-"))
    pngs: list[tuple[str, Path]] = []
    for raw, path in raws[: args.n]:
        img = finish(develop(raw), neutral())
        pngs.append((path.name, save_image(Image.fromarray(img), work / f"{path.stem}.png")))
        if args.upscale and len(pngs) == 1:
            w, h = (int(v) for v in args.upscale.lower().split("x"))
            big = Image.fromarray(img).resize((w, h), Image.Resampling.BICUBIC)
            pngs.append((f"{path.name} at {w}x{h}", save_image(big, work / "upscaled.png")))
    print(
        f"{'render':44} {'MP':>5} {'MB':>6} {'sha256 s':>9} {'ends s':>8} {'decode s':>9} {'sha/decode':>10}"
    )
    for name, png in pngs:
        with Image.open(png) as im:
            mp = im.width * im.height / 1e6
        full, end, decode = timed(png, args.repeats)
        mb = png.stat().st_size / 1e6
        print(f"{name:44} {mp:5.1f} {mb:6.1f} {full:9.4f} {end:8.5f} {decode:9.4f} {full / decode:10.3f}")
        png.unlink()
    work.rmdir()


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
