"""Readers: a dataset directory into a shuffled, batched, prefetched `tf.data.Dataset`.

The feature spec comes from dataset.json (or is inferred from the records, see locate.py),
never from the caller. The records come from stream.py, in an order planned per epoch (a
pure function of seed and epoch, so a run can resume mid-epoch); this module batches them,
parses each batch with one vectorised `tf.io.parse_example`, then decodes, crops and
resizes the images in parallel (preprocess.py).
"""
from __future__ import annotations

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
from .stream import (anchor_backup, delivering, epoch_stream, record_keys, resume_position,
                     service_records, with_cardinality)

_UNBATCHED_CHUNK = 64     # records parsed at once when the caller asks for no batching


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
    if images and raw_size is not None:   # unbatched too: a chunk decodes, then unbatches
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
            # The stored size, else the decoder reads a JPEG's from its header.
            encoded = (encoded,) + tuple(parsed[k] for k in size_keys or ())
            parts.append(batch_decode(*encoded, key=keys) if batch_decode else encoded)
        if to_labels is not None:
            parts.append(to_labels(parsed))
        return tuple(parts)

    def finish(ds):   # one epoch's (keys, serialized) chunks -> what the caller gets
        ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
        if images and not whole_batches:
            decode = image_decoder(opts, size, seed, manifest.image)
            slot = 2 if ids else 1

            def decode_element(*parts):   # parts[0]: the record's key
                return parts[:slot] + (decode(*parts[slot], key=parts[0]),) + parts[slot + 1:]

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
        ds = service_records(manifest, opts, ordered).batch(
            chunk, drop_remainder=drop, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = finish(ds.enumerate().map(lambda b, serialized: (record_keys(
            0, b * chunk + tf.range(tf.size(serialized, tf.int64))), serialized)))
        passes = None
    else:
        ds, clock, passes = epoch_stream(manifest, opts, ordered, chunk, drop, finish)
    if opts.batch_size is None and opts.on_corrupt != "skip" and not opts.service:
        ds = with_cardinality(ds, None if opts.repeat is True else passes)
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
    return delivering(ds.prefetch(tf.data.AUTOTUNE), clock).with_options(options)


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
            window is at least twice the target size (for random crops of images of one
            stored size under 2.8x the target, where few windows are, always at full
            scale: the per-image branch would cost more than it saves).
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
            anchor_backup(resume, *opts.start)
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
