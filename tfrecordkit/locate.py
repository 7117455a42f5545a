"""The one door to data on disk: any path -> its TFRecord files, their record counts, and
the dataset's manifest (loaded from dataset.json) or a schema inferred from the records.

`verify`, `inspect`, `index`, `read` and `predict` all find their files here. Nothing in
this module imports TensorFlow except `schema`, which returns TensorFlow feature specs.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator

from . import storage
from .errors import DatasetError
from .example import decode_sequence_example
from .images import sniff_format
from .manifest import Manifest, find_manifest, load_manifest
from .records import count_records, detect_compression, iter_records

DEFAULT_SCAN_RECORDS = 10_000   # records decoded to infer a schema (spread over the files)
MIN_SCAN_PER_FILE = 100         # every file is sampled, so type drift between files shows

_RECORD_SUFFIXES = (".tfrecord", ".tfrecords", ".tfrecord.gz", ".tfrecords.gz", ".tfrec")


def expand_paths(path: str | os.PathLike) -> list[str]:
    """TFRecord files named by `path`: a file, a glob, or a directory (its dataset.json's
    shards, else every ``*.tfrecord*`` file below it).

    Example:
        >>> expand_paths("out/train")[:1]
        ['out/train/train-00000-of-00004.tfrecord']
    """
    path = os.fspath(path)
    if storage.isdir(path):
        manifest = find_manifest(path)
        if manifest:
            return load_manifest(path).files
        found = [storage.join(d, f) for d, _, files in storage.walk(path) for f in files
                 if f.endswith(_RECORD_SUFFIXES) or ".tfrecord" in f and not f.endswith(".idx")]
        files = sorted(f for f in found if not storage.basename(f).startswith(".")
                       and (storage.is_remote(f) or storage.isfile(f)))   # no FIFO: it hangs
    elif storage.isfile(path):
        files = [path]
    else:
        files = sorted(f for f in storage.glob(path)
                       if storage.isfile(f) and not f.endswith(".idx"))
    if not files:
        raise DatasetError(f"{path!r} names no TFRecord file; pass a file, a glob such as "
                           "'data/*.tfrecord', or a directory that holds them.")
    return files


# ----------------------------------------------------------------------------- files and counts

def files_and_manifest(path: str | os.PathLike) -> tuple[list[str], Manifest | None]:
    """The files `path` names and, for a dataset directory, its manifest, loaded once."""
    if storage.isdir(os.fspath(path)) and find_manifest(path):
        manifest = load_manifest(path)
        return manifest.files, manifest
    return expand_paths(path), None


def _count_from_index(file: str) -> int | None:
    """Records listed in a file's .idx, when the index is complete and not stale."""
    idx = file + ".idx"
    try:
        if storage.getmtime(idx) < storage.getmtime(file):
            return None
        with storage.open(idx, "rb") as f:
            lines = f.read().split(b"\n")
    except OSError:
        return None
    entries = [line.split() for line in lines if line.strip()]
    if detect_compression(file) is None:
        try:
            last_end = int(entries[-1][0]) + int(entries[-1][1]) if entries else 0
        except (ValueError, IndexError):
            return None
        if last_end != storage.getsize(file):   # stale or foreign index: scan instead
            return None
    return len(entries)


def count(path: str | os.PathLike) -> int:
    """Exact number of records, without parsing any: from dataset.json, else each file's
    .idx, else a scan of the record framing.

    Example:
        >>> tfk.count("out/train")
        1438
    """
    return count_detail(*files_and_manifest(path))[0]


def count_detail(files: list[str], manifest: Manifest | None) -> tuple[int, list[int], str]:
    if manifest is not None:
        return manifest.records, [s.records for s in manifest.shards], "dataset.json"
    counts, how = [], set()
    for file in files:
        n = _count_from_index(file)
        if n is None:
            n, source = count_records(file), "framing scan"
        else:
            source = ".idx"
        counts.append(n)
        how.add(source)
    return sum(counts), counts, " and ".join(sorted(how))


# ----------------------------------------------------------------------------- schema inference

@dataclass
class FeatureInfo:
    """What the scanned records hold under one key."""

    name: str
    sequence: bool = False
    present: int = 0                 # records where the key exists
    empty: int = 0                   # ... with no value in it
    dtypes: Counter = field(default_factory=Counter)
    files_by_dtype: dict = field(default_factory=dict)
    min_len: int | None = None
    max_len: int | None = None
    image: Counter = field(default_factory=Counter)   # image formats found by magic bytes

    @property
    def dtype(self) -> str | None:
        return self.dtypes.most_common(1)[0][0] if self.dtypes else None

    def add(self, kind: str | None, values: list, file: str) -> None:
        self.present += 1
        n = len(values)
        if n == 0:
            self.empty += 1
        if kind is not None:
            self.dtypes[kind] += 1
            self.files_by_dtype.setdefault(kind, set()).add(file)
        self.min_len = n if self.min_len is None else min(self.min_len, n)
        self.max_len = n if self.max_len is None else max(self.max_len, n)
        if kind == "bytes" and values:
            fmt = sniff_format(values[0][:16])
            if fmt:
                self.image[fmt] += 1


@dataclass
class InferredSchema:
    """A schema read off the records themselves.

    Attributes:
        kind: "Example" or "SequenceExample".
        scanned: how many records were decoded to infer it.
        features: context (or Example) features by name.
        sequence_features: a SequenceExample's feature lists by name; lengths are steps.
    """

    kind: str
    scanned: int
    features: dict[str, FeatureInfo]
    sequence_features: dict[str, FeatureInfo]

    def conflicts(self) -> list[str]:
        """One sentence per feature whose type differs between records or files."""
        out = []
        for info in [*self.features.values(), *self.sequence_features.values()]:
            if len(info.dtypes) > 1:
                parts = "; ".join(f"{kind} in {n} records ({', '.join(sorted(os.path.basename(f) for f in info.files_by_dtype[kind])[:3])})"
                                  for kind, n in info.dtypes.most_common())
                out.append(f"feature `{info.name}` has differing types: {parts}")
        return out


def _scan(files: list[str], limit: int | None) -> Iterator[tuple[str, int, bytes]]:
    per_file = None if limit is None else max(MIN_SCAN_PER_FILE, limit // max(1, len(files)))
    for file in files:
        for i, record in enumerate(iter_records(file)):
            if per_file is not None and i >= per_file:
                break
            yield file, i, record.data


def decode_record(file: str, number: int, data: bytes):
    try:
        return decode_sequence_example(data)
    except ValueError as e:
        raise DatasetError(
            f"{file}: record {number} is not a tf.train.Example or SequenceExample ({e}); the file "
            "holds other records (a TensorBoard event file, say), which tfrecordkit cannot show.") from None


def infer(path: str | os.PathLike, *, limit: int | None = DEFAULT_SCAN_RECORDS) -> InferredSchema:
    """Infers the schema of any TFRecord file(s) of Examples or SequenceExamples.

    Decodes up to `limit` records (at least `MIN_SCAN_PER_FILE` of every file; None for
    all) and reports per feature the dtype, list lengths, how often it is present or
    empty, and image formats found by their magic bytes.

    Example:
        >>> info = tfk.infer("shards/*.tfrecord.gz")
        >>> info.features["image/encoded"].image
        Counter({'jpeg': 1000})
    """
    return infer_files(expand_paths(path), limit)


def infer_files(files: list[str], limit: int | None) -> InferredSchema:
    features: dict[str, FeatureInfo] = {}
    sequences: dict[str, FeatureInfo] = {}
    scanned = 0
    for file, number, data in _scan(files, limit):
        context, lists = decode_record(file, number, data)
        scanned += 1
        for name, (kind, values) in context.items():
            features.setdefault(name, FeatureInfo(name)).add(kind, values, file)
        for name, steps in lists.items():
            info = sequences.setdefault(name, FeatureInfo(name, sequence=True))
            kinds = {k for k, _ in steps if k is not None}
            kind = kinds.pop() if len(kinds) == 1 else (None if not kinds else "mixed")
            info.add(kind, [v for _, v in steps], file)
    kind = "SequenceExample" if sequences else "Example"
    return InferredSchema(kind, scanned, dict(sorted(features.items())), dict(sorted(sequences.items())))


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
