"""A hash of each raw's reading and neutral render, to show a change leaves the shared raws' renders alone.

Why: the shipped policy and the figures in docs/isp.md depend on how the 43 real raws render, so a change to
the raw reader or the ISP for other files (a DNG tag they lack) must keep these byte-identical. One line a
raw: its name, a sha256 (16 hex digits) of its :class:`isp_env.raw.RawImage` (mosaic, layout, black and
white levels, gains, matrix, pixel aspect) and of its neutral full-resolution render. Run it on main and on
the change, then compare:

    python benchmarks/isp_render_hashes.py ../shared/data/raw/real --out /tmp/hashes_change.txt
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from attiqa.cli import run_app
from attiqa.io.atomic import write_text_atomic
from isp_env.isp import develop, finish
from isp_env.params import neutral
from isp_env.raw import find_raws, read_raw


def hashes(raw_dir: Path) -> list[str]:
    """``name raw-hash render-hash`` for every raw under ``raw_dir``, sorted."""
    lines = []
    for path in find_raws(raw_dir):
        raw = read_raw(path)
        h = hashlib.sha256()
        white, aspect = np.float64(raw.white), np.float64(raw.pixel_aspect)
        for a in (raw.mosaic, raw.cfa, raw.black, white, raw.wb_gains, raw.cam_to_srgb, aspect):
            h.update(np.ascontiguousarray(a).tobytes())
        render = hashlib.sha256(finish(develop(raw), neutral()).tobytes()).hexdigest()[:16]
        lines.append(f"{path.relative_to(raw_dir)} {h.hexdigest()[:16]} {render}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("raw_dir", type=Path)
    ap.add_argument("--out", type=Path, help="write the lines here (else print them)")
    args = ap.parse_args()
    text = "\n".join(hashes(args.raw_dir)) + "\n"
    if args.out:
        write_text_atomic(args.out, text)
    else:
        print(text, end="")


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
