"""Pure shard arithmetic: which rows go to which split, in what order, in which shard.

Nothing here touches disk; every function takes plain numbers and arrays and returns the
same for the same seed, so a plan made on a client is the plan every worker executes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import OptionError
from .options import DEFAULT_MIN_SHARDS, DEFAULT_SHARD_BYTES, MIN_ROWS_PER_SHARD


@dataclass(frozen=True)
class ShardSpec:
    """One shard to write: its file name and its rows as positions in the source frame."""

    split: str
    index: int
    count: int
    file: str
    rows: tuple[int, ...]


def shard_name(split: str, index: int, count: int, compression: str = "none") -> str:
    """Deterministic shard file name.

    Example:
        >>> shard_name("train", 0, 4, "gzip")
        'train-00000-of-00004.tfrecord.gz'
    """
    suffix = ".tfrecord.gz" if compression == "gzip" else ".tfrecord"
    return f"{split}-{index:05d}-of-{count:05d}{suffix}"


def assign_splits(n_rows: int, fractions: list[float], strata: np.ndarray | None,
                  seed: int) -> np.ndarray:
    """Assigns each row a split index, stratified on `strata` where given.

    The number of rows per split is exact (largest remainder on the total); within each
    stratum (class) rows are drawn at random in proportion, so every class appears in
    every split in about the right share.

    Example:
        >>> assign_splits(10, [0.8, 0.2], None, seed=0).tolist().count(1)
        2
    """
    fractions = np.asarray(fractions, dtype=float)
    targets = _largest_remainder(n_rows, fractions)
    rng = np.random.default_rng(seed)
    out = np.empty(n_rows, dtype=np.int64)
    if strata is None:
        strata = np.zeros(n_rows, dtype=np.int64)
    codes, members = _group(strata)
    ideal = np.outer([len(m) for m in members], fractions)   # classes x splits
    counts = np.floor(ideal).astype(np.int64)
    deficit = targets - counts.sum(axis=0)
    left = np.array([len(m) for m in members]) - counts.sum(axis=1)
    # Hand out the remaining rows by largest fractional part, respecting both margins.
    order = np.argsort(-(ideal - counts), axis=None, kind="stable")
    for flat in order:
        c, s = divmod(int(flat), len(fractions))
        if left[c] > 0 and deficit[s] > 0:
            counts[c, s] += 1
            left[c] -= 1
            deficit[s] -= 1
    for c in np.flatnonzero(left):   # only when fractional parts ran out; keep totals exact
        for s in np.flatnonzero(deficit):
            take = min(left[c], deficit[s])
            counts[c, s] += take
            left[c] -= take
            deficit[s] -= take
    for c, rows in enumerate(members):
        rows = rng.permutation(rows)
        out[rows] = np.repeat(np.arange(len(fractions)), counts[c])
    return out


def split_counts(n_rows: int, split: dict[str, float]) -> dict[str, int]:
    """Rows per split, exactly as `assign_splits` hands them out; refuses a split that
    would get none (it could not be read, and a model would be validated on nothing).

    Raises:
        OptionError: naming the split, its fraction and the row count.

    Example:
        >>> split_counts(10, {"train": 0.8, "val": 0.2})
        {'train': 8, 'val': 2}
    """
    counts = _largest_remainder(n_rows, np.asarray(list(split.values()), dtype=float))
    for (name, fraction), count in zip(split.items(), counts):
        if count == 0:
            given = ",".join(f"{k}={v:g}" for k, v in split.items())
            raise OptionError(
                f"`split` gives {name!r} no rows: {fraction:g} of {n_rows} rows rounds to 0; "
                f"raise its fraction or leave it out; received split={given!r}.")
    return {name: int(c) for name, c in zip(split, counts)}


def _largest_remainder(total: int, fractions: np.ndarray) -> np.ndarray:
    ideal = fractions * total
    counts = np.floor(ideal).astype(np.int64)
    extra = total - counts.sum()
    counts[np.argsort(-(ideal - counts), kind="stable")[:extra]] += 1
    return counts


def _group(strata: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    codes, inverse = np.unique(np.asarray(strata), return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse, minlength=len(codes)))[:-1]
    return codes, np.split(order, bounds)


def order_rows(rows: np.ndarray, shuffle: bool, seed: int) -> np.ndarray:
    """The write order of `rows`: a seeded permutation, or the source order."""
    rows = np.asarray(rows, dtype=np.int64)
    return np.random.default_rng(seed).permutation(rows) if shuffle else rows


def shard_count(total_bytes: int, n_rows: int, shard_size: int | None,
                num_shards: int | None) -> int:
    """How many shards: `num_shards`, or enough for `shard_size` bytes each.

    With neither given, shards hold up to `DEFAULT_SHARD_BYTES`, and a dataset of more than
    `MIN_ROWS_PER_SHARD` rows is cut into up to `DEFAULT_MIN_SHARDS` shards so that writing
    and reading run in parallel. Never more shards than rows, never fewer than one.

    Example:
        >>> shard_count(10 << 20, 4000, None, None)
        16
    """
    if num_shards is not None:
        count = num_shards
    elif shard_size is not None:
        count = math.ceil(total_bytes / shard_size)
    else:
        by_rows = min(DEFAULT_MIN_SHARDS, n_rows // MIN_ROWS_PER_SHARD)
        count = max(math.ceil(total_bytes / DEFAULT_SHARD_BYTES), by_rows)
    return max(1, min(count, n_rows))


def shard_bounds(sizes: np.ndarray, count: int) -> list[tuple[int, int]]:
    """Cuts rows (in write order, with estimated byte sizes) into `count` contiguous,
    non-empty ranges of about equal bytes.

    Example:
        >>> shard_bounds(np.array([10, 10, 10, 10]), 2)
        [(0, 2), (2, 4)]
    """
    n = len(sizes)
    if n == 0:
        return []
    count = max(1, min(count, n))
    cumulative = np.cumsum(np.asarray(sizes, dtype=np.float64) + 1.0)  # +1: zero sizes still split
    targets = cumulative[-1] * np.arange(1, count) / count
    cuts = np.searchsorted(cumulative, targets, side="left") + 1
    # Keep every shard non-empty: cut k lies in [k, n - count + k].
    cuts = np.clip(cuts, np.arange(1, count), n - count + np.arange(1, count))
    cuts = np.maximum.accumulate(cuts)
    for i in range(1, len(cuts)):
        cuts[i] = max(cuts[i], cuts[i - 1] + 1)
    edges = [0, *cuts.tolist(), n]
    return [(edges[i], edges[i + 1]) for i in range(count)]


def plan_split(split: str, rows: np.ndarray, sizes: np.ndarray, *, shard_size: int | None,
               num_shards: int | None, compression: str) -> list[ShardSpec]:
    """Shard specs for one split's rows, given in write order with their estimated sizes."""
    count = shard_count(int(np.sum(sizes)), len(rows), shard_size, num_shards)
    bounds = shard_bounds(sizes, count)
    return [ShardSpec(split, i, len(bounds), shard_name(split, i, len(bounds), compression),
                      tuple(int(r) for r in rows[a:b]))
            for i, (a, b) in enumerate(bounds)]
