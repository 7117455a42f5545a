"""The record stream of `read`: which records each epoch reads, in which order, and from
where; seekable to any (epoch, batch), and shared among workers.

Epoch e's order is a pure function of (seed, e) and a worker's files (see "record
stream" below); `read` parses and decodes what this module hands it. Also the share of
each worker (`assign_files`), the tf.data service path, damage skipping, and the position
to resume from after a Keras `BackupAndRestore` backup.
"""
from __future__ import annotations

import logging
import os
from dataclasses import replace
from typing import Any, Sequence

from . import storage
from .errors import DatasetError
from .manifest import Manifest
from .options import ReadOptions
from .records import read_index

log = logging.getLogger(__name__)

# Records held for shuffling: enough for a good shuffle, bounded in memory by bytes.
SHUFFLE_BUFFER_BYTES = 32 << 20
MIN_SHUFFLE_BUFFER = 1024
DEFAULT_CYCLE_LENGTH = 16
_COMPRESSION_TYPES = {"gzip": "GZIP", "zlib": "ZLIB"}   # tf.data's names


def _shuffle_buffer(manifest: Manifest, opts: ReadOptions) -> int:
    if opts.shuffle_buffer is not None:
        return opts.shuffle_buffer
    total = sum(s.bytes for s in manifest.shards)
    per_record = max(1, total // max(1, sum(s.records for s in manifest.shards)))
    return max(1, min(manifest.records, max(MIN_SHUFFLE_BUFFER, SHUFFLE_BUFFER_BYTES // per_record)))


def assign_files(records: Sequence[int], num_workers: int) -> list[list[int]]:
    """Shard files for each of `num_workers` workers, balanced by record count.

    Greedy, largest file first, each to the worker with the fewest records so far (ties to
    the lower file and worker index), so every worker computes the same answer without
    talking to the others, every file goes to exactly one worker, and the workers' record
    counts differ by at most the largest file. Each worker's files stay in record order.

    Example:
        >>> assign_files([10, 30, 20, 5], 2)
        [[1, 3], [0, 2]]
    """
    loads = [0] * num_workers
    groups: list[list[int]] = [[] for _ in range(num_workers)]
    for f in sorted(range(len(records)), key=lambda f: (-records[f], f)):
        worker = min(range(num_workers), key=lambda w: (loads[w], w))
        groups[worker].append(f)
        loads[worker] += records[f]
    return [sorted(g) for g in groups]


def _worker_part(manifest: Manifest, opts: ReadOptions) -> tuple[Manifest, bool]:
    """This worker's share of the dataset: (manifest of its shards and records, whether the
    records must still be sharded one by one).

    With at least as many files as workers, each worker reads whole files (`assign_files`);
    with fewer, every worker reads every file in order and keeps every n-th record.
    """
    n, index = opts.num_workers, opts.worker_index
    if n is None or n == 1:
        return manifest, False
    if len(manifest.shards) < n:
        log.info("%s has %d shard files for %d workers, so each worker reads every file and "
                 "keeps every %d-th record; write more shards (--num-shards) to split by file",
                 manifest.directory, len(manifest.shards), n, n)
        return replace(manifest, records=len(range(index, manifest.records, n))), True
    mine = tuple(manifest.shards[f] for f in assign_files([s.records for s in manifest.shards], n)[index])
    return replace(manifest, shards=mine, records=sum(s.records for s in mine)), False


# ----------------------------------------------------------------------------- record stream
#
# Which records an epoch reads, in which order, and from where. Epoch e's order is a pure
# function of (seed, e) and this worker's files: a numpy plan permutes the files and reads
# them GROUP_FILES side by side (round robin, as tf.data's interleave does), and that stream
# is cut into windows of about 32 MB whose records are permuted by a stateless shuffle keyed
# by (seed, e, window). No step depends on timing or thread counts, so a position
# (epoch, batch) can be sought: the plan knows where every file stands at the start of the
# window holding the position, the .idx offsets open each file right there, and only that
# one window is read (not decoded) and dropped up to the position.

GROUP_FILES = DEFAULT_CYCLE_LENGTH
_SEED_SALT = 0x7466726B          # "tfrk": our draws from a seed stay apart from a user's own
_NEVER = 1 << 62                 # an epoch count for repeat=True


class _Plan:
    """Every epoch's record order for one worker, in numpy (no TensorFlow, no I/O but the
    .idx files of the few shards a seek lands in).

    Positions count records in the epoch's order over `files` (all shards when each worker
    keeps every n-th record, else this worker's). Ids are the records' indices in the whole
    dataset (shards in manifest order), the same whatever the split into workers.
    """

    def __init__(self, files: Sequence[str], counts: Sequence[int], first_ids: Sequence[int], *,
                 seed: int, salt: int, ordered: bool, window: int | None, seekable: bool):
        import numpy as np

        self.files = list(files)
        self.counts = np.asarray(counts, np.int64)
        self.first_ids = np.asarray(first_ids, np.int64)
        self.records = int(self.counts.sum())
        self.seed, self.salt, self.ordered = seed, salt, ordered
        self.window = None if ordered else window
        self.group = 1 if ordered else max(1, min(len(self.files), GROUP_FILES))
        self.seekable = seekable         # plain (not gzip) files opened at a byte offset
        self._offsets: dict[int, Any] = {}

    def _rng(self, epoch: int, use: int):
        import numpy as np

        return np.random.default_rng([_SEED_SALT, self.seed, self.salt, int(epoch), use])

    def file_order(self, epoch: int):
        import numpy as np

        if self.ordered:
            return np.arange(len(self.files))
        return self._rng(epoch, 0).permutation(len(self.files))

    def window_key(self, epoch: int):
        """The [2] seed the windows of `epoch` fold their index into."""
        import numpy as np

        return self._rng(epoch, 1).integers(0, 2**31 - 1, size=2, dtype=np.int64)

    def rotation(self, epoch: int, records: int) -> int:
        """Where a cached stream starts in `epoch` (cached records have one fixed order)."""
        return 0 if self.ordered or records == 0 else int(self._rng(epoch, 2).integers(records))

    def _index(self, f: int):
        """Byte offsets of file `f`'s records from its .idx file, or None without a usable one."""
        import numpy as np

        if f not in self._offsets:
            path, offsets = self.files[f] + ".idx", None
            if storage.exists(path):
                entries = read_index(self.files[f])
                if entries is None:
                    log.warning("cannot read or parse %s; seeking by reading past records "
                                "instead (rebuild it: tfrecordkit index --force)", path)
                elif len(entries) == self.counts[f]:
                    offsets = np.array([offset for offset, _ in entries], np.int64)
                else:
                    log.warning("%s lists %d records, dataset.json %d; seeking by reading "
                                "past records instead (rebuild it: tfrecordkit index)",
                                path, len(entries), self.counts[f])
            if offsets is None:
                log.info("%s has no usable .idx file: a seek into it reads (never parses) the "
                         "records it skips", self.files[f])
            self._offsets[f] = offsets
        return self._offsets[f]

    def _seek(self, f: int, records: int) -> tuple[int, int]:
        """(byte offset, records still to skip after it) to start file `f` at record `records`."""
        if records == 0:
            return 0, 0
        offsets = self._index(f) if self.seekable else None
        return (0, records) if offsets is None else (int(offsets[records]), 0)

    @staticmethod
    def _resume_group(counts, u: int):
        """Files read round robin (record r of each file in turn, spent files left out):
        after `u` records, how many each file has given, and the order to go on in."""
        import numpy as np

        lo, hi = 0, int(counts.max())
        while lo < hi:               # the row: the most whole rounds that fit in u
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if int(np.minimum(counts, mid).sum()) <= u else (lo, mid - 1)
        given = np.minimum(counts, lo)
        active = np.flatnonzero(counts > lo)
        k = u - int(given.sum())
        given[active[:k]] += 1
        order = np.concatenate([active[k:], active[:k]])
        return given, order[counts[order] > given[order]]

    def ranges(self, epoch: int, position: int):
        """What to read for `epoch` from `position` on.

        Returns ``(rows, groups, start, first_window, key)``: rows ``[k, 5]`` of (file,
        byte offset, records to skip, records to read, id of the first record read); groups
        ``[g, 2]``: the row spans read side by side, one after another; the stream begins at
        position `start` (the window boundary at or before `position`), window number
        `first_window`; `key` seeds the window permutations.
        """
        import numpy as np

        position = int(position)
        first_window = position // self.window if self.window else 0
        start = first_window * self.window if self.window else position
        order, rows, groups, begin = self.file_order(epoch), [], [], 0
        for g in range(0, len(order), self.group):
            members = order[g:g + self.group]
            counts = self.counts[members]
            total = int(counts.sum())
            if begin + total <= start:
                begin += total
                continue
            if start > begin:
                given, slots = self._resume_group(counts, start - begin)
            else:
                given, slots = np.zeros_like(counts), np.flatnonzero(counts > 0)
            lo = len(rows)
            for j in slots:
                f, skip = int(members[j]), int(given[j])
                offset, still = self._seek(f, skip)
                rows.append((f, offset, still, int(counts[j]) - skip, int(self.first_ids[f]) + skip))
            groups.append((lo, len(rows)))
            begin += total
        return (np.array(rows, np.int64).reshape(-1, 5), np.array(groups, np.int64).reshape(-1, 2),
                np.int64(start), np.int64(first_window), self.window_key(epoch))

    def frozen(self):
        """The rows and groups of one fixed order (files in manifest order, read side by
        side), for a stream cached once and re-permuted each epoch."""
        import numpy as np

        rows = [(f, 0, 0, int(self.counts[f]), int(self.first_ids[f]))
                for f in range(len(self.files)) if self.counts[f] > 0]
        groups = [(lo, min(lo + self.group, len(rows))) for lo in range(0, len(rows), self.group)]
        return np.array(rows, np.int64).reshape(-1, 5), np.array(groups, np.int64).reshape(-1, 2)


class _EpochClock:
    """Where the next pass over the dataset starts: (epoch, batch).

    Keras iterates a dataset once per epoch. A pass starts where the clock stands; the clock
    moves to the next epoch when the consumer has been handed an epoch's last element
    (counted after the final prefetch, so an iterator dropped early, as Keras' symbolic
    build under a distribution strategy drops one after a batch, replays its epoch instead
    of skipping it). Under on_corrupt="skip" element counts are not known, so each pass
    moves the clock on as it starts.
    """

    def __init__(self, epoch: int, batch: int, per_epoch: int, epochs: int, counted: bool):
        import threading

        self.next = (epoch, batch)
        self.per_epoch, self.epochs, self.counted = per_epoch, epochs, counted
        self._epoch, self._left = epoch, 0
        self._lock = threading.Lock()

    def begin(self):
        import numpy as np

        with self._lock:
            epoch, batch = self.next
            self._epoch, self._left = epoch, self.per_epoch - batch
            if not self.counted:
                self.next = (min(epoch + self.epochs, _NEVER), 0)
            elif self._left <= 0:       # nothing left of this epoch: the pass goes on to the next
                self.next = (epoch + 1, 0)
            return np.int64(epoch), np.int64(batch)

    def delivered(self, epoch) -> int:
        epoch = int(epoch)
        with self._lock:
            if not self.counted:
                return 0
            if epoch != self._epoch:    # a repeating pass went on to its next epoch
                self._epoch, self._left = epoch, self.per_epoch
            self._left -= 1
            if self._left == 0:
                self.next = (epoch + 1, 0)
        return 0


def record_keys(epoch, ids):
    """The randomness key of each record, int64 [..., 2] = (epoch, record id): every random
    draw for a record (crop, flip) is a stateless op seeded from (read seed, key), so an
    epoch's augmentation is as reproducible and seekable as its order. The id is the
    record's index in the dataset (shards in manifest order, records in shard order), which,
    unlike its position in an epoch, no two workers share."""
    import tensorflow as tf

    ids = tf.cast(ids, tf.int64)
    return tf.stack([tf.fill(tf.shape(ids), tf.cast(epoch, tf.int64)), ids], axis=-1)


_RECORDS_AT = None


def _records_at(names, offsets, compression: str):
    """TFRecordDataset opening each file `offsets` bytes in: TensorFlow's TFRecordDatasetV2
    op has the byte_offsets input that `tf.data.TFRecordDataset` does not expose."""
    global _RECORDS_AT
    if _RECORDS_AT is None:
        import tensorflow as tf
        from tensorflow.python.data.ops import dataset_ops
        from tensorflow.python.ops import gen_dataset_ops

        class RecordsAt(dataset_ops.DatasetSource):
            def __init__(self, names, offsets, compression):
                self._name = None
                dataset_ops.DatasetSource.__init__(self, gen_dataset_ops.tf_record_dataset_v2(
                    names, compression, tf.constant(-1, tf.int64), offsets,
                    metadata=self._metadata.SerializeToString()))

            @property
            def element_spec(self):
                return tf.TensorSpec([], tf.string)

        _RECORDS_AT = RecordsAt
    return _RECORDS_AT(names, offsets, compression)


def _can_seek() -> bool:
    from tensorflow.python.ops import gen_dataset_ops

    return hasattr(gen_dataset_ops, "tf_record_dataset_v2")


def _range_reader(manifest: Manifest, plan: _Plan, opts: ReadOptions):
    """read(row) -> the serialized records of one row of a plan: a file from a byte offset
    (less records still to skip), so many records. Under on_corrupt="skip" a damaged file
    gives fewer, so there each record comes paired with its id: (id, serialized)."""
    import tensorflow as tf

    files = tf.constant(plan.files)
    compression = _COMPRESSION_TYPES.get(manifest.compression, "")
    damage = _DamageLog(manifest.directory) if opts.on_corrupt == "skip" else None
    seek = _can_seek()

    def opened(names, offsets):
        if seek:
            return _records_at(names, offsets, compression)
        return tf.data.TFRecordDataset(names, compression_type=compression)  # the plan skips

    def read(row):
        path, offset, skip, count, first = row[0], row[1], row[2], row[3], row[4]
        name, offset = tf.reshape(tf.gather(files, path), [1]), tf.reshape(offset, [1])
        if damage is None:   # a shard shorter than dataset.json says fails the epoch
            return opened(name, offset).skip(skip).take(count).apply(
                tf.data.experimental.assert_cardinality(count))
        records = damage.read(name[0], count, lambda keep: opened(
            tf.boolean_mask(name, keep), tf.boolean_mask(offset, keep)).skip(skip).take(count))
        return tf.data.Dataset.zip((tf.data.Dataset.range(first, first + count), records))

    read.paired = damage is not None
    return read


def _grouped(rows, groups, read, width: int):
    """(id, serialized) of plan rows: each group's files read side by side (round robin,
    one record each in turn, as tf.data's deterministic interleave does), the groups one
    after another. The ids follow from the rows, so they are zipped on once per group
    rather than once per file (which costs a third of the read speed)."""
    import tensorflow as tf

    def group(span):
        part = rows[span[0]:span[1]]
        files = tf.data.Dataset.from_tensor_slices(part)
        if width == 1:
            records = files.flat_map(read)
        else:
            records = files.interleave(read, cycle_length=width, block_length=1,
                                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if read.paired:
            return records
        counts, firsts = part[:, 3], part[:, 4]
        rounds = tf.range(tf.reduce_max(counts))[:, None]
        ids = tf.boolean_mask(firsts[None, :] + rounds, rounds < counts[None, :])
        return tf.data.Dataset.zip((tf.data.Dataset.from_tensor_slices(ids), records))

    return tf.data.Dataset.from_tensor_slices(groups).flat_map(group)


def _permuted_windows(ds, window: int, first_window, key):
    """Each run of `window` records (the last may be shorter) in a stateless random order
    keyed by (key, window number)."""
    import tensorflow as tf

    def permute(number, records):
        ids, serialized = records
        seed = tf.random.experimental.stateless_fold_in(key, number)
        order = tf.random.experimental.stateless_shuffle(tf.range(tf.shape(ids)[0]), seed=seed)
        return tf.gather(ids, order), tf.gather(serialized, order)

    # The next window fills while this one is handed out (else reading stalls the decoders
    # at every window): two windows in memory, where a shuffle buffer holds one.
    return ds.batch(window).enumerate(first_window).map(permute).prefetch(1).unbatch()


def _epoch_records(manifest: Manifest, opts: ReadOptions, plan: _Plan,
                   split: tuple[int, int] | None):
    """records(epoch, position) -> dataset of (id, serialized): `epoch`'s records in their
    order from `position` (records into this worker's order) on. `split` = (workers, index)
    when each worker keeps every n-th record of the order over all shards."""
    import numpy as np
    import tensorflow as tf

    read = _range_reader(manifest, plan, opts)
    n, index = split or (1, 0)
    cached = None
    if opts.cache:
        rows, groups = plan.frozen()
        cached = _grouped(tf.constant(rows), tf.constant(groups), read, plan.group)
        if split:
            cached = cached.shard(n, index)
        cached = cached.cache("" if opts.cache is True else os.fspath(opts.cache))
        local = len(range(index, plan.records, n)) if split else plan.records

    def records(epoch, position):
        if cached is not None:     # one fixed order in the cache: rotate it, then windows
            turn = tf.numpy_function(lambda e: np.int64(plan.rotation(e, local)), [epoch], tf.int64,
                                     stateful=False)
            key = tf.numpy_function(plan.window_key, [epoch], tf.int64, stateful=False)
            ds = cached.skip(turn).concatenate(cached.take(turn))
            if plan.window:
                start = position // plan.window * plan.window
                ds = _permuted_windows(ds.skip(start), plan.window, start // plan.window,
                                       tf.reshape(key, [2]))
                ds = ds.skip(position - start)
            else:
                ds = ds.skip(position)
        else:
            at = position * n
            rows, groups, start, first_window, key = tf.numpy_function(
                plan.ranges, [epoch, at], [tf.int64] * 5, stateful=False)
            ds = _grouped(tf.reshape(rows, [-1, 5]), tf.reshape(groups, [-1, 2]), read, plan.group)
            if plan.window:
                ds = _permuted_windows(ds, plan.window, tf.reshape(first_window, []),
                                       tf.reshape(key, [2]))
            ds = ds.skip(at - tf.reshape(start, []))
            if split:
                ds = ds.shard(n, index)
        return ds

    return records


def _plan(manifest: Manifest, mine: Manifest, opts: ReadOptions, ordered: bool,
          by_record: bool) -> _Plan:
    """The plan of this worker (`mine`: its share of `manifest`)."""
    import secrets

    first, ids = {}, 0
    for shard in manifest.shards:
        first[shard.file], ids = ids, ids + shard.records
    shards = manifest.shards if by_record else mine.shards
    seed = opts.seed if opts.seed is not None else secrets.randbits(62)
    return _Plan([storage.join(manifest.directory, s.file) for s in shards],
                 [s.records for s in shards], [first[s.file] for s in shards],
                 seed=seed, salt=0 if by_record else (opts.worker_index or 0), ordered=ordered,
                 window=_shuffle_buffer(manifest if by_record else mine, opts),
                 seekable=manifest.compression == "none" and _can_seek())


def epoch_stream(manifest: Manifest, opts: ReadOptions, ordered: bool, chunk: int, drop: bool,
            per_epoch_fn=None):
    """The batches of (keys, serialized records) of this worker, epoch by epoch from the
    clock's position, and the clock; each epoch is batched on its own (a pass with
    repeat=N is N epochs, each ending in its own last batch). `per_epoch_fn` turns one
    epoch's batches into what the caller gets (parsing, decoding, batching again) inside
    that epoch, so no batch ever mixes two epochs."""
    import tensorflow as tf

    mine, by_record = _worker_part(manifest, opts)
    for f in (manifest if by_record else mine).files if opts.on_corrupt != "skip" else ():
        if not tf.io.gfile.exists(f):   # "skip" logs and leaves out a shard it cannot open
            raise DatasetError(f"Shard {f} listed in {manifest.directory}/dataset.json is missing; "
                               "the dataset is incomplete, write it again.")
    plan = _plan(manifest, mine, opts, ordered, by_record)
    records = _epoch_records(manifest, opts, plan, (opts.num_workers, opts.worker_index)
                             if by_record else None)
    per_batch = opts.batch_size or 1
    count = mine.records
    per_epoch = (count // opts.batch_size if drop else -(-count // opts.batch_size)) \
        if opts.batch_size else count
    epochs = _NEVER if opts.repeat is True else int(opts.repeat or 1)
    epoch, batch = opts.start or (0, 0)
    clock = _EpochClock(epoch, batch, per_epoch, epochs, counted=opts.on_corrupt != "skip")

    def from_position(epoch, batch):
        def one(e):
            position = tf.where(tf.equal(e, epoch), batch * per_batch, tf.constant(0, tf.int64))
            batches = records(e, position).batch(chunk, drop_remainder=drop).map(
                lambda ids, serialized: (record_keys(e, ids), serialized))
            return per_epoch_fn(batches) if per_epoch_fn else batches

        # One epoch after another, as flat_map would, but the parallel interleave opens the
        # next epoch (plans it, fills its first window, starts its decoders) while this one
        # drains: flat_map stalled about three batches at every epoch's end.
        return tf.data.Dataset.range(epoch, tf.minimum(epoch + epochs, _NEVER)).interleave(
            one, cycle_length=1, num_parallel_calls=1, deterministic=True)

    head = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).map(
        lambda _: tuple(tf.reshape(t, []) for t in tf.py_function(clock.begin, [], [tf.int64, tf.int64])))
    ds = head.flat_map(from_position)
    if opts.batch_size is not None and opts.on_corrupt != "skip":
        ds = with_cardinality(ds, None if opts.repeat is True else per_epoch * epochs)
    return ds, clock, per_epoch * epochs


def with_cardinality(ds, count: int | None):
    """`ds` declaring `count` elements (None: infinitely many), which a pass resumed
    mid-epoch does not reach: assert_cardinality would fail that pass, so the count comes
    from a `take` over a stream TensorFlow sees as infinite (choose_from_datasets with a
    never-chosen endless second input), which still ends where `ds` ends."""
    import tensorflow as tf

    if count is None:
        return ds.apply(tf.data.experimental.assert_cardinality(tf.data.INFINITE_CARDINALITY))
    filler = tf.nest.map_structure(
        lambda spec: tf.zeros([d if d is not None else 0 for d in spec.shape], spec.dtype),
        ds.element_spec)
    endless = tf.data.Dataset.from_tensors(filler).repeat()
    first = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).repeat()
    return tf.data.Dataset.choose_from_datasets([ds, endless], first,
                                                stop_on_empty_dataset=True).take(count)


def delivering(ds, clock: _EpochClock):
    """Strips the keys off each element after the last prefetch and tells the clock which
    epoch the element the consumer now holds belongs to."""
    import tensorflow as tf

    def hand_over(keys, *parts):
        epoch = tf.reshape(keys, [-1, 2])[0, 0]
        told = tf.py_function(clock.delivered, [epoch], tf.int64)
        with tf.control_dependencies([told]):
            parts = tf.nest.map_structure(tf.identity, parts)
        return parts[0] if len(parts) == 1 else parts

    return ds.map(hand_over)


def service_records(manifest: Manifest, opts: ReadOptions, ordered: bool):
    """Serialized records for tf.data service: its workers are handed shard files
    dynamically, so no order is promised; tf.data shuffles files and records as it always did."""
    import tensorflow as tf

    mine, by_record = _worker_part(manifest, opts)
    files = (manifest if by_record else mine).files
    for f in files:
        if not tf.io.gfile.exists(f):
            raise DatasetError(f"Shard {f} listed in {manifest.directory}/dataset.json is missing; "
                               "the dataset is incomplete, write it again.")
    compression = _COMPRESSION_TYPES.get(manifest.compression, "")
    ordered = ordered or by_record
    if ordered or len(files) == 1:
        ds = tf.data.TFRecordDataset(files, compression_type=compression)
    else:
        ds = tf.data.Dataset.from_tensor_slices(files).shuffle(
            len(files), seed=opts.seed, reshuffle_each_iteration=True)
        ds = ds.interleave(lambda f: tf.data.TFRecordDataset(f, compression_type=compression),
                           cycle_length=min(len(files), DEFAULT_CYCLE_LENGTH), block_length=1,
                           num_parallel_calls=tf.data.AUTOTUNE, deterministic=opts.seed is not None)
    if by_record:
        ds = ds.shard(opts.num_workers, opts.worker_index)
    if not ordered and opts.shuffle:
        ds = ds.shuffle(_shuffle_buffer(mine, opts), seed=opts.seed, reshuffle_each_iteration=True)
    if opts.repeat:
        ds = ds.repeat(None if opts.repeat is True else int(opts.repeat))
    return ds


class _DamageLog:
    """Counts and logs, from inside the pipeline, the shards and records `on_corrupt="skip"`
    left out: called through tf.py_function once per file read per epoch, never per record.

    Each file is read with ignore_errors: after a read error TensorFlow moves on, so damage
    ends only its own file (a CRC error, a cut, or a damaged gzip stream lose the rest of
    it). A file that cannot be opened is different: TFRecordDataset retries it forever and
    ignore_errors spins (tensorflow#25700, still so in TF 2.21), so each file is checked
    right before it is opened and left out when it cannot be. At each read's end the
    records read are compared with those planned and the shortfall is logged. The record
    count is then not known in advance, so the dataset's cardinality is unknown.
    """

    def __init__(self, directory: str):
        self.directory = directory
        self.shards_skipped = 0
        self.records_skipped = 0

    def readable(self, path, expected) -> bool:
        import tensorflow as tf

        name = path.numpy().decode()
        try:
            with tf.io.gfile.GFile(name, "rb") as f:
                f.read(1)
            return True
        except (tf.errors.OpError, OSError) as e:
            self.shards_skipped += 1
            self.records_skipped += int(expected)
            log.warning("skipped shard %s and its %d records: it cannot be opened (%s); "
                        "run `tfrecordkit verify %s`", name, int(expected),
                        getattr(e, "message", e), self.directory)
            return False

    def finished(self, path, read, expected, readable) -> bool:
        read, expected = int(read), int(expected)
        if bool(readable) and read < expected:
            self.records_skipped += expected - read
            log.warning("skipped %d of the %d records of %s: record %d is corrupt or the file "
                        "ends there, and TensorFlow cannot read on past it; run `tfrecordkit "
                        "verify %s` to see the damage", expected - read, expected,
                        path.numpy().decode(), read, self.directory)
        return False

    def read(self, path, expected, open_records):
        """The records `open_records(keep)` gives, read past damage, with the shortfall logged."""
        import tensorflow as tf

        readable = tf.reshape(tf.py_function(self.readable, [path, expected], tf.bool), [])
        records = open_records(tf.reshape(readable, [1])).ignore_errors()
        end = tf.data.Dataset.from_tensors((tf.constant(b""), tf.constant(True)))
        marked = records.map(lambda r: (r, tf.constant(False))).concatenate(end).enumerate()

        def keep(i, item):
            return tf.cond(item[1], lambda: tf.reshape(tf.py_function(
                self.finished, [path, i, expected, readable], tf.bool), []),
                lambda: tf.constant(True))

        return marked.filter(keep).map(lambda i, item: item[0])


def resume_position(backup: Any) -> tuple[int, int] | None:
    """The (epoch, batch) a Keras `BackupAndRestore` backup resumes at, or None when its
    directory holds no backup yet.

    Keras 3 writes ``training_metadata.json`` = ``{"epoch": e, "batch": k}`` with each
    backup: epoch e is under way and, when saving every `save_freq` batches, its batches
    0..k are trained, so the next batch is k + 1. With ``save_freq="epoch"`` the backup is
    written at an epoch's end and k is 0 with nothing of epoch e trained; that reads the
    same on disk, so pass the callback itself (``resume=backup``) to have its `save_freq`
    decide; a directory is read as a mid-epoch (integer `save_freq`) backup.

    Example:
        >>> backup = keras.callbacks.BackupAndRestore("ckpt", save_freq=100)
        >>> train = tfk.read("out/train", seed=0, resume=backup)   # or resume="ckpt"
        >>> model.fit(train, epochs=10, callbacks=[backup])
    """
    import json

    directory = getattr(backup, "backup_dir", backup)
    every_epoch = getattr(backup, "save_freq", None) == "epoch"
    path = storage.join(os.fspath(directory), "training_metadata.json")
    if not storage.exists(path):
        return None
    try:
        with storage.open(path, "r") as f:
            saved = json.loads(f.read())
        epoch, batch = int(saved["epoch"]), int(saved.get("batch", 0))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DatasetError(f"{path} is not a Keras BackupAndRestore record ({e}); pass the "
                           "backup_dir your BackupAndRestore callback writes to.") from None
    return (epoch, 0) if every_epoch else (epoch, batch + 1)


def anchor_backup(backup: Any, epoch: int, batch: int) -> None:
    """Makes a Keras `BackupAndRestore` resumed at (epoch, batch) record absolute positions.

    Keras 3 restores the saved epoch into the model only: the callback's own epoch counter
    starts at 0, so its backups in the resumed epoch say epoch 0 (a second kill would restart
    Keras at epoch 0), and their batch numbers count from the restart. Given the callback
    itself, its counter is set to `epoch` and, within that epoch, its saves add `batch`.
    Callbacks without these attributes (another Keras) are left alone.
    """
    save = getattr(backup, "_save_model", None)
    if not (callable(save) and hasattr(backup, "_current_epoch") and hasattr(backup, "_last_batch_seen")):
        return
    backup._current_epoch = epoch

    def save_absolute():
        seen = backup._last_batch_seen
        if backup._current_epoch == epoch and batch > 0:
            backup._last_batch_seen = seen + batch
        try:
            save()
        finally:
            backup._last_batch_seen = seen

    backup._save_model = save_absolute
