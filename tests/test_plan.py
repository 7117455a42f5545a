import numpy as np

import pytest

from tfrecordkit.errors import OptionError
from tfrecordkit.plan import (assign_splits, order_rows, plan_split, shard_bounds, shard_count,
                             shard_name, split_counts)


def test_shard_name():
    assert shard_name("train", 3, 12) == "train-00003-of-00012.tfrecord"
    assert shard_name("val", 0, 1, "gzip") == "val-00000-of-00001.tfrecord.gz"


def test_split_counts_exact_and_stratified():
    strata = np.repeat(np.arange(5), [100, 50, 30, 15, 5])
    assign = assign_splits(len(strata), [0.8, 0.2], strata, seed=3)
    assert np.bincount(assign).tolist() == [160, 40]
    for c, n in enumerate([100, 50, 30, 15, 5]):
        in_val = int(np.sum(assign[strata == c] == 1))
        assert abs(in_val - 0.2 * n) <= 1, (c, in_val)


def test_split_is_seeded_and_complete():
    a = assign_splits(101, [0.5, 0.3, 0.2], None, seed=7)
    b = assign_splits(101, [0.5, 0.3, 0.2], None, seed=7)
    c = assign_splits(101, [0.5, 0.3, 0.2], None, seed=8)
    assert (a == b).all() and not (a == c).all()
    assert np.bincount(a).tolist() == [51, 30, 20]


def test_shard_count_rules():
    assert shard_count(300 << 20, 10_000, None, None) == 16       # min shards for enough rows
    assert shard_count(10 << 30, 100_000, None, None) == 80       # 128 MB each
    assert shard_count(1000, 10, None, None) == 1                 # small: one shard
    assert shard_count(1000, 10, 100, None) == 10
    assert shard_count(1000, 3, None, 8) == 3                     # never more shards than rows


def test_shard_bounds_balanced_nonempty_contiguous():
    sizes = np.array([5, 5, 5, 5, 100, 5, 5, 5])
    bounds = shard_bounds(sizes, 3)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(sizes)
    assert all(a < b for a, b in bounds)
    assert all(bounds[i][1] == bounds[i + 1][0] for i in range(len(bounds) - 1))
    assert shard_bounds(np.zeros(4), 4) == [(0, 1), (1, 2), (2, 3), (3, 4)]


def test_plan_split_covers_every_row_once():
    rows = order_rows(np.arange(50), shuffle=True, seed=1)
    specs = plan_split("train", rows, np.ones(50), shard_size=None, num_shards=4, compression="none")
    assert [s.file for s in specs] == [f"train-0000{i}-of-00004.tfrecord" for i in range(4)]
    flat = [r for s in specs for r in s.rows]
    assert flat == rows.tolist() and sorted(flat) == list(range(50))
    assert order_rows(np.arange(5), shuffle=False, seed=1).tolist() == [0, 1, 2, 3, 4]


def test_split_counts_match_assign_splits_and_refuse_empty_splits():
    split = {"train": 0.7, "val": 0.2, "test": 0.1}
    counts = split_counts(23, split)
    assigned = assign_splits(23, list(split.values()), None, seed=0)
    assert list(counts.values()) == np.bincount(assigned).tolist() == [16, 5, 2]
    with pytest.raises(OptionError, match=r"`split` gives 'test' no rows: 0.1 of 4 rows rounds to 0"):
        split_counts(4, split)
