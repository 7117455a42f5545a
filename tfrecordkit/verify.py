"""Integrity checks of TFRecord files: both CRCs of every record, optionally every image."""
from __future__ import annotations

import glob
import gzip
import io
import os
import zlib
from dataclasses import dataclass, field
from typing import Any, Iterator

from .errors import DatasetError
from .manifest import find_manifest, load_manifest
from .records import (FOOTER_SIZE, HEADER_SIZE, _HEADER, _U32, _read_exact, detect_compression,
                      masked_crc32c, open_stream)

_RECORD_SUFFIXES = (".tfrecord", ".tfrecords", ".tfrecord.gz", ".tfrecords.gz", ".tfrec")


def expand_paths(path: str | os.PathLike) -> list[str]:
    """TFRecord files named by `path`: a file, a glob, or a directory (its dataset.json's
    shards, else every ``*.tfrecord*`` file below it).

    Example:
        >>> expand_paths("out/train")[:1]
        ['out/train/train-00000-of-00004.tfrecord']
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        manifest = find_manifest(path)
        if manifest:
            return load_manifest(path).files
        found = [os.path.join(d, f) for d, _, files in os.walk(path) for f in files
                 if f.endswith(_RECORD_SUFFIXES) or ".tfrecord" in f and not f.endswith(".idx")]
        files = sorted(f for f in found if not os.path.basename(f).startswith("."))
    elif os.path.isfile(path):
        files = [path]
    else:
        files = sorted(f for f in glob.glob(path) if os.path.isfile(f) and not f.endswith(".idx"))
    if not files:
        raise DatasetError(f"{path!r} names no TFRecord file; pass a file, a glob such as "
                           "'data/*.tfrecord', or a directory that holds them.")
    return files


@dataclass
class VerifyReport:
    """What `verify` found: records that passed, and where each corrupt one is."""

    files: list[str] = field(default_factory=list)
    records_ok: int = 0
    corrupt: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.corrupt

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "files": self.files, "records_ok": self.records_ok,
                "corrupt": self.corrupt}

    def summary(self) -> str:
        lines = [f"{c['file']}: record {c['record']} at byte offset {c['offset']}: {c['reason']}"
                 for c in self.corrupt]
        state = "clean" if self.ok else f"{len(self.corrupt)} corrupt"
        lines.append(f"{self.records_ok} records ok in {len(self.files)} files; {state}")
        return "\n".join(lines)


def _scan_file(file: str) -> Iterator[tuple[int, int, bytes | None, str | None]]:
    """(record, offset, data, problem) per record; goes on past a bad data CRC, and stops
    only where a damaged length makes the rest of the file unreadable."""
    record, offset = 0, 0
    try:
        with open_stream(file, detect_compression(file)) as stream:
            while True:
                header = _read_exact(stream.read, HEADER_SIZE)
                if not header:
                    return
                if len(header) < HEADER_SIZE:
                    yield record, offset, None, "file ends inside the record header"
                    return
                length, stored = _HEADER.unpack(header)
                if masked_crc32c(header[:8]) != stored:
                    yield record, offset, None, "length CRC mismatch; the rest of the file is unreadable"
                    return
                data = _read_exact(stream.read, length)
                footer = _read_exact(stream.read, FOOTER_SIZE)
                if len(data) < length or len(footer) < FOOTER_SIZE:
                    yield record, offset, None, "file ends inside the record"
                    return
                if masked_crc32c(data) != _U32.unpack(footer)[0]:
                    yield record, offset, None, "data CRC mismatch"
                else:
                    yield record, offset, data, None
                record += 1
                offset += length + HEADER_SIZE + FOOTER_SIZE
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as e:
        yield record, offset, None, f"compressed stream is damaged ({e})"


def _image_problem(data: bytes) -> str | None:
    from PIL import Image

    from .example import decode_example

    try:
        features = decode_example(data)
    except ValueError as e:
        return str(e)
    encoded = features.get("image/encoded")
    if not encoded or not encoded[1]:
        return None
    if features.get("image/format", (None, [b""]))[1][:1] == [b"raw"]:
        height, width, channels = (features.get(k, (None, [0]))[1][0] for k in
                                   ("image/height", "image/width", "image/channels"))
        if len(encoded[1][0]) != height * width * channels:
            return "raw image size does not match its height, width and channels"
        return None
    try:
        with Image.open(io.BytesIO(encoded[1][0])) as image:
            image.load()
    except Exception as e:
        return f"image does not decode ({type(e).__name__}: {e})"
    return None


def verify(path: str | os.PathLike, *, decode_images: bool = False) -> VerifyReport:
    """Checks every record's length and data CRCs, and with `decode_images` every image.

    Keeps going past corrupt records; each is reported with file, record number and byte
    offset (in the uncompressed stream for compressed files).

    Example:
        >>> report = tfk.verify("out/train")
        >>> report.ok, report.records_ok
        (True, 1438)
    """
    report = VerifyReport(files=expand_paths(path))
    for file in report.files:
        for record, offset, data, problem in _scan_file(file):
            if problem is None and decode_images:
                problem = _image_problem(data)
            if problem is None:
                report.records_ok += 1
            else:
                report.corrupt.append({"file": file, "record": record, "offset": offset,
                                       "reason": problem})
    return report
