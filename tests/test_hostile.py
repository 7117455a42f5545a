"""Hostile input and faults, each rebuilt from scratch: the command line answers with one
sentence and exit 1 (failed work) or 2 (bad arguments), nothing hangs, memory follows the
bytes present, nothing outside the given paths is read or written, and nothing is left
behind (issue 12). Probes that could hang run in a subprocess with a time limit."""
import errno
import gzip
import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import tfrecordkit as tfk
from tfrecordkit import errors, locate, storage
from tfrecordkit.cli import main
from tfrecordkit.errors import DatasetError, StorageError, TableError, explain
from tfrecordkit.records import RecordWriter, frame_record, masked_crc32c

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIMIT_S = 60


# ----------------------------------------------------------------------------- helpers

def _cli(capsys, *args):
    """(exit code, stderr) of an in-process run; stderr must be one line."""
    code = main([str(a) for a in args])
    err = capsys.readouterr().err.strip()
    return code, err


def _one_sentence(err):
    lines = [line for line in err.splitlines() if not line.startswith(("INFO", "WARNING"))]
    assert len(lines) == 1, err
    assert lines[0].startswith("tfrecordkit: error: "), err
    assert "Traceback" not in err
    return lines[0]


def _subprocess(*args, timeout=LIMIT_S):
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", "tfrecordkit", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=timeout)


def _images(root, n=4, size=(8, 8)):
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", size, (10 * i, 20, 30)).save(root / f"{i}.png")
    return root


def _dataset(tmp_path, n=6, shards=2, name="out"):
    images = _images(tmp_path / "images", n)
    pd.DataFrame({"id": [f"{i}.png" for i in range(n)], "label": list("ab" * n)[:n]}).to_csv(
        tmp_path / "labels.csv", index=False)
    out = tmp_path / name
    tfk.convert(tmp_path / "labels.csv", out, images=images, label="label", num_shards=shards,
                jobs=1, seed=3, progress=False)
    return out


def _listing(directory):
    return sorted(os.path.relpath(os.path.join(d, f), directory)
                  for d, _, files in os.walk(directory) for f in files)


# ----------------------------------------------------------------------------- the error edge

def test_explain_maps_each_kind_to_one_sentence_and_exit_code():
    import pandas.errors as pde

    cases = [
        (OSError(errno.ENOSPC, "No space left on device", "/o/x.tfrecord"), 1, "no space is left"),
        (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/f/out"), 1, "is a regular file"),
        (PermissionError(errno.EACCES, "Permission denied", "/o"), 1, "permission denied"),
        (FileNotFoundError(errno.ENOENT, "No such file", "/o/s.tfrecord"), 1, "does not exist"),
        (pde.EmptyDataError("No columns to parse from file"), 2, "is empty"),
        (pde.ParserError("Error tokenizing data.\nC error: Expected 2 fields in line 3, saw 3\n"),
         2, "Expected 2 fields in line 3"),
        (UnicodeDecodeError("utf-8", b"ab\xe9", 2, 3, "invalid continuation byte"), 2,
         "--encoding"),
        (tfk.OptionError("`x` must be 1."), 2, "`x` must be 1."),
        (DatasetError("d is incomplete."), 1, "d is incomplete."),
        (KeyError("surprise"), 1, "unexpected KeyError"),
    ]
    for exc, code, words in cases:
        message, got = explain(exc, path="labels.csv")
        assert got == code, (exc, message)
        assert words in message and "\n" not in message, message
    message, _ = explain(OSError(errno.ENOSPC, "No space left on device", "/o/x.tfrecord"))
    assert message.startswith("/o/x.tfrecord: no space is left on the device")
    assert "--resume" in message


def test_explain_names_arrow_tensorflow_and_joblib_errors():
    pa = pytest.importorskip("pyarrow")
    message, code = explain(pa.lib.ArrowInvalid("Parquet magic bytes not found"), "t.parquet")
    assert code == 2 and message.startswith("t.parquet is not a valid Parquet file")
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    message, code = explain(TerminatedWorkerError("A worker process managed by the executor "
                                                  "was unexpectedly terminated. SIGKILL(-9)"))
    assert code == 1 and "worker process died" in message and "--jobs" in message


def test_translated_library_errors_keep_the_original_chained_and_the_os_error_kind():
    new = errors.translate(OSError(errno.ENOSPC, "No space left on device", "/o/x"))
    assert isinstance(new, StorageError) and isinstance(new, OSError) and new.errno == errno.ENOSPC
    assert errors.translate(ValueError("mine")).args == ("mine",)   # unknown: left as it is

    @errors.translated("source")
    def load(source):
        raise UnicodeDecodeError("utf-8", b"\xe9", 0, 1, "invalid continuation byte")

    with pytest.raises(TableError, match=r"^x\.csv is not utf-8 text") as caught:
        load("x.csv")
    assert isinstance(caught.value.__cause__, UnicodeDecodeError)


def test_debug_keeps_the_traceback(tmp_path, capsys):
    out = _dataset(tmp_path)
    os.remove(tfk.load_manifest(out).files[0])
    with pytest.raises(StorageError) as caught:
        main(["--debug", "inspect", str(out)])
    assert isinstance(caught.value.__cause__, FileNotFoundError)


# ----------------------------------------------------------------------------- label tables

@pytest.mark.parametrize("name, text, words", [
    ("empty.csv", "", "empty"),
    ("ragged.csv", "id,label\n0.png,a\n1.png,b,extra,more\n", "ragged.csv"),
    ("quote.csv", 'id,label\n0.png,"a\n1.png,b\n', "quote.csv"),
])
def test_unreadable_tables_exit_2_with_one_sentence(tmp_path, capsys, name, text, words):
    images = _images(tmp_path / "images", 2)
    (tmp_path / name).write_text(text)
    code, err = _cli(capsys, "convert", tmp_path / name, tmp_path / "out", "--images", images,
                     "--label", "label", "--quiet")
    line = _one_sentence(err)
    if code == 0:   # a table reader that copes with it is fine too
        return
    assert code == 2, err
    assert words in line
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def test_latin1_table_is_read_or_refused_with_a_hint(tmp_path, capsys):
    images = _images(tmp_path / "images", 2)
    os.rename(images / "1.png", images / "caf\u00e9.png")
    (tmp_path / "l.csv").write_bytes("id,label\n0.png,a\ncaf\u00e9.png,b\n".encode("latin-1"))
    code = main(["convert", str(tmp_path / "l.csv"), str(tmp_path / "out"), "--images",
                 str(images), "--label", "label", "--quiet", "--jobs", "1"])
    err = capsys.readouterr().err
    if code == 0:   # read as Latin-1: both rows, the accented name intact
        assert tfk.load_manifest(tmp_path / "out").records == 2
    else:
        assert code == 2 and "encoding" in _one_sentence(err)


def test_csv_named_parquet_exits_2_naming_the_file(tmp_path, capsys):
    pytest.importorskip("pyarrow")
    images = _images(tmp_path / "images", 2)
    (tmp_path / "labels.parquet").write_text("id,label\n0.png,a\n1.png,b\n")
    code, err = _cli(capsys, "convert", tmp_path / "labels.parquet", tmp_path / "out",
                     "--images", images, "--label", "label", "--quiet")
    assert code == 2 and "labels.parquet" in _one_sentence(err)


# ----------------------------------------------------------------------------- disks and paths

def test_disk_full_is_one_sentence_and_leaves_no_temporary_or_lock(tmp_path, capsys, monkeypatch):
    images = _images(tmp_path / "images", 4)
    pd.DataFrame({"id": [f"{i}.png" for i in range(4)], "label": list("abab")}).to_csv(
        tmp_path / "labels.csv", index=False)

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device", "shard.tmp")

    monkeypatch.setattr(RecordWriter, "write", full)
    code, err = _cli(capsys, "convert", tmp_path / "labels.csv", tmp_path / "out", "--images",
                     images, "--label", "label", "--jobs", "1", "--quiet")
    assert code == 1
    assert "no space is left on the device" in _one_sentence(err)
    leftovers = [n for n in os.listdir(tmp_path / "out") if ".tmp-" in n or n.endswith(".lock")]
    assert leftovers == []
    assert sorted(os.listdir(images)) == [f"{i}.png" for i in range(4)]   # nothing lost


def test_output_under_a_regular_file_exits_2(tmp_path, capsys):
    images = _images(tmp_path / "images", 2)
    pd.DataFrame({"id": ["0.png", "1.png"], "label": ["a", "b"]}).to_csv(tmp_path / "l.csv",
                                                                          index=False)
    (tmp_path / "file.txt").write_text("keep me")
    code, err = _cli(capsys, "convert", tmp_path / "l.csv", tmp_path / "file.txt" / "out",
                     "--images", images, "--label", "label", "--quiet")
    assert code == 2 and "out_dir" in _one_sentence(err) and "file.txt" in err
    assert (tmp_path / "file.txt").read_text() == "keep me"


def test_inspect_and_index_on_a_deleted_shard_exit_1_naming_it(tmp_path, capsys):
    out = _dataset(tmp_path)
    manifest = tfk.load_manifest(out)
    gone = manifest.files[1]
    os.remove(gone)
    os.remove(gone + ".idx")
    before = _listing(out)
    for command in ("inspect", "index", "verify"):
        code, err = _cli(capsys, command, out)
        assert code == 1, (command, err)
        if command == "verify":
            continue   # verify prints its report on stdout
        line = _one_sentence(err)
        assert os.path.basename(gone) in line, line
    assert _listing(out) == before   # index wrote nothing for the missing shard


# ----------------------------------------------------------------------------- memory

def _huge_claim_gzip(path, inflated=128 << 20):
    """A gzip TFRecord whose only record claims 2**40 bytes, followed by `inflated` zeros
    (gzip members one after another: one stream to a reader, quick to build)."""
    length = struct.pack("<Q", 1 << 40)
    zeros = gzip.compress(bytes(8 << 20), compresslevel=9, mtime=0)
    with open(path, "wb") as f:
        f.write(gzip.compress(length + struct.pack("<I", masked_crc32c(length)), mtime=0))
        for _ in range(inflated // (8 << 20)):
            f.write(zeros)


def test_huge_length_claim_in_gzip_is_corruption_without_allocating_it(tmp_path, capsys):
    path = tmp_path / "bomb.tfrecord.gz"
    _huge_claim_gzip(path)
    assert os.path.getsize(path) < 1 << 20
    tracemalloc.start()
    try:
        report = tfk.verify(path)
        with pytest.raises(tfk.DatasetError, match="needs 1099511627792 bytes"):
            locate.infer(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not report.ok and "file ends inside the record" in report.corrupt[0]["reason"]
    assert peak < 64 << 20, peak   # the stream holds 128 MB of zeros; nothing near it is kept
    code, err = _cli(capsys, "inspect", path)
    assert code == 1 and "bomb.tfrecord.gz" in _one_sentence(err)


def test_huge_length_claim_in_plain_file_is_found_from_its_size(tmp_path):
    length = struct.pack("<Q", 1 << 40)
    path = tmp_path / "claim.tfrecord"
    claim = length + struct.pack("<I", masked_crc32c(length))
    path.write_bytes(frame_record(b"ok") + claim + b"x" * 100)
    report = tfk.verify(path)
    assert report.records_ok == 1 and report.corrupt[0]["record"] == 1
    assert report.corrupt[0]["reason"] == "file ends inside the record"
    with pytest.raises(tfk.DatasetError, match="only 112 remain"):
        locate.count(path)


def test_huge_claim_in_zlib_stream_is_refused_and_a_big_record_still_reads(tmp_path, monkeypatch):
    import zlib

    from tfrecordkit import records

    monkeypatch.setattr(records, "_BIG_READ", 1 << 10)   # "big" from 1 KB on, for a small test
    length = struct.pack("<Q", 1 << 40)
    (tmp_path / "z.tfrecord").write_bytes(zlib.compress(
        length + struct.pack("<I", masked_crc32c(length)) + bytes(1 << 16)))
    with pytest.raises(tfk.DatasetError, match="the record needs"):
        list(records.iter_records(tmp_path / "z.tfrecord"))
    big = os.urandom(5000)
    for compression, name in (("zlib", "b.tfrecord"), ("gzip", "b.tfrecord.gz")):
        with open(tmp_path / name, "wb") as f, RecordWriter(f, compression) as w:
            w.write(b"a")
            w.write(big)
            w.write(b"c")
        assert [r.data for r in records.iter_records(tmp_path / name)] == [b"a", big, b"c"]


# ----------------------------------------------------------------------------- resume

def test_resume_on_a_complete_dataset_rewrites_a_shard_with_a_flipped_byte(tmp_path, capsys):
    out = _dataset(tmp_path)
    manifest = tfk.load_manifest(out)
    shard = manifest.files[0]
    original = open(shard, "rb").read()
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0x01
    open(shard, "wb").write(bytes(damaged))
    code = main(["convert", str(tmp_path / "labels.csv"), str(out), "--images",
                 str(tmp_path / "images"), "--label", "label", "--num-shards", "2", "--jobs", "1",
                 "--seed", "3", "--resume", "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert open(shard, "rb").read() == original
    assert hashlib.sha256(original).hexdigest() == manifest.shards[0].sha256
    assert tfk.verify(out).ok
    assert not [n for n in os.listdir(out) if n.startswith((".repair", ".tfrecordkit"))]


def test_resume_repairs_a_split_dataset_and_refuses_when_the_source_changed(tmp_path, capsys):
    images = _images(tmp_path / "images", 8)
    frame = pd.DataFrame({"id": [f"{i}.png" for i in range(8)], "label": list("ab" * 4)})
    options = dict(images=images, label="label", split="train=0.5,val=0.5", num_shards=2,
                   jobs=1, seed=5, progress=False)
    out = tmp_path / "out"
    manifest = tfk.write_frame(frame, out, **options)
    val = [f for f in manifest.files if "/val/" in f][1]
    original = open(val, "rb").read()
    open(val, "wb").write(original[:-1] + bytes([original[-1] ^ 1]))
    tfk.write_frame(frame, out, resume=True, **options)
    assert open(val, "rb").read() == original and tfk.verify(out).ok
    # Damaged again, and the source changed since: refused, nothing replaced.
    os.remove(val)
    Image.new("RGB", (8, 8), (1, 2, 3)).save(images / "0.png")
    Image.new("RGB", (8, 8), (1, 2, 3)).save(images / "1.png")
    before = _listing(out)
    with pytest.raises(DatasetError, match="the source changed since the dataset was written"):
        tfk.write_frame(frame, out, resume=True, **options)
    assert _listing(out) == before


# ----------------------------------------------------------------------------- special files

class _FifoGuard:
    """Frees a reader blocked on the FIFO after `seconds` (by opening its other end), so a
    regression fails the test instead of hanging it; `hung` says whether it had to."""

    def __init__(self, path, seconds=20):
        import threading

        self.path, self.hung, self._stop = str(path), False, threading.Event()
        self._thread = threading.Thread(target=self._free, args=(seconds,), daemon=True)

    def _free(self, seconds):
        if self._stop.wait(seconds):
            return
        while not self._stop.is_set():
            try:
                os.close(os.open(self.path, os.O_WRONLY | os.O_NONBLOCK))
                self.hung = True
            except OSError:   # ENXIO: nobody is reading, nothing to free
                pass
            time.sleep(0.1)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_image_in_a_table_neither_hangs_nor_leaves_a_lock_or_temporary(tmp_path, capsys):
    images = _images(tmp_path / "images", 3)
    os.mkfifo(images / "x.jpg")
    pd.DataFrame({"id": ["0.png", "x.jpg", "1.png"], "label": ["a", "b", "a"]}).to_csv(
        tmp_path / "l.csv", index=False)
    out = tmp_path / "out"
    args = ["convert", tmp_path / "l.csv", out, "--images", images, "--label", "label",
            "--jobs", "1", "--quiet"]
    with _FifoGuard(images / "x.jpg") as guard:
        code, err = _cli(capsys, *args)
        assert code == 1 and not guard.hung
        line = _one_sentence(err)
        assert "x.jpg" in line and "FIFO" in line
        assert not out.exists() or os.listdir(out) == []   # no lock, no temporary file
        code, err = _cli(capsys, *args, "--on-error", "skip")
        assert code == 0 and not guard.hung, err
    assert tfk.load_manifest(out).records == 2
    assert not [n for n in os.listdir(out) if ".tmp-" in n or n.endswith(".lock")]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_tfrecord_is_refused_by_index_verify_and_inspect_without_hanging(tmp_path, capsys):
    folder = tmp_path / "records"
    folder.mkdir()
    fifo = folder / "pipe.tfrecord"
    os.mkfifo(fifo)
    with _FifoGuard(fifo) as guard:
        for command in ("index", "verify", "inspect"):
            for target in (folder, fifo):
                code, err = _cli(capsys, command, target)
                assert code == 1 and not guard.hung, (command, target, err)
                if command != "verify" or err:
                    _one_sentence(err)
        with pytest.raises(OSError, match="FIFO"):
            storage.require_regular_file(fifo, "TFRecord file")
        from tfrecordkit.records import iter_records, write_index

        for call in (lambda: list(iter_records(fifo)), lambda: write_index(fifo)):
            with pytest.raises(OSError, match="is a FIFO"):
                call()
    assert not guard.hung and os.listdir(folder) == ["pipe.tfrecord"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_in_place_of_a_listed_shard_is_refused_before_any_reader_opens_it(tmp_path, capsys):
    out = _dataset(tmp_path)
    shard = tfk.load_manifest(out).files[0]
    os.remove(shard)
    os.mkfifo(shard)
    with _FifoGuard(shard) as guard:
        with pytest.raises(DatasetError, match=r"which is a FIFO \(named pipe\), not a regular"):
            tfk.read(out)
        for command in ("verify", "inspect", "index"):
            code, err = _cli(capsys, command, out)
            assert code == 1 and "is a FIFO" in _one_sentence(err), (command, err)
    assert not guard.hung


# ----------------------------------------------------------------------------- confinement

def test_dataset_json_naming_files_outside_is_refused_and_nothing_is_written(tmp_path, capsys):
    out = _dataset(tmp_path)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "v.tfrecord").write_bytes(frame_record(b"private"))
    data = json.loads((out / "dataset.json").read_text())
    for name in ("../victim/v.tfrecord", "/etc/hostname", str(victim / "v.tfrecord")):
        data["shards"][0]["file"] = name
        (out / "dataset.json").write_text(json.dumps(data))
        before = _listing(tmp_path)
        for command in ("index", "verify", "inspect"):
            code, err = _cli(capsys, command, out)
            assert code == 1, (command, name)
            assert "outside its directory" in _one_sentence(err), err
        with pytest.raises(DatasetError, match="outside its directory"):
            tfk.read(out)
        assert _listing(tmp_path) == before
    os.symlink(victim / "v.tfrecord", out / "link.tfrecord")   # a link out is outside too
    data["shards"][0]["file"] = "link.tfrecord"
    (out / "dataset.json").write_text(json.dumps(data))
    with pytest.raises(DatasetError, match="'link.tfrecord', which is outside"):
        tfk.load_manifest(out)


def test_symlinked_class_folder_out_of_the_source_leaves_no_class(tmp_path, capsys):
    root = tmp_path / "classes"
    _images(root / "cat", 2)
    _images(root / "dog", 2)
    _images(tmp_path / "elsewhere", 2)
    os.symlink(tmp_path / "elsewhere", root / "ghost")
    code = main(["convert", str(root), str(tmp_path / "out"), "--jobs", "1", "--quiet"])
    assert code == 0, capsys.readouterr().err
    manifest = tfk.load_manifest(tmp_path / "out")
    assert manifest.vocabularies["label"] == ["cat", "dog"] and manifest.records == 4


# ----------------------------------------------------------------------------- extreme shapes

def test_a_20000x1_strip_converts_and_reads_with_pad_and_crop(tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (20000, 1), (200, 10, 10)).save(images / "strip.png")
    Image.new("RGB", (1, 300), (10, 200, 10)).save(images / "pole.png")
    pd.DataFrame({"id": ["strip.png", "pole.png"], "label": ["a", "b"]}).to_csv(
        tmp_path / "l.csv", index=False)
    for mode in ("pad", "crop"):
        code = main(["convert", str(tmp_path / "l.csv"), str(tmp_path / mode), "--images",
                     str(images), "--label", "label", "--image-size", "16", "--resize-mode",
                     mode, "--jobs", "1", "--quiet"])
        assert code == 0, capsys.readouterr().err
        assert tfk.load_manifest(tmp_path / mode).image["size"] == [16, 16]
    # Read side: the reader's own resizing (what read and predict run inside tf.data).
    import tensorflow as tf

    from tfrecordkit.options import ReadOptions
    from tfrecordkit.preprocess import resizer

    strip = tf.constant(np.full((1, 20000, 3), 200, np.uint8))
    pole = tf.constant(np.full((300, 1, 3), 200, np.uint8))
    for mode in ("pad", "crop"):
        fit = resizer(ReadOptions(image_size=16, resize_mode=mode), (16, 16))
        for image in (strip, pole):
            out = fit(image, True).numpy()
            assert out.shape == (16, 16, 3) and out.max() > 100
        if mode == "pad":   # one row (column) in the middle, black around it
            out = fit(strip, True).numpy()
            assert out[7].min() > 100 and out[:7].max() == 0 and out[8:].max() == 0
            out = fit(pole, False).numpy()
            assert out[:, 7].min() > 100 and out[:, :7].max() == 0


def test_pad_resize_keeps_at_least_one_pixel_each_way():
    from tfrecordkit.images import resize

    out = resize(Image.new("RGB", (20000, 1), (255, 0, 0)), (16, 16), "pad")
    assert out.size == (16, 16)
    pixels = np.asarray(out)
    assert pixels[7, :, 0].min() == 255 and pixels[:7].max() == 0 and pixels[8:].max() == 0
    normal = resize(Image.new("RGB", (40, 20), (255, 0, 0)), (16, 16), "pad")
    assert np.asarray(normal)[4:12, :, 0].min() > 200   # ordinary images as before


# ----------------------------------------------------------------------------- corrupt records

def test_corrupt_record_while_reading_names_the_file(tmp_path):
    import tensorflow as tf

    out = _dataset(tmp_path, n=8, shards=2)
    shard = tfk.load_manifest(out).files[1]
    data = bytearray(open(shard, "rb").read())
    data[40] ^= 0xFF   # inside the first record's data
    open(shard, "wb").write(bytes(data))
    with pytest.raises(tf.errors.DataLossError) as caught:
        for _ in tfk.read(out, shuffle=False, on_corrupt="raise"):
            pass
    message, code = explain(caught.value)
    assert code == 1 and message.startswith(f"{shard}: corrupt TFRecord data"), message


# ----------------------------------------------------------------------------- orphans

def _children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc")
def test_workers_exit_within_seconds_after_kill_9_of_the_main_process(tmp_path):
    script = ("import time, tfrecordkit.pool as w\n"
              "w.start_workers(2, None)\n"
              "w._starting.join()\n"
              "print('ready', flush=True)\n"
              "time.sleep(120)\n")
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        workers = [p for p in _children(proc.pid)
                   if "loky" in open(f"/proc/{p}/cmdline").read()]
        assert len(workers) >= 2
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.1)
    assert not [p for p in workers if _alive(p)]
