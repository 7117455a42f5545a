"""Schema inference from the records themselves: what every feature of any TFRecord file
of Examples or SequenceExamples holds (a scan of a sample), and the manifest other writers'
image records imply (which feature is the image, its size, the id, the labels).

`locate.py` resolves paths and calls these; callers go through it (`locate`, `infer`,
`schema`), which re-exports `FeatureInfo` and `InferredSchema`.
"""
from __future__ import annotations

import logging
import os
import posixpath
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from . import storage
from .errors import DatasetError, OptionError
from .example import decode_sequence_example
from .images import sniff_format
from .manifest import Manifest, ShardInfo
from .records import iter_records
from .schema import BYTES, CLASS, FLOAT, ID, INT, MULTI_LABEL, TARGET, Feature, Schema

if TYPE_CHECKING:
    from .locate import Location

log = logging.getLogger(__name__)

DEFAULT_SCAN_RECORDS = 10_000   # records decoded by `infer` (spread over the files)
MIN_SCAN_PER_FILE = 100         # every file is sampled, so type drift between files shows
MANIFEST_SAMPLE_RECORDS = 2048  # records decoded to infer a manifest (the first of each file)
MAX_CLASSES = 1 << 16           # an int label with a larger maximum gets no vocabulary

# Names a label, id or image goes by in other writers' records, in order of preference.
LABEL_KEYS = ("image/class/label", "label")
ID_KEYS = ("image/filename", "filename", "file_name", "image/source_id", "image/id",
           "image_id", "id", "key")
IMAGE_KEYS = ("image/encoded", "image", "image_raw", "encoded", "jpeg", "png")
SIZE_KEYS = (("image/height", "image/width"), ("height", "width"))


# ----------------------------------------------------------------------------- what the records hold

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
    low: float | None = None         # smallest and largest number (int64 and float features)
    high: float | None = None

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
        elif kind in ("int64", "float") and values and not self.sequence:
            low, high = min(values), max(values)
            self.low = low if self.low is None else min(self.low, low)
            self.high = high if self.high is None else max(self.high, high)


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


def scan(files: Sequence[str], limit: int | None, min_per_file: int = MIN_SCAN_PER_FILE
         ) -> Iterator[tuple[str, int, bytes]]:
    per_file = None if limit is None else max(min_per_file, -(-limit // max(1, len(files))))
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


def infer_files(files: Sequence[str], limit: int | None,
                min_per_file: int = MIN_SCAN_PER_FILE) -> InferredSchema:
    features: dict[str, FeatureInfo] = {}
    sequences: dict[str, FeatureInfo] = {}
    scanned = 0
    for file, number, data in scan(files, limit, min_per_file):
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


# ----------------------------------------------------------------------------- inferred manifests

@dataclass(frozen=True)
class _Roles:
    """Which features of other writers' records are the image, its size, the id, the labels."""

    image_key: str | None
    size_keys: tuple[str, str] | None
    id_key: str | None
    labels: tuple[str, ...]
    guessed_labels: bool


def _numeric(inferred: InferredSchema) -> list[str]:
    return [n for n, f in inferred.features.items() if f.dtype in ("int64", "float")]


def _roles(inferred: InferredSchema, where: str, label: tuple[str, ...] | None,
           image_key: str | None, id_key: str | None) -> _Roles:
    feats = inferred.features
    full = lambda f: f.present == inferred.scanned and f.empty == 0  # noqa: E731
    scalar = lambda f: full(f) and f.min_len == f.max_len == 1  # noqa: E731
    if image_key is not None:
        if image_key not in feats or feats[image_key].dtype != "bytes":
            have = ", ".join(n for n, f in feats.items() if f.dtype == "bytes") or "none"
            raise OptionError(f"`image_key` names {image_key!r}, which is not a bytes feature of "
                              f"{where}; its bytes features are: {have}.")
    else:
        holders = [f for f in feats.values() if f.dtype == "bytes" and f.image]
        preferred = [f for k in IMAGE_KEYS for f in holders if f.name == k]
        best = preferred or sorted(holders, key=lambda f: -sum(f.image.values()))
        image_key = best[0].name if best else None
    size_keys = next((keys for keys in SIZE_KEYS
                      if all(k in feats and feats[k].dtype == "int64" and scalar(feats[k])
                             for k in keys)), None)
    if id_key is not None:
        if id_key not in feats or feats[id_key].dtype != "bytes":
            have = ", ".join(n for n, f in feats.items() if f.dtype == "bytes" and n != image_key)
            raise OptionError(f"`id_key` names {id_key!r}, which is not a bytes feature of {where}; "
                              f"its bytes features are: {have or 'none'}.")
    else:
        texts = [n for n, f in feats.items() if f.dtype == "bytes" and scalar(f) and not f.image]
        named = [k for k in ID_KEYS if k in texts]
        named += [n for n in texts if n.lower().endswith(("filename", "file_name", "_id", "/id"))]
        id_key = named[0] if named else None
    guessed = label is None
    if label is None:
        label = tuple(k for k in LABEL_KEYS if k in feats and feats[k].dtype in ("int64", "float")
                      and scalar(feats[k]))[:1]
    for name in label:
        f = feats.get(name)
        if f is None or f.dtype not in ("int64", "float"):
            raise OptionError(f"`label` names {name!r}, which is not an int64 or float feature of "
                              f"{where}; those are: {', '.join(_numeric(inferred)) or 'none'}.")
        if not full(f):
            raise OptionError(f"`label` names {name!r}, which is missing or empty in "
                              f"{inferred.scanned - f.present + f.empty} of the {inferred.scanned} "
                              f"records sampled from {where}; a label needs a value in every record.")
    return _Roles(image_key, size_keys, id_key, tuple(label), guessed and bool(label))


def _label_feature(info: FeatureInfo) -> Feature:
    """An int64 label keeps its numbers, with the vocabulary 0..max (so `Dense(max + 1)`
    lines up, whatever the first class is: ImageNet's are 1..1000); several values per
    record make a multi-label. A float label is a numeric target."""
    fixed = info.min_len == info.max_len
    if info.dtype == "float":
        return Feature(info.name, TARGET, "float", () if fixed and info.min_len == 1 else
                       ((info.min_len,) if fixed else (None,)))
    return class_feature(info.name, info.low, info.high, multi=not (fixed and info.min_len == 1))


def _sampled_label(info: FeatureInfo, everything: bool, where: str) -> Feature:
    """`_label_feature` when the sample held every record; else an int64 label's classes
    are unknown (the sample's largest value need not be the largest): plain integers."""
    if everything or info.dtype == "float":
        return _label_feature(info)
    if info.min_len == info.max_len == 1:
        log.info("%s: the classes of label %s are known after reading every record; "
                 "`tfrecordkit index PATH --manifest` does, and records them", where, info.name)
        return Feature(info.name, INT, "int64")
    raise OptionError(f"`label` {info.name!r} holds several values per record (a multi-label), "
                      f"whose classes are known only after reading every record of {where}; run "
                      f"`tfrecordkit index PATH --manifest --label {info.name}` first.")


def class_feature(name: str, low: int | None, high: int | None, *, multi: bool) -> Feature:
    high = -1 if high is None else int(high)
    if high >= MAX_CLASSES:
        log.info("label %s reaches %d: kept as plain integers, without a vocabulary", name, high)
        return Feature(name, INT, "int64")
    if low is not None and low < 0:
        log.warning("label %s holds negative values (down to %d); its vocabulary is 0..%d, so "
                    "one-hot and multi-hot encodings leave them out", name, low, high)
    vocabulary = tuple(range(high + 1))
    if multi:
        return Feature(name, MULTI_LABEL, "int64", (None,), vocabulary)
    return Feature(name, CLASS, "int64", (), vocabulary)


def _other_feature(info: FeatureInfo) -> Feature:
    shape = () if info.min_len == info.max_len == 1 else (None,)
    kind = {"int64": INT, "float": FLOAT}.get(info.dtype, BYTES)
    return Feature(info.name, kind, info.dtype or "bytes", shape)


def common_directory(files: Sequence[str]) -> str:
    parents = [storage.dirname(f) for f in files]
    if storage.is_remote(parents[0]):
        common = posixpath.commonprefix(parents)
        return common if common in parents else common.rsplit("/", 1)[0]
    return os.path.commonpath(parents)


def relative(file: str, directory: str) -> str:
    if storage.is_remote(file):
        return file[len(directory):].lstrip("/")
    return os.path.relpath(file, directory)


def _image_sizes(files: Sequence[str], key: str, limit: int) -> set[tuple[int, int]]:
    """(height, width) of the images under `key` in the first records, from their headers;
    empty when one cannot be read."""
    sizes: set[tuple[int, int]] = set()
    for file, number, data in scan(files, limit, 1):
        context, _ = decode_record(file, number, data)
        values = context.get(key, (None, []))[1]
        size = image_size_of(values[0]) if values else {(0, 0)}
        if size == {(0, 0)}:
            return set()
        sizes |= size
        if len(sizes) > 1:
            break
    return sizes


def _image_facts(roles: _Roles, inferred: InferredSchema, sizes: set | None) -> dict[str, Any]:
    if roles.image_key is None:
        return {"key": None}
    formats = inferred.features[roles.image_key].image
    size = None
    if sizes is not None and len(sizes) == 1:
        size = list(sizes.pop())
    return {"key": roles.image_key, "size_keys": list(roles.size_keys) if roles.size_keys else None,
            "format": next(iter(formats)) if len(formats) == 1 else ("mixed" if formats else None),
            "size": size, "channels": None}


def infer_manifest(loc: Location, *, limit: int | None = None,
                   splits: dict[str, int] | None = None) -> Manifest:
    """A manifest for other writers' TFRecord files, inferred from a sample of records.

    The first records of every file (about `limit` in all) are decoded. The image is the
    bytes feature holding images by their magic bytes (`image/encoded` or `image` when
    several do), or `image_key`; when the sample holds every record, the images' one size
    (if they share one) is read from their headers, not from `image/height` and
    `image/width`, which a writer can get wrong. Labels are the features
    named by `label` (any int64 or float feature; default `image/class/label` or `label`
    when present): an int64 label keeps its numbers, and when the sample holds every record
    (at most `limit`), gets the classes 0..max; beyond that its classes are unknown (plain
    integers: int labels, no one-hot) until `tfrecordkit index --manifest` reads every
    record and records them. A float label is a numeric target. The id is `id_key`,
    else a filename-like bytes feature (`image/filename`, `filename`, `id`, ...), else the
    record number. Counts come from `loc` (.idx files or a framing scan), so the reader
    knows the cardinality; `splits` (records per split) from its shard names.
    """
    files = loc.files
    where = loc.path
    limit = MANIFEST_SAMPLE_RECORDS if limit is None else limit
    inferred = infer_files(files, limit, min_per_file=1)
    roles = _roles(inferred, where, loc.label, loc.image_key, loc.id_key)
    counts = loc.counts
    total = sum(counts)
    everything = inferred.scanned >= total
    sizes = None
    if roles.image_key and everything:   # from the images: a stored height may be wrong
        sizes = _image_sizes(files, roles.image_key, limit)
    feats = []
    if roles.id_key:
        feats.append(Feature(roles.id_key, ID, "bytes"))
    feats += [_sampled_label(inferred.features[n], everything, where) for n in roles.labels]
    taken = {roles.image_key, roles.id_key, *roles.labels, *(roles.size_keys or ())}
    feats += [_other_feature(f) for n, f in inferred.features.items() if n not in taken]
    directory = common_directory(files)
    sizes_on_disk = [storage.getsize(f) for f in files]
    shards = tuple(ShardInfo(relative(f, directory), n, b, "")
                   for f, n, b in zip(files, counts, sizes_on_disk))
    if roles.guessed_labels:
        log.debug("%s: labels from %s (pass label= to choose others)", where, ", ".join(roles.labels))
    return Manifest(
        directory=directory,
        schema=Schema(tuple(feats), roles.id_key or "", roles.image_key or "", roles.labels),
        shards=shards, records=total, source_rows=total, skipped=0,
        compression=loc.compression, split=loc.split, splits=splits or {},
        image=_image_facts(roles, inferred, sizes),
        options={"inferred_from_records": inferred.scanned}, version="")


def image_size_of(data: bytes) -> set[tuple[int, int]]:
    """{(height, width)} of encoded image bytes, from the header; {(0, 0)} when unreadable."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return {(image.height, image.width)}
    except Exception:
        return {(0, 0)}
