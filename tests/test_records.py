"""Tests for tfrecordkit.records: framing, compression, corruption, indices.

TensorFlow is the reference reader and writer here; the library itself never imports it.
"""
from __future__ import annotations

import gzip
import io
import os
import pickle
import random
import struct
import zlib

import google_crc32c
import pytest

from tfrecordkit.records import (
    CorruptRecordError,
    RecordInfo,
    RecordWriter,
    count_records,
    detect_compression,
    format_index,
    frame_record,
    index_entries,
    iter_records,
    masked_crc32c,
    open_stream,
    write_index,
)

tf = pytest.importorskip("tensorflow")

TF_COMPRESSION = {None: "", "gzip": "GZIP", "zlib": "ZLIB"}


def make_payloads(n: int = 50, seed: int = 1234) -> list[bytes]:
    """Random payloads of random lengths, always including 0 bytes, 1 byte and 100 KB."""
    rng = random.Random(seed)
    sizes = [0, 1, 100 * 1024] + [rng.choice((rng.randint(2, 300), rng.randint(300, 20000))) for _ in range(n - 3)]
    rng.shuffle(sizes)
    return [rng.randbytes(size) for size in sizes]


def write_ours(path, payloads, compression=None) -> RecordWriter:
    with open(path, "wb") as f, RecordWriter(f, compression=compression) as writer:
        for p in payloads:
            writer.write(p)
    return writer


def write_tf(path, payloads, compression=None) -> None:
    options = tf.io.TFRecordOptions(compression_type=TF_COMPRESSION[compression])
    with tf.io.TFRecordWriter(str(path), options) as w:
        for p in payloads:
            w.write(p)


def read_tf(path, compression=None) -> list[bytes]:
    ds = tf.data.TFRecordDataset(str(path), compression_type=TF_COMPRESSION[compression])
    return [t.numpy() for t in ds]


def tfrecord2idx(path) -> str:
    """The index loop of the `tfrecord` package's tools/tfrecord2idx.py (what DALI reads)."""
    out = []
    with open(path, "rb") as infile:
        while True:
            current = infile.tell()
            byte_len = infile.read(8)
            if len(byte_len) == 0:
                break
            infile.read(4)
            proto_len = struct.unpack("q", byte_len)[0]
            infile.read(proto_len)
            infile.read(4)
            out.append(str(current) + " " + str(infile.tell() - current) + "\n")
    return "".join(out)


@pytest.fixture(scope="module")
def payloads() -> list[bytes]:
    return make_payloads()


@pytest.fixture
def plain_file(tmp_path, payloads):
    path = tmp_path / "plain.tfrecord"
    writer = write_ours(path, payloads)
    return path, writer


# --------------------------------------------------------------------------- CRC and framing


def test_masked_crc32c_known_vector():
    # The CRC-32C check value, then the mask: rotate right by 15, add 0xa282ead8.
    assert google_crc32c.value(b"123456789") == 0xE3069283
    crc = 0xE3069283
    expected = (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
    assert masked_crc32c(b"123456789") == expected == 0xC78AB0E5
    assert masked_crc32c(b"") == 0xA282EAD8  # crc32c("") == 0


def test_masked_crc32c_matches_crcs_in_a_tf_written_file(tmp_path):
    path = tmp_path / "tf.tfrecord"
    write_tf(path, [b"hello", b""])
    raw = path.read_bytes()
    length = raw[:8]
    assert struct.unpack("<I", raw[8:12])[0] == masked_crc32c(length)
    assert struct.unpack("<I", raw[17:21])[0] == masked_crc32c(b"hello")


def test_frame_record_layout():
    framed = frame_record(b"abc")
    assert len(framed) == 3 + 16
    assert struct.unpack("<Q", framed[:8])[0] == 3
    assert struct.unpack("<I", framed[8:12])[0] == masked_crc32c(framed[:8])
    assert framed[12:15] == b"abc"
    assert struct.unpack("<I", framed[15:])[0] == masked_crc32c(b"abc")
    assert frame_record(bytearray(b"abc")) == frame_record(memoryview(b"abc")) == framed


def test_frame_record_equals_tf_plain_file(tmp_path, payloads):
    path = tmp_path / "tf.tfrecord"
    write_tf(path, payloads[:10])
    assert path.read_bytes() == b"".join(frame_record(p) for p in payloads[:10])


# --------------------------------------------------------------------------- writer + TF reader


@pytest.mark.parametrize("compression", [None, "gzip", "zlib"])
def test_written_file_reads_back_with_tf_and_iter_records(tmp_path, payloads, compression):
    path = tmp_path / "data.tfrecord"
    writer = write_ours(path, payloads, compression)
    assert writer.count == len(payloads) == 50

    assert read_tf(path, compression) == payloads
    records = list(iter_records(path))  # compression auto-detected
    assert [r.data for r in records] == payloads
    assert [(r.offset, r.length) for r in records] == writer.index
    assert [r.data_length for r in records] == [len(p) for p in payloads]
    assert count_records(path) == 50
    assert count_records(path, compression=compression) == 50


def test_writer_index_matches_index_entries_and_tfrecord2idx(plain_file, payloads):
    path, writer = plain_file
    offsets = [0]
    for p in payloads:
        offsets.append(offsets[-1] + len(p) + 16)
    expected = list(zip(offsets[:-1], [len(p) + 16 for p in payloads]))
    assert writer.index == expected
    assert index_entries(path) == expected
    manual = "".join(f"{off} {length}\n" for off, length in expected)
    assert format_index(writer.index) == manual
    assert format_index(index_entries(path)) == tfrecord2idx(path)
    assert os.path.getsize(path) == offsets[-1]


def test_gzip_index_is_in_uncompressed_offsets(tmp_path, payloads):
    plain, gz = tmp_path / "a.tfrecord", tmp_path / "a.tfrecord.gz"
    w_plain = write_ours(plain, payloads)
    w_gz = write_ours(gz, payloads, "gzip")
    assert w_gz.index == w_plain.index == index_entries(gz)


def test_write_index_default_and_explicit_path(plain_file):
    path, writer = plain_file
    idx = write_index(path)
    assert idx == str(path) + ".idx"
    with open(idx, newline="") as f:
        assert f.read() == format_index(writer.index)
    other = path.parent / "custom.index"
    assert write_index(path, other) == str(other)
    assert other.read_text() == format_index(writer.index)
    leftovers = [p.name for p in path.parent.iterdir() if ".tmp" in p.name]
    assert leftovers == []


def test_write_index_replaces_existing_file(plain_file):
    path, writer = plain_file
    target = path.parent / "x.idx"
    target.write_text("stale\n" * 1000)
    write_index(path, target)
    assert target.read_text() == format_index(writer.index)


def test_empty_file_has_no_records(tmp_path):
    path = tmp_path / "empty.tfrecord"
    write_ours(path, [])
    assert path.read_bytes() == b""
    assert list(iter_records(path)) == []
    assert count_records(path) == 0
    assert format_index(index_entries(path)) == ""
    assert detect_compression(path) is None


def test_empty_gzip_file(tmp_path):
    path = tmp_path / "empty.tfrecord.gz"
    write_ours(path, [], "gzip")
    assert detect_compression(path) == "gzip"
    assert count_records(path) == 0
    assert read_tf(path, "gzip") == []


# --------------------------------------------------------------------------- writer details


def test_writer_leaves_caller_file_open_and_gzip_is_deterministic(tmp_path):
    outputs = []
    for name in ("one.tfrecord.gz", "two.tfrecord.gz"):
        with open(tmp_path / name, "wb") as f:
            writer = RecordWriter(f, compression="gzip")
            writer.write(b"x" * 1000)
            writer.close()
            assert not f.closed
            f.write(b"")  # still usable
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1]
    head = outputs[0]
    assert head[:2] == b"\x1f\x8b"
    assert head[3] == 0  # FLG: no FNAME, so no file name embedded
    assert head[4:8] == b"\x00\x00\x00\x00"  # MTIME 0
    assert gzip.decompress(head) == frame_record(b"x" * 1000)


def test_writer_on_bytesio_and_close_twice():
    buf = io.BytesIO()
    writer = RecordWriter(buf)
    writer.write(b"a")
    writer.close()
    writer.close()
    assert buf.getvalue() == frame_record(b"a")
    with pytest.raises(ValueError, match="closed"):
        writer.write(b"b")


def test_writer_rejects_unknown_compression():
    with pytest.raises(ValueError, match="unknown compression 'lz4'"):
        RecordWriter(io.BytesIO(), compression="lz4")


def test_writer_accepts_tf_spelling_of_compression():
    buf = io.BytesIO()
    with RecordWriter(buf, compression="GZIP") as writer:
        writer.write(b"a")
    assert gzip.decompress(buf.getvalue()) == frame_record(b"a")
    buf = io.BytesIO()
    with RecordWriter(buf, compression="") as writer:
        writer.write(b"a")
    assert buf.getvalue() == frame_record(b"a")


# --------------------------------------------------------------------------- files written by TF


def test_reads_tf_written_plain_file(tmp_path, payloads):
    path = tmp_path / "tf.tfrecord"
    write_tf(path, payloads)
    assert [r.data for r in iter_records(path)] == payloads
    assert count_records(path) == len(payloads)
    assert format_index(index_entries(path)) == tfrecord2idx(path)


@pytest.mark.parametrize("compression", ["gzip", "zlib"])
def test_reads_and_detects_tf_written_compressed_file(tmp_path, payloads, compression):
    path = tmp_path / f"tf.{compression}"
    write_tf(path, payloads, compression)
    assert detect_compression(path) == compression
    assert [r.data for r in iter_records(path)] == payloads
    assert [r.data for r in iter_records(path, compression=compression)] == payloads
    assert count_records(path) == len(payloads)
    with open_stream(path) as f:
        assert f.read() == b"".join(frame_record(p) for p in payloads)


def test_iter_records_without_data(plain_file, payloads):
    path, writer = plain_file
    infos = list(iter_records(path, with_data=False))
    assert all(i.data is None for i in infos)
    assert [(i.offset, i.length) for i in infos] == writer.index
    assert infos[0] == RecordInfo(0, len(payloads[0]) + 16, None)


# --------------------------------------------------------------------------- detection


def test_detect_compression(tmp_path, payloads):
    plain, gz, zl = tmp_path / "p", tmp_path / "g", tmp_path / "z"
    write_ours(plain, payloads[:3])
    write_ours(gz, payloads[:3], "gzip")
    write_tf(zl, payloads[:3], "zlib")
    assert detect_compression(plain) is None
    assert detect_compression(gz) == "gzip"
    assert detect_compression(zl) == "zlib"


@pytest.mark.parametrize(
    "length",
    [
        0x8B1F,  # little-endian length starts 1f 8b: gzip magic
        0x9C78,  # starts 78 9c: the usual zlib header
        0x0178,  # starts 78 01: zlib, fastest level
    ],
)
def test_plain_file_whose_length_looks_like_a_compression_header(tmp_path, length):
    path = tmp_path / "collide.tfrecord"
    write_ours(path, [b"\x00" * length, b"tail"])
    assert path.read_bytes()[:2] in (b"\x1f\x8b", b"\x78\x9c", b"\x78\x01")
    assert detect_compression(path) is None
    assert [len(r.data) for r in iter_records(path)] == [length, 4]


# --------------------------------------------------------------------------- corruption


def test_flipped_data_byte_names_file_record_and_offset(plain_file, payloads):
    path, writer = plain_file
    assert len(payloads[3]) > 0
    offset = writer.index[3][0]
    raw = bytearray(path.read_bytes())
    raw[offset + 12] ^= 0xFF  # first data byte of record 3
    path.write_bytes(bytes(raw))

    with pytest.raises(CorruptRecordError) as info:
        list(iter_records(path))
    err = info.value
    assert isinstance(err, ValueError)
    assert (err.file, err.record, err.offset) == (str(path), 3, offset)
    assert "data CRC mismatch" in err.reason
    assert not err.truncated
    message = str(err)
    assert message.startswith(f"{path}: record 3 at byte offset {offset} is corrupt: data CRC mismatch")
    assert "tfrecordkit verify" in message

    # The framing is intact: scans that skip data CRCs still pass.
    assert count_records(path) == len(payloads)
    assert len(list(iter_records(path, check_crc=False))) == len(payloads)
    # TF agrees that the file is damaged.
    with pytest.raises(tf.errors.DataLossError):
        read_tf(path)


def test_flipped_length_byte_is_a_length_crc_mismatch(plain_file):
    path, writer = plain_file
    offset = writer.index[5][0]
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x01
    path.write_bytes(bytes(raw))
    for scan in (lambda: list(iter_records(path)), lambda: count_records(path)):
        with pytest.raises(CorruptRecordError, match=r"record 5 at byte offset \d+ is corrupt: length CRC") as info:
            scan()
        assert (info.value.record, info.value.offset) == (5, offset)


@pytest.mark.parametrize("cut", ["header", "data", "footer"])
def test_truncated_file_is_corrupt(plain_file, payloads, cut):
    path, writer = plain_file
    last = len(payloads) - 1
    offset, length = writer.index[last]
    keep = {"header": offset + 5, "data": offset + 12 + (length - 16) // 2, "footer": offset + length - 1}[cut]
    with open(path, "r+b") as f:
        f.truncate(keep)
    for scan in (lambda: list(iter_records(path)), lambda: count_records(path)):
        with pytest.raises(CorruptRecordError) as info:
            scan()
        err = info.value
        assert err.truncated
        assert (err.record, err.offset) == (last, offset)
        assert str(err).startswith(f"{path}: file ends inside record {last} at byte offset {offset}")


def test_truncated_gzip_file_is_corrupt(tmp_path, payloads):
    path = tmp_path / "cut.tfrecord.gz"
    write_ours(path, payloads, "gzip")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptRecordError, match="file ends inside record") as info:
        list(iter_records(path))
    assert info.value.compressed and info.value.truncated
    assert "uncompressed stream" in str(info.value)
    with pytest.raises(CorruptRecordError):
        count_records(path)


def test_damaged_zlib_stream_is_corrupt(tmp_path, payloads):
    path = tmp_path / "bad.zlib"
    write_tf(path, payloads, "zlib")
    raw = bytearray(path.read_bytes())
    for i in range(len(raw) // 3, len(raw) // 3 + 64):
        raw[i] ^= 0x55
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptRecordError, match="is corrupt|file ends inside"):
        list(iter_records(path))


def test_corrupt_record_error_pickles():
    err = CorruptRecordError("a.tfrecord", 7, 1234, "data CRC mismatch", False, False)
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is CorruptRecordError
    assert (clone.file, clone.record, clone.offset, clone.reason) == ("a.tfrecord", 7, 1234, "data CRC mismatch")
    assert str(clone) == str(err)


def test_open_stream_decompresses_in_pieces(tmp_path):
    # A zlib stream larger than the reader's chunks, read in odd sizes.
    payload = random.Random(0).randbytes(300_000)
    path = tmp_path / "big.zlib"
    path.write_bytes(zlib.compress(payload, 6))
    with open_stream(path, "zlib") as f:
        got = b""
        while chunk := f.read(7777):
            got += chunk
    assert got == payload
