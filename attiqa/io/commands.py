"""The commands that hold an output (:mod:`attiqa.io.atomic`'s locks), by the name each writes into its lock
file ("writing; attiqa score"): one table, so that a second run is told "the same command still running?"
by names spelled once. A name must fit the lock file's record: up to four words of a-z, 0-9 and '-'
(a word starts with a letter)."""

from __future__ import annotations

import enum


class Command(enum.Enum):
    """A lock holder's command; its value is the name written into the lock file and compared there."""

    SCORE = "attiqa score"
    LABEL = "attiqa label"
    EVAL = "attiqa eval"
    BENCH = "attiqa bench"
    SELECT_PROMPTS = "attiqa select-prompts"
    TRAIN = "attiqa train"
    TRAIN_EXIQA = "attiqa train exiqa"
    TRAIN_EXIQA_REGRESSOR = "attiqa train exiqa-regressor"
    DEGRADE = "attiqa degrade"
    MAKE_DISTORTED = "attiqa make-distorted"
    ISP_TUNE = "isp-tune"
    ISP_CHECK = "isp-tune check"
    GENBENCH_RUN = "genbench run"
    GENBENCH_SCORE = "genbench score"
    GENBENCH_AGREE = "genbench agree"
    GENBENCH_IMPORT_IMAGEREWARD = "genbench import-imagereward"
    GENBENCH_IMPORT_AGIQA3K = "genbench import-agiqa3k"
