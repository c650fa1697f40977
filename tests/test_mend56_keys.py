"""Session 56 mends: comparisons that compared less than the whole value."""

from __future__ import annotations

from attiqa.training.data import data_key, short_key


def test_data_records_alike_in_their_first_8_characters_are_different_data():
    """**Was**: ``data_key`` cut the hash to 8 characters, so two label tables whose row hashes began alike
    passed the processes' start check as one table; now the whole hash is compared, shortened only when
    a message shows it."""
    mine = {"file": "labels.parquet", "rows": "0123abcd" + "1" * 8}
    theirs = {"file": "labels.parquet", "rows": "0123abcd" + "2" * 8}
    assert data_key(mine) != data_key(theirs)
    assert data_key(mine) == data_key(dict(mine))
    assert short_key(data_key(mine)) == "0123abcd" and short_key(None) is None
