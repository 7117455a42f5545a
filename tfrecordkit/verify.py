"""Integrity checks of TFRecord files: both CRCs of every record, optionally every image."""
from __future__ import annotations

import gzip
import io
import os
import zlib
from dataclasses import dataclass, field
from typing import Any, Iterator

from . import storage
from .errors import translated
from .locate import locate
from .records import (FOOTER_SIZE, FRAMING_SIZE, HEADER_SIZE, _HEADER, _U32, _missing,
                      _read_exact, detect_compression, masked_crc32c, open_stream,
                      read_index)


@dataclass
class VerifyReport:
    """What `verify` found: records that passed, and where each corrupt one is."""

    files: list[str] = field(default_factory=list)
    records_ok: int = 0
    corrupt: list[dict[str, Any]] = field(default_factory=list)
    incomplete: str | None = None   # an unfinished conversion's directory: never clean

    @property
    def ok(self) -> bool:
        return not self.corrupt and self.incomplete is None

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "files": self.files, "records_ok": self.records_ok,
                "corrupt": self.corrupt, "incomplete": self.incomplete}

    def summary(self) -> str:
        lines = [f"{c['file']}: record {c['record']} at byte offset {c['offset']}: {c['reason']}"
                 for c in self.corrupt]
        state = f"{len(self.corrupt)} corrupt" if self.corrupt else "clean"
        if self.incomplete is not None:
            state = "INCOMPLETE" + (f", {len(self.corrupt)} corrupt" if self.corrupt else "")
            lines.append("INCOMPLETE: " + self.incomplete)
        lines.append(f"{self.records_ok} records ok in {len(self.files)} files; {state}")
        return "\n".join(lines)


class _Scan:
    """How a file's scan ended: records framed (good or not), end offset, whether it read on
    to the end of the file, and the .idx entries it could trust."""

    def __init__(self, index: list[tuple[int, int]] | None):
        self.index = index
        self.records = 0
        self.end = 0
        self.complete = True


def _scan_file(file: str, scan: _Scan) -> Iterator[tuple[int, int, bytes | None, str | None]]:
    """(record, offset, data, problem) per record. Goes on past a bad data CRC; past a damaged
    length or a cut record it goes on at the next record the .idx names, and stops only
    where there is no such index (the rest of the file cannot be framed without one)."""
    record, offset = 0, 0
    index = scan.index
    try:
        kind = detect_compression(file)
    except OSError as e:
        scan.complete = False
        yield record, offset, None, f"file cannot be read ({e.strerror or e})"
        return
    try:
        # A plain file's size bounds every claimed length; a compressed stream is probed.
        size = storage.getsize(file) if kind is None else None
        with open_stream(file, kind) as stream:
            while True:
                scan.records, scan.end = record, offset
                if index is not None and record < len(index) and index[record][0] != offset:
                    index = scan.index = None   # the index disagrees with the file; trust neither
                header = _read_exact(stream.read, HEADER_SIZE)
                if not header:
                    return
                problem, length = None, None
                if len(header) < HEADER_SIZE:
                    problem = "file ends inside the record header"
                else:
                    length, stored = _HEADER.unpack(header)
                    if masked_crc32c(header[:8]) != stored:
                        problem = "length CRC mismatch"
                if problem is None:
                    missing = _missing(stream, size, offset, length + FRAMING_SIZE)
                    if missing:   # a claim past the end: found without allocating it
                        problem = "file ends inside the record"
                if problem is None:
                    data = _read_exact(stream.read, length)
                    footer = _read_exact(stream.read, FOOTER_SIZE)
                    if len(data) < length or len(footer) < FOOTER_SIZE:
                        problem = "file ends inside the record"
                    else:
                        bad = masked_crc32c(data) != _U32.unpack(footer)[0]
                        yield record, offset, None if bad else data, "data CRC mismatch" if bad else None
                        record += 1
                        offset += length + HEADER_SIZE + FOOTER_SIZE
                        continue
                # The length cannot be trusted: only the index knows where the next record is
                # (a file that ends inside a record has no next one).
                following = [] if length is None or problem.startswith("file ends") else \
                    [(r, o) for r, (o, _) in enumerate(index or ()) if o > offset]
                if not following:
                    scan.complete = False
                    yield record, offset, None, problem + (
                        "" if problem.startswith("file ends") else
                        "; the rest of the file is unreadable")
                    return
                yield record, offset, None, problem + "; reading on at the next record in the .idx"
                record, offset = following[0]
                stream.seek(offset)
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        scan.complete = False
        yield record, offset, None, f"compressed stream is damaged ({e}); the rest of the file is unreadable"
    except OSError as e:
        scan.complete = False
        yield record, offset, None, f"file cannot be read ({e.strerror or e}); the rest is unchecked"


def _image_problem(data: bytes) -> str | None:
    from PIL import Image

    from .example import decode_example
    from .images import check_png

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
    data = encoded[1][0]
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        problem = check_png(data)   # Pillow skips the checks TensorFlow's decoder makes
        if problem:
            return f"image does not decode ({problem})"
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except Exception as e:
        return f"image does not decode ({type(e).__name__}: {e})"
    return None


@translated("path")
def verify(path: str | os.PathLike, *, decode_images: bool = False) -> VerifyReport:
    """Checks every record's length and data CRCs, and with `decode_images` every image.

    Keeps going past corrupt records; each is reported with file, record number and byte
    offset (in the uncompressed stream for compressed files). Past a damaged length it reads
    on where the shard's .idx says the next record starts. A shard that is missing, or that
    holds fewer records than dataset.json or its .idx lists (cut at a record boundary, which
    no CRC can see), is reported too. A directory holding an unfinished conversion (shards
    but no dataset.json) is reported as incomplete, never as clean.

    Example:
        >>> report = tfk.verify("out/train")
        >>> report.ok, report.records_ok
        (True, 1438)
    """
    where = locate(path, allow_incomplete=True)
    listed = where.stored.shards if where.stored is not None else [None] * len(where.files)
    targets = [(f, s.records if s is not None else None) for f, s in zip(where.files, listed)]
    report = VerifyReport(files=list(where.files), incomplete=where.incomplete)
    for file, expected in targets:
        def bad(record: int, offset: int, reason: str) -> None:
            report.corrupt.append({"file": file, "record": record, "offset": offset,
                                   "reason": reason})

        if not storage.isfile(file):
            what = "is not a regular file" if storage.exists(file) else "file is missing"
            bad(0, 0, what + (" (listed in dataset.json)" if expected is not None else ""))
            continue
        scan = _Scan(read_index(file))
        for record, offset, data, problem in _scan_file(file, scan):
            if problem is None and decode_images:
                problem = _image_problem(data)
            if problem is None:
                report.records_ok += 1
            else:
                bad(record, offset, problem)
        if not scan.complete:
            continue
        if expected is not None and scan.records != expected:
            bad(scan.records, scan.end, f"file holds {scan.records} records but dataset.json "
                f"lists {expected}" + (" (cut short at a record boundary)"
                                       if scan.records < expected else ""))
        elif scan.index is not None and scan.records != len(scan.index):
            bad(scan.records, scan.end, f"file holds {scan.records} records but its .idx lists "
                f"{len(scan.index)}" + (" (cut short at a record boundary)"
                                        if scan.records < len(scan.index) else
                                        "; rewrite it with `tfrecordkit index --force`"))
    return report
