"""Readers: a dataset directory into a shuffled, batched, prefetched `tf.data.Dataset`.

The feature spec comes from dataset.json, never from the caller. The pipeline reads files
in parallel, shuffles records, batches the serialized records and parses each batch with
one vectorised `tf.io.parse_example`, then decodes and resizes the images in parallel.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, replace
from typing import Any, Sequence

from . import storage
from .errors import DatasetError, OptionError
from .manifest import Manifest, load_manifest
from .options import RESIZE_MODES, parse_image_size
from .schema import CLASS, FLOAT, INT, MULTI_LABEL, TARGET

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 32
# Records held for shuffling: enough for a good shuffle, bounded in memory by bytes.
SHUFFLE_BUFFER_BYTES = 32 << 20
MIN_SHUFFLE_BUFFER = 1024
DEFAULT_CYCLE_LENGTH = 16
_UNBATCHED_CHUNK = 64     # records parsed at once when the caller asks for no batching
LABEL_MODES = ("int", "categorical")
DTYPES = ("float32", "uint8")
ON_CORRUPT = ("raise", "skip")
# `service` without a protocol: TF's default protocol is grpc.
_HOST_PORT = re.compile(r"^[^\s/:]+:\d+$")


@dataclass(frozen=True)
class ReadOptions:
    """Options of `read`, validated before TensorFlow is touched."""

    batch_size: int | None = DEFAULT_BATCH_SIZE
    image_size: tuple[int, int] | None = None
    label_mode: str = "int"
    shuffle: bool = True
    repeat: bool | int = False
    seed: int | None = None
    dtype: str = "float32"
    channels: int = 3
    resize_mode: str = "stretch"
    shuffle_buffer: int | None = None
    cache: bool | str = False
    drop_remainder: bool = False
    on_corrupt: str = "raise"
    num_workers: int | None = None
    worker_index: int | None = None
    service: str | None = None
    service_job_name: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_size", parse_image_size(self.image_size))
        if self.batch_size is not None and (not isinstance(self.batch_size, int)
                                            or isinstance(self.batch_size, bool)
                                            or self.batch_size < 1):
            raise OptionError(f"`batch_size` must be a positive integer or None; "
                              f"received batch_size={self.batch_size!r}.")
        for name, choices in (("label_mode", LABEL_MODES), ("dtype", DTYPES),
                              ("resize_mode", RESIZE_MODES), ("on_corrupt", ON_CORRUPT)):
            if getattr(self, name) not in choices:
                raise OptionError(f"`{name}` must be one of {', '.join(map(repr, choices))}; "
                                  f"received {name}={getattr(self, name)!r}.")
        if self.channels not in (1, 3):
            raise OptionError(f"`channels` must be 1 (greyscale) or 3 (RGB); "
                              f"received channels={self.channels!r}.")
        if not isinstance(self.repeat, bool) and (not isinstance(self.repeat, int) or self.repeat < 1):
            raise OptionError(f"`repeat` must be True, False or a positive number of epochs; "
                              f"received repeat={self.repeat!r}.")
        if self.seed is not None and (not isinstance(self.seed, int) or self.seed < 0):
            raise OptionError(f"`seed` must be a non-negative integer or None; received seed={self.seed!r}.")
        if self.shuffle_buffer is not None and (not isinstance(self.shuffle_buffer, int)
                                                or self.shuffle_buffer < 1):
            raise OptionError(f"`shuffle_buffer` must be a positive integer or None; "
                              f"received shuffle_buffer={self.shuffle_buffer!r}.")
        self._check_workers()
        self._check_service()

    def _check_workers(self) -> None:
        n, i = self.num_workers, self.worker_index
        if (n is None) != (i is None):
            raise OptionError(f"`num_workers` and `worker_index` go together: pass both or neither; "
                              f"received num_workers={n!r}, worker_index={i!r}.")
        if n is None:
            return
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise OptionError(f"`num_workers` must be a positive integer; received num_workers={n!r}.")
        if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < n:
            raise OptionError(f"`worker_index` must be an integer from 0 to {n - 1} for "
                              f"num_workers={n}; received worker_index={i!r}.")

    def _check_service(self) -> None:
        service = self.service
        if service is None:
            if self.service_job_name is not None:
                raise OptionError(f"`service_job_name` names a tf.data service job, so it needs "
                                  f"`service`; received service_job_name={self.service_job_name!r} "
                                  "and service=None.")
            return
        if not isinstance(service, str) or not (
                (service.startswith("grpc://") and len(service) > len("grpc://")
                 and not any(c.isspace() for c in service)) or _HOST_PORT.match(service)):
            raise OptionError(f"`service` must be a tf.data service dispatcher address, "
                              f"\"grpc://host:port\" or \"host:port\"; received service={service!r}.")
        if self.service_job_name is not None and (not isinstance(self.service_job_name, str)
                                                  or not self.service_job_name):
            raise OptionError(f"`service_job_name` must be a non-empty string or None; "
                              f"received service_job_name={self.service_job_name!r}.")
        if self.on_corrupt == "skip":
            raise OptionError("`on_corrupt=\"skip\"` cannot run on tf.data service workers (it "
                              "counts damage with tf.py_function, which only the reading process "
                              "can run); pass on_corrupt=\"raise\" with `service`, or read "
                              f"without `service`; received service={service!r}.")
        if self.cache:
            raise OptionError("`cache` would cache on the tf.data service workers, which are "
                              "handed different shard files each epoch; leave cache=False with "
                              f"`service`; received cache={self.cache!r}.")
        if self.service_job_name is not None and self.num_workers not in (None, 1):
            raise OptionError("A shared `service_job_name` already splits the records among the "
                              "trainers that read it; pass num_workers/worker_index (or "
                              "input_context) or service_job_name, not both; received "
                              f"num_workers={self.num_workers!r}, "
                              f"service_job_name={self.service_job_name!r}.")


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
    compression = "GZIP" if manifest.compression == "gzip" else ""
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

    compression = "GZIP" if manifest.compression == "gzip" else ""
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
    import tensorflow as tf

    spec = {}
    if with_image:
        spec["image/encoded"] = tf.io.FixedLenFeature([], tf.string)
        spec["image/height"] = tf.io.FixedLenFeature([], tf.int64, default_value=0)
        spec["image/width"] = tf.io.FixedLenFeature([], tf.int64, default_value=0)
    if with_id:
        spec[manifest.schema.id_column] = tf.io.FixedLenFeature([], tf.string)
    for name in labels:
        f = manifest.schema[name]
        if f.kind == MULTI_LABEL:
            spec[name] = tf.io.VarLenFeature(tf.int64)
        elif f.dtype == "float":
            spec[name] = tf.io.FixedLenFeature([], tf.float32)
        else:
            spec[name] = tf.io.FixedLenFeature([], tf.int64)
    return spec


def _raw_size(manifest: Manifest) -> tuple[int, int] | None:
    size = manifest.image.get("size")
    if manifest.image.get("format") == "raw" and size:
        return int(size[0]), int(size[1])
    return None


def _resizer(opts: ReadOptions, size: tuple[int, int] | None):
    """fit(image, antialias): image [h, w, c] -> float32 [height, width, c] by
    `opts.resize_mode`, or the image as it is when no size is asked for."""
    import tensorflow as tf

    def fit(image, antialias: bool):
        if size is None:
            return image
        height, width = size
        if opts.resize_mode == "pad":
            return tf.image.resize_with_pad(image, height, width, antialias=antialias)
        if opts.resize_mode == "crop":
            shape = tf.shape(image)
            h, w = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
            scale = tf.maximum(height / h, width / w)
            crop_h = tf.minimum(shape[0], tf.cast(tf.math.ceil(height / scale), tf.int32))
            crop_w = tf.minimum(shape[1], tf.cast(tf.math.ceil(width / scale), tf.int32))
            image = tf.image.crop_to_bounding_box(image, (shape[0] - crop_h) // 2,
                                                  (shape[1] - crop_w) // 2, crop_h, crop_w)
        return tf.image.resize(image, size, antialias=antialias)

    return fit


def _finisher(opts: ReadOptions):
    """float in [0, 255] (or uint8) -> the requested dtype and range."""
    import tensorflow as tf

    def finish(image):
        if opts.dtype == "uint8":
            if image.dtype == tf.uint8:
                return image
            return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        return tf.cast(image, tf.float32) / 255.0

    return finish


def _set_channels(image, channels: int):
    import tensorflow as tf

    if image.shape[-1] == channels:
        return image
    return tf.image.rgb_to_grayscale(image) if channels == 1 else tf.image.grayscale_to_rgb(image)


def _raw_batch_decoder(opts: ReadOptions, stored: tuple[int, int], size):
    """Raw pixels of one stored size: the whole batch decodes with one reshape."""
    import tensorflow as tf

    fit, finish = _resizer(opts, size), _finisher(opts)
    h, w = stored

    def decode(encoded, *_):
        images = _set_channels(tf.reshape(tf.io.decode_raw(encoded, tf.uint8), [-1, h, w, 3]),
                               opts.channels)
        if size is not None and tuple(size) != (h, w):
            images = tf.map_fn(lambda image: fit(image, True), images,
                               fn_output_signature=tf.float32)
        out = size or (h, w)
        return tf.ensure_shape(finish(images), [None, out[0], out[1], opts.channels])

    return decode


def _image_decoder(opts: ReadOptions, size):
    """One encoded image -> [H, W, C].

    JPEGs are decoded at 1/2, 1/4 or 1/8 scale (DCT scaling, nearly free) when that still
    covers the target size, which leaves less than a 2x shrink on the shorter side, so a
    plain bilinear resize follows (antialiasing would double the cost of every image).
    Other formats are resized with antialiasing, and kept exactly when already the size.
    """
    import tensorflow as tf

    fit, finish = _resizer(opts, size), _finisher(opts)
    channels = opts.channels

    def decode_any(encoded):
        image = tf.io.decode_image(encoded, channels=channels, expand_animations=False)
        image.set_shape([None, None, channels])
        return image

    def decode(encoded, height, width):
        if size is None:
            return finish(decode_any(encoded))

        def other():
            image = decode_any(encoded)
            shape = tf.shape(image)
            same = tf.logical_and(tf.equal(shape[0], size[0]), tf.equal(shape[1], size[1]))
            return tf.cond(same, lambda: tf.cast(image, tf.float32), lambda: fit(image, True))

        def jpeg():
            scale = tf.minimum(height // size[0], width // size[1])
            step = tf.add_n([tf.cast(scale >= r, tf.int32) for r in (2, 4, 8)])  # ratio 2**step
            image = tf.switch_case(step, [
                lambda r=r: tf.ensure_shape(tf.io.decode_jpeg(encoded, channels=channels, ratio=r),
                                            [None, None, channels]) for r in (1, 2, 4, 8)])
            return fit(image, False)

        is_jpeg = tf.equal(tf.strings.substr(encoded, 0, 3), b"\xff\xd8\xff")
        image = tf.cond(is_jpeg, jpeg, other)
        # Branches lose the static size; Keras and users build on element_spec.
        return tf.ensure_shape(finish(image), [size[0], size[1], channels])

    return decode


def _encoded_batch_decoder(opts: ReadOptions, size: tuple[int, int]):
    """A batch of encoded images -> [B, height, width, C], one image after another inside
    one tf.data call: about 5% faster than unbatching, decoding each image as its own
    element and batching again (per-element overhead), with as many batches in flight as
    tf.data's autotuner finds cores for."""
    import tensorflow as tf

    decode = _image_decoder(opts, size)
    out = tf.TensorSpec([size[0], size[1], opts.channels],
                        tf.uint8 if opts.dtype == "uint8" else tf.float32)

    def decode_batch(encoded, height, width):
        return tf.map_fn(lambda parts: decode(*parts), (encoded, height, width),
                         fn_output_signature=out)

    return decode_batch


def _label_transform(manifest: Manifest, labels: list[str], opts: ReadOptions):
    import tensorflow as tf

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


def build(manifest: Manifest, opts: ReadOptions, *, labels: Sequence[str], ids: bool = False,
          images: bool = True, ordered: bool = False):
    """The tf.data pipeline for a loaded manifest; `read` and `predict` share it.

    Elements are ``images``, ``(images, labels)``, or with ``ids=True`` the id strings
    (alone, or paired with images), batched unless ``opts.batch_size`` is None.

    Records are batched and parsed a batch at a time (one vectorised parse_example);
    raw pixels of one size then decode as a whole batch with one reshape, encoded images
    one after another within their batch, batches in parallel. With no batching, or when
    corrupt images are skipped one by one, encoded images are unbatched and decoded as
    single elements instead.
    """
    import tensorflow as tf

    labels = list(labels)
    size = _image_size(manifest, opts) if images else None
    manifest, by_record = _worker_part(manifest, opts)
    ordered = ordered or not opts.shuffle
    deterministic = ordered or opts.seed is not None
    ds = _records(manifest, opts, ordered, by_record)
    if opts.cache:
        ds = ds.cache("" if opts.cache is True else os.fspath(opts.cache))
    if opts.shuffle and not ordered:
        ds = ds.shuffle(_shuffle_buffer(manifest, opts), seed=opts.seed,
                        reshuffle_each_iteration=True)
    if opts.repeat:
        ds = ds.repeat(None if opts.repeat is True else int(opts.repeat))
    chunk = opts.batch_size or _UNBATCHED_CHUNK
    raw_size = _raw_size(manifest) if images else None
    batch_decode = None
    if images and opts.batch_size is not None:
        if raw_size is not None:
            batch_decode = _raw_batch_decoder(opts, raw_size, size)
        elif opts.on_corrupt != "skip":   # skipping drops single images: element by element
            batch_decode = _encoded_batch_decoder(opts, size)
    whole_batches = batch_decode is not None
    ds = ds.batch(chunk, drop_remainder=bool(whole_batches and opts.drop_remainder),
                  num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    spec = _parse_spec(manifest, labels, images, ids)
    to_labels = _label_transform(manifest, labels, opts) if labels else None
    id_key = manifest.schema.id_column

    def parse(serialized):
        parsed = tf.io.parse_example(serialized, spec)
        parts = []
        if ids:
            parts.append(parsed[id_key])
        if images:
            encoded = (parsed["image/encoded"], parsed["image/height"], parsed["image/width"])
            parts.append(batch_decode(*encoded) if batch_decode else encoded)
        if to_labels is not None:
            parts.append(to_labels(parsed))
        return tuple(parts)

    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    if images and not whole_batches:
        decode = _image_decoder(opts, size)
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
         service_job_name: str | None = None):
    """A `tf.data.Dataset` of ``(images, labels)`` batches from a dataset directory.

    Args:
        path: a dataset directory (or its dataset.json); with splits, the split's
            subdirectory or the top directory with `split`.
        split: which split of a split dataset to read.
        batch_size: records per batch, or None for single records.
        image_size: (height, width) or an int to resize to; default: the stored size,
            when every image has the same.
        label: the label column(s) to yield; default every label the dataset was written
            with. One column gives a tensor, several a dict keyed by column (for a
            multi-output model); False gives images only.
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

    Example:
        >>> train = tfk.read("out/train", batch_size=64, image_size=128, seed=0)
        >>> model.fit(train, validation_data=tfk.read("out/val", shuffle=False), epochs=5)
        >>> strategy.distribute_datasets_from_function(lambda ctx: tfk.read(
        ...     "out/train", input_context=ctx, batch_size=ctx.get_per_replica_batch_size(256)))
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
                       num_workers, worker_index, service, service_job_name)
    manifest = _load(path, split)
    return build(manifest, opts, labels=_label_names(manifest, label))


def _load(path: str | os.PathLike, split: str | None) -> Manifest:
    manifest = load_manifest(path, split)
    if manifest.splits and manifest.split is None:
        names = list(manifest.splits)
        raise OptionError(f"{manifest.directory} holds the splits {', '.join(names)}; pass "
                          f"split={names[0]!r} or the path {storage.join(manifest.directory, names[0])}.")
    return manifest
