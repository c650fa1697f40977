"""`attiqa score -o` / `attiqa label -o` probe their held output once per job, by one helper
(``attiqa.io.atomic.refuse_if_resumed_held_once``): one process in its torch-free checks, under torchrun
rank 0 once the process group has started (docs/robustness.md, "Kill -9 and the same command again")."""

from __future__ import annotations

from helpers import holding, one_line_error

BUSY = "another process is writing it now (the same command still running?) — let it finish (rerunning it "
BUSY += "then resumes what it left), or choose another --out"
HELD = "resumed_output_held(T, Command.SCORE)"  # `attiqa score -o T`'s hold


def test_the_probe_is_made_by_one_process_at_one_of_its_two_places(tmp_path, monkeypatch):
    """The two places a command calls it (its checks, then inside the process group): one process probes in
    its checks, a torchrun job by rank 0 in the group; every other call is nothing — no two ranks probing at
    once (they took the lock of each other), no probe twice. The job's size and rank are read by the helper
    from torchrun's environment (set here as torchrun sets it for each process), not passed by its callers."""
    from attiqa.errors import AttiqaError
    from attiqa.io.atomic import refuse_if_resumed_held_once
    from attiqa.io.commands import Command

    out = tmp_path / "s.csv"
    first = holding(out, HELD)
    try:
        probed = set()
        for world, rank, in_group in [(w, r, g) for w in (1, 2) for r in range(w) for g in (False, True)]:
            launch = {"WORLD_SIZE": str(world), "RANK": str(rank), "MASTER_ADDR": "127.0.0.1",
                      "MASTER_PORT": "29500"} if world > 1 else {}  # fmt: skip
            for var in ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT"):
                monkeypatch.delenv(var, raising=False)
            for var, value in launch.items():
                monkeypatch.setenv(var, value)
            try:
                refuse_if_resumed_held_once(out, Command.SCORE, in_group=in_group)
            except AttiqaError as refused:
                assert str(refused) == f"{out}: {BUSY}"
                probed.add((world, rank, in_group))
    finally:
        first.communicate(b"", timeout=60)
    assert probed == {(1, 0, False), (2, 0, True)}


def test_a_mistyped_device_is_said_before_the_probe_of_a_held_out(photo_dir, tmp_path, cli):
    """**Was**: `attiqa score DIR -o s.csv --device gpu` (or `cuda0`, `CUDA`) while another run writes s.csv
    was told "another process is writing it now … let it finish": rerun once that one ended, only to meet
    "unknown device 'gpu'". The device's form is now checked torch-free before the probe; a device of a
    good form this machine lacks stays torch's check — after the probe, and one line when nothing holds."""
    import torch

    out = tmp_path / "s.csv"
    args = ("score", photo_dir, "-m", "classical", "--workers", "0", "-o", out, "--device")
    first = holding(out, HELD)
    try:
        for typo in ("gpu", "cuda0", "CUDA", "cuda:x"):
            refused = cli(*args, typo)
            assert (
                one_line_error(refused) == f"error: unknown device {typo!r} — use auto, cpu, cuda or cuda:N"
            )
        absent = "cuda:7" if not torch.cuda.is_available() else f"cuda:{torch.cuda.device_count()}"
        assert one_line_error(cli(*args, absent)) == f"error: {out}: {BUSY}"
    finally:
        first.communicate(b"", timeout=60)
    said = one_line_error(cli(*args, absent))
    assert said.startswith(f"error: device '{absent}': ") and said.endswith(" — use auto or cpu")
    assert not out.exists()


def test_a_clip_teacher_path_that_is_not_there_is_said_before_the_probe_of_a_held_out(
    photo_dir, tiny_dir, tmp_path, cli
):
    """**Was**: `attiqa label DIR --teacher clip:./cli/weights -o l.parquet` (a path mistyped) while another
    run writes l.parquet was told "another process is writing it now": the missing path came only after
    the probe (checking it needed torch); so was `--device gpu`. Now their one line comes first; a teacher
    folder that is there still meets the probe."""
    out = tmp_path / "l.parquet"
    args = ("label", photo_dir, "--workers", "0", "-o", out, "--teacher")
    first = holding(out, HELD)
    try:
        for missing in (tmp_path / "clip", tmp_path / "w.safetensors"):
            res = cli(*args, f"clip:{missing}")
            assert one_line_error(res) == f"error: {missing}: no such file or folder — check the path"
        res = cli(*args, "clip:w.safetensors")  # a bare weights file name, not there
        assert one_line_error(res) == "error: w.safetensors: no such file or folder — check the path"
        gpu = one_line_error(cli(*args, f"clip:{tiny_dir}", "--device", "gpu"))  # label's --device too
        assert gpu == "error: unknown device 'gpu' — use auto, cpu, cuda or cuda:N"
        held = one_line_error(cli(*args, f"clip:{tiny_dir}"))
        assert held.startswith(f"error: {out}: another process is writing it now")
    finally:
        first.communicate(b"", timeout=60)
    assert not out.exists()


def test_a_clip_path_under_the_home_of_no_such_user_is_one_line(photo_dir, tmp_path, cli):
    """**Was** (review of session 65): `attiqa label DIR --teacher clip:~nosuchuser/w -o l.parquet` — a
    `~user` that names no user — was Path.expanduser's traceback ("Could not determine home directory"),
    now in the torch-free check before the probe as it was at the load before; also `-m
    clipiqa:~nosuchuser/w` and MODEL/~nosuchuser/w.pt (:func:`attiqa.teachers.clip.parse_clip_spec`).
    Now it is no such path, in the missing path's one line."""
    import pwd

    import pytest

    from attiqa.errors import ModelLoadError
    from attiqa.teachers.clip import parse_clip_spec

    user = "attiqa-no-such-user"
    with pytest.raises(KeyError):
        pwd.getpwnam(user)
    spec = f"~{user}/w"
    res = cli("label", photo_dir, "--workers", "0", "-o", tmp_path / "l.parquet", "--teacher", f"clip:{spec}")
    assert one_line_error(res) == f"error: {spec}: no such file or folder — check the path"
    for given, said in ((spec, spec), (f"ViT-B-16/{spec}.pt", f"{spec}.pt")):
        with pytest.raises(ModelLoadError) as refused:
            parse_clip_spec(given)
        assert str(refused.value) == f"{said}: no such file or folder — check the path"
    assert not (tmp_path / "l.parquet").exists()
