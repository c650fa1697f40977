"""Inputs a hostile but fair user would try (issue 16): path tricks, odd names, killed runs, huge or
degenerate images. Every fixture is generated here; each test failed before its fix."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from attiqa.errors import AttiqaError

runner = CliRunner()


def _png(path: Path, size=(48, 32), seed=0) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


# ---------------------------------------------------------------------------------------------------------
# genbench: paths from a rankings file / manifest never leave the run's image folders


@pytest.fixture()
def secret(tmp_path) -> Path:
    """A file outside every image folder that an attacker would like to read."""
    p = tmp_path / "outside" / "s.png"  # an image extension too: the extension check alone is not enough
    _png(p, seed=9)
    return p


def _ir_items(secret: Path) -> list[dict]:
    return [
        {"id": "ok", "prompt": "a dog", "generations": ["g/1.png", "g/2.png"], "ranking": [1, 2]},
        {"id": "dotdot", "prompt": "x", "generations": ["g/1.png", "../outside/s.png"], "ranking": [1, 2]},
        {"id": "absolute", "prompt": "x", "generations": [str(secret), "g/2.png"], "ranking": [2, 1]},
        {"id": "hostname", "prompt": "x", "generations": ["/etc/hostname", "g/1.png"], "ranking": [1, 2]},
        {"id": "link", "prompt": "x", "generations": ["g/link.png", "g/2.png"], "ranking": [1, 2]},
    ]


def test_imagereward_import_refuses_paths_outside_the_image_folder(tmp_path, secret):
    from genbench.cli import app
    from genbench.manifest import load_pairs

    images = tmp_path / "images"
    _png(images / "g/1.png", seed=1)
    _png(images / "g/2.png", seed=2)
    (images / "g/link.png").symlink_to(secret)  # a link out of the folder is outside it too
    (tmp_path / "rank.json").write_text(json.dumps(_ir_items(secret)))
    run = tmp_path / "run"
    res = runner.invoke(
        app, ["import-imagereward", str(tmp_path / "rank.json"), "--images", str(images), "--out", str(run)]
    )
    assert res.exit_code == 0, res.output
    assert "1 pairs from 1 prompts" in res.output and "4 malformed items skipped" in res.output
    for name in ("dotdot", "absolute", "hostname", "link"):
        assert f"{name}: generation" in res.output and "outside the image folder" in res.output
    pairs = load_pairs(run)
    assert [p.pair_id for p in pairs] == ["ok:0-1"]
    assert "secret" not in (run / "manifest.jsonl").read_text()


def _write_raw_manifest(run: Path, records: list[dict]) -> None:
    """What a crafted or hand-edited manifest looks like (write_manifest itself refuses these)."""
    run.mkdir(parents=True, exist_ok=True)
    (run / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.mark.parametrize("bad", ["/etc/hostname", "../outside/s.png", "SECRET"])
def test_a_tampered_manifest_is_refused_by_every_command(tmp_path, secret, bad):
    from genbench.cli import app
    from genbench.manifest import load_pairs, write_manifest
    from genbench.vote.server import create_app

    run = tmp_path / "run"
    _png(run / "images/a.png")
    bad = str(secret) if bad == "SECRET" else bad
    records = [{"pair_id": "p0", "image_a": "images/a.png", "image_b": bad}]
    _write_raw_manifest(run, records)
    with pytest.raises(AttiqaError, match="outside the run's image folder"):
        load_pairs(run)
    with pytest.raises(AttiqaError, match="outside the run's image folder"):
        create_app(run)
    with pytest.raises(AttiqaError, match="outside the run's image folder"):
        write_manifest(run, records)
    res = runner.invoke(app, ["score", str(run), "-m", "classical", "--workers", "0"])
    assert res.exit_code != 0 and "outside the run's image folder" in str(res.exception or res.output)


def test_vote_server_rechecks_every_image_it_serves(tmp_path, secret):
    from genbench.manifest import write_manifest
    from genbench.vote.server import create_app

    run = tmp_path / "run"
    a, b = _png(run / "images/a.png", seed=1), _png(run / "images/b.png", seed=2)
    write_manifest(run, [{"pair_id": "p0", "image_a": "images/a.png", "image_b": "images/b.png"}])
    client = create_app(run).test_client()
    assert client.get("/image/p0/a").status_code == 200
    b.unlink()
    b.symlink_to(secret)  # swapped for a link after the server started
    resp = client.get("/image/p0/b")
    assert resp.status_code == 404 and resp.data != secret.read_bytes()
    a.unlink()
    a.symlink_to("/etc/hostname")
    assert client.get("/image/p0/a").status_code == 404


def test_imported_images_outside_the_run_folder_are_still_served(tmp_path):
    """The recorded image root keeps ordinary imports working (images beside the rankings file)."""
    from genbench.imagereward import import_imagereward
    from genbench.vote.server import create_app

    images = tmp_path / "ir"
    _png(images / "x/1.png", seed=1)
    _png(images / "x/2.png", seed=2)
    items = [{"id": "i", "prompt": "p", "generations": ["x/1.png", "x/2.png"], "ranking": [2, 1]}]
    (images / "test.json").write_text(json.dumps(items))
    import_imagereward(images / "test.json", None, tmp_path / "run")
    client = create_app(tmp_path / "run").test_client()
    resp = client.get("/image/i:0-1/a")
    assert resp.status_code == 200 and resp.data == (images / "x/1.png").read_bytes()


@pytest.mark.parametrize(
    "host, ok",
    [
        ("127.0.0.1:8000", True),
        ("localhost:8000", True),
        ("LOCALHOST.", True),
        ("[::1]:8000", True),
        ("192.168.1.20:8000", True),
        ("attacker.example:8000", False),  # DNS rebinding: the attacker's name now resolves to 127.0.0.1
        ("localhost.attacker.example", False),
        ("study.lab.example:8000", True),  # allowed with --allow-host
        ("", False),
    ],
)
def test_vote_server_refuses_unknown_host_names(tmp_path, host, ok):
    from genbench.manifest import write_manifest
    from genbench.vote.server import create_app

    run = tmp_path / "run"
    _png(run / "images/a.png", seed=1)
    _png(run / "images/b.png", seed=2)
    write_manifest(run, [{"pair_id": "p0", "image_a": "images/a.png", "image_b": "images/b.png"}])
    client = create_app(run, allow_hosts=["study.lab.example"]).test_client()
    for path in ("/api/study", "/image/p0/a", "/api/next?rater=eve"):
        resp = client.get(path, headers={"Host": host})
        assert (resp.status_code == 200) == ok, (path, resp.status_code)
        if not ok:
            assert resp.status_code == 403 and b"--allow-host" in resp.data
    resp = client.post(
        "/api/vote", json={"rater": "eve", "pair_id": "p0", "choice": "left"}, headers={"Host": host}
    )
    assert (resp.status_code == 201) == ok
