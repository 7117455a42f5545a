"""dataset.json: what a dataset directory holds, written last so its presence means complete."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from . import storage
from .errors import DatasetError
from .schema import Schema

FORMAT_VERSION = 1
MANIFEST_NAME = "dataset.json"
ERRORS_NAME = "errors.csv"
# What a conversion keeps in its directory while it runs (and leaves when interrupted): its
# lock, its run file (id, seed, pid) and a done mark per finished shard.
LOCK_NAME = ".tfrecordkit.lock"
RUN_NAME = ".tfrecordkit.run.json"
DONE_SUFFIX = ".done.json"
DEFAULT_IMAGE_KEY = "image/encoded"
DEFAULT_SIZE_KEYS = ("image/height", "image/width")


@dataclass(frozen=True)
class ShardInfo:
    """One complete shard file: name relative to the manifest, records, bytes, checksum."""

    file: str
    records: int
    bytes: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "records": self.records, "bytes": self.bytes,
                "sha256": self.sha256}


@dataclass(frozen=True)
class Manifest:
    """The parsed dataset.json of a dataset directory (or of one split's subdirectory).

    Attributes:
        directory: where dataset.json lives; shard files are relative to it.
        split: the split this directory holds, or None for a dataset without splits.
        splits: at the top of a split dataset, split name -> record count.
        image: stored image facts: ``format`` (or "mixed"), ``size`` [h, w] when every
            image has it, ``channels`` when every image has it.
        skipped: source rows not written (listed in errors.csv), duplicates included.
        duplicates: rows skipped because an earlier row has the same id.
    """

    directory: str
    schema: Schema
    shards: tuple[ShardInfo, ...]
    records: int
    source_rows: int
    skipped: int
    compression: str = "none"
    split: str | None = None
    splits: dict[str, int] = field(default_factory=dict)
    image: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    duplicates: int = 0

    @property
    def files(self) -> list[str]:
        """Absolute paths (or URLs) of the shard files, in record order."""
        return [storage.join(self.directory, s.file) for s in self.shards]

    @property
    def image_key(self) -> str | None:
        """The feature holding the encoded image: ``image/encoded`` in ours; another
        writer's name (``image``...) or None (no images) in an inferred manifest."""
        return self.image.get("key", DEFAULT_IMAGE_KEY)

    @property
    def size_keys(self) -> tuple[str, str] | None:
        """The int64 features holding each image's height and width, or None."""
        keys = self.image.get("size_keys", DEFAULT_SIZE_KEYS)
        return (keys[0], keys[1]) if keys else None

    @property
    def vocabularies(self) -> dict[str, list]:
        return {f.name: list(f.vocabulary) for f in self.schema.features if f.vocabulary}

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "created_by": f"tfrecordkit {self.version}".strip(),
            "split": self.split,
            "splits": self.splits or None,
            "records": self.records,
            "source_rows": self.source_rows,
            "skipped": self.skipped,
            "duplicate_ids": self.duplicates,
            "compression": self.compression,
            "image": self.image,
            "schema": self.schema.to_json(self._image_features()),
            "shards": [s.to_json() for s in self.shards],
            "options": self.options,
        }


    def _image_features(self) -> dict[str, str] | None:
        """The image features an inferred manifest names (ours: the fixed set)."""
        if "key" not in self.image:
            return None
        keys = {self.image["key"]: "bytes"} if self.image["key"] else {}
        keys.update({k: "int64" for k in self.image.get("size_keys") or ()})
        return keys


def write_manifest(manifest: Manifest) -> str:
    """Writes dataset.json atomically (temporary name, fsync, rename) and returns its path."""
    path = storage.join(manifest.directory, MANIFEST_NAME)
    storage.write_text(path, json.dumps(manifest.to_json(), indent=2, ensure_ascii=False) + "\n")
    return path


def find_manifest(path: str | os.PathLike) -> str | None:
    """The dataset.json for `path` (a directory or the file itself), or None."""
    path = os.fspath(path)
    if storage.basename(path) == MANIFEST_NAME and storage.isfile(path):
        return path
    candidate = storage.join(path, MANIFEST_NAME)
    return candidate if storage.isfile(candidate) else None


def _confine(file: str, directory: str, name: object) -> None:
    """Refuses a shard or split name that leads outside the manifest's directory: absolute,
    through ``..``, or through a symbolic link; reading or indexing it would touch files
    the dataset does not own (/etc/hostname, another user's data)."""
    text = name if isinstance(name, str) else ""
    parts = PurePosixPath(text.replace("\\", "/")).parts
    outside = (not text or "\x00" in text or PurePosixPath(text).is_absolute()
               or PureWindowsPath(text).is_absolute() or PureWindowsPath(text).drive
               or storage.is_remote(text) or ".." in parts)
    if not outside and not storage.is_remote(directory):
        root = os.path.realpath(directory)
        target = os.path.realpath(os.path.join(directory, text))
        outside = os.path.commonpath([root, target]) != root
    if outside:
        raise DatasetError(f"{file} lists {name!r}, which is outside its directory; a "
                           f"{MANIFEST_NAME} may name only files inside its own directory, so "
                           "nothing was read or written: write the dataset again.")


def load_manifest(path: str | os.PathLike, split: str | None = None) -> Manifest:
    """Loads the manifest of a dataset directory, or of one of its splits.

    Example:
        >>> load_manifest("out", split="val").records
        180
    """
    file = find_manifest(path)
    if file is None:
        from .locate import why_not_dataset   # locate imports this module

        raise DatasetError(why_not_dataset(path))
    try:
        with storage.open(file, "r", encoding="utf-8") as f:
            data = json.loads(f.read())
        if data.get("format_version", 0) > FORMAT_VERSION:
            raise DatasetError(f"{file} has format version {data['format_version']}, newer than "
                               f"this tfrecordkit reads ({FORMAT_VERSION}); upgrade tfrecordkit.")
        manifest = Manifest(
            directory=storage.dirname(storage.absolute(file)),
            schema=Schema.from_json(data["schema"]),
            shards=tuple(ShardInfo(**s) for s in data["shards"]),
            records=int(data["records"]), source_rows=int(data["source_rows"]),
            skipped=int(data["skipped"]), compression=data.get("compression", "none"),
            split=data.get("split"), splits=data.get("splits") or {},
            image=data.get("image") or {}, options=data.get("options") or {},
            version=str(data.get("created_by", "")).replace("tfrecordkit", "").strip(),
            duplicates=int(data.get("duplicate_ids", 0)))
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, DatasetError):
            raise
        raise DatasetError(f"{file} is not a valid tfrecordkit manifest ({type(e).__name__}: "
                           f"{e}); write the dataset again.") from None
    for name in [s.file for s in manifest.shards] + list(manifest.splits):
        _confine(file, manifest.directory, name)
    for shard in manifest.files:   # a FIFO would block every reader (TensorFlow's too)
        try:
            storage.require_regular_file(shard, "TFRecord file")
        except OSError as e:
            raise DatasetError(f"{file} lists {shard}, which {e.strerror}; replace it with the "
                               "shard file, or write the dataset again.") from None
    if split is not None:
        if split == manifest.split:
            return manifest
        if split not in manifest.splits:
            have = ", ".join(manifest.splits) or "none"
            raise DatasetError(f"{os.fspath(path)!r} has no split {split!r}; its splits are: {have}.")
        return load_manifest(storage.join(manifest.directory, split), split)
    return manifest
