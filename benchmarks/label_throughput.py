"""`attiqa label` end to end (decode + transform + teacher + Parquet parts) against the bare teacher.

The bare baseline runs the teacher's ``score_tensors`` on the very same, already transformed tensors,
in this run. Two teachers: CLIP ViT-B/16 — the paper's teacher; its weights can't be downloaded here,
so it is built with random weights, which costs exactly the same compute — and the weight-free
``classical`` teacher. Target (issue: core): ratio >= 0.8.

    python benchmarks/label_throughput.py [--n 32] [--teachers clip,classical]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import photo_folder  # noqa: E402

from attiqa.cli import run_app  # noqa: E402
from attiqa.io.images import discover_images, load_image  # noqa: E402
from attiqa.labeling import label_images  # noqa: E402
from attiqa.teachers import ClipTeacher, create_teacher  # noqa: E402


def build(kind: str):
    if kind == "classical":
        return create_teacher("classical")
    import open_clip

    model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-16", pretrained=None)
    tok = open_clip.get_tokenizer("ViT-B-16")
    return ClipTeacher.from_model(
        model, preprocess, tok, description="ViT-B-16 (random weights, timing only)"
    )


def measure(kind: str, paths: list[Path], batch_size: int) -> tuple[float, float]:
    teacher = build(kind)
    out = Path(tempfile.mkdtemp()) / "labels.parquet"
    label_images(
        paths[:batch_size], teacher, Path(tempfile.mkdtemp()) / "warm.parquet", batch_size
    )  # warm-up
    t0 = time.perf_counter()
    res = label_images(paths, teacher, out, batch_size)
    e2e = res.labelled / (time.perf_counter() - t0)
    tensors = [teacher.transform(load_image(p)) for p in paths]
    batches = [torch.stack(tensors[i : i + batch_size]) for i in range(0, len(tensors), batch_size)]
    with torch.inference_mode():
        teacher.score_tensors(batches[0])
        t0 = time.perf_counter()
        for b in batches:
            teacher.score_tensors(b)
        bare = len(paths) / (time.perf_counter() - t0)
    return e2e, bare


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--teachers", default="clip,classical")
    args = ap.parse_args()
    paths = discover_images([photo_folder(args.n)])
    print(f"images: {len(paths)} JPEGs (shorter edge 512), torch threads {torch.get_num_threads()}")
    for kind in args.teachers.split(","):
        e2e, bare = measure(kind, paths, args.batch_size)
        print(
            f"[{kind:9s}] attiqa label end to end {e2e:8.2f} img/s | bare teacher {bare:8.2f} img/s | "
            f"ratio {e2e / bare:.3f} (target >= 0.8)"
        )


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
