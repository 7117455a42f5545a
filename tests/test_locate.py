"""locate: any path -> files, counts and manifest, and what it says when a path is none."""
import gzip
import io
import json
import os
import zlib

import pytest

import tfrecordkit as tfk
from tfrecordkit import write
from tfrecordkit.cli import main
from tfrecordkit.errors import DatasetError, OptionError
from tfrecordkit.example import encode_example
from tfrecordkit.locate import LOCK_NAME, RUN_NAME, locate, split_of
from tfrecordkit.records import RecordWriter, format_index, index_entries


def shard(path, labels, compression=None, start=0):
    """A TFRecord file of Examples (no image): id bytes and an int64 label per record."""
    buffer = io.BytesIO()
    with RecordWriter(buffer, compression) as writer:
        for i, label in enumerate(labels):
            writer.write(encode_example({"image/filename": ("bytes", [f"f{start + i}.jpg".encode()]),
                                         "image/class/label": ("int64", [label])}))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return str(path)


def test_directory_of_extensionless_shards_passes_over_everything_else(tmp_path):
    d = tmp_path / "imagenet"
    a = shard(d / "train-00000-of-00002", [1, 2, 3])
    b = shard(d / "train-00001-of-00002", [4, 5], start=3)
    (d / "README").write_text("ImageNet shards, written by build_imagenet_data.py\n")
    (d / "dataset_info.json").write_text("{}")
    (d / "errors.csv").write_text("row,id,source,reason\n")
    (d / ".hidden-00000-of-00001").write_bytes((d / "train-00000-of-00002").read_bytes())
    (d / "train-00000-of-00002.idx").write_text("not an index\n")
    os.mkfifo(d / "fifo")                        # never opened: reading it would hang
    loc = locate(d)
    assert loc.files == (a, b) and loc.compression == "none" and loc.inferred
    assert loc.counts == (3, 2) and loc.counted_from == "framing scan"
    assert tfk.count(d) == 5 and tfk.infer(d).scanned == 5
    # an .idx that agrees with the file is used for the count
    (d / "train-00000-of-00002.idx").write_text(format_index(index_entries(a)))
    assert locate(d).counted_from == ".idx and framing scan"
    # a glob and a single file name the same records
    assert locate(str(d / "train-*")).files == (a, b)
    assert locate(a).counts == (3,)


def test_compressed_shards_are_sniffed_without_extensions(tmp_path):
    d = tmp_path / "d"
    a = shard(d / "part-0", [0, 1], "gzip")
    b = shard(d / "part-1", [1, 0], "zlib")
    (d / "notes.gz").write_bytes(gzip.compress(b"just some text, gzipped"))
    (d / "blob.z").write_bytes(zlib.compress(b"x" * 100))
    loc = locate(d)
    assert loc.files == (a, b) and loc.compression == "mixed" and loc.counts == (2, 2)
    assert locate(a).compression == "gzip" and locate(b).compression == "zlib"
    with pytest.raises(DatasetError, match="differ in compression"):
        tfk.read(d, image_size=8)


@pytest.mark.parametrize("kind", ["missing", "empty", "not tfrecord dir", "not tfrecord file",
                                  "glob", "foreign"])
def test_messages_say_what_the_path_is(tmp_path, kind):
    path = tmp_path / "p"
    expected = {
        "missing": r"'.*p' does not exist \(no such file or directory\)",
        "empty": r"'.*p' is an empty directory",
        "not tfrecord dir": r"holds no TFRecord file and no dataset.json: none of its 2 entries "
                            r"\(a.txt, b.json\) starts with TFRecord framing",
        "not tfrecord file": r"is not a TFRecord file: its first bytes are not TFRecord framing",
        "glob": r"matches no TFRecord file",
        "foreign": r"holds TFRecord files but no dataset.json \(they were not written by "
                   r"tfrecordkit convert\).*index .* --manifest` writes one",
    }[kind]
    if kind == "empty":
        path.mkdir()
    elif kind == "not tfrecord dir":
        path.mkdir()
        (path / "a.txt").write_text("hello")
        (path / "b.json").write_text("{}")
    elif kind == "not tfrecord file":
        path.write_bytes(b"\xff\xd8\xff\xe0 a jpeg, say")
    elif kind == "glob":
        path = tmp_path / "*.tfrecord"
    elif kind == "foreign":
        shard(path / "train-00000-of-00001", [1])
    for call in (lambda: tfk.load_manifest(path), lambda: tfk.verify(path) if kind != "foreign" else
                 tfk.load_manifest(path), lambda: tfk.count(path) if kind != "foreign" else
                 tfk.load_manifest(path)):
        with pytest.raises(DatasetError, match=expected) as e:
            call()
        assert "--resume" not in str(e.value)


def _interrupted(tmp_path, table, split=None):
    """A real conversion whose end is undone the way a kill leaves it: dataset.json not yet
    written, the run file and the shards' done marks still there."""
    frame, images = table
    out = tmp_path / "out"
    tfk.write_frame(frame.head(12), out, images=images, label="colour", num_shards=2, seed=0,
                    split=split, progress=False)
    for directory in [out, *(out / s for s in (["train", "val"] if split else []))]:
        (directory / "dataset.json").unlink()
        for name in os.listdir(directory):
            if name.endswith(".tfrecord"):
                (directory / f".{name}.done.json").write_text("{}")
    (out / RUN_NAME).write_text(json.dumps({"run": "x", "seed": 0, "pid": 1}))
    return out


def test_interrupted_conversion_is_incomplete_everywhere_and_only_then_suggests_resume(
        tmp_path, table, capsys):
    assert (RUN_NAME, LOCK_NAME) == (write.RUN_NAME, write.LOCK_NAME)
    out = _interrupted(tmp_path, table)
    for call in (lambda: tfk.count(out), lambda: tfk.load_manifest(out),
                 lambda: tfk.read(out, image_size=8), lambda: tfk.stats(out)):
        with pytest.raises(DatasetError, match=r"holds an unfinished tfrecordkit conversion "
                                               r"\(\.tfrecordkit\.run\.json is there, dataset\.json "
                                               r"is not\).*--resume"):
            call()
    report = tfk.verify(out)
    assert not report.ok and report.records_ok == 12 and not report.corrupt
    assert "--resume" in report.incomplete
    assert main(["verify", str(out)]) == 1
    assert "12 records ok in 2 files; INCOMPLETE" in capsys.readouterr().out
    assert main(["verify", str(out), "--json"]) == 1
    assert "unfinished" in json.loads(capsys.readouterr().out)["incomplete"]
    assert main(["inspect", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["records"] == 12 and "unfinished" in info["incomplete"]
    assert main(["inspect", str(out)]) == 0
    assert capsys.readouterr().out.startswith("INCOMPLETE: ")
    assert main(["index", str(out), "--manifest"]) == 1   # never makes it look complete
    assert "unfinished" in capsys.readouterr().err
    # the done marks alone (the run file gone) still tell
    (out / RUN_NAME).unlink()
    with pytest.raises(DatasetError, match=r"\(\.train-00000-of-00002\.tfrecord\.done\.json is there"):
        tfk.count(out)


def test_split_of_an_interrupted_split_conversion_is_incomplete(tmp_path, table):
    out = _interrupted(tmp_path, table, split="train=0.5,val=0.5")
    with pytest.raises(DatasetError, match="unfinished tfrecordkit conversion"):
        tfk.count(out / "train")
    with pytest.raises(DatasetError, match="unfinished tfrecordkit conversion"):
        tfk.read(out, split="val", image_size=8)
    assert not tfk.verify(out / "val").ok


def test_splits_from_shard_names(tmp_path, capsys):
    d = tmp_path / "imagenet"
    train = shard(d / "train-00000-of-00001", [1, 2, 3])
    val = shard(d / "validation-00000-of-00001", [3, 1])
    loc = locate(d)
    assert loc.splits == ("train", "validation") and loc.records == 5
    assert locate(d, "validation").files == (val,) and locate(d, "train").records == 3
    assert tfk.count(d, "validation") == 2
    with pytest.raises(DatasetError, match=r"has no split 'test'; its splits are: train, validation"):
        locate(d, "test")
    with pytest.raises(OptionError, match=r"holds the splits train, validation; pass split='train'\."):
        tfk.read(d, image_size=8)
    assert main(["index", str(d), "--manifest"]) == 1
    assert "holds the shards of several splits (train, validation)" in capsys.readouterr().err
    assert split_of("mnist-test.tfrecord-00000-of-00001") == "test"
    assert split_of("train-00003-of-00004.tfrecord.gz") == "train"
    assert split_of("part-0") is None
    assert train


def test_index_writes_missing_idx_files_and_refuses_foreign_options_without_manifest(tmp_path, capsys):
    d = tmp_path / "d"
    a = shard(d / "train-00000-of-00001", [1, 2])
    assert main(["index", str(d)]) == 0
    assert capsys.readouterr().out.strip() == a + ".idx"
    assert open(a + ".idx").read() == format_index(index_entries(a))
    assert main(["index", str(d)]) == 0 and capsys.readouterr().out == ""
    assert main(["index", str(d), "--label", "image/class/label"]) == 2
    assert "`--label` goes with --manifest" in capsys.readouterr().err


def test_index_manifest_of_a_glob_refuses_a_directory_holding_other_shards(tmp_path, capsys):
    d = tmp_path / "imagenet"
    shard(d / "train-00000-of-00001", [1, 2, 3])
    shard(d / "validation-00000-of-00001", [3, 1])
    assert main(["index", str(d / "validation-*"), "--manifest"]) == 1
    assert "which holds other TFRecord files too (train-00000-of-00001); move" in capsys.readouterr().err
    assert not (d / "dataset.json").exists()
