"""Session 54's isp-tune round: one stamp function for a run's files (review), an --out folder of another
isp-tune command refused before the work, a raw folder of hostile files (docs/robustness.md rows)."""

from __future__ import annotations

import os
from pathlib import Path


def test_one_file_stamp_hashed_for_renders_and_quick_for_a_finished_run(tmp_path: Path) -> None:
    """**Was**: two functions for a file's stamp (``quick_stamp``: size + mtime; ``file_stamp``: size +
    SHA-256). Now one, ``file_stamp(path, hashed=...)``: hashed, damage of the same size and mtime is seen
    (a resume must not keep a damaged render); quick, the stamp follows the mtime and never reads the file
    (a finished run's full-resolution renders are not hashed again)."""
    from isp_env.run import file_stamp, run_files

    png = tmp_path / "r.png"
    png.write_bytes(b"a" * 4096)
    st = png.stat()
    hashed, quick = file_stamp(png, hashed=True), file_stamp(png, hashed=False)
    assert hashed is not None and quick == [4096, st.st_mtime_ns]
    png.write_bytes(b"a" * 2000 + b"b" + b"a" * 2095)  # same size, one byte in the middle
    os.utime(png, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the same mtime
    assert file_stamp(png, hashed=False) == quick
    assert file_stamp(png, hashed=True) != hashed
    os.utime(png, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert file_stamp(png, hashed=False) != quick
    assert run_files(tmp_path) == {"r.png": file_stamp(png, hashed=False)}
    assert file_stamp(tmp_path / "gone.png", hashed=True) is None
    assert file_stamp(tmp_path / "gone.png", hashed=False) is None
    import isp_env.run as run

    assert not hasattr(run, "quick_stamp")
