"""`isp-tune --raw-dir DIR` at MIT-Adobe FiveK scale: wall time and memory of each stage on big DNGs.

FiveK is 5,000 DSLR raws of 10-25 MP; the shared real raws are < 4 MB. ``make`` writes ``--n`` distinct
synthetic DNGs of 12-24 MP into a FiveK-like tree (``raw_photos/HQa*/photos/*.dng``): photos of
``--photos`` (default ``../shared/data/natural``), each a different seeded crop upscaled to one of four
sensor sizes, unprocessed with random camera settings (:func:`isp_env.synth.synth_dng`: random layout,
gains, noise, 12 bits; uncompressed, so a 24 MP file is 48 MB).

``run`` runs ``isp-tune --raw-dir DIR`` in this process with the budgets given (defaults: small training
budgets, isp-tune's own per-image CMA-ES budget, 150) and a timer around each stage — the header probes,
the scene groups (identical-file hashing), the split, the global CMA-ES, the teacher's inputs, searches
and cross-validation, the held-out raws' front ends, the policy's tuning, its checked setting, the
per-image CMA-ES, the full-resolution renders, rawpy, the PNG files, the report and grid — and a thread
sampling the resident set every 0.2 s: per stage its inclusive wall time, calls and the largest RSS seen
while it ran; at the end the process's peak (VmHWM). Run it under ``nice -n 19 /usr/bin/time -v`` for the
whole command's figures.

``stats`` times, on the full-resolution neutral render of each raw of the folder (the first ``--n``),
:func:`isp_env.reward.render_stats` (what the report used) against
:func:`isp_env.reward.clipped_and_saturation` (what it uses: the same two values).

    python benchmarks/isp_scale.py make /tmp/fivek --n 40
    python benchmarks/isp_scale.py stats /tmp/fivek --n 4
    python benchmarks/isp_scale.py run /tmp/fivek --out /tmp/run --cma-global-budget 20 \
        --cma-image-budget 150 --teacher-budget 10 --teacher-restarts 1

Figures in docs/isp.md ("At FiveK scale").
"""

from __future__ import annotations

import argparse
import functools
import importlib
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from attiqa.cli import run_app

SIZES = ((4000, 3000), (4608, 3456), (5472, 3648), (6000, 4000))  # 12, 16, 20, 24 MP (W, H)
# (module, function) -> stage label; a function is wrapped in every module that imported it by name
STAGES = (
    ("isp_env.raw", "probe_raw", "probe headers"),
    ("isp_env.run_inputs", "scene_groups", "scene groups + hashing"),
    ("isp_env.run_inputs", "split", "split"),
    ("isp_env.run", "refuse_undecodable", "decode check"),
    ("isp_env.run", "global_cma", "global CMA-ES"),
    ("isp_env.tuning", "teacher_inputs", "teacher: inputs (front ends)"),
    ("isp_env.teacher", "search_targets", "teacher: searches"),
    ("isp_env.teacher", "choose_by_cv", "teacher: CV"),
    ("isp_env.run", "evaluate", "evaluate (all held-out work)"),
    ("isp_env.reward", "guarded_item", "front end + guard (preview)"),
    ("isp_env.tuning", "tune_with_policy", "policy tuning"),
    ("isp_env.run", "_checked", "checked setting (policy / base / neutral)"),
    ("isp_env.run", "_baselines", "baselines (per-image CMA-ES)"),
    ("isp_env.isp", "develop", "develop (all)"),
    ("isp_env.raw", "read_raw", "decode (read_raw)"),
    ("isp_env.reward", "rawpy_render", "rawpy.postprocess"),
    ("attiqa.io.images", "save_image", "PNG renders"),
    ("isp_env.report", "write_report", "report + grid"),
    ("isp_env.report", "grid_png", "grid.png"),
    ("isp_env.mos_function", "MOSFunction.__call__", "scorer calls"),
)


def make(folder: Path, n: int, photos: Path, seed: int) -> None:
    """``n`` distinct big DNGs under ``folder/raw_photos/HQa*/photos`` (700 per folder, as FiveK)."""
    from PIL import Image

    from attiqa.io.images import load_image
    from isp_env.synth import find_photos, synth_dng

    sources = find_photos(photos)
    if not sources:
        raise SystemExit(f"{photos}: no photos")
    rng = np.random.default_rng(seed)
    for i in range(n):
        w, h = SIZES[i % len(SIZES)]
        sub = f"HQa{700 * (i // 700) + 1}to{700 * (i // 700 + 1)}"
        dst = folder / "raw_photos" / sub / "photos" / f"a{i + 1:04d}-synthetic.dng"
        if dst.exists():
            continue
        img = load_image(sources[i % len(sources)])
        cw = int(img.width * rng.uniform(0.7, 0.95))
        ch = min(img.height, round(cw * h / w))
        x, y = int(rng.integers(0, img.width - cw + 1)), int(rng.integers(0, img.height - ch + 1))
        big = img.crop((x, y, x + cw, y + ch)).resize((w, h), Image.Resampling.BICUBIC)
        dst.parent.mkdir(parents=True, exist_ok=True)
        synth_dng(dst, np.asarray(big), seed * 100_003 + i)
        print(f"{dst} {w}x{h} ({dst.stat().st_size / 2**20:.0f} MiB)", flush=True)


class Stages:
    """Inclusive wall time, calls and the largest sampled RSS of each wrapped function."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, float]] = {}
        self.active: dict[str, int] = {}
        self.rss = 0.0
        self.stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self.stop.wait(0.2):
            self.rss = rss_mib("VmRSS")
            for label, depth in list(self.active.items()):
                if depth:
                    row = self.rows[label]
                    row["peak_mib"] = max(row["peak_mib"], self.rss)

    def wrap(self, fn: Any, label: str) -> Any:
        row = self.rows.setdefault(label, {"seconds": 0.0, "calls": 0, "peak_mib": 0.0, "first": -1.0})

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            outer = not self.active.get(label)
            self.active[label] = self.active.get(label, 0) + 1
            t = time.perf_counter()
            if row["first"] < 0:
                row["first"] = t - T0
            try:
                return fn(*args, **kwargs)
            finally:
                self.active[label] -= 1
                row["calls"] += 1
                if outer:  # recursion / nesting of one label counts once
                    row["seconds"] += time.perf_counter() - t
                row["peak_mib"] = max(row["peak_mib"], rss_mib("VmRSS"))

        return timed


def rss_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def install(stages: Stages) -> None:
    """Wrap each stage's function where it is defined and in every loaded module that imported it."""
    for module, name, label in STAGES:
        mod = importlib.import_module(module)
        if "." in name:  # a method
            cls_name, meth = name.split(".")
            cls = getattr(mod, cls_name)
            setattr(cls, meth, stages.wrap(getattr(cls, meth), label))
            continue
        fn = getattr(mod, name)
        timed = stages.wrap(fn, label)
        for other in list(sys.modules.values()):
            if (
                getattr(other, "__name__", "").startswith(("isp_env", "attiqa"))
                and getattr(other, name, None) is fn
            ):
                setattr(other, name, timed)


T0 = time.perf_counter()


def run(folder: Path, cli_args: list[str]) -> None:
    import isp_env.cli
    import isp_env.run
    import isp_env.teacher
    import isp_env.tuning  # noqa: F401  (loaded so their imported names are wrapped too)

    stages = Stages()
    install(stages)
    t = time.perf_counter()
    code = 0
    try:
        isp_env.cli.app(["--raw-dir", str(folder), *cli_args], standalone_mode=False)
    except SystemExit as exc:
        code = int(exc.code or 0)
    total = time.perf_counter() - t
    stages.stop.set()
    print(f"\nisp-tune --raw-dir {folder} {' '.join(cli_args)}: exit {code}, {total:.1f} s wall")
    print(f"peak RSS (VmHWM) {rss_mib('VmHWM'):.0f} MiB\n")
    print("| stage | calls | seconds (inclusive) | s / call | largest RSS seen (MiB) | first at (s) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for _, _, label in STAGES:
        r = stages.rows[label]
        if r["calls"]:
            print(
                f"| {label} | {int(r['calls'])} | {r['seconds']:.1f} | {r['seconds'] / r['calls']:.3f} | "
                f"{r['peak_mib']:.0f} | {r['first']:.1f} |"
            )


# isp-tune options ``run`` passes on (None: isp-tune's default)
PASSED = {
    "--out": Path("/tmp/isp_scale_run"),
    "--cma-global-budget": 20,
    "--cma-image-budget": None,
    "--teacher-budget": 10,
    "--teacher-restarts": 1,
    "--test-raws": None,
    "--model": None,
}


def stats(folder: Path, n: int) -> None:
    from isp_env.isp import develop, finish
    from isp_env.params import neutral
    from isp_env.raw import find_raws, read_raw
    from isp_env.reward import clipped_and_saturation, render_stats

    for path in find_raws(folder)[:n]:
        img = finish(develop(read_raw(path)), neutral())
        t = time.perf_counter()
        st = render_stats(img)
        t_all = time.perf_counter() - t
        t = time.perf_counter()
        two = clipped_and_saturation(img)
        t_two = time.perf_counter() - t
        same = two == (st.clipped, st.saturation)
        print(f"{path.name} {img.shape[1]}x{img.shape[0]}: render_stats {t_all:.2f} s, "
              f"clipped_and_saturation {t_two:.2f} s, same values: {same}", flush=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("make", "run", "stats"))
    ap.add_argument("folder", type=Path)
    ap.add_argument("--n", type=int, default=40, help="make: raws to write; stats: raws to time")
    ap.add_argument("--photos", type=Path, default=Path("../shared/data/natural"))
    ap.add_argument("--seed", type=int, default=0)
    for opt, default in PASSED.items():
        ap.add_argument(opt, default=default, help=f"run: isp-tune's {opt}")
    args = ap.parse_args()
    if args.what == "make":
        make(args.folder, args.n, args.photos, args.seed)
        return
    if args.what == "stats":
        stats(args.folder, args.n)
        return
    cli_args = []
    for opt in PASSED:
        value = getattr(args, opt[2:].replace("-", "_"))
        cli_args += [] if value is None else [opt, str(value)]
    run(args.folder, cli_args)


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
