"""Corrupt shards: `verify` finds each damaged record with its file, number and offset and
keeps going; the reader's on_corrupt="skip" reads past them and never hangs."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

import tfrecordkit as tfk
from tfrecordkit.cli import main
from tfrecordkit.errors import OptionError
from tfrecordkit.records import index_entries

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _dataset(table, out, **options):
    frame, images = table
    return tfk.write_frame(frame, out, images=images, label="colour", num_shards=3, shuffle=False,
                           jobs=1, progress=False, **options)


def _flip(path, offset):
    data = bytearray(open(path, "rb").read())
    data[offset] ^= 0xFF
    open(path, "wb").write(bytes(data))


def _cut(path, size):
    data = open(path, "rb").read()
    open(path, "wb").write(data[:size])


def test_flipped_data_byte_is_found_and_the_rest_counted(table, tmp_path, capsys):
    m = _dataset(table, tmp_path / "out")
    shard = m.files[1]
    offset, length = index_entries(shard)[4]
    _flip(shard, offset + length // 2)
    report = tfk.verify(tmp_path / "out")
    assert not report.ok and report.records_ok == 29
    assert report.corrupt == [{"file": shard, "record": 4, "offset": offset,
                               "reason": "data CRC mismatch"}]
    assert main(["verify", str(tmp_path / "out"), "--json"]) == 1
    printed = json.loads(capsys.readouterr().out)
    assert printed["records_ok"] == 29 and printed["corrupt"][0]["record"] == 4
    assert main(["verify", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{shard}: record 4 at byte offset {offset}: data CRC mismatch",
        "29 records ok in 3 files; 1 corrupt"]


def test_damaged_length_reads_on_at_the_next_indexed_record(table, tmp_path):
    m = _dataset(table, tmp_path / "out")
    shard = m.files[0]
    entries = index_entries(shard)
    _flip(shard, entries[3][0] + 2)                 # inside record 3's length field
    report = tfk.verify(tmp_path / "out")
    assert report.corrupt == [{"file": shard, "record": 3, "offset": entries[3][0],
                               "reason": "length CRC mismatch; reading on at the next record "
                                         "in the .idx"}]
    assert report.records_ok == 29
    os.remove(shard + ".idx")                      # without an index the rest cannot be framed
    report = tfk.verify(shard)
    assert report.corrupt == [{"file": shard, "record": 3, "offset": entries[3][0],
                               "reason": "length CRC mismatch; the rest of the file is unreadable"}]
    assert report.records_ok == 3


def test_cut_shards_missing_shards_and_stale_index(table, tmp_path):
    m = _dataset(table, tmp_path / "out")
    first, second, third = m.files
    entries, second_entries = index_entries(first), index_entries(second)
    _cut(first, entries[7][0])                      # at a record boundary: no CRC can tell
    _cut(second, second_entries[5][0] + 30)         # inside record 5
    os.remove(third)
    report = tfk.verify(tmp_path / "out")
    assert report.corrupt == [
        {"file": first, "record": 7, "offset": entries[7][0],
         "reason": f"file holds 7 records but dataset.json lists {len(entries)} (cut short at a "
                   "record boundary)"},
        {"file": second, "record": 5, "offset": second_entries[5][0],
         "reason": "file ends inside the record"},
        {"file": third, "record": 0, "offset": 0, "reason": "file is missing (listed in dataset.json)"}]
    assert report.records_ok == 7 + 5
    # A lone file checks against its .idx instead.
    report = tfk.verify(first)
    assert report.corrupt[0]["reason"] == (f"file holds 7 records but its .idx lists {len(entries)} "
                                           "(cut short at a record boundary)")


def test_gzip_shard_damage_is_found_with_its_record(table, tmp_path):
    m = _dataset(table, tmp_path / "out", compression="gzip")
    shard = m.files[2]
    entries = index_entries(shard)                  # offsets in the uncompressed stream
    _flip(shard, os.path.getsize(shard) // 2)
    report = tfk.verify(tmp_path / "out")
    assert report.corrupt and {c["file"] for c in report.corrupt} == {shard}
    for bad in report.corrupt:                      # a changed record, then the stream's own check
        assert bad["offset"] == entries[bad["record"]][0]
        assert bad["reason"] == "data CRC mismatch" or (
            bad["reason"].startswith("compressed stream is damaged")
            and bad["reason"].endswith("the rest of the file is unreadable"))
    last = report.corrupt[-1]["record"]
    assert report.records_ok == m.records - m.shards[2].records + last + 1 - len(report.corrupt)


_READER = textwrap.dedent('''
    import json, logging, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    import tensorflow as tf
    import tfrecordkit as tfk

    def count(path, **kw):
        ds = tfk.read(path, batch_size=4, image_size=8, label="colour", **kw)
        return sum(int(images.shape[0]) for images, _ in ds)

    out = {}
    for name in sys.argv[1:]:
        path = os.path.join(os.environ["DATASETS"], name)
        out[name] = {"skip_shuffled": count(path, on_corrupt="skip", seed=0),
                     "skip_ordered": count(path, on_corrupt="skip", shuffle=False)}
        try:
            count(path)
            out[name]["raise"] = "no error"
        except Exception as e:
            out[name]["raise"] = type(e).__name__
    print(json.dumps(out))
''')


def test_reader_skips_corrupt_records_and_shards_without_hanging(table, tmp_path):
    datasets = tmp_path / "datasets"
    flipped = _dataset(table, datasets / "flipped")
    offset, length = index_entries(flipped.files[0])[4]
    _flip(flipped.files[0], offset + length - 8)                # record 4's data
    cut = _dataset(table, datasets / "cut")
    _cut(cut.files[1], index_entries(cut.files[1])[6][0] + 20)  # inside record 6
    short = _dataset(table, datasets / "short")
    _cut(short.files[1], index_entries(short.files[1])[6][0])   # at a record boundary
    missing = _dataset(table, datasets / "missing")
    os.remove(missing.files[2])
    gz = _dataset(table, datasets / "gzip", compression="gzip")
    _flip(gz.files[0], os.path.getsize(gz.files[0]) // 2)
    names = ["flipped", "cut", "short", "missing", "gzip"]
    env = {**os.environ, "DATASETS": str(datasets),
           "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    # A hang (TF's ignore_errors on a file it cannot open spins forever) fails here.
    result = subprocess.run([sys.executable, "-c", _READER, *names], env=env, capture_output=True,
                            text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    shard = [s.records for s in flipped.shards]           # the same plan for every copy
    for name, read in (("flipped", 30 - shard[0] + 4), ("cut", 30 - shard[1] + 6),
                       ("short", 30 - shard[1] + 6), ("missing", 30 - shard[2])):
        assert counts[name]["skip_shuffled"] == counts[name]["skip_ordered"] == read, name
    assert 30 - shard[0] <= counts["gzip"]["skip_ordered"] < 30
    assert counts["gzip"]["skip_shuffled"] == counts["gzip"]["skip_ordered"]
    assert counts["flipped"]["raise"] == counts["cut"]["raise"] == "DataLossError"
    assert counts["short"]["raise"] == "FailedPreconditionError"   # fewer records than dataset.json
    assert counts["missing"]["raise"] == "DatasetError"
    log = result.stderr
    assert (f"skipped {shard[0] - 4} of the {shard[0]} records of {flipped.files[0]}: record 4 "
            "is corrupt or the file ends there") in log
    assert f"skipped {shard[1] - 6} of the {shard[1]} records of {short.files[1]}: record 6 " in log
    assert f"skipped shard {missing.files[2]} and its {shard[2]} records: it cannot be opened" in log


def test_on_corrupt_is_validated(table, tmp_path):
    _dataset(table, tmp_path / "out")
    with pytest.raises(OptionError, match=r"`on_corrupt` must be one of 'raise', 'skip'; "
                                          r"received on_corrupt='ignore'\."):
        tfk.read(tmp_path / "out", on_corrupt="ignore")
