"""Readers: a dataset directory into a shuffled, batched, prefetched `tf.data.Dataset`.

The feature spec comes from dataset.json, never from the caller. The pipeline reads files
in parallel in an order planned per epoch (a pure function of seed and epoch, so a run can
resume mid-epoch: see "record stream" below), batches the serialized records and parses
each batch with one vectorised `tf.io.parse_example`, then decodes and resizes the images
in parallel.
"""
from __future__ import annotations

import logging
import os
import random
from dataclasses import replace
from typing import Any, Sequence

from . import storage
from .errors import DatasetError, OptionError, remember_files
from .manifest import Manifest
from .options import (DEFAULT_BATCH_SIZE, DEFAULT_CROP_AREA, DEFAULT_CROP_ASPECT,
                      DEFAULT_CROP_FRACTION, ReadOptions)
from .preprocess import image_decoder, raw_batch_decoder
from .schema import CLASS, FLOAT, INT, MULTI_LABEL, TARGET

log = logging.getLogger(__name__)

# Records held for shuffling: enough for a good shuffle, bounded in memory by bytes.
SHUFFLE_BUFFER_BYTES = 32 << 20
MIN_SHUFFLE_BUFFER = 1024
DEFAULT_CYCLE_LENGTH = 16
_UNBATCHED_CHUNK = 64     # records parsed at once when the caller asks for no batching
_COMPRESSION_TYPES = {"gzip": "GZIP", "zlib": "ZLIB"}   # tf.data's names


def _label_names(manifest: Manifest, label: Any) -> list[str]:
    if label is None:
        return list(manifest.schema.labels)
    if label is False:
        return []
    names = [label] if isinstance(label, str) else list(label)
    stored = {f.name: f for f in manifest.schema.features}
    for name in names:
        if name not in stored or stored[name].kind not in (CLASS, MULTI_LABEL, TARGET, INT, FLOAT):
            raise OptionError(
                f"`label` names {name!r}, which is not a label stored in {manifest.directory}; "
                f"its labels are: {', '.join(manifest.schema.labels) or 'none'} (numeric columns "
                f"also usable: {', '.join(f.name for f in manifest.schema.features if f.kind in (INT, FLOAT)) or 'none'}).")
    return names


def _image_size(manifest: Manifest, opts: ReadOptions) -> tuple[int, int] | None:
    if opts.image_size is not None:
        return opts.image_size
    size = manifest.image.get("size")
    if size:
        return int(size[0]), int(size[1])
    if opts.batch_size is None:
        return None
    if manifest.options.get("inferred_from_records"):   # other writers' files, no dataset.json
        raise OptionError(f"The images in {manifest.directory} are not known to share one size "
                          "(no dataset.json records it), so a batch needs `image_size` (height, "
                          "width) to resize them to; received image_size=None.")
    raise OptionError(f"The images in {manifest.directory} differ in size, so a batch needs "
                      "`image_size` (height, width) to resize them to; received image_size=None.")


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
            try:
                if storage.exists(path):
                    with storage.open(path, "r") as handle:
                        table = np.array(handle.read().split(), np.int64).reshape(-1, 2)
                    if len(table) == self.counts[f]:
                        offsets = table[:, 0]
                    else:
                        log.warning("%s lists %d records, dataset.json %d; seeking by reading "
                                    "past records instead (rebuild it: tfrecordkit index)",
                                    path, len(table), self.counts[f])
            except (OSError, ValueError) as e:
                log.warning("cannot use %s (%s); seeking by reading past records instead", path, e)
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


def _stream(manifest: Manifest, opts: ReadOptions, ordered: bool, chunk: int, drop: bool,
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

        return tf.data.Dataset.range(epoch, tf.minimum(epoch + epochs, _NEVER)).flat_map(one)

    head = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).map(
        lambda _: tuple(tf.reshape(t, []) for t in tf.py_function(clock.begin, [], [tf.int64, tf.int64])))
    ds = head.flat_map(from_position)
    if opts.batch_size is not None and opts.on_corrupt != "skip":
        ds = _with_cardinality(ds, None if opts.repeat is True else per_epoch * epochs)
    return ds, clock, per_epoch * epochs


def _with_cardinality(ds, count: int | None):
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


def _delivering(ds, clock: _EpochClock):
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


def _service_records(manifest: Manifest, opts: ReadOptions, ordered: bool):
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


def _parse_spec(manifest: Manifest, labels: list[str], with_image: bool, with_id: bool):
    """The feature spec of one batch parse: the image under the manifest's image key (with
    its height and width when the records hold them), the id, and the labels."""
    import tensorflow as tf

    spec = {}
    if with_image:
        if not manifest.image_key:
            raise DatasetError(f"No feature of the records in {manifest.directory} holds images "
                               "(none starts with JPEG, PNG, GIF, BMP or WebP bytes); name the "
                               "bytes feature that does with image_key=.")
        spec[manifest.image_key] = tf.io.FixedLenFeature([], tf.string)
        for key in manifest.size_keys or ():
            spec[key] = tf.io.FixedLenFeature([], tf.int64, default_value=0)
    if with_id and manifest.schema.id_column:
        spec[manifest.schema.id_column] = tf.io.FixedLenFeature([], tf.string)
    for name in labels:
        f = manifest.schema[name]
        if f.kind == MULTI_LABEL:
            spec[name] = tf.io.VarLenFeature(tf.int64)
        elif f.dtype == "float":
            spec[name] = tf.io.FixedLenFeature(list(f.shape) if None not in f.shape else [],
                                               tf.float32)
        else:
            spec[name] = tf.io.FixedLenFeature([], tf.int64)
    return spec


def _raw_size(manifest: Manifest) -> tuple[int, int] | None:
    size = manifest.image.get("size")
    if manifest.image.get("format") == "raw" and size:
        return int(size[0]), int(size[1])
    return None




def _label_transform(manifest: Manifest, labels: list[str], opts: ReadOptions):
    import tensorflow as tf

    if opts.label_mode == "categorical":   # honoured for every class label, or refused
        plain = [n for n in labels if manifest.schema[n].kind not in (CLASS, MULTI_LABEL, TARGET)
                 or (manifest.schema[n].kind == CLASS and not manifest.schema[n].vocabulary)]
        if plain or all(manifest.schema[n].kind == TARGET for n in labels):
            name = (plain or labels)[0]
            if "inferred_from_records" in manifest.options and manifest.schema[name].kind == INT:
                raise OptionError(
                    f"`label_mode='categorical'` needs the classes of {name!r}, which "
                    f"{manifest.directory} does not record (inferred from a sample of its "
                    "records); run `tfrecordkit index PATH --manifest`, which reads them all, "
                    "or pass label_mode='int'.")
            raise OptionError(
                f"`label_mode=\"categorical\"` one-hots a class label over its vocabulary, and "
                f"{name!r} in {manifest.directory} has none (a plain number column or target); "
                f"convert it as a class (--label {name}, --num-classes {name}=N) or read it "
                "with label_mode=\"int\"; received label_mode=\"categorical\".")

    def transform(parsed):
        out = {}
        for name in labels:
            f = manifest.schema[name]
            value = parsed[name]
            if f.kind == MULTI_LABEL:
                depth = len(f.vocabulary)
                batch = tf.cast(value.dense_shape[0], tf.int64)
                idx = tf.stack([value.indices[:, 0], value.values], axis=1)
                hot = tf.scatter_nd(idx, tf.ones_like(value.values, tf.float32),
                                    tf.stack([batch, tf.constant(depth, tf.int64)]))
                out[name] = tf.minimum(hot, 1.0)
            elif f.kind == CLASS and opts.label_mode == "categorical":
                out[name] = tf.one_hot(value, len(f.vocabulary), dtype=tf.float32)
            elif f.dtype == "float":
                out[name] = tf.cast(value, tf.float32)
            else:
                out[name] = tf.cast(value, tf.int32)
        return out[labels[0]] if len(labels) == 1 else out

    return transform


def _augment_seed(opts: ReadOptions) -> int:
    """The seed of the random crops and flips: `seed`, else one drawn for this read."""
    return opts.seed if opts.seed is not None else random.SystemRandom().getrandbits(63)


def build(manifest: Manifest, opts: ReadOptions, *, labels: Sequence[str], ids: bool = False,
          images: bool = True, ordered: bool = False):
    """The tf.data pipeline for a loaded manifest; `read` and `predict` share it.

    Elements are ``images``, ``(images, labels)``, or with ``ids=True`` the id strings
    (alone, or paired with images), batched unless ``opts.batch_size`` is None.

    Records come with their keys (`record_keys`: epoch and record number, which seed an
    image's random crop and flip), are batched and parsed a batch at a time (one vectorised
    parse_example); raw pixels of one size then decode as a whole batch with one reshape.
    Encoded images are unbatched and decoded as single elements in parallel, then batched
    again: on two busy cores that ran at 1.5-3x the rate of decoding each batch's images
    one after another inside one call (tf.map_fn), which keeps only as many cores busy as
    there are batches in flight (benchmarks/run.py, "hand-tuned" row). The keys travel to
    the decoder and are taken off after the last prefetch, where they tell the epoch clock
    what the consumer has been handed.
    """
    import tensorflow as tf

    labels = list(labels)
    size = _image_size(manifest, opts) if images else None
    ordered = ordered or not opts.shuffle
    deterministic = ordered or opts.seed is not None
    chunk = opts.batch_size or _UNBATCHED_CHUNK
    raw_size = _raw_size(manifest) if images else None
    seed = _augment_seed(opts) if images and opts.random_augment else 0
    batch_decode = None
    if images and opts.batch_size is not None and raw_size is not None:
        batch_decode = raw_batch_decoder(opts, raw_size, size, seed)
    whole_batches = batch_decode is not None
    # A partial chunk dropped before decoding is the partial batch dropped after it: the
    # chunks are batch_size records whichever way the images then decode.
    drop = bool(opts.drop_remainder and opts.batch_size)
    spec = _parse_spec(manifest, labels, images, ids)
    to_labels = _label_transform(manifest, labels, opts) if labels else None
    id_key = manifest.schema.id_column
    image_key, size_keys = manifest.image_key, manifest.size_keys

    def parse(keys, serialized):
        parsed = tf.io.parse_example(serialized, spec) if spec else {}
        parts = [keys]
        if ids:   # records with no id feature: their record numbers are the ids
            parts.append(parsed[id_key] if id_key else tf.strings.as_string(keys[..., 1]))
        if images:
            encoded = parsed[image_key]
            if size_keys:
                height, width = parsed[size_keys[0]], parsed[size_keys[1]]
            else:   # 0: the decoder finds the size (JPEGs then decode at full scale)
                height = width = tf.zeros(tf.shape(encoded), tf.int64)
            encoded = (encoded, height, width)
            parts.append(batch_decode(*encoded, keys) if batch_decode else encoded)
        if to_labels is not None:
            parts.append(to_labels(parsed))
        return tuple(parts)

    def finish(ds):   # one epoch's (keys, serialized) chunks -> what the caller gets
        ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
        if images and not whole_batches:
            decode = image_decoder(opts, size, seed, manifest.image)
            slot = 2 if ids else 1

            def decode_element(*parts):   # parts[0]: the record's key
                return parts[:slot] + (decode(*parts[slot], parts[0]),) + parts[slot + 1:]

            ds = ds.unbatch().map(decode_element, num_parallel_calls=tf.data.AUTOTUNE,
                                  deterministic=deterministic)
            if opts.on_corrupt == "skip":   # an image that does not decode: drop it, TF logs it
                ds = ds.ignore_errors(log_warning=True)
            if opts.batch_size is not None:
                ds = ds.batch(opts.batch_size, drop_remainder=opts.drop_remainder)
        elif opts.batch_size is None:
            ds = ds.unbatch()
        return ds

    clock = None
    if opts.service:
        ds = _service_records(manifest, opts, ordered).batch(
            chunk, drop_remainder=drop, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = finish(ds.enumerate().map(lambda b, serialized: (record_keys(
            0, b * chunk + tf.range(tf.size(serialized, tf.int64))), serialized)))
        passes = None
    else:
        ds, clock, passes = _stream(manifest, opts, ordered, chunk, drop, finish)
    if opts.batch_size is None and opts.on_corrupt != "skip" and not opts.service:
        ds = _with_cardinality(ds, None if opts.repeat is True else passes)
    options = tf.data.Options()
    options.experimental_optimization.map_parallelization = True
    options.experimental_optimization.inject_prefetch = False  # the clock counts after our prefetch
    options.deterministic = deterministic
    if opts.service:
        ds = ds.map(lambda keys, *parts: parts[0] if len(parts) == 1 else parts)
        ds = ds.with_options(options).apply(tf.data.experimental.service.distribute(
            processing_mode=tf.data.experimental.service.ShardingPolicy.DYNAMIC,
            service=opts.service, job_name=opts.service_job_name))
        return ds.prefetch(tf.data.AUTOTUNE)
    return _delivering(ds.prefetch(tf.data.AUTOTUNE), clock).with_options(options)


def read(path: str | os.PathLike, *, split: str | None = None, batch_size: int | None = DEFAULT_BATCH_SIZE,
         image_size: Any = None, label: str | Sequence[str] | None | bool = None,
         label_mode: str = "int", shuffle: bool = True, repeat: bool | int = False,
         seed: int | None = None, dtype: str = "float32", channels: int = 3,
         resize_mode: str = "stretch", shuffle_buffer: int | None = None,
         cache: bool | str = False, drop_remainder: bool = False, on_corrupt: str = "raise",
         input_context: Any = None, num_workers: int | None = None,
         worker_index: int | None = None, service: str | None = None,
         service_job_name: str | None = None, image_key: str | None = None,
         id_key: str | None = None, crop: str | None = None,
         crop_area: tuple[float, float] = DEFAULT_CROP_AREA,
         crop_aspect: tuple[float, float] = DEFAULT_CROP_ASPECT,
         crop_fraction: float = DEFAULT_CROP_FRACTION, flip: bool = False,
         start: tuple[int, int] | None = None, resume: Any = None):
    """A `tf.data.Dataset` of ``(images, labels)`` batches from a dataset directory, or
    from any TFRecord files of `tf.train.Example` images.

    Args:
        path: a dataset directory (or its dataset.json); with splits, the split's
            subdirectory or the top directory with `split`. Or other writers' TFRecord
            files: a file, a glob, a URL or a directory (any file names, such as
            ``train-00000-of-01024``); their schema is then inferred (see `image_key`,
            `label`) and their record count taken from .idx files or a framing scan.
        split: which split of a split dataset to read (for other writers' shards, the
            subdirectory, or the files whose shard names carry it: ``train-*``).
        batch_size: records per batch, or None for single records.
        image_size: (height, width) or an int to resize to; default: the stored size,
            when every image has the same.
        label: the label column(s) to yield; default every label the dataset was written
            with. One column gives a tensor, several a dict keyed by column (for a
            multi-output model); False gives images only. In other writers' files, any
            int64 or float feature (``"image/class/label"``); default ``image/class/label``
            or ``label`` when present. An int64 label keeps its stored numbers (ImageNet's
            are 1..1000) with the classes 0..max, so ``Dense(max + 1)`` lines up.
        label_mode: "int" (class indices) or "categorical" (one-hot) for class labels.
            Multi-labels are always multi-hot float32, numeric targets float32.
        shuffle: shuffle files and records (a new order every epoch); False keeps record
            order.
        repeat: True to repeat forever, an int for that many epochs per pass. Each pass
            over the dataset (Keras makes one per epoch) goes on from the epoch after the
            last one handed out in full, so epochs 0, 1, 2... each get their own order.
        seed: makes epoch e's order (files and records) a pure function of (seed, e): the
            same on every run and machine, whatever the thread counts. With no seed every
            epoch's order is new and nothing is promised.
        start: (epoch, batch): begin at batch `batch` of epoch `epoch`, yielding exactly the
            batches an uninterrupted run with the same seed and options yields from there;
            the first pass ends with that epoch (the cardinality stays a whole epoch's, so
            Keras sizes every later epoch right), the next pass is epoch + 1. Skipped
            records are never parsed or decoded, and with .idx files (tfrecordkit writes
            them) never read either: each shard opens at its record's byte offset and only
            the one ~32 MB window holding the position is read. Without an .idx file, and
            in gzip shards (which cannot be entered at an offset), the skipped records of
            the shards being read are read past (not parsed). Under on_corrupt="skip" damage
            shifts positions, so resuming there is approximate.
        resume: a Keras `BackupAndRestore` callback (or its backup directory): start
            where its last backup was taken (see `resume_position`), or at the beginning
            when it holds no backup yet. Restarting the same script after a kill then
            trains on exactly the batches the killed run had left. Given the callback,
            its later backups record absolute positions (Keras 3 alone records epoch 0 and
            restart-relative batches in the resumed epoch), so a second kill resumes too.
        dtype: "float32" images in [0, 1], or "uint8" in [0, 255] for a model that
            rescales on the GPU.
        channels: 3 (RGB) or 1 (greyscale).
        resize_mode: "stretch", "crop" (centre crop to the aspect ratio) or "pad".
        shuffle_buffer: records per shuffled window; default about 32 MB worth (at
            least 1024 records). Files are shuffled and read 16 side by side, and each run
            of that many records of the stream is permuted.
        cache: True to cache the serialized records in memory after the first epoch,
            or a file path to cache on disk. The cache holds one fixed order (files read
            side by side); each epoch starts it at a seeded place and permutes its windows.
        drop_remainder: drop the last partial batch.
        on_corrupt: "raise" (default) fails the epoch at a corrupt record or a missing
            shard; "skip" reads on past them and logs, per shard and epoch, how many
            records were left out (a corrupt record loses the rest of its shard), and drops
            images that do not decode. The dataset's cardinality is then unknown.
        input_context: a `tf.distribute.InputContext` (what
            `strategy.distribute_datasets_from_function` passes): read only this input
            pipeline's share, as `num_workers`/`worker_index` would.
        num_workers, worker_index: read only the share of worker `worker_index` of
            `num_workers` (both or neither). Shard files are assigned to workers by record
            count, the same way on every worker; with fewer files than workers each worker
            reads every file and keeps every `num_workers`-th record of the epoch's order
            (the single reader's order, dealt out). The cardinality is this worker's.
        service: a tf.data service dispatcher, "grpc://host:port" or "host:port": parsing
            and decoding run on the service's workers, which are handed shard files
            dynamically (each record once per epoch). The cardinality is then unknown; the
            shard files must be readable at the same path by every service worker.
        service_job_name: a job name shared by several trainers, which then split one
            stream of records between them.
        image_key: in other writers' files, the bytes feature holding the images; default
            the one whose bytes are images (``image/encoded``, ``image``...).
        id_key: in other writers' files, the id feature (what `predict` returns); default
            a filename-like one (``image/filename``, ``filename``, ``id``...).
        crop: None (default), "random" or "center". "random": a random-resized crop per
            image and epoch (Inception style), then resized to `image_size`; "center": the
            central `crop_fraction` of each image (evaluate a model trained on random crops
            with it). A JPEG decodes only the crop window, at reduced DCT scale when the
            window is at least twice the target size.
        crop_area: (low, high) fraction of the image's area a random crop covers.
        crop_aspect: (low, high) width/height ratio of a random crop (drawn log-uniformly).
        crop_fraction: the central fraction of height and width `crop="center"` keeps.
        flip: mirror images left-right at random. Crops and flips are drawn per image and
            epoch from `seed`, the epoch and the record's number, so they repeat with the
            same seed (and after `start`/`resume`) and differ between epochs.

    Example:
        >>> train = tfk.read("out/train", batch_size=64, image_size=128, seed=0)
        >>> model.fit(train, validation_data=tfk.read("out/val", shuffle=False), epochs=5)
        >>> augmented = tfk.read("out/train", image_size=224, crop="random", flip=True, seed=0)
        >>> backup = keras.callbacks.BackupAndRestore("ckpt", save_freq=200)
        >>> model.fit(tfk.read("out/train", seed=0, resume=backup), epochs=5,
        ...           callbacks=[backup])     # killed and restarted: the same batches
        >>> strategy.distribute_datasets_from_function(lambda ctx: tfk.read(
        ...     "out/train", input_context=ctx, batch_size=ctx.get_per_replica_batch_size(256)))
        >>> imagenet = tfk.read("imagenet/", split="train", label="image/class/label",
        ...                     image_size=224)   # TensorFlow's ImageNet shards, as they are
    """
    if input_context is not None:
        if num_workers is not None or worker_index is not None:
            raise OptionError("Pass `input_context` or `num_workers`/`worker_index`, not both; "
                              f"received num_workers={num_workers!r}, worker_index={worker_index!r} "
                              "with an input_context.")
        try:
            num_workers = int(input_context.num_input_pipelines)
            worker_index = int(input_context.input_pipeline_id)
        except (AttributeError, TypeError, ValueError):
            raise OptionError("`input_context` must be a tf.distribute.InputContext; received "
                              f"input_context={input_context!r}.") from None
    opts = ReadOptions(batch_size, image_size, label_mode, shuffle, repeat, seed, dtype,
                       channels, resize_mode, shuffle_buffer, cache, drop_remainder, on_corrupt,
                       num_workers, worker_index, service, service_job_name, crop=crop,
                       crop_area=crop_area, crop_aspect=crop_aspect, crop_fraction=crop_fraction,
                       flip=flip, start=start, resume=resume)
    if resume is not None:
        opts = replace(opts, resume=None, start=resume_position(resume))
        if opts.start is not None and hasattr(resume, "backup_dir"):
            _anchor(resume, *opts.start)
    manifest = _load(path, split, label=label, image_key=image_key, id_key=id_key)
    return build(manifest, opts, labels=_label_names(manifest, label))


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


def _anchor(backup: Any, epoch: int, batch: int) -> None:
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


def _load(path: str | os.PathLike, split: str | None, *, label: Any = None,
          image_key: str | None = None, id_key: str | None = None) -> Manifest:
    """The manifest `read` and `predict` build on: dataset.json's, or one inferred from
    other writers' records (`locate`), with `image_key`/`id_key` overriding its choice."""
    from .locate import locate

    loc = locate(path, split, label=None if label is False else label, image_key=image_key,
                 id_key=id_key)
    manifest = loc.manifest
    remember_files(manifest.files)   # to name the file in TF's "corrupted record at N"
    if manifest.splits and manifest.split is None:
        names = list(manifest.splits)
        where = (f" or the path {storage.join(manifest.directory, names[0])}" if not loc.inferred
                 else "")
        raise OptionError(f"{manifest.directory} holds the splits {', '.join(names)}; pass "
                          f"split={names[0]!r}{where}.")
    if loc.compression == "mixed":
        raise DatasetError(f"The TFRecord files of {loc.path!r} differ in compression (plain, "
                           "GZIP, ZLIB); tf.data reads one kind at a time, so pass a glob of one.")
    if not loc.inferred and (image_key or id_key):
        image = {**manifest.image, "key": image_key} if image_key else manifest.image
        schema = replace(manifest.schema, id_column=id_key) if id_key else manifest.schema
        manifest = replace(manifest, image=image, schema=schema)
    return manifest
