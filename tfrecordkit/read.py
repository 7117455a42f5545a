"""Readers: a dataset directory into a shuffled, batched, prefetched `tf.data.Dataset`.

The feature spec comes from dataset.json, never from the caller. The pipeline reads files
in parallel, shuffles records, batches the serialized records and parses each batch with
one vectorised `tf.io.parse_example`, then decodes and resizes the images in parallel.
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


def _records(manifest: Manifest, opts: ReadOptions, ordered: bool, by_record: bool = False):
    """Serialized records of every shard: in record order, or files and records shuffled.

    `by_record` keeps only this worker's every `num_workers`-th record of the ordered stream
    (`manifest.records` is then already this worker's count).
    """
    import tensorflow as tf

    ordered = ordered or by_record
    if opts.on_corrupt == "skip":
        ds = _records_skipping_damage(manifest, opts, ordered)
        return ds.shard(opts.num_workers, opts.worker_index) if by_record else ds
    files = manifest.files
    for f in files:
        if not tf.io.gfile.exists(f):
            raise DatasetError(f"Shard {f} listed in {manifest.directory}/dataset.json is missing; "
                               "the dataset is incomplete, write it again.")
    compression = _COMPRESSION_TYPES.get(manifest.compression, "")
    if ordered or len(files) == 1:
        ds = tf.data.TFRecordDataset(files, compression_type=compression)
    else:
        deterministic = opts.seed is not None
        ds = tf.data.Dataset.from_tensor_slices(files)
        ds = ds.shuffle(len(files), seed=opts.seed, reshuffle_each_iteration=True)
        ds = ds.interleave(
            lambda f: tf.data.TFRecordDataset(f, compression_type=compression),
            cycle_length=min(len(files), DEFAULT_CYCLE_LENGTH), block_length=1,
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    if by_record:
        ds = ds.shard(opts.num_workers, opts.worker_index)
    if opts.service:   # each service worker reads only the files the dispatcher hands it
        return ds
    return ds.apply(tf.data.experimental.assert_cardinality(manifest.records))


class _DamageLog:
    """Counts and logs, from inside the pipeline, the shards and records `on_corrupt="skip"`
    left out: called through tf.py_function once per shard per epoch, never per record."""

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


def _records_skipping_damage(manifest: Manifest, opts: ReadOptions, ordered: bool):
    """Serialized records, reading past damaged shards instead of failing the epoch.

    Each shard is its own TFRecordDataset inside an interleave, with ignore_errors: after a
    read error TensorFlow moves on to the next file, so damage ends only its own shard
    (a CRC error, a cut, or a damaged gzip stream lose the rest of that shard). A file that
    cannot be opened is different: TFRecordDataset retries it forever and ignore_errors
    spins (tensorflow#25700, still so in TF 2.21), so each shard is checked right before
    it is opened and left out when it cannot be. At each shard's end the records read are
    compared with dataset.json and the shortfall is logged. The record count is then not
    known in advance, so the dataset's cardinality is unknown.
    """
    import tensorflow as tf

    compression = _COMPRESSION_TYPES.get(manifest.compression, "")
    damage = _DamageLog(manifest.directory)

    def one_shard(path, expected):
        readable = tf.reshape(tf.py_function(damage.readable, [path, expected], tf.bool), [])
        names = tf.boolean_mask(tf.reshape(path, [1]), tf.reshape(readable, [1]))
        records = tf.data.TFRecordDataset(names, compression_type=compression).ignore_errors()
        end = tf.data.Dataset.from_tensors((tf.constant(b""), tf.constant(True)))
        marked = records.map(lambda r: (r, tf.constant(False))).concatenate(end).enumerate()

        def keep(i, item):
            return tf.cond(item[1], lambda: tf.reshape(tf.py_function(
                damage.finished, [path, i, expected, readable], tf.bool), []),
                lambda: tf.constant(True))

        return marked.filter(keep).map(lambda i, item: item[0])

    files = manifest.files
    ds = tf.data.Dataset.from_tensor_slices(
        (files, tf.constant([s.records for s in manifest.shards], tf.int64)))
    if ordered or len(files) == 1:
        return ds.flat_map(one_shard)
    ds = ds.shuffle(len(files), seed=opts.seed, reshuffle_each_iteration=True)
    return ds.interleave(one_shard, cycle_length=min(len(files), DEFAULT_CYCLE_LENGTH),
                         block_length=1, num_parallel_calls=tf.data.AUTOTUNE,
                         deterministic=opts.seed is not None)


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


def _keyed(ds, opts: ReadOptions):
    """The record's parts plus a key, int64 [epoch, index in the epoch's order]:
    what an image's random crop and flip are drawn from (preprocess.image_seed).

    PROVISIONAL: every record is in epoch 0 and its index counts on across repeats, so
    each repeat still draws anew; the exact (epoch, index) comes with resumable reading.
    """
    import tensorflow as tf

    def key(i, record):
        parts = record if isinstance(record, tuple) else (record,)
        return parts + (tf.stack([tf.constant(0, tf.int64), i]),)

    return ds.enumerate().map(key)


def _augment_seed(opts: ReadOptions) -> int:
    """The seed of the random crops and flips: `seed`, else one drawn for this read."""
    return opts.seed if opts.seed is not None else random.SystemRandom().getrandbits(63)


def build(manifest: Manifest, opts: ReadOptions, *, labels: Sequence[str], ids: bool = False,
          images: bool = True, ordered: bool = False):
    """The tf.data pipeline for a loaded manifest; `read` and `predict` share it.

    Elements are ``images``, ``(images, labels)``, or with ``ids=True`` the id strings
    (alone, or paired with images), batched unless ``opts.batch_size`` is None.

    Records are batched and parsed a batch at a time (one vectorised parse_example);
    raw pixels of one size then decode as a whole batch with one reshape. Encoded images
    are unbatched and decoded as single elements in parallel, then batched again: on two
    busy cores that ran at 1.5-3x the rate of decoding each batch's images one after
    another inside one call (tf.map_fn), which keeps only as many cores busy as there
    are batches in flight (benchmarks/run.py, "hand-tuned" row).
    """
    import tensorflow as tf

    labels = list(labels)
    size = _image_size(manifest, opts) if images else None
    manifest, by_record = _worker_part(manifest, opts)
    ordered = ordered or not opts.shuffle
    deterministic = ordered or opts.seed is not None
    ds = _records(manifest, opts, ordered, by_record)
    id_key = manifest.schema.id_column
    numbered = ids and not id_key   # records with no id feature: their numbers are the ids
    if numbered:
        ds = ds.enumerate()
    if opts.cache:
        ds = ds.cache("" if opts.cache is True else os.fspath(opts.cache))
    if opts.shuffle and not ordered:
        ds = ds.shuffle(_shuffle_buffer(manifest, opts), seed=opts.seed,
                        reshuffle_each_iteration=True)
    if opts.repeat:
        ds = ds.repeat(None if opts.repeat is True else int(opts.repeat))
    keyed = images and opts.random_augment
    seed = _augment_seed(opts) if keyed else 0
    if keyed:
        ds = _keyed(ds, opts)
    chunk = opts.batch_size or _UNBATCHED_CHUNK
    raw_size = _raw_size(manifest) if images else None
    batch_decode = None
    if images and opts.batch_size is not None and raw_size is not None:
        batch_decode = raw_batch_decoder(opts, raw_size, size, seed)
    whole_batches = batch_decode is not None
    ds = ds.batch(chunk, drop_remainder=bool(whole_batches and opts.drop_remainder),
                  num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    spec = _parse_spec(manifest, labels, images, ids)
    to_labels = _label_transform(manifest, labels, opts) if labels else None
    image_key, size_keys = manifest.image_key, manifest.size_keys

    def parse(*batch):
        batch = list(batch)   # [record numbers,] serialized records[, augmentation keys]
        numbers = batch.pop(0) if numbered else None
        serialized = batch.pop(0)
        key = batch.pop(0) if keyed else None
        parsed = tf.io.parse_example(serialized, spec) if spec else {}
        parts = []
        if ids:
            parts.append(tf.strings.as_string(numbers) if numbered else parsed[id_key])
        if images:
            encoded = parsed[image_key]
            if size_keys:
                height, width = parsed[size_keys[0]], parsed[size_keys[1]]
            else:   # 0: the decoder finds the size (JPEGs then decode at full scale)
                height = width = tf.zeros(tf.shape(encoded), tf.int64)
            encoded = (encoded, height, width) + ((key,) if keyed else ())
            parts.append(batch_decode(*encoded) if batch_decode else encoded)
        if to_labels is not None:
            parts.append(to_labels(parsed))
        return tuple(parts)

    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    if images and not whole_batches:
        decode = image_decoder(opts, size, seed, manifest.image)
        slot = 1 if ids else 0

        def decode_element(*parts):
            return parts[:slot] + (decode(*parts[slot]),) + parts[slot + 1:]

        ds = ds.unbatch().map(decode_element, num_parallel_calls=tf.data.AUTOTUNE,
                              deterministic=deterministic)
        if opts.on_corrupt == "skip":   # an image that does not decode: drop it, TF logs it
            ds = ds.ignore_errors(log_warning=True)
        if opts.batch_size is not None:
            ds = ds.batch(opts.batch_size, drop_remainder=opts.drop_remainder)
    elif opts.batch_size is None:
        ds = ds.unbatch()
    if opts.batch_size is None or (images and not whole_batches):
        ds = _known_cardinality(ds, manifest, opts)
    ds = ds.map(lambda *parts: parts[0] if len(parts) == 1 else parts)
    options = tf.data.Options()
    options.experimental_optimization.map_parallelization = True
    options.deterministic = deterministic
    ds = ds.with_options(options)
    if opts.service:
        ds = ds.apply(tf.data.experimental.service.distribute(
            processing_mode=tf.data.experimental.service.ShardingPolicy.DYNAMIC,
            service=opts.service, job_name=opts.service_job_name))
    return ds.prefetch(tf.data.AUTOTUNE)


def _known_cardinality(ds, manifest: Manifest, opts: ReadOptions):
    """Unbatching forgets how many elements there are; the manifest knows."""
    import tensorflow as tf

    if opts.repeat is True or opts.on_corrupt == "skip" or opts.service:
        return ds
    epochs = 1 if not opts.repeat else int(opts.repeat)
    records = manifest.records * epochs
    if opts.batch_size is None:
        count = records
    elif opts.drop_remainder:
        count = records // opts.batch_size
    else:
        count = -(-records // opts.batch_size)
    return ds.apply(tf.data.experimental.assert_cardinality(count))


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
         crop_fraction: float = DEFAULT_CROP_FRACTION, flip: bool = False):
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
        shuffle: shuffle files and records (reshuffled every epoch); False keeps record order.
        repeat: True to repeat forever, an int for that many epochs.
        seed: makes the order reproducible run to run.
        dtype: "float32" images in [0, 1], or "uint8" in [0, 255] for a model that
            rescales on the GPU.
        channels: 3 (RGB) or 1 (greyscale).
        resize_mode: "stretch", "crop" (centre crop to the aspect ratio) or "pad".
        shuffle_buffer: records in the shuffle buffer; default about 32 MB worth (at
            least 1024 records); files are shuffled and interleaved as well.
        cache: True to cache the serialized records in memory after the first epoch,
            or a file path to cache on disk.
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
            keeps every `num_workers`-th record. The cardinality is this worker's.
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
            epoch from `seed` (and the record's place in the epoch), so they repeat with
            the same seed and differ between epochs.

    Example:
        >>> train = tfk.read("out/train", batch_size=64, image_size=128, seed=0)
        >>> model.fit(train, validation_data=tfk.read("out/val", shuffle=False), epochs=5)
        >>> augmented = tfk.read("out/train", image_size=224, crop="random", flip=True, seed=0)
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
                       flip=flip)
    manifest = _load(path, split, label=label, image_key=image_key, id_key=id_key)
    return build(manifest, opts, labels=_label_names(manifest, label))


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
