"""`isp-tune check`'s count of the raws it could not read."""

from __future__ import annotations


def test_check_counts_the_raws_it_drew_when_none_of_them_can_be_read(tmp_path, isp_raws, isp_cli):
    """**Was**: `isp-tune check RAWS --test-raws 2` on a folder of three raws cut short (their headers
    read, their data not) and a JPEG renamed `.dng` (left out by the header probe) said "none of the 3 raws
    to evaluate could be read": the 2 it drew plus the 1 the probe left out, which was never among the raws
    to evaluate; now it counts the raws it drew and says what they were drawn from."""
    from PIL import Image

    bad = tmp_path / "bad"
    bad.mkdir()
    Image.new("RGB", (64, 48), (90, 120, 150)).save(bad / "renamed.dng", "JPEG")
    for i, raw in enumerate(isp_raws[:3]):
        data = raw.read_bytes()
        (bad / f"cut{i}.dng").write_bytes(data[: len(data) // 3])
    res = isp_cli("check", bad, "--out", tmp_path / "o", "--test-raws", 2)
    said = " ".join(res.stderr.split())
    assert res.returncode != 0, res.stdout + res.stderr
    assert "none of the 2 raws to evaluate (drawn from 3, --test-raws) could be read" in said, said
    assert "complete camera raws or DNGs" in said
    assert not (tmp_path / "o").exists()
