"""How ``attiqa bench`` (and ``attiqa train``'s ``finetune.dataset``) splits a dataset's rows: official,
random 80/20 or group-aware partitions, byte-identical files kept on one side, and the checks of every split
— torch-free, so that a split a dataset cannot give (too few images or groups, a missing group column) is
said before torch loads (:func:`plan_splits`; :mod:`attiqa.protocols` runs the fine-tuning on them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from attiqa.bench_setup import BenchDataset
from attiqa.datasets.base import IQADataset, name_under
from attiqa.errors import AttiqaError, did_you_mean
from attiqa.evaluation.metrics import FEW_IMAGES, noise_spread
from attiqa.io.images import content_key
from attiqa.launch import launched_rank
from attiqa.progress import console, plain
from attiqa.splits import check_split, say_share, split_indices

# §4.1: "For FLIVE and AVA, we follow the official dataset split"; ours: BIQ2021's repository gives its train
# and test files (the adapter's split), which its users follow — a random 80/20 split ignored them
OFFICIAL_SPLIT_DATASETS = ("flive", "ava", "biq2021")
# ours: the group that must not straddle train and test, per adapter (its items' meta key)
NATURAL_GROUPS = {"kadid10k": "ref", "live": "ref", "csiq": "ref", "tid2013": "ref", "pipal": "ref",
                  "agiqa3k": "prompt", "agiqa1k": "prompt"}  # fmt: skip


@dataclass(frozen=True)
class Split:
    """One train/test partition of a dataset's items (indices into ``dataset.items``)."""

    name: str
    train: tuple[int, ...]
    test: tuple[int, ...]
    seed: int | None
    kind: str  # "random" | "official" | "fraction"


def uses_official_split(ds: IQADataset, official: bool | None) -> bool:
    """Paper §4.1: official split for FLIVE and AVA (ours: and BIQ2021); a folder CSV's own split column is
    honoured too."""
    has = {"train"} <= set(ds.splits()) and bool({"test", "val"} & set(ds.splits()))
    if official is None:
        official = ds.name in OFFICIAL_SPLIT_DATASETS or ds.name == "folder"
    if official and not has and ds.name in OFFICIAL_SPLIT_DATASETS:
        say_official_split_missing(ds)
    return official and has


def say_official_split_missing(ds: IQADataset) -> None:
    """A dataset benchmarked on its official split whose copy holds one side of it (BIQ2021 with its
    training file only): random 80/20 splits instead, said in a line naming the side and its missing file —
    by rank 0 alone under torchrun (every process of `attiqa train` plans the split; torch-free: bench says it
    before torch loads)."""
    if launched_rank() != 0:
        return
    sides = set(ds.splits())
    there = {"training": "train" in sides, "test": bool({"test", "val"} & sides)}
    lacking = " or ".join(w for w, has in there.items() if not has)
    gone = [f.name for f in ds.source_files() if not f.is_file() and f.name in (ds.info.official_split or "")]
    which = f"{', '.join(gone)} not found" if gone else f"its official split: {ds.info.official_split}"
    console.print(
        f"[yellow]warning[/] {plain(ds.name)} ({plain(str(ds.root))}): no {lacking} images "
        f"({plain(which)}) — random 80/20 splits instead of the official split; put the missing file beside "
        "the others to follow it",
        highlight=False,
    )


def official_partition(ds: IQADataset) -> Split:
    items = ds.items
    test_name = "test" if any(it.split == "test" for it in items) else "val"
    train = tuple(i for i, it in enumerate(items) if it.split == "train")
    test = tuple(i for i, it in enumerate(items) if it.split == test_name)
    return Split("official", train, test, None, "official")


def say_off_the_split(ds: IQADataset, who: str) -> None:
    """The images an official split puts on neither side (an empty or unknown split cell of a folder CSV, a
    FLIVE image in neither split file), said once before the runs by rank 0: they were left out of every
    run without a word (3 trained on and 2 tested of a CSV's 12 rows). A folder CSV's val rows beside a test
    side are said too (they were left out without a word): the paper's protocol (§4.1) trains on the train
    side and tests on the test side, and picks no epoch on a validation set (the last epoch's model is
    reported, issue 18), so they are used by no run — not trained on (the train side is the user's)."""
    if launched_rank() != 0:
        return
    val = sum(it.split == "val" for it in ds.items)
    if ds.name == "folder" and val and any(it.split == "test" for it in ds.items):
        src = next((f.name for f in ds.source_files()), ds.name)
        console.print(
            f"[yellow]{plain(who)}: its {val} val row(s) ({plain(src)}) are used by no run — the protocol "
            "(paper §4.1) trains on the train rows and tests on the test rows, and picks no epoch on a "
            "validation set; mark them train or test to use them",
            highlight=False,
        )
    off = [it for it in ds.items if it.split not in ("train", "val", "test")]
    if not off:
        return
    lines = [str(it.line) for it in off if it.line is not None]
    src = next((f.name for f in ds.source_files()), ds.name)
    if len(lines) == len(off):
        more = ", ..." if len(lines) > 5 else ""
        many = len(lines) > 1
        where = f"{src} line{'s' if many else ''} {', '.join(lines[:5])}{more}: no train or test in "
        where += "their split cell" if many else "its split cell"
    else:  # a split of other files (FLIVE's): no cell says it (was "no train or test in their split cell")
        where = f"e.g. {name_under(off[0].image, ds.root)}: on no side of {ds.info.official_split}"
    fix = (
        "fill in their split cells (train or test), or leave the split column out for random 80/20 splits"
        if ds.name == "folder"
        else "put them in the split's files, or leave them out of the score file"
    )
    are = "are" if len(off) > 1 else "is"
    console.print(
        f"[yellow]{plain(who)}: {len(off)} of its {len(ds.items)} images {are} on neither side of its split "
        f"({plain(where)}) — left out of every run; {plain(fix)}",
        highlight=False,
    )


def group_keys(ds: IQADataset, group_by: str | None, option: str = "--group-by") -> list[str] | None:
    """Each item's group (``group_by`` a key of the items' meta, ``"auto"`` the dataset's natural one,
    None = no groups); an error naming the dataset when items lack it, and ``option``, the setting that
    chose it (`attiqa train`: ``finetune.group_by``). ``"auto"`` on a copy of the data
    whose score file holds no such key at all (LIVE without ``refnames_all.mat``; AGIQA-1k's ``Image,Score``
    file has no prompts) splits image-wise and says so (rank 0, under torchrun): the default must not refuse
    a supported dataset."""
    auto = group_by == "auto"
    if auto:
        group_by = NATURAL_GROUPS.get(ds.name)
    if group_by is None:
        return None
    if not auto:  # a column read by its name in any case, as every column is (was: "--group-by MOS" on a
        group_by = column_named(ds, group_by)  # `mos` column, "no 'MOS' to group by", no hint)
    keys = [it.meta.get(group_by) for it in ds.items]
    missing = sum(k is None or k == "" for k in keys)
    if auto and missing == len(keys):
        if launched_rank() != 0:  # every process of `attiqa train` plans the split: rank 0 says it
            return None
        console.print(
            f"[yellow]{plain(ds.name)} ({plain(str(ds.root))}): no item has a {group_by!r} to group by — "
            "image-wise splits (images of one group may fall on both sides)",
            highlight=False,
        )
        return None
    if missing:
        have = sorted({k for it in ds.items for k in it.meta}) or ["none"]
        hint = did_you_mean(group_by, have, aliases={"reference": "ref"}) if missing == len(keys) else ""
        src = next((f for f in ds.source_files() if f.is_file()), None)
        gaps = [it.line for it, k in zip(ds.items, keys, strict=True) if not k and it.line is not None]
        if group_by in have and src is not None and gaps:  # the column is there, some cells are empty
            shown = ", ".join(map(str, gaps[:5])) + (", ..." if len(gaps) > 5 else "")
            raise AttiqaError(
                f"{ds.name} ({ds.root}): {missing} of {len(keys)} items have no {group_by!r} to group by "
                f"({src.name} line{'s' if len(gaps) > 1 else ''} {shown}: an empty cell) — fill them in, or "
                f"use {option} none for image-wise splits"
            )
        raise AttiqaError(
            f"{ds.name} ({ds.root}): {missing} of {len(keys)} items have no {group_by!r} to group by{hint} "
            f"(their metadata: {', '.join(have)}); use {option} none for image-wise splits"
        )
    groups = [str(k) for k in keys]
    if not auto:
        refuse_no_groups(ds, group_by, groups, option)
    return groups


def column_named(ds: IQADataset, name: str) -> str:
    """The items' meta key ``name`` stands for: itself, or the one key of another case (``MOS`` for a
    ``mos`` column); else ``name`` (its lack is told by the caller)."""
    have = {k for it in ds.items for k in it.meta}
    same = [k for k in have if k.casefold() == name.casefold()]
    return same[0] if name not in have and len(same) == 1 else name


def refuse_no_groups(ds: IQADataset, group_by: str, groups: list[str], option: str) -> None:
    """A group column that groups nothing, refused: a folder CSV's every column is a group (a scene id of
    numbers too), so ``--group-by mos`` (the score being learned: images of equal scores kept together) and
    a column with another value in every row (a second score, a std: every image its own group) were taken
    without a word — a "group" split that was image-wise, or arbitrary. Asked for by name only: ``auto``'s
    natural groups (a subset whose every prompt differs) split as they come."""
    if group_by.casefold() == ds.target.casefold():
        raise AttiqaError(
            f"{ds.name} ({ds.root}): {group_by!r} is the score the model learns — grouping by it keeps "
            "images of equal scores together, not the images of one scene; group by a column of ids (a "
            f"scene, a reference image), or use {option} none for image-wise splits"
        )
    if len(groups) > 1 and len(set(groups)) == len(groups):
        shown = ", ".join(repr(g) for g in groups[:3])
        raise AttiqaError(
            f"{ds.name} ({ds.root}): each of its {len(groups)} items has its own {group_by!r} ({shown}, "
            "...) — every group is one image, so nothing is kept together; group by a column images share "
            f"(a scene, a reference image), or use {option} none for image-wise splits"
        )


def identical_copies(ds: IQADataset) -> list[list[int]]:
    """Sets of item indices whose files are byte-identical (also one file listed twice). Only files that
    share a size are hashed: on agiqa3k-dev 54 of 1,491."""
    return identical_files([Path(it.image) for it in ds.items])


def identical_files(paths: Sequence[Path]) -> list[list[int]]:
    """Sets of indices of ``paths`` whose files are byte-identical (:func:`identical_copies`' rule)."""
    by_size: dict[int, list[int]] = {}
    for i, path in enumerate(paths):
        try:
            by_size.setdefault(path.stat().st_size, []).append(i)
        except OSError:  # unreadable: check_images reports it
            continue
    by_key: dict[str, list[int]] = {}
    for same_size in (ix for ix in by_size.values() if len(ix) > 1):
        for i in same_size:
            try:
                by_key.setdefault(content_key(paths[i]), []).append(i)
            except OSError:
                continue
    return [ix for ix in by_key.values() if len(ix) > 1]


def say_shared_images(benches: Sequence[BenchDataset]) -> None:
    """Cross-dataset testing on images the model trained on measures fit, not generalisation: each test set
    holding byte-identical copies of another dataset's images (one folder benched under two names, a subset
    of a public set) is named, with how many."""
    for a in benches:
        for b in (b for b in benches if b is not a):
            paths = [Path(it.image) for it in a.dataset.items] + [Path(it.image) for it in b.dataset.items]
            n_a = len(a.dataset.items)
            shared = {i for ix in identical_files(paths) if min(ix) < n_a for i in ix if i >= n_a}
            if shared:
                la, lb, n_b = plain(a.label), plain(b.label), len(b.dataset.items)
                console.print(
                    f"[yellow]cross: {len(shared)} of {lb}'s {n_b} images are byte-identical to images of "
                    f"{la}, which the model trained on {la} may have seen: {la} -> {lb} measures fit on "
                    "those, not generalisation",
                    highlight=False,
                )


def split_groups(ds: IQADataset, group_by: str | None) -> tuple[list[str] | None, int]:
    """:func:`group_keys` with byte-identical files merged into one group (:func:`merge_copies`)."""
    return merge_copies(ds, group_keys(ds, group_by))


def merge_copies(ds: IQADataset, groups: list[str] | None) -> tuple[list[str] | None, int]:
    """``groups`` (:func:`group_keys`) with byte-identical files merged into one group (image-wise splits
    get a group per image only when there are copies, so a set without copies splits as before); also how
    many files were copies of an earlier one."""
    copies = identical_copies(ds)
    if not copies:
        return groups, 0
    if groups is None:
        groups = [f"{i:09d}" for i in range(len(ds.items))]
    parent = {g: g for g in groups}

    def root(g: str) -> str:
        while parent[g] != g:
            g = parent[g] = parent[parent[g]]
        return g

    for ix in copies:
        roots = sorted({root(groups[i]) for i in ix})
        for r in roots[1:]:
            parent[r] = roots[0]
    return [root(g) for g in groups], sum(len(ix) - 1 for ix in copies)


def partition(
    n: int, test_fraction: float, seed: int, groups: Sequence[str] | None
) -> tuple[list[int], list[int]]:
    """Image-wise (paper §4.1) or, with ``groups``, group-wise: the groups (sorted) are split with the same
    rule, and every item follows its group."""
    if groups is None:
        return split_indices(n, test_fraction, seed)
    names = sorted(set(groups))
    if len(names) < 2:
        raise AttiqaError(f"group-aware split: {len(names)} group(s) — need at least 2 (or split image-wise)")
    _, te_groups = split_indices(len(names), test_fraction, seed)
    test = {names[i] for i in te_groups}
    return [i for i in range(n) if groups[i] not in test], [i for i in range(n) if groups[i] in test]


def refuse_one_group(
    ds: IQADataset,
    keys: list[str] | None,
    groups: list[str] | None,
    who: str,
    group_by: str | None,
    option: str,
) -> None:
    """The one rule of a group-aware split over one group (``bench``'s splits, ``attiqa train``'s
    ``finetune.dataset``): refused, as no split can have both sides. ``keys``: the dataset's own groups
    (:func:`group_keys`; None = image-wise, never refused); ``groups``: them with copies merged."""
    if keys is not None and groups is not None and len(set(groups)) < 2:
        key = NATURAL_GROUPS.get(ds.name) if group_by == "auto" else group_by
        raise one_group(who, len(groups), key, groups[0], option)


def one_group(who: str, n: int, key: str | None, group: str, option: str) -> AttiqaError:
    """The refusal of a group-aware split over one group: no split can have both sides (`bench` said it;
    `attiqa train`'s ``finetune.group_by`` said "1 group(s)" naming neither the dataset nor the setting)."""
    return AttiqaError(
        f"{who}: all {n} items share one {key!r} ({group!r}) — a group-aware split needs at least 2 groups; "
        f"use {option} none for image-wise splits"
    )


HELD_OUT_SHARE = 0.2
"""The share of the images a protocol's random split holds out for testing (paper §4.1: 80/20); also the
share :func:`say_group_share` compares a group-aware split's against."""


def say_group_share(who: str, n: int, groups: Sequence[str], splits: Sequence[Split], held_out: float,
                    option: str = "--group-by") -> None:  # fmt: skip
    """:func:`attiqa.splits.say_share` for group-aware ``splits`` holding out on average another share of
    the ``n`` images than ``held_out``, said by the main process only: with few groups "80/20" was silently
    50/50. The rank is read from the launcher's environment, as the module's other lines are: the
    planning stays torch-free."""
    if not splits or launched_rank() != 0:
        return
    share = sum(len(sp.test) for sp in splits) / (len(splits) * n)
    held = [len({groups[i] for i in sp.test}) for sp in splits]
    fix = f"add groups, or use {option} none for image-wise splits"
    say_share(who, n, groups, held, share, held_out, fix, splits=len(splits))


def random_splits(
    n: int,
    repeats: int,
    seed: int,
    test_fraction: float = HELD_OUT_SHARE,
    groups: Sequence[str] | None = None,
) -> list[Split]:
    """``repeats`` random splits with seeds ``seed .. seed + repeats - 1`` (paper §4.1: 80/20); with
    ``groups`` (one per item) no group is on both sides."""
    out = []
    for r in range(repeats):
        tr, te = partition(n, test_fraction, seed + r, groups)
        out.append(
            Split(f"split{r:02d}", tuple(tr), tuple(te), seed + r, "random" if groups is None else "group")
        )
    return out


def fraction_splits(
    n: int, fraction: float, repeats: int, seed: int, groups: Sequence[str] | None = None
) -> list[Split]:
    """Train on ``fraction`` of the items (of the groups, with ``groups``), test on the rest (§4.4)."""
    if not 0.0 < fraction < 1.0:
        raise AttiqaError(f"data-efficient: fraction must be in (0, 1), got {fraction}")
    out = []
    for r in range(repeats):
        tr, te = partition(n, 1.0 - fraction, seed + r, groups)
        kind = "fraction" if groups is None else "group fraction"
        out.append(Split(f"f{round(fraction * 100):02d}_split{r:02d}", tuple(tr), tuple(te), seed + r, kind))
    return out


def say_small_splits(label: str, n: int, splits: Sequence[Split]) -> None:
    """Warn, before the runs, of splits whose median says little: a held-out side under
    :data:`FEW_IMAGES`, and seeds that drew the same held-out images (the median counts that split more
    than once). Warned, not refused: a tiny set is how a config is tried out in minutes."""
    smallest = min(len(sp.test) for sp in splits)
    if smallest < FEW_IMAGES:
        spread = noise_spread(smallest)
        console.print(
            f"[yellow]{plain(label)}: a split of its {n} images holds out {smallest} — an SROCC on so few "
            f"is {spread}, so the median of {len(splits)} split{'s' if len(splits) > 1 else ''} says little; "
            f"add images (at least {FEW_IMAGES} held out; the paper's datasets hold out hundreds)",
            highlight=False,
        )
    same: dict[frozenset[int], list[str]] = {}
    for sp in splits:
        same.setdefault(frozenset(sp.test), []).append(sp.name)
    for names in (v for v in same.values() if len(v) > 1):
        console.print(
            f"[yellow]{plain(label)}: splits {', '.join(names)} hold out the same images — the median counts "
            f"that split {len(names)} times; give fewer --repeats or more images",
            highlight=False,
        )


@dataclass
class SplitPlan:
    """Every protocol's splits of each dataset: worked out (and checked) before the network is built."""

    repeats: int
    seed: int
    official_split: bool | None
    group_by: str | None
    option: str = "--group-by"  # the setting that chose group_by, named in the messages
    held_out: float = HELD_OUT_SHARE  # the share a random split holds out
    say_copies: bool = True  # say once per dataset that byte-identical files were kept on one side
    copies: dict[str, int] = field(default_factory=dict)  # per dataset label: files that copy another
    # per dataset label, worked out once (the copy search reads every file that shares a size with another)
    _keys: dict[str, list[str] | None] = field(default_factory=dict, repr=False)
    _groups: dict[str, list[str] | None] = field(default_factory=dict, repr=False)
    _official: dict[str, bool] = field(default_factory=dict, repr=False)

    def keys(self, b: BenchDataset) -> list[str] | None:
        """The dataset's own groups (:func:`group_keys`; None = image-wise)."""
        if b.label not in self._keys:
            self._keys[b.label] = group_keys(b.dataset, self.group_by, self.option)
        return self._keys[b.label]

    def groups(self, b: BenchDataset) -> list[str] | None:
        """The split groups, byte-identical files merged (:func:`merge_copies`); says so once per dataset."""
        if b.label not in self._groups:
            groups, n_copies = merge_copies(b.dataset, self.keys(b))
            if n_copies and self.say_copies:
                console.print(
                    f"[yellow]{plain(b.label)}: {n_copies} image(s) repeat another one (a row listed twice, "
                    "or a byte-identical copy under another name) — kept on the same side of every split",
                    highlight=False,
                )
            self.copies[b.label] = n_copies
            refuse_one_group(b.dataset, self.keys(b), groups, self.who(b), self.group_by, self.option)
            self._groups[b.label] = groups
        return self._groups[b.label]

    def splits(self, b: BenchDataset) -> list[Split]:
        if b.label not in self._official:  # once per dataset: a fallback to random splits is said once
            self._official[b.label] = uses_official_split(b.dataset, self.official_split)
            if self._official[b.label]:
                say_off_the_split(b.dataset, self.who(b))
        if self._official[b.label]:
            return [official_partition(b.dataset)]
        splits = random_splits(len(b.dataset), self.repeats, self.seed, self.held_out, self.groups(b))
        return self.image_wise(b, splits, "random")

    def fraction_splits(self, b: BenchDataset, fraction: float) -> list[Split]:
        """Data-efficient splits: train on ``fraction`` (of the groups), test on the rest."""
        splits = fraction_splits(len(b.dataset), fraction, self.repeats, self.seed, groups=self.groups(b))
        return self.image_wise(b, splits, "fraction")

    @staticmethod
    def who(b: BenchDataset) -> str:
        """The dataset as the messages name it."""
        return f"{b.label} ({b.dataset.root})"

    def check(self, b: BenchDataset, splits: Sequence[Split]) -> None:
        """Every split leaves enough images on each side (:func:`attiqa.splits.check_split`); called
        for every dataset before the first fine-tuning run, so a tiny set is refused in a second."""
        mos = [float(it.mos) for it in b.dataset.items]
        for sp in splits:
            check_split(mos, sp.train, sp.test, self.who(b), *self.split_words(b, sp))
        self.say_small(b, splits)

    def say_small(self, b: BenchDataset, splits: Sequence[Split]) -> None:
        """:func:`say_small_splits`: held-out sides too small for their median to say much."""
        say_small_splits(b.label, len(b.dataset), splits)

    def split_words(self, b: BenchDataset, sp: Split) -> tuple[str, str]:
        """What a split too small on a side gives, and the fix: :func:`check_split`'s words."""
        given = (f"split {sp.name} ({sp.kind}, seed {sp.seed}) of its {len(b.dataset)} images gives "
                 f"{len(sp.train)} to train on and {len(sp.test)} to test on")  # fmt: skip
        fix = "add images"
        if "group" in sp.kind:
            fix += f", or split image-wise ({self.option} none): its {len(set(self.groups(b) or []))} groups"
            fix += " are too few or too uneven"
        if "fraction" in sp.kind:
            fix += ", or choose other --fractions"
        return given, fix

    def say_share(self, b: BenchDataset, splits: Sequence[Split], fraction: float | None = None) -> None:
        """:func:`say_group_share` for group-aware ``splits`` (official and image-wise ones: nothing): they
        hold out :attr:`held_out`, or, trained on ``fraction`` (:meth:`fraction_splits`), the rest."""
        held_out = self.held_out if fraction is None else 1.0 - fraction
        groups = self.groups(b)
        grouped = [sp for sp in splits if "group" in sp.kind]
        if groups is not None and grouped:
            say_group_share(self.who(b), len(b.dataset), groups, grouped, held_out, self.option)

    def image_wise(self, b: BenchDataset, splits: list[Split], kind: str) -> list[Split]:
        """Image-wise splits keep their kind when only byte-identical copies were grouped."""
        if self.copies.get(b.label) and self.keys(b) is None:
            return [replace(sp, kind=kind) for sp in splits]
        return splits


@dataclass
class HeldOutPlan(SplitPlan):
    """`attiqa train`'s fine-tuning split of a named dataset (``finetune.dataset``): the plan ``attiqa bench``
    makes, of one split — the official one (FLIVE, AVA, BIQ2021, a folder's split column), else holding out
    ``held_out`` (``finetune.val_fraction``) seeded ``seed`` (``finetune.split_seed``), grouped by
    ``group_by`` — said in the run config's words. Of copies it says nothing: every torchrun process plans
    it, and the line was never `attiqa train`'s."""

    option: str = "finetune.group_by:"
    say_copies: bool = False

    def split(self, b: BenchDataset) -> Split:
        """The split, named as the card records it ("seed 0 (group by auto)"), checked; a group-aware
        split's share said when it is not the one asked."""
        sp = self.splits(b)[0]
        if sp.kind != "official":
            kind = "random" if self.keys(b) is None else f"group by {self.group_by}"
            sp = replace(sp, name=f"seed {self.seed}", kind=kind)
        self.check(b, [sp])
        self.say_share(b, [sp])
        return sp

    def say_small(self, b: BenchDataset, splits: Sequence[Split]) -> None:
        """Nothing: one split has no median to weaken."""

    def split_words(self, b: BenchDataset, sp: Split) -> tuple[str, str]:
        given = (f"the {sp.kind} split of its {len(b.dataset)} images gives {len(sp.train)} to train on and "
                 f"{len(sp.test)} to hold out")  # fmt: skip
        if sp.kind == "official":
            return given, "the official split is fixed: add images"
        fix = "change finetune.val_fraction, or add images"
        if self.keys(b) is not None:
            n_groups = len(set(self.groups(b) or []))
            fix += f", or split image-wise ({self.option} none): its {n_groups} groups are few"
        return given, fix


def plan_splits(
    protocol: str,
    benches: Sequence[BenchDataset],
    repeats: int,
    seed: int,
    official_split: bool | None,
    group_by: str | None,
    fractions: Sequence[float],
) -> SplitPlan:
    """Every dataset's splits for ``protocol``, worked out and checked (:meth:`SplitPlan.check`): a dataset
    without the groups asked for, or too small for a split, fails before the first run — and, from the
    command line, before torch loads."""
    plan = SplitPlan(repeats, seed, official_split, group_by)
    for b in benches:
        plan.keys(b)  # a dataset without the groups fails before the first run
        if protocol == "data-efficient":
            plan.check(b, [sp for fr in fractions for sp in plan.fraction_splits(b, fr)])
        else:
            plan.check(b, plan.splits(b))
    return plan
