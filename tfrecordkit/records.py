"""TFRecord framing: write, read, verify and index record files without TensorFlow.

A TFRecord file is a sequence of records, each framed as::

    uint64 length            (little endian)
    uint32 masked_crc32c(length bytes)
    bytes  data[length]
    uint32 masked_crc32c(data)

A GZIP file is one gzip stream of that framing (TF's ``compression_type="GZIP"``)
and a ZLIB file is one zlib stream of it (``compression_type="ZLIB"``).

Nothing here imports TensorFlow: writer worker processes and inspection tools
should not pay several seconds of TF import for what is byte shuffling.
"""
from __future__ import annotations

import gzip
import io
import os
import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Iterator

from google_crc32c import value as _crc32c

from tfrecordkit import storage
from tfrecordkit.errors import DatasetError

__all__ = [
    "CorruptRecordError",
    "RecordInfo",
    "RecordWriter",
    "count_records",
    "damaged_at",
    "detect_compression",
    "format_index",
    "frame_record",
    "index_entries",
    "iter_records",
    "masked_crc32c",
    "open_stream",
    "write_index",
]

_MASK_DELTA = 0xA282EAD8
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
_HEADER = struct.Struct("<QI")
HEADER_SIZE = 12  # length + length CRC
FOOTER_SIZE = 4  # data CRC
FRAMING_SIZE = HEADER_SIZE + FOOTER_SIZE
_SKIP_CHUNK = 1 << 20  # bounded reads when skipping data inside a compressed stream
_ZLIB_CHUNK = 1 << 16
_BIG_READ = 1 << 26  # 64 MiB


class CorruptRecordError(DatasetError, ValueError):
    """A record's framing is damaged or the file ends inside a record.

    Attributes:
        file: path of the TFRecord file.
        record: 0-based number of the damaged record.
        offset: byte offset of that record's header (in the uncompressed stream
            when the file is compressed).
        reason: what is wrong, in a few words.
        truncated: True when the file ends inside the record.
        compressed: True when ``offset`` refers to the uncompressed stream.
    """

    def __init__(
        self,
        file: str,
        record: int,
        offset: int,
        reason: str,
        truncated: bool = False,
        compressed: bool = False,
    ):
        self.file, self.record, self.offset, self.reason = file, record, offset, reason
        self.truncated, self.compressed = truncated, compressed
        where = f"byte offset {offset}" + (" of the uncompressed stream" if compressed else "")
        if truncated:
            what = f"file ends inside record {record} at {where}: {reason}"
        else:
            what = f"record {record} at {where} is corrupt: {reason}"
        super().__init__(
            f"{file}: {what}; run `tfrecordkit verify` on the file to check every record, "
            "and rewrite it from the source data."
        )

    def __reduce__(self):
        # Keeps the attributes when the error crosses a process boundary (joblib/loky).
        return (
            type(self),
            (self.file, self.record, self.offset, self.reason, self.truncated, self.compressed),
        )


def masked_crc32c(data: bytes) -> int:
    """Returns the masked CRC-32C that TFRecord framing stores.

    The mask keeps a CRC of data that itself contains CRCs from being trivially
    self-consistent; it is ``rotate_right(crc, 15) + 0xa282ead8`` modulo 2**32.

    Example:
        >>> hex(masked_crc32c(b"123456789"))
        '0xc78ab0e5'
    """
    crc = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame_record(data: bytes) -> bytes:
    """Returns ``data`` framed as one TFRecord record (16 bytes longer).

    Example:
        >>> framed = frame_record(b"abc")
        >>> len(framed), framed[12:15]
        (19, b'abc')
    """
    if type(data) is not bytes:
        # google_crc32c only accepts bytes; bytearray/memoryview are copied once.
        data = bytes(data)
    length = _U64.pack(len(data))
    # One join: the payload is copied exactly once into the framed record.
    return b"".join(
        (length, _U32.pack(masked_crc32c(length)), data, _U32.pack(masked_crc32c(data)))
    )


def _normalize_compression(compression: str | None) -> str | None:
    if compression is None:
        return None
    kind = compression.lower()
    if kind in ("", "none"):  # TF spells "no compression" as ""
        return None
    if kind in ("gzip", "zlib"):
        return kind
    raise ValueError(
        f"unknown compression {compression!r}; expected None, 'gzip' or 'zlib'"
    )


class RecordWriter:
    """Writes TFRecord records to a binary file object.

    Each record is one ``write`` call on ``fileobj``; open files with a large
    buffer (``open(path, "wb", buffering=1 << 20)``), which roughly halves the
    cost per record for image-sized records compared with the default 8 KB.

    Args:
        fileobj: binary file object opened for writing; it stays open after
            ``close()`` (the caller owns it).
        compression: None for plain files, "gzip" (TF's "GZIP") or "zlib"
            (TF's "ZLIB"). Gzip output is deterministic: no file name, mtime 0.

    Attributes:
        count: number of records written.
        index: ``(offset, length)`` per record; offset is where the record's
            header starts in the uncompressed stream, length is ``len(data) + 16``.

    Example:
        >>> import io
        >>> buf = io.BytesIO()
        >>> with RecordWriter(buf) as writer:
        ...     writer.write(b"first")
        ...     writer.write(b"second")
        >>> writer.count, writer.index
        (2, [(0, 21), (21, 22)])
    """

    def __init__(self, fileobj: BinaryIO, compression: str | None = None):
        self._fileobj = fileobj
        self._kind = _normalize_compression(compression)
        self._gzip: gzip.GzipFile | None = None
        self._zlib = None
        if self._kind == "gzip":
            # filename="" stops GzipFile from embedding fileobj.name in the header;
            # mtime=0 makes equal input give byte-identical files.
            self._gzip = gzip.GzipFile(
                filename="", fileobj=fileobj, mode="wb", compresslevel=6, mtime=0
            )
            self._sink = self._gzip.write
        elif self._kind == "zlib":
            self._zlib = zlib.compressobj(6)
            self._sink = self._write_zlib
        else:
            self._sink = fileobj.write
        self.count = 0
        self.index: list[tuple[int, int]] = []
        self._offset = 0
        self._closed = False

    def _write_zlib(self, framed: bytes) -> None:
        chunk = self._zlib.compress(framed)
        if chunk:
            self._fileobj.write(chunk)

    def write(self, data: bytes) -> None:
        """Appends one record holding ``data``.

        Example:
            >>> import io
            >>> writer = RecordWriter(io.BytesIO())
            >>> writer.write(b"payload")
        """
        if self._closed:
            raise ValueError("RecordWriter is closed")
        framed = frame_record(data)
        self._sink(framed)
        size = len(framed)
        self.index.append((self._offset, size))
        self._offset += size
        self.count += 1

    def close(self) -> None:
        """Finishes the compressed stream; the caller's file object stays open.

        Example:
            >>> import io
            >>> buf = io.BytesIO()
            >>> writer = RecordWriter(buf, compression="gzip")
            >>> writer.close()
            >>> buf.getvalue()[:2]
            b'\\x1f\\x8b'
        """
        if self._closed:
            return
        self._closed = True
        if self._gzip is not None:
            self._gzip.close()  # writes the trailer; leaves fileobj open
        elif self._zlib is not None:
            self._fileobj.write(self._zlib.flush())
        flush = getattr(self._fileobj, "flush", None)
        if flush is not None:
            flush()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _is_plain_header(head: bytes) -> bool:
    return len(head) >= HEADER_SIZE and masked_crc32c(head[:8]) == _U32.unpack_from(head, 8)[0]


def _detect(head: bytes) -> str | None:
    # A valid plain header wins: the first 8 bytes of a plain file are a length
    # that can look like gzip magic (length % 65536 == 0x8b1f) or a zlib header,
    # but a compressed stream passes the header CRC only with odds of 2**-32.
    if _is_plain_header(head):
        return None
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if len(head) >= 2:
        cmf, flg = head[0], head[1]
        if cmf & 0x0F == 8 and cmf >> 4 <= 7 and ((cmf << 8) | flg) % 31 == 0:
            return "zlib"
    return None


def detect_compression(path: str | os.PathLike) -> str | None:
    """Returns "gzip", "zlib" or None (plain) for a TFRecord file, from its first bytes.

    Example:
        >>> detect_compression("train-00000-of-00008.tfrecord.gz")  # doctest: +SKIP
        'gzip'
    """
    storage.require_regular_file(path, "TFRecord file")   # a FIFO would block the open
    with storage.open(path, "rb") as f:
        return _detect(f.read(HEADER_SIZE))


class _ZlibReader(io.RawIOBase):
    """Streams the decompressed bytes of a zlib file without holding it in memory."""

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self._d = zlib.decompressobj()
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        want = len(b)
        if want == 0:
            return 0
        while not self._d.eof:
            if self._d.unconsumed_tail:
                data = self._d.decompress(self._d.unconsumed_tail, want)
            else:
                chunk = self._raw.read(_ZLIB_CHUNK)
                if not chunk:
                    raise EOFError(
                        "compressed file ended before the end-of-stream marker was reached"
                    )
                data = self._d.decompress(chunk, want)
            if data:
                b[: len(data)] = data
                self._pos += len(data)
                return len(data)
        return 0

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        # Forward: decompress and drop; backward: start the stream again (as GzipFile does).
        if whence == io.SEEK_CUR:
            offset += self._pos
        elif whence != io.SEEK_SET:
            raise io.UnsupportedOperation("a zlib stream seeks from its start or position only")
        if offset < self._pos:
            self._raw.seek(0)
            self._d, self._pos = zlib.decompressobj(), 0
        buffer = bytearray(_SKIP_CHUNK)
        while self._pos < offset:
            got = self.readinto(memoryview(buffer)[:min(_SKIP_CHUNK, offset - self._pos)])
            if not got:
                break
        return self._pos

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


def _resolve(path: str | os.PathLike, compression: str | None) -> str | None:
    if compression == "auto":
        return detect_compression(path)
    return _normalize_compression(compression)


def open_stream(path: str | os.PathLike, compression: str | None = "auto") -> BinaryIO:
    """Opens a TFRecord file as a readable binary stream of the uncompressed framing.

    Args:
        path: TFRecord file.
        compression: "auto" (detect from the first bytes), None, "gzip" or "zlib".

    Example:
        >>> with open_stream("train.tfrecord.gz") as f:  # doctest: +SKIP
        ...     header = f.read(12)
    """
    storage.require_regular_file(path, "TFRecord file")   # a FIFO would block the open
    kind = _resolve(path, compression)
    if kind == "gzip":
        raw = storage.open(path, "rb")
        stream = gzip.GzipFile(fileobj=raw, mode="rb")
        stream.myfileobj = raw   # closed with the stream, as gzip.open's own file is
        return stream
    if kind == "zlib":
        return io.BufferedReader(_ZlibReader(storage.open(path, "rb")), buffer_size=_ZLIB_CHUNK)
    return storage.open(path, "rb")


@dataclass(frozen=True)
class RecordInfo:
    """One record found by `iter_records`.

    Attributes:
        offset: byte offset of the record's header (uncompressed stream).
        length: framed length, ``len(data) + 16``: the same numbers as an index line.
        data: the payload, or None when read with ``with_data=False``.
    """

    offset: int
    length: int
    data: bytes | None

    @property
    def data_length(self) -> int:
        """Payload length in bytes (``length - 16``)."""
        return self.length - FRAMING_SIZE


def _read_exact(read, n: int) -> bytes:
    if n <= _BIG_READ:
        data = read(n)
        if len(data) == n or not data:
            return data
        parts, got = [data], len(data)
    else:
        # A length that passed its CRC can still be huge in a crafted file; read in
        # pieces so a short stream ends in a clean error instead of a giant allocation.
        parts, got = [], 0
    # Buffered readers return short only at EOF, but a raw stream may not; keep going.
    while got < n:
        more = read(min(n - got, _BIG_READ))
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _missing(stream, size: int | None, offset: int, framed: int) -> int:
    """How many bytes of the record at `offset` (its header just read) the file lacks; 0
    when it is all there. Never allocates the claimed length: a plain file compares with
    its size; a compressed stream of unknown length is read ahead in bounded chunks and
    rewound, for claims too large to simply read (a crafted 1 MB gzip file can claim
    2**40 bytes, or inflate to gigabytes of zeros)."""
    if size is not None:
        return max(0, offset + framed - size)
    wanted = framed - HEADER_SIZE
    if wanted <= _BIG_READ:
        return 0   # read it: a short read tells, and at most 64 MiB is held
    start = stream.tell()
    left = wanted
    while left:
        chunk = stream.read(min(left, _SKIP_CHUNK))
        if not chunk:
            break
        left -= len(chunk)
    stream.seek(start)
    return left


def iter_records(
    path: str | os.PathLike,
    *,
    compression: str | None = "auto",
    check_crc: bool = True,
    with_data: bool = True,
) -> Iterator[RecordInfo]:
    """Yields every record of a TFRecord file, streaming (the file is never held in memory).

    The length CRC of every header is always checked, since a damaged length
    makes the rest of the file unreadable; ``check_crc`` controls the data CRC.

    Args:
        path: TFRecord file.
        compression: "auto", None, "gzip" or "zlib".
        check_crc: verify each record's data CRC (only when ``with_data``).
        with_data: read payloads; False skips over them (seeks in plain files),
            which is what counting and indexing need.

    Raises:
        CorruptRecordError: a header or data CRC mismatch, or the file ends inside a record.

    Example:
        >>> for rec in iter_records("train.tfrecord"):  # doctest: +SKIP
        ...     example = decode_example(rec.data)
    """
    name = os.fspath(path)
    kind = _resolve(path, compression)
    pos = _Position()
    with open_stream(path, kind) as stream:
        if kind is None:
            # Plain files: I/O errors are I/O errors, not corruption; let them through.
            size = storage.getsize(name)
            yield from _scan(stream, name, pos, False, size, check_crc, with_data)
            return
        try:
            yield from _scan(stream, name, pos, True, None, check_crc, with_data)
        except EOFError as e:  # gzip/zlib stream cut short
            raise _stream_error(name, pos, e, truncated=True) from e
        except (zlib.error, gzip.BadGzipFile) as e:
            raise _stream_error(name, pos, e, truncated=False) from e


class _Position:
    """Where the scan is, so that decompression errors can name the record they hit."""

    __slots__ = ("record", "offset")

    def __init__(self):
        self.record = 0
        self.offset = 0


def _stream_error(name: str, pos: _Position, exc: BaseException, truncated: bool) -> CorruptRecordError:
    reason = f"the compressed stream is {'cut short' if truncated else 'damaged'} ({exc})"
    return CorruptRecordError(name, pos.record, pos.offset, reason, truncated, True)


def _scan(
    stream,
    name: str,
    pos: _Position,
    compressed: bool,
    size: int | None,
    check_crc: bool,
    with_data: bool,
) -> Iterator[RecordInfo]:
    read = stream.read
    header_unpack = _HEADER.unpack
    record = 0
    offset = 0
    while True:
        pos.record, pos.offset = record, offset
        header = _read_exact(read, HEADER_SIZE)
        if not header:
            return
        if len(header) < HEADER_SIZE:
            raise CorruptRecordError(
                name, record, offset,
                f"only {len(header)} of its {HEADER_SIZE} header bytes are present",
                True, compressed,
            )
        length, stored = header_unpack(header)
        computed = masked_crc32c(header[:8])
        if computed != stored:
            raise CorruptRecordError(
                name, record, offset,
                f"length CRC mismatch (stored 0x{stored:08x}, computed 0x{computed:08x})",
                False, compressed,
            )
        framed = length + FRAMING_SIZE
        end = offset + framed
        if with_data or size is not None:
            missing = _missing(stream, size, offset, framed)
            if missing:
                raise CorruptRecordError(
                    name, record, offset,
                    f"the record needs {framed} bytes but only {framed - missing} remain",
                    True, compressed,
                )
        if with_data:
            data = _read_exact(read, length)
            footer = _read_exact(read, FOOTER_SIZE)
            if len(data) < length or len(footer) < FOOTER_SIZE:
                got = HEADER_SIZE + len(data) + len(footer)
                raise CorruptRecordError(
                    name, record, offset,
                    f"the record needs {framed} bytes but only {got} remain",
                    True, compressed,
                )
            if check_crc:
                stored = _U32.unpack(footer)[0]
                computed = masked_crc32c(data)
                if computed != stored:
                    raise CorruptRecordError(
                        name, record, offset,
                        f"data CRC mismatch (stored 0x{stored:08x}, computed 0x{computed:08x})",
                        False, compressed,
                    )
            yield RecordInfo(offset, framed, data)
        else:
            if size is not None:
                stream.seek(end)  # size was checked above, so the record is complete
            else:
                remaining = length + FOOTER_SIZE
                while remaining:
                    chunk = read(min(remaining, _SKIP_CHUNK))
                    if not chunk:
                        raise CorruptRecordError(
                            name, record, offset,
                            f"the record needs {framed} bytes but only "
                            f"{framed - remaining} remain",
                            True, compressed,
                        )
                    remaining -= len(chunk)
            yield RecordInfo(offset, framed, None)
        offset = end
        record += 1


def damaged_at(path: str | os.PathLike, offset: int) -> bool:
    """Whether the record TensorFlow's "corrupted record at N" points at is damaged in this
    plain TFRecord file: N is where a record starts (bad length CRC) or where its data
    starts (bad data CRC). The framing is walked up to N, headers only, so only a record
    boundary counts. False for a compressed file or when no damaged record is there.

    Example:
        >>> damaged_at("train-00000-of-00004.tfrecord", 566875)  # doctest: +SKIP
        True
    """
    if offset >= storage.getsize(path) or _resolve(path, "auto") is not None:
        return False
    starts = (offset, offset - HEADER_SIZE)
    try:
        for rec in iter_records(path, compression=None, with_data=False):
            if rec.offset in starts:
                with open_stream(path, None) as stream:
                    stream.seek(rec.offset + HEADER_SIZE)
                    data = stream.read(rec.data_length)
                    footer = stream.read(FOOTER_SIZE)
                return masked_crc32c(data) != _U32.unpack(footer)[0]
            if rec.offset > offset:
                return False
    except CorruptRecordError as e:
        return e.offset in starts
    return False


def count_records(path: str | os.PathLike, *, compression: str | None = "auto") -> int:
    """Counts records by scanning the framing (header CRCs checked, data CRCs not).

    Example:
        >>> count_records("train-00000-of-00008.tfrecord")  # doctest: +SKIP
        1024
    """
    n = 0
    for _ in iter_records(path, compression=compression, with_data=False):
        n += 1
    return n


def index_entries(
    path: str | os.PathLike, *, compression: str | None = "auto"
) -> list[tuple[int, int]]:
    """Returns ``(offset, length)`` per record, length including the 16 framing bytes.

    For compressed files the offsets are in the uncompressed stream (what the
    `tfrecord` package seeks to in gzip files); DALI reads only plain files.

    Example:
        >>> index_entries("train.tfrecord")  # doctest: +SKIP
        [(0, 2071), (2071, 2065)]
    """
    return [(r.offset, r.length) for r in iter_records(path, compression=compression, with_data=False)]


def format_index(entries) -> str:
    """Formats index entries as the text that `tfrecord2idx` writes and DALI reads.

    One line per record, ``"<offset> <length>\\n"``.

    Example:
        >>> format_index([(0, 21), (21, 22)])
        '0 21\\n21 22\\n'
    """
    return "".join([f"{offset} {length}\n" for offset, length in entries])


def read_index(tfrecord_path: str | os.PathLike) -> list[tuple[int, int]] | None:
    """The ``(offset, length)`` entries of a TFRecord file's .idx, or None when it has no
    .idx file or one that cannot be read or parsed.

    Example:
        >>> read_index("train-00000-of-00008.tfrecord")  # doctest: +SKIP
        [(0, 2071), (2071, 2065)]
    """
    try:
        with storage.open(os.fspath(tfrecord_path) + ".idx", "r", encoding="ascii") as f:
            lines = f.read().splitlines()
        return [(int(a), int(b)) for a, b in (line.split() for line in lines if line.strip())]
    except (OSError, ValueError):
        return None


def write_index(
    tfrecord_path: str | os.PathLike,
    idx_path: str | os.PathLike | None = None,
    *,
    compression: str | None = "auto",
) -> str:
    """Writes the index of a TFRecord file atomically and returns its path.

    Args:
        tfrecord_path: TFRecord file to index.
        idx_path: where to write; defaults to ``<tfrecord_path>.idx``.
        compression: "auto", None, "gzip" or "zlib".

    Example:
        >>> write_index("train-00000-of-00008.tfrecord")  # doctest: +SKIP
        'train-00000-of-00008.tfrecord.idx'
    """
    text = format_index(index_entries(tfrecord_path, compression=compression))
    target = os.fspath(idx_path) if idx_path is not None else os.fspath(tfrecord_path) + ".idx"
    # Readers see the old index or the complete new one, never a partial file.
    storage.write_text(target, text)
    return target

