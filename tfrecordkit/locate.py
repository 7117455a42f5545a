"""The one door to data on disk: any path -> its TFRecord files, their record counts, and
the dataset's manifest, loaded from dataset.json or inferred from the records themselves.

`read`, `predict`, `inspect`, `count`, `stats`, `verify`, `index` and `bench` all find
their files here, through `locate`. A path may be one of our dataset directories (or a
split of one), a TFRecord file, a glob, a URL, or a directory of any writer's TFRecord
files, with or without extensions (TensorFlow's ImageNet scripts write
``train-00000-of-01024``): files are told apart by the framing of their first bytes.
What the records themselves hold (the scan behind `infer` and an inferred manifest) is
worked out in inference.py. Nothing in this module imports TensorFlow except `schema`,
which returns feature specs.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import zlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Sequence

from . import storage
from .errors import DatasetError, OptionError
from .manifest import (DONE_SUFFIX, ERRORS_NAME, LOCK_NAME, MANIFEST_NAME, RUN_NAME, Manifest,
                       ShardInfo, find_manifest, load_manifest, write_manifest)
from .records import (HEADER_SIZE, _detect, _is_plain_header, count_records, iter_records,
                      read_index, write_index)
from .inference import (DEFAULT_SCAN_RECORDS, FeatureInfo, InferredSchema, class_feature,
                        common_directory, decode_record, image_size_of, infer_files,
                        infer_manifest, relative)
from .schema import CLASS, INT, MULTI_LABEL, Schema

log = logging.getLogger(__name__)

_RECORD_SUFFIXES = (".tfrecord", ".tfrecords", ".tfrecord.gz", ".tfrecords.gz", ".tfrec",
                    ".tfrecord.zz", ".tfrecord.zlib")
_SHARD_NAME = re.compile(r"^(?P<prefix>.*)-\d{5}-of-\d{5}$")
_NOT_RECORDS = (MANIFEST_NAME, ERRORS_NAME)
_GLOB_CHARS = re.compile(r"[*?\[]")
_SNIFF_BYTES = 4096


# ----------------------------------------------------------------------------- the one door

@dataclass(frozen=True)
class Location:
    """What a path names: its TFRecord files in record order, and what is known of them.

    Attributes:
        path: the path as given.
        files: the TFRecord files (absolute paths or URLs), in record order.
        compression: "none", "gzip" or "zlib" for every file, or "mixed".
        stored: the manifest loaded from dataset.json, or None for other writers' files.
        incomplete: for a directory holding an interrupted conversion (no dataset.json),
            one sentence saying so; None otherwise.
        splits: for other writers' shards of several splits side by side
            (``train-*``, ``validation-*``), the split names found in the file names.
        counts: records per file (dataset.json, else each .idx, else a framing scan).
        manifest: `stored`, or one inferred from a sample of the records (see `locate`).
    """

    path: str
    files: tuple[str, ...]
    compression: str
    stored: Manifest | None = None
    incomplete: str | None = None
    splits: tuple[str, ...] = ()
    split: str | None = None
    label: tuple[str, ...] | None = field(default=None, repr=False)
    image_key: str | None = field(default=None, repr=False)
    id_key: str | None = field(default=None, repr=False)

    @property
    def inferred(self) -> bool:
        """True when there is no dataset.json and the manifest is inferred."""
        return self.stored is None

    @cached_property
    def _counted(self) -> tuple[tuple[int, ...], str]:
        if self.stored is not None:
            return tuple(s.records for s in self.stored.shards), MANIFEST_NAME
        counts, how = [], set()
        for file in self.files:
            n = _count_from_index(file)
            if n is None:
                n, source = count_records(file), "framing scan"
            else:
                source = ".idx"
            counts.append(n)
            how.add(source)
        return tuple(counts), " and ".join(sorted(how)) or "nothing"

    @property
    def counts(self) -> tuple[int, ...]:
        return self._counted[0]

    @property
    def counted_from(self) -> str:
        """Where the counts come from: "dataset.json", ".idx", "framing scan" or both."""
        return self._counted[1]

    @property
    def records(self) -> int:
        return sum(self.counts)

    @cached_property
    def manifest(self) -> Manifest:
        if self.stored is not None:
            return self.stored
        splits = {s: sum(n for f, n in zip(self.files, self.counts) if split_of(f) == s)
                  for s in self.splits}
        return infer_manifest(self, splits=splits)


def locate(path: str | os.PathLike, split: str | None = None, *,
           label: str | Sequence[str] | None = None, image_key: str | None = None,
           id_key: str | None = None, allow_incomplete: bool = False) -> Location:
    """Resolves any path to its TFRecord files, counts and manifest.

    Args:
        path: a dataset directory (or its dataset.json), a split's subdirectory, a
            TFRecord file, a glob, a URL (gs://, s3://, file://, ram://), or a directory of
            any writer's TFRecord files, extension or not. In a directory, .idx files,
            dataset.json, errors.csv, hidden and non-regular files are passed over, and a
            file without a TFRecord extension is taken when its first bytes are TFRecord
            framing (plain, GZIP or ZLIB).
        split: for a directory: a split of our dataset, a subdirectory, or the files whose
            shard names carry it (``train-00000-of-01024`` is split "train").
        label, image_key, id_key: without dataset.json, which features the inferred
            manifest takes as label(s), image bytes and id (see `infer_manifest`).
        allow_incomplete: return an interrupted conversion's shards (with `incomplete`
            set) instead of raising; `verify` and `inspect` report them.

    Raises:
        DatasetError: one sentence saying what the path is: missing, an empty directory,
            not TFRecord, or an unfinished conversion (only then is `--resume` suggested).

    Example:
        >>> loc = locate("imagenet/", "train", label="image/class/label")
        >>> len(loc.files), loc.records, loc.manifest.schema.labels
        (1024, 1281167, ('image/class/label',))
    """
    path = os.fspath(path)
    labels = None if label is None else ((label,) if isinstance(label, str) else tuple(label))
    hints = dict(label=labels, image_key=image_key, id_key=id_key)
    if storage.isdir(path) or (storage.basename(path) == MANIFEST_NAME and storage.isfile(path)):
        if find_manifest(path):
            stored = load_manifest(path, split)
            return Location(path, tuple(stored.files), stored.compression, stored,
                            split=stored.split, **hints)
        if split is not None and storage.isdir(storage.join(path, split)):
            return locate(storage.join(path, split), None, label=label, image_key=image_key,
                          id_key=id_key, allow_incomplete=allow_incomplete)
        incomplete = _interrupted(path)
        if incomplete and not allow_incomplete:
            raise DatasetError(incomplete)
        found = _list_directory(path)
        if not found:
            if incomplete:
                raise DatasetError(incomplete)
            raise DatasetError(why_not_dataset(path))
        files, splits = _pick_split(path, [f for f, _ in found], split)
        chosen = set(files)
        kinds = [k for f, k in found if f in chosen]
        return Location(path, tuple(files), _one_kind(kinds), None, incomplete,
                        splits, split, **hints)
    if split is not None:
        raise OptionError(f"`split` applies to a directory; {path!r} is not one "
                          f"(received split={split!r}).")
    if storage.isfile(path):
        name = storage.basename(path)
        kind = _kind_of(path, named=_named(name))
        if kind is None:
            raise DatasetError(why_not_dataset(path))
        return Location(path, (storage.absolute(path),), kind, None, **hints)
    if not _GLOB_CHARS.search(path):
        raise DatasetError(why_not_dataset(path))
    found = []
    for file in sorted(storage.glob(path)):
        name = storage.basename(file)
        if name.endswith(".idx") or name in _NOT_RECORDS or not storage.isfile(file):
            continue
        kind = _kind_of(file, named=_named(name))
        if kind is not None:
            found.append((storage.absolute(file), kind))
    if not found:
        raise DatasetError(f"{path!r} matches no TFRecord file; pass a dataset directory, a "
                           "TFRecord file or a glob such as 'data/train-*'.")
    return Location(path, tuple(f for f, _ in found), _one_kind([k for _, k in found]), None,
                    **hints)


def why_not_dataset(path: str | os.PathLike) -> str:
    """One sentence on why `path` is not a readable dataset: missing, empty, not TFRecord,
    an unfinished conversion, or TFRecord files without dataset.json."""
    path = os.fspath(path)
    if _GLOB_CHARS.search(path) and not storage.exists(path):
        if any(storage.isfile(f) for f in storage.glob(path)):
            return (f"{path!r} names files, not a dataset directory with a {MANIFEST_NAME}; "
                    "tfk.read, predict and inspect read TFRecord files as they are.")
        return (f"{path!r} matches no TFRecord file; pass a dataset directory, a TFRecord file "
                "or a glob such as 'data/train-*'.")
    if not storage.exists(path):
        return (f"{path!r} does not exist (no such file or directory); pass a dataset "
                "directory, a TFRecord file or a glob.")
    if storage.isfile(path):
        if _kind_of(path, named=False) is None:
            return (f"{path!r} is not a TFRecord file: its first bytes are not TFRecord framing "
                    "(plain, GZIP or ZLIB).")
        return (f"{path!r} is a TFRecord file with no {MANIFEST_NAME}; tfk.read, predict and "
                "inspect read it as it is, and `tfrecordkit index DIR --manifest` writes one.")
    if not storage.isdir(path):
        return f"{path!r} is neither a regular file nor a directory (a FIFO or device?); it is not read."
    incomplete = _interrupted(path)
    if incomplete:
        return incomplete
    entries = [n for n in storage.listdir(path)]
    if not entries:
        return f"{path!r} is an empty directory: it holds no TFRecord file and no {MANIFEST_NAME}."
    if _list_directory(path):
        return (f"{path!r} holds TFRecord files but no {MANIFEST_NAME} (they were not written by "
                "tfrecordkit convert); tfk.read, predict and inspect read them as they are, and "
                f"`tfrecordkit index {path} --manifest` writes one.")
    shown = sorted(n.rstrip("/") for n in entries)[:3]
    return (f"{path!r} holds no TFRecord file and no {MANIFEST_NAME}: none of its {len(entries)} "
            f"entries ({', '.join(shown)}{', ...' if len(entries) > 3 else ''}) starts with "
            "TFRecord framing.")


def _interrupted(directory: str) -> str | None:
    """A sentence when `directory` (no dataset.json) holds a conversion that did not finish."""
    try:
        names = set(storage.listdir(directory))
    except OSError:
        return None
    names = {n.rstrip("/") for n in names}
    marker = next((n for n in (RUN_NAME, LOCK_NAME) if n in names), None)
    marker = marker or next((n for n in sorted(names) if n.startswith(".")
                             and (n.endswith(DONE_SUFFIX) or ".tmp-" in n)), None)
    if marker is None:
        parent = storage.dirname(storage.absolute(directory).rstrip("/"))
        if parent and storage.isfile(storage.join(parent, RUN_NAME)) \
                and not find_manifest(parent):
            marker = f"../{RUN_NAME}"
    if marker is None:
        return None
    return (f"{directory!r} holds an unfinished tfrecordkit conversion ({marker} is there, "
            f"{MANIFEST_NAME} is not): it may still be running, or was interrupted; finish it "
            "by running the same convert command with --resume, or convert again.")


def _list_directory(directory: str) -> list[tuple[str, str]]:
    """(file, compression) of every TFRecord file below `directory`, sorted by path."""
    found = []
    for top, subdirs, names in storage.walk(directory):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in names:
            if name.startswith(".") or name.endswith(".idx") or name in _NOT_RECORDS:
                continue
            file = storage.join(top, name)
            # FIFOs, sockets, devices: never opened (object stores hold none; asking costs requests)
            if not storage.is_remote(file) and not storage.isfile(file):
                continue
            kind = _kind_of(file, named=_named(name))
            if kind is not None:
                found.append((storage.absolute(file), kind))
    return sorted(found)


def _named(name: str) -> bool:
    """A TFRecord extension or a shard name (``train-00000-of-01024``): taken as TFRecord
    even when empty or damaged, so `verify` reports it rather than passing it over."""
    return name.endswith(_RECORD_SUFFIXES) or bool(_SHARD_NAME.match(name))


def _kind_of(file: str, *, named: bool) -> str | None:
    """The compression of a TFRecord file ("none", "gzip", "zlib"), or None when its first
    bytes are not TFRecord framing. A `named` file (a TFRecord extension, a shard name, or
    named on its own) counts even when empty or damaged, so `verify` still sees it."""
    try:
        with storage.open(file, "rb") as f:
            head = f.read(_SNIFF_BYTES)
    except OSError:
        return "none" if named else None
    if not head:
        return "none" if named else None
    if _is_plain_header(head):
        return "none"
    kind = _detect(head[:HEADER_SIZE])
    if kind is not None:
        try:
            d = zlib.decompressobj(16 + zlib.MAX_WBITS if kind == "gzip" else zlib.MAX_WBITS)
            first = d.decompress(head, HEADER_SIZE)
        except zlib.error:
            first = b""
        if _is_plain_header(first) or (not first and d.eof):
            return kind
    return ("gzip" if head[:2] == b"\x1f\x8b" else "none") if named else None


def _one_kind(kinds: Sequence[str]) -> str:
    distinct = set(kinds)
    return distinct.pop() if len(distinct) == 1 else "mixed"


def split_of(file: str) -> str | None:
    """The split a shard's name carries: ``train-00000-of-01024`` -> "train",
    ``mnist-test.tfrecord-00000-of-00001`` -> "test"; None for other names."""
    name = storage.basename(file)
    for suffix in (".gz", ".zz", ".zlib"):
        name = name.removesuffix(suffix)
    for suffix in (".tfrecords", ".tfrecord", ".tfrec"):
        name = name.removesuffix(suffix)
    match = _SHARD_NAME.match(name)
    if not match:
        return None
    prefix = match["prefix"]
    for suffix in (".tfrecords", ".tfrecord", ".tfrec"):
        prefix = prefix.removesuffix(suffix)
    return prefix.rsplit("-", 1)[-1] or None


def _pick_split(path: str, files: list[str], split: str | None) -> tuple[list[str], tuple[str, ...]]:
    names = [split_of(f) for f in files]
    splits = tuple(sorted(set(names))) if None not in names else ()
    if split is None:
        return files, splits if len(splits) > 1 else ()
    chosen = [f for f, n in zip(files, names) if n == split]
    if not chosen:
        have = ", ".join(s for s in splits) or "none (no subdirectory or shard name carries one)"
        raise DatasetError(f"{path!r} has no split {split!r}; its splits are: {have}.")
    return chosen, ()


# ----------------------------------------------------------------------------- counts

def _count_from_index(file: str) -> int | None:
    """Records listed in a file's .idx, when the index is complete and not stale."""
    try:
        if storage.getmtime(file + ".idx") < storage.getmtime(file):
            return None
    except OSError:
        return None
    entries = read_index(file)
    if entries is None:
        return None
    if _kind_of(file, named=True) == "none":   # offsets of a compressed file are not its bytes
        last_end = sum(entries[-1]) if entries else 0
        if last_end != storage.getsize(file):   # stale or foreign index: scan instead
            return None
    return len(entries)


def expand_paths(path: str | os.PathLike) -> list[str]:
    """The TFRecord files `path` names (see `locate`), in record order.

    Example:
        >>> expand_paths("out/train")[:1]
        ['/data/out/train/train-00000-of-00004.tfrecord']
    """
    return list(locate(path, allow_incomplete=True).files)


def count(path: str | os.PathLike, split: str | None = None) -> int:
    """Exact number of records, without parsing any: from dataset.json, else each file's
    .idx, else a scan of the record framing.

    Example:
        >>> tfk.count("out/train")
        1438
    """
    return locate(path, split).records


def infer(path: str | os.PathLike, *, limit: int | None = DEFAULT_SCAN_RECORDS) -> InferredSchema:
    """Infers the schema of any TFRecord file(s) of Examples or SequenceExamples.

    Decodes up to `limit` records (at least `MIN_SCAN_PER_FILE` of every file; None for
    all) and reports per feature the dtype, list lengths, how often it is present or
    empty, numeric ranges, and image formats found by their magic bytes.

    Example:
        >>> info = tfk.infer("shards/*.tfrecord.gz")
        >>> info.features["image/encoded"].image
        Counter({'jpeg': 1000})
    """
    return infer_files(locate(path, allow_incomplete=True).files, limit)


def schema(path: str | os.PathLike, *, limit: int | None = DEFAULT_SCAN_RECORDS):
    """A feature spec for `tf.io.parse_example`, inferred from the records themselves.

    Features present in every record with the same number of values become
    `FixedLenFeature`, the rest `VarLenFeature`. For SequenceExamples it returns
    ``(context_spec, sequence_spec)`` for `tf.io.parse_sequence_example`.

    Example:
        >>> spec = tfk.schema("foreign.tfrecord")
        >>> ds = tf.data.TFRecordDataset("foreign.tfrecord").batch(32).map(
        ...     lambda x: tf.io.parse_example(x, spec))
    """
    import tensorflow as tf

    inferred = infer(path, limit=limit)
    dtypes = {"int64": tf.int64, "float": tf.float32, "bytes": tf.string}

    def spec_of(info: FeatureInfo):
        dtype = dtypes.get(info.dtype, tf.string)
        fixed = (info.present == inferred.scanned and info.min_len == info.max_len
                 and info.empty == 0 and len(info.dtypes) == 1)
        if fixed:
            return tf.io.FixedLenFeature([] if info.min_len == 1 else [info.min_len], dtype)
        return tf.io.VarLenFeature(dtype)

    context = {name: spec_of(info) for name, info in inferred.features.items()}
    if inferred.kind == "Example":
        return context
    return context, {name: tf.io.VarLenFeature(dtypes.get(info.dtype, tf.string))
                     for name, info in inferred.sequence_features.items()}


# ----------------------------------------------------------------------------- index

def index(path: str | os.PathLike, *, force: bool = False) -> list[str]:
    """Writes a .idx file beside each TFRecord file `path` names that has none (every one
    with `force`); returns the paths written.

    Example:
        >>> index("imagenet/train-*")[:1]
        ['/data/imagenet/train-00000-of-01024.idx']
    """
    return _write_indexes(locate(path, allow_incomplete=True).files, force)


def _write_indexes(files: Sequence[str], force: bool) -> list[str]:
    written = []
    for file in files:
        if not force and storage.exists(file + ".idx") and _count_from_index(file) is not None:
            continue
        written.append(write_index(file))
    return written


def index_manifest(path: str | os.PathLike, *, label: str | Sequence[str] | None = None,
                   image_key: str | None = None, id_key: str | None = None,
                   force: bool = False) -> Manifest:
    """Writes .idx files and a dataset.json for other writers' TFRecord files, after which
    they read exactly as ours do (``tfrecordkit index PATH --manifest``).

    Every record is read once: the counts, each file's bytes and sha256, and each int64
    label's vocabulary 0..max over all records. The image, label(s) and id are chosen as in
    `infer_manifest` and recorded. A directory that already has a dataset.json is refused
    unless `force`.

    Example:
        >>> m = index_manifest("imagenet/train", label="image/class/label")
        >>> len(m.vocabularies["image/class/label"])   # 0..1000: ImageNet's classes are 1-based
        1001
    """
    from . import __version__

    path = os.fspath(path)
    loc = _foreign(path, label, image_key, id_key)
    if loc.splits:
        raise DatasetError(
            f"{path!r} holds the shards of several splits ({', '.join(loc.splits)}) and one "
            f"{MANIFEST_NAME} describes one; move each split into its own subdirectory "
            f"(e.g. {storage.join(path, loc.splits[0])}/) and index each.")
    files = list(loc.files)
    directory = common_directory(files)
    others = [f for f, _ in _list_directory(directory) if f not in set(files)]
    if others:
        raise DatasetError(
            f"A {MANIFEST_NAME} for {path!r} would describe {directory!r}, which holds other "
            f"TFRecord files too ({storage.basename(others[0])}); move these files into a "
            "directory of their own and index that.")
    existing = storage.join(directory, MANIFEST_NAME)
    if storage.isfile(existing) and not force:
        raise DatasetError(f"{directory!r} already has a {MANIFEST_NAME}; pass --force (force=True) "
                           "to replace it with one inferred from the records.")
    _write_indexes(files, force)
    sample = loc.manifest       # roles, from a sample; the numbers below come from every record
    labels = list(sample.schema.labels)
    image = dict(sample.image)
    key = image.get("key")
    highs = {name: -1 for name in labels}
    lows: dict[str, Any] = {}
    sizes: set = set()
    shards = []
    for file, n in zip(files, loc.counts):
        digest, nbytes = hashlib.sha256(), 0
        with storage.open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
                nbytes += len(block)
        for number, record in enumerate(iter_records(file)):
            context, _ = decode_record(file, number, record.data)
            for name in labels:
                values = context.get(name, (None, []))[1]
                if values:
                    highs[name] = max(highs[name], max(values))
                    lows[name] = min(lows.get(name, values[0]), min(values))
            if key and len(sizes) < 2:   # from the images: a stored height may be wrong
                sizes |= image_size_of(context.get(key, (None, [b""]))[1][0])
        shards.append(ShardInfo(relative(file, directory), n, nbytes, digest.hexdigest()))
    feats = []
    for f in sample.schema.features:
        if f.name in highs and f.kind in (CLASS, MULTI_LABEL, INT):
            f = class_feature(f.name, lows.get(f.name), highs[f.name], multi=f.kind == MULTI_LABEL)
        feats.append(f)
    if key:
        image["size"] = list(sizes.pop()) if len(sizes) == 1 else None
    schema_ = Schema(tuple(feats), sample.schema.id_column, sample.schema.image_column,
                     sample.schema.labels)
    manifest = Manifest(
        directory=directory, schema=schema_, shards=tuple(shards), records=sum(loc.counts),
        source_rows=sum(loc.counts), skipped=0, compression=loc.compression, image=image,
        options={"indexed_by": "tfrecordkit index --manifest", "label": labels,
                 "image_key": key, "id_key": sample.schema.id_column or None},
        version=__version__)
    write_manifest(manifest)
    return load_manifest(directory)


def _foreign(path: str, label, image_key, id_key) -> Location:
    """`locate` that infers even where a dataset.json exists (to replace it)."""
    loc = locate(path, label=label, image_key=image_key, id_key=id_key)
    if loc.stored is None:
        return loc
    return Location(loc.path, loc.files, loc.compression, None, None, (), None,
                    loc.label, image_key, id_key)
