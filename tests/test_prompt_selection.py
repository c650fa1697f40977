"""Prompt selection (ATTIQA §3.3): Table 14 data, the all-pairs SROCC arithmetic against scipy, a stand-in
encoder whose similarities are known (the known best pair must win), and the real command end to end on a
tiny random open_clip model with a small SPAQ-format spreadsheet."""

from __future__ import annotations

import csv
import functools
import json
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import resized
from PIL import Image
from scipy import ndimage, stats

from attiqa.attributes import ATTRIBUTES
from attiqa.errors import ConfigError
from attiqa.prompts import (
    chosen_prompts,
    distortion_task_srocc,
    human_task_srocc,
    load_candidates,
    load_proxy_distortions,
    make_prompt,
    run_selection,
    summary_rows,
    write_summary_csv,
)
from attiqa.prompts.selection import signs_from_mos
from attiqa.teachers import ClipTeacher, load_prompts

SPAQ_XLSX = "Annotations/MOS and Image attribute scores.xlsx"
SPAQ_COLUMNS = ("Image name", "MOS", "Brightness", "Colorfulness", "Contrast", "Noisiness", "Sharpness")


# --------------------------------------------------------------------------------------------------
# data files
# --------------------------------------------------------------------------------------------------


def test_table14_candidates_are_packaged_verbatim_and_deduplicated():
    cands = load_candidates()
    assert list(cands) == list(ATTRIBUTES)
    sharp = cands["sharpness"]
    assert sharp.positive[:3] == ("crisp", "sharp", "defined") and sharp.negative[:2] == ("blurry", "fuzzy")
    assert "pixilated" in sharp.negative  # the paper's spelling is kept
    # as printed, brightness-positive repeats "brilliant" and noisiness-positive repeats "intact"
    raw = json.loads(
        Path(__import__("attiqa").__file__)
        .parent.joinpath("data/prompts/attiqa_table14_candidates.json")
        .read_text()
    )
    assert raw["attributes"]["brightness"]["positive"].count("brilliant") == 2
    assert cands["brightness"].positive.count("brilliant") == 1
    for c in cands.values():
        assert 48 <= len(c.positive) <= 51 and 48 <= len(c.negative) <= 51
    # Table 1's chosen pairs are all among Table 14's candidates, spelled like Table 1: so the default uses
    # "Grainy image" (Table 14 has "grainy", no "graimy"; Table 1's "Graimy" cannot come from the selection)
    table1 = load_prompts()
    for a, pair in table1.pairs.items():
        assert pair.positive in cands[a].prompts("positive") and pair.negative in cands[a].prompts("negative")
    assert table1.pairs["noisiness"].negative == "Grainy image"
    assert not any("graimy" in w.lower() for c in cands.values() for w in (*c.positive, *c.negative))
    assert make_prompt("out-of-focus") == "Out-of-focus image"


def test_proxy_distortions_follow_the_supplement():
    proxies = load_proxy_distortions()
    assert proxies["sharpness"] == ("gaussian_blur", "zoom_blur", "lens_blur")
    assert proxies["noisiness"] == ("gaussian_noise", "iso_noise")
    assert set(proxies) == set(ATTRIBUTES)


def test_bad_candidate_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "c.json"
    bad.write_text(json.dumps({"attributes": {"sharpnes": {"positive": ["a"], "negative": ["b"]}}}))
    with pytest.raises(ConfigError, match="sharpnes"):
        load_candidates(bad)
    bad.write_text(json.dumps({"attributes": {"sharpness": {"positive": [], "negative": ["b"]}}}))
    with pytest.raises(ConfigError, match="positive"):
        load_candidates(bad)


# --------------------------------------------------------------------------------------------------
# the arithmetic: equal to a per-pair scipy loop
# --------------------------------------------------------------------------------------------------


def _unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _eq2(x, p, n):
    """Eq. (2): the positive prompt's softmax share (scale 1), one float64 dot per row (a batched float32
    product may round identical rows differently)."""
    cp = np.array([float(np.dot(r.astype(np.float64), p)) for r in x])
    cn = np.array([float(np.dot(r.astype(np.float64), n)) for r in x])
    return np.exp(cp) / (np.exp(cp) + np.exp(cn))


def _spearman(x, y) -> float:
    """scipy's SROCC, 0 for a constant input (where scipy says nan)."""
    return 0.0 if np.ptp(x) == 0 else float(stats.spearmanr(x, y).statistic)


def test_all_pairs_srocc_equals_scipy_per_pair():
    rng = np.random.default_rng(0)
    pos, neg = _unit(rng.normal(size=(4, 8))), _unit(rng.normal(size=(3, 8)))
    series = _unit(rng.normal(size=(5, 2, 6, 8)))
    series[0, 1, 3] = series[0, 1, 2]  # a level that changed nothing: tied scores, averaged ranks
    series[2, 0, 1:] = series[2, 0, 0]  # a series that never changes: no evidence, 0 (scipy: nan)
    signs = [-1, 1]
    got = distortion_task_srocc(series, pos, neg, signs)
    for a in range(4):
        for b in range(3):
            want = np.mean(
                [
                    np.mean(
                        [
                            signs[k] * _spearman(_eq2(series[i, k], pos[a], neg[b]), np.arange(6))
                            for i in range(5)
                        ]
                    )
                    for k in range(2)
                ]
            )
            assert got[a, b] == pytest.approx(want, abs=1e-5)
    img = _unit(rng.normal(size=(30, 8)))
    ratings = rng.normal(size=30)
    ratings[3] = np.nan  # a missing rating is left out
    got2 = human_task_srocc(img, ratings, pos, neg)
    ok = np.isfinite(ratings)
    for a in range(4):
        for b in range(3):
            want = stats.spearmanr(img[ok] @ pos[a] - img[ok] @ neg[b], ratings[ok]).statistic
            assert got2[a, b] == pytest.approx(want, abs=1e-5)


# --------------------------------------------------------------------------------------------------
# a stand-in encoder with known similarities: the known best pair must win
# --------------------------------------------------------------------------------------------------


def _sharpness(img: Image.Image) -> float:
    """In [0, 1): grows with the image's Laplacian energy (sharper -> larger)."""
    g = np.asarray(img.convert("L"), dtype=np.float64)
    e = float(np.abs(ndimage.laplace(g)).mean())
    return e / (e + 5.0)


class KnownEncoder:
    """Image x -> [m, sqrt(1 - m^2) * z]: m = (half) the sharpness of x, z = unit direction of its mean
    colour minus grey (a nuisance that varies between photos). "Crisp image" and "Blurry image" differ
    only in the first coordinate, so cos(x, crisp) - cos(x, blurry) = 1.6 m: the one pair whose score
    orders images exactly by sharpness. Every other prompt is a fixed pseudo-random direction (from a
    checksum of its text)."""

    description = "known-similarity stand-in"
    known = ("Crisp image", "Blurry image")

    def encode_images(self, images):
        out = []
        for im in images:
            m = 0.5 * _sharpness(im)  # half: the nuisance then weighs more in every other pair
            z = np.asarray(im, dtype=np.float64).reshape(-1, 3).mean(axis=0) - 110.0
            out.append(np.concatenate([[m], np.sqrt(1 - m * m) * z / np.linalg.norm(z)]))
        return np.asarray(out, dtype=np.float32)

    def encode_texts(self, texts):
        rest = 0.6 * np.ones(3) / np.sqrt(3)
        out = []
        for t in texts:
            if t == self.known[0]:
                out.append(np.concatenate([[0.8], rest]))
            elif t == self.known[1]:
                out.append(np.concatenate([[-0.8], rest]))
            else:
                out.append(np.random.default_rng(zlib.crc32(t.encode())).normal(size=4))
        return _unit(np.asarray(out))


SMALL = {
    "sharpness": (["vivid", "crisp", "bold", "pure", "lucid"], ["dull", "hazy", "blurry", "flat"]),
    "contrast": (["stark", "deep"], ["faded", "flat"]),
    "brightness": (["sunny", "bright"], ["dark", "dim"]),
    "colorfulness": (["vibrant", "lush"], ["grayish", "pale"]),
    "noisiness": (["clean", "pure"], ["grainy", "noisy"]),
}


def _write_candidates(path: Path, lists=SMALL) -> Path:
    path.write_text(
        json.dumps(
            {
                "format": "attiqa-prompt-candidates",
                "version": 1,
                "template": "{} image",
                "attributes": {a: {"positive": p, "negative": n} for a, (p, n) in lists.items()},
            }
        )
    )
    return path


def _write_spaq(root: Path, photos, blur_sigmas=(0, 0.6, 1.2, 2, 3.5)) -> list[float]:
    """A small SPAQ-format dataset: photos at several blur strengths in TestImage/, and the annotation
    spreadsheet whose Sharpness column is the known sharpness measure (x100); other columns vary."""
    import openpyxl

    (root / "TestImage").mkdir(parents=True)
    (root / "Annotations").mkdir()
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(list(SPAQ_COLUMNS))
    sharp = []
    rng = np.random.default_rng(1)
    k = 0
    for photo in photos:
        for s in blur_sigmas:
            arr = np.asarray(photo, dtype=np.float32)
            img = Image.fromarray(np.clip(ndimage.gaussian_filter(arr, (s, s, 0)), 0, 255).astype(np.uint8))
            name = f"{k:05d}.png"
            img.save(root / "TestImage" / name)
            m = _sharpness(img)
            sharp.append(m)
            ws.append([name, float(rng.uniform(0, 100)), *rng.uniform(0, 100, 4).round(2).tolist(), m * 100])
            k += 1
    wb.save(root / SPAQ_XLSX)
    return sharp


def rng_mos_noise(x: np.ndarray) -> np.ndarray:
    """Small noise so the synthetic MOS is not the sharpness column itself."""
    return np.random.default_rng(3).normal(0.0, 0.05 * float(np.std(x)) + 1e-9, len(x))


def test_signs_from_mos_flips_only_columns_that_fall_with_quality():
    mos = np.linspace(0, 100, 20)
    got = signs_from_mos({"sharpness": mos * 0.5 + 3, "noisiness": 100 - mos, "contrast": [np.nan] * 20}, mos)
    assert got == {"sharpness": 1, "noisiness": -1, "contrast": 1}


@pytest.fixture(scope="module")
def task_photos(photos) -> list[Image.Image]:
    return [resized(photos[n], shorter=160) for n in ("astronaut", "coffee", "chelsea")]


def test_known_best_pair_wins_every_task(tmp_path, task_photos):
    from attiqa.datasets.wild import SPAQ

    cands = load_candidates(_write_candidates(tmp_path / "cands.json"))
    _write_spaq(tmp_path / "spaq", task_photos)
    records = SPAQ(tmp_path / "spaq").read_records()
    ratings = {a: [r.values[a] for r in records] for a in cands}
    enc = KnownEncoder()
    select = functools.partial(
        run_selection,
        candidates=cands,
        cache_dir=tmp_path / "cache",
        photos=task_photos,
        photo_names=["a", "b", "c"],
        proxies=load_proxy_distortions(),
        rated_paths=[r.image for r in records],
        ratings=ratings,
        work_size=128,
    )
    res = select(enc)
    assert res.tasks == ("distortion", "human", "joint") and res.n_rated == 15 and not res.failed
    sel = res.attributes["sharpness"]
    known = (sel.candidates.positive.index("crisp"), sel.candidates.negative.index("blurry"))
    # task 1: the known pair tracks every blur series perfectly (ties at +1 are possible for others)
    assert sel.values["distortion"][known] == pytest.approx(1.0, abs=1e-6)
    assert sel.values["distortion"].max() == pytest.approx(1.0, abs=1e-6)
    # task 2 and the joint strategy: the known pair is the unique best
    assert sel.pick("human")["best"] == known and sel.values["human"][known] == pytest.approx(1.0)
    assert sel.pick("joint")["best"] == known and sel.values["joint"][known] == pytest.approx(2.0)
    assert np.sum(sel.values["joint"] >= 2.0 - 1e-6) == 1
    # reversing the pair is the worst it can be
    assert sel.values["distortion"].min() < 0 and sel.pick("joint")["worst"] != known
    # outputs: summary rows/CSV and the chosen prompts in the clip teacher's format
    rows = summary_rows(res)
    assert {(r["task"], r["rank"]) for r in rows if r["attribute"] == "sharpness"} == {
        (t, k) for t in ("distortion", "human", "joint") for k in ("best", "median", "worst")
    }
    best = next(
        r for r in rows if r["attribute"] == "sharpness" and r["task"] == "joint" and r["rank"] == "best"
    )
    assert (best["positive"], best["negative"]) == ("crisp", "blurry")
    path = write_summary_csv(res, tmp_path / "summary.csv")
    assert len(list(csv.DictReader(path.open()))) == len(rows) == 5 * 3 * 3
    ps = load_prompts(chosen_prompts(res).save(tmp_path / "prompts.json"))
    assert (ps.pairs["sharpness"].positive, ps.pairs["sharpness"].negative) == KnownEncoder.known
    assert ps.extra["selection"]["pairs"]["sharpness"]["joint"] == pytest.approx(2.0)

    # resuming: everything comes from the cache, the encoder is not called again
    class Refuse(KnownEncoder):
        def encode_images(self, images):
            raise AssertionError("encoded again despite the cache")

    again = select(Refuse())
    np.testing.assert_array_equal(again.attributes["sharpness"].values["joint"], sel.values["joint"])
    # human-perception task alone (no photos): joint = that task
    alone = select(enc, cache_dir=tmp_path / "cache2", photos=(), photo_names=())
    assert alone.tasks == ("human", "joint") and alone.attributes["sharpness"].pick("joint")["best"] == known
    # a rating column that runs the other way (higher = worse, as SPAQ's noisiness might) is caught against
    # the MOS and flipped: the known pair still wins the human task, and the flip is reported
    sharp = np.asarray(ratings["sharpness"])
    flipped = {**ratings, "sharpness": list(100.0 - sharp), "mos": list(sharp + rng_mos_noise(sharp))}
    back = select(enc, cache_dir=tmp_path / "cache3", photos=(), photo_names=(), ratings=flipped)
    assert back.human_signs["sharpness"] == -1 and back.attributes["sharpness"].pick("human")["best"] == known
    assert back.attributes["sharpness"].values["human"][known] == pytest.approx(1.0)
    # without the MOS nothing is flipped (the reading of every column is the documented default)
    unchecked = select(
        enc, cache_dir=tmp_path / "cache4", photos=(), photo_names=(), ratings=flipped | {"mos": None}
    )
    assert unchecked.human_signs == {} and unchecked.attributes["sharpness"].values["human"][known] < 0
    # a cache made with other settings is refused, not mixed
    with pytest.raises(ConfigError, match="other settings"):
        run_selection(
            enc,
            cands,
            tmp_path / "cache",
            task_photos,
            ["a", "b", "c"],
            load_proxy_distortions(),
            work_size=64,
        )


# --------------------------------------------------------------------------------------------------
# the real command on a tiny random open_clip model
# --------------------------------------------------------------------------------------------------


def test_select_prompts_command_end_to_end(tmp_path, task_photos, tiny_dir, cli):
    """`attiqa select-prompts` end to end through the entry point, in this process (real processes of it:
    test_labeling_prompts_exiqa_reruns's peak-memory test)."""
    photos_dir = tmp_path / "photos"
    photos_dir.mkdir()
    for i, p in enumerate(task_photos[:2]):
        p.save(photos_dir / f"p{i}.png")
    _write_spaq(tmp_path / "spaq", task_photos[:2], blur_sigmas=(0, 2))
    (tmp_path / "spaq" / "TestImage" / "00001.png").write_bytes(b"not an image")  # skipped, reported
    out = tmp_path / "sel"
    select = ["select-prompts", "--teacher", f"clip:{tiny_dir}", "--out", out]
    r = cli(*select, "--images", photos_dir, "--spaq", tmp_path / "spaq", "--work-size", "64",
            "--device", "cpu", "--all-pairs")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "00001.png" in r.stderr and "skipped" in r.stderr
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert {row["attribute"] for row in rows} == set(ATTRIBUTES)
    assert {row["task"] for row in rows} == {"distortion", "human", "joint"}
    for row in rows:
        assert float(row["joint"]) == pytest.approx(float(row["distortion"]) + float(row["human"]), abs=2e-6)
    n_pairs = sum(c.n_pairs for c in load_candidates().values())
    assert len(list(csv.DictReader((out / "all_pairs.csv").open()))) == n_pairs  # full Table 14
    chosen = load_prompts(out / "prompts.json")
    teacher = ClipTeacher(str(tiny_dir), prompts=out / "prompts.json")  # the clip teacher reads it
    assert teacher.prompts.texts() == chosen.texts()
    best = {
        row["attribute"]: (row["positive"], row["negative"])
        for row in rows
        if row["task"] == "joint" and row["rank"] == "best"
    }
    for a, (p, n) in best.items():
        assert chosen.pairs[a].positive == make_prompt(p) and chosen.pairs[a].negative == make_prompt(n)
    # bad input: one line naming the file and the fix, exit code 2
    bad = cli("select-prompts", "--teacher", f"clip:{tiny_dir}", "--spaq", tmp_path / "nowhere", "--out", out)
    assert bad.returncode == 2 and "nowhere" in bad.stderr and "Traceback" not in bad.stderr
