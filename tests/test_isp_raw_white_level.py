"""isp-tune on a raw whose white level is not above its black level: refused in one line
(docs/robustness.md)."""

from __future__ import annotations

import numpy as np
import pytest

from isp_env.dng import write_dng
from isp_env.raw import RawReadError, read_raw


def test_a_raw_whose_white_level_is_not_above_its_black_is_refused_in_one_line(tmp_path):
    """**Was**: a DNG whose black level (1000) is above its white level (900) was read without a word, and
    developed by dividing by a negative range (an image of garbage scored as a render). Now one line naming
    the file and both levels; a sound file of the same pixels is read."""
    mosaic = np.full((32, 32), 950, np.uint16)
    bad = write_dng(tmp_path / "levels.dng", mosaic, "RGGB", black_level=1000, white_level=900)
    with pytest.raises(
        RawReadError, match=r"levels.dng: white level 900 is not above its black level 1000"
    ) as e:
        read_raw(bad)
    assert "\n" not in str(e.value)
    good = read_raw(write_dng(tmp_path / "sound.dng", mosaic, "RGGB", black_level=64, white_level=1023))
    assert good.white > good.black.max()
