"""`genbench run` again on a finished run: its images checked against the size and SHA-256 the manifest
recorded when each was written, against the old way (session 50's check: every image decoded), in this run.

A run folder of N PNG images (scikit-image's photos, shorter edge --size; SD 2.1 writes 768 x 768) with the
manifest `genbench run` writes; each check reads its own fresh copy of it, in the page cache as just
written. Figures in docs/robustness.md.

    python benchmarks/genbench_resume.py [--n 300] [--size 512]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import photo_folder  # noqa: E402

from attiqa.cli import run_app  # noqa: E402
from attiqa.errors import AttiqaError  # noqa: E402
from attiqa.io.images import load_image  # noqa: E402
from genbench.generate import (  # noqa: E402
    SUM_FIELDS,
    GenSettings,
    check_images,
    plan_records,
    recorded_sums,
)
from genbench.manifest import SIDES, write_manifest  # noqa: E402
from genbench.prompts import load_prompt_spec  # noqa: E402


def make_run(n_images: int, size: int) -> Path:
    """A run folder of ``n_images`` PNGs and the manifest with their recorded sums."""
    from PIL import Image

    run = Path(tempfile.mkdtemp(prefix="genbench-resume-"))
    records = plan_records(load_prompt_spec(), GenSettings(), (n_images + 1) // 2)
    photos = sorted(photo_folder(len(records) * 2, size).glob("*.jpg"))
    (run / "images").mkdir()
    for i, (r, s) in enumerate((r, s) for r in records for s in SIDES):
        Image.open(photos[i]).save(run / r[f"image_{s}"], format="PNG")
    shutil.rmtree(photos[0].parent)
    sums = check_images(run, records, {}).sums
    write_manifest(
        run,
        [
            r | {f"{k}_{s}": v for s in SIDES for k, v in zip(SUM_FIELDS, sums[r[f"image_{s}"]], strict=True)}
            for r in records
        ],  # fmt: skip
    )
    return run


def old_check(run: Path, records: list[dict]) -> int:
    """Session 50's `_damaged_images`: every image of the run decoded."""
    bad = 0
    for r in records:
        for s in SIDES:
            try:
                load_image(run / r[f"image_{s}"])
            except AttiqaError:
                bad += 1
    return bad


def timed(fn, run: Path) -> float:
    """Seconds of ``fn(folder)`` on a fresh copy of ``run`` (in the page cache, as just written): a resume
    is a new process, whose hashes are not remembered yet (``content_key`` remembers them per path)."""
    copy = Path(tempfile.mkdtemp(prefix="genbench-resume-")) / "run"
    shutil.copytree(run, copy)
    try:
        t0 = time.perf_counter()
        fn(copy)
        return time.perf_counter() - t0
    finally:
        shutil.rmtree(copy.parent, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=300, help="images in the run")
    ap.add_argument("--size", type=int, default=512, help="shorter edge of each image, px")
    args = ap.parse_args()
    run = make_run(args.n, args.size)
    try:
        records = plan_records(load_prompt_spec(), GenSettings(), (args.n + 1) // 2)
        found: list = []
        new = timed(lambda d: found.append(check_images(d, records, recorded_sums(d))), run)
        old = timed(lambda d: old_check(d, records), run)
        mib = sum(p.stat().st_size for p in (run / "images").glob("*.png")) / 2**20
        assert found[-1].decoded == 0 and not found[-1].damaged
        print(f"{2 * len(records)} PNG images, shorter edge {args.size} px, {mib:.0f} MiB")
        print(f"old (decode every image):       {old:7.3f} s")
        print(f"new (size + SHA-256 vs record): {new:7.3f} s   ({found[-1].decoded} decoded)")
        print(f"ratio old / new: {old / new:.1f}x")
    finally:
        shutil.rmtree(run, ignore_errors=True)


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
