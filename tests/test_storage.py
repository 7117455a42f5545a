"""Paths through tf.io.gfile: the same conversions, reads and checks on a URL as on disk.

ram:// (TensorFlow's in-process file system) stands for an object store, and file:// for a
URL that other processes see too; both go through the gfile code path, as gs:// would.
"""
import json
import os
import subprocess
import sys
import uuid

import numpy as np
import pytest

import tfrecordkit as tfk
from tfrecordkit import storage
from tfrecordkit.records import iter_records

tf = pytest.importorskip("tensorflow")


def ram_url(name: str) -> str:
    return f"ram://tfk-{name}-{uuid.uuid4().hex[:8]}"


def copy_tree(local: str, url: str) -> None:
    for directory, _, files in os.walk(local):
        target = storage.join(url, os.path.relpath(directory, local).replace(os.sep, "/")) \
            if directory != local else url
        storage.makedirs(target)
        for name in files:
            with open(os.path.join(directory, name), "rb") as f, \
                    storage.open(storage.join(target, name), "wb") as out:
                out.write(f.read())


def shard_bytes(directory: str) -> dict[str, bytes]:
    """Every shard, index and manifest-listed file of a dataset, by its path inside it."""
    out = {}
    manifest = tfk.load_manifest(directory)
    parts = [manifest] + [tfk.load_manifest(directory, n) for n in manifest.splits]
    for m in parts:
        for file in m.files:
            rel = file[len(manifest.directory):].lstrip("/")
            for path, key in ((file, rel), (file + ".idx", rel + ".idx")):
                with storage.open(path, "rb") as f:
                    out[key] = f.read()
    return out


@pytest.mark.parametrize("kind", ["local", "file", "ram"])
def test_storage_functions_agree_on_disk_and_through_gfile(tmp_path, kind):
    base = {"local": str(tmp_path / "d"), "file": "file://" + str(tmp_path / "d"),
            "ram": ram_url("fs")}[kind]
    assert storage.is_remote(base) == (kind != "local")
    sub = storage.join(base, "a", "b")
    storage.makedirs(sub)
    with storage.open(storage.join(sub, "x.bin"), "wb") as f:
        f.write(b"\x00\x01\x02")
    with storage.open(storage.join(base, "top.txt"), "w", encoding="utf-8") as f:
        f.write("héllo\n")
    assert storage.isdir(sub) and not storage.isdir(storage.join(sub, "x.bin"))
    assert storage.isfile(storage.join(sub, "x.bin")) and not storage.isfile(sub)
    assert storage.getsize(storage.join(sub, "x.bin")) == 3
    assert sorted(storage.listdir(base)) == ["a", "top.txt"]
    assert storage.glob(storage.join(sub, "*.bin")) == [storage.join(sub, "x.bin")]
    walked = [(d, sorted(s), sorted(f)) for d, s, f in storage.walk(base)]
    assert walked == [(base, ["a"], ["top.txt"]), (storage.join(base, "a"), ["b"], []),
                      (sub, [], ["x.bin"])]
    with storage.open(storage.join(base, "top.txt"), "r", encoding="utf-8") as f:
        assert f.read() == "héllo\n"
    storage.replace(storage.join(sub, "x.bin"), storage.join(sub, "y.bin"))
    with storage.open(storage.join(sub, "y.bin"), "rb") as f:
        assert f.read(2) == b"\x00\x01" and f.read() == b"\x02"
    with pytest.raises(FileNotFoundError):
        storage.open(storage.join(sub, "x.bin"), "rb")
    with pytest.raises(FileExistsError):
        storage.open(storage.join(sub, "y.bin"), "xb")
    with pytest.raises(OSError):
        storage.rmdir(sub)   # not empty
    storage.remove(storage.join(sub, "y.bin"))
    storage.rmdir(sub)
    assert not storage.exists(sub) and storage.exists(storage.join(base, "a"))


def test_convert_read_inspect_verify_on_a_url_equal_the_local_run(tmp_path, table):
    frame, images = table
    options = dict(images=images, label="colour", multi_label="tags", split="train=0.7,val=0.3",
                   num_shards=2, seed=3, jobs=1, progress=False)
    local = tfk.write_frame(frame, tmp_path / "local", **options)
    url = ram_url("out") + "/out"
    remote = tfk.write_frame(frame, url, **options)
    assert remote.directory == url and remote.splits == local.splits
    assert shard_bytes(url) == shard_bytes(str(tmp_path / "local"))
    assert sorted(storage.listdir(url)) == ["dataset.json", "train", "val"]   # no journal left

    ds = tfk.read(url, split="val", shuffle=False, image_size=(16, 16), label="colour")
    got = [(x.numpy(), y.numpy()) for x, y in ds.unbatch()]
    want = [(x.numpy(), y.numpy()) for x, y in
            tfk.read(tmp_path / "local", split="val", shuffle=False, image_size=(16, 16),
                     label="colour").unbatch()]
    assert len(got) == local.splits["val"] > 0
    assert all(np.array_equal(a[0], b[0]) and a[1] == b[1] for a, b in zip(got, want))

    assert tfk.count(url) == len(frame)
    assert tfk.verify(storage.join(url, "train")).records_ok == local.splits["train"]
    rows = tfk.inspect(storage.join(url, "val"), n=3)
    assert rows["image_name"].tolist() == tfk.inspect(tmp_path / "local" / "val", n=3)["image_name"].tolist()
    stats = tfk.stats(url)
    assert stats.shards["records"].sum() == len(frame)


def test_a_url_source_table_and_class_folder_give_the_local_records(tmp_path, table, folder):
    frame, images = table
    src = ram_url("src")
    copy_tree(str(images), storage.join(src, "images"))
    frame.to_csv(tmp_path / "labels.csv", index=False)
    with open(tmp_path / "labels.csv", "rb") as f, \
            storage.open(storage.join(src, "labels.csv"), "wb") as out:
        out.write(f.read())
    options = dict(label="colour", columns=("score", "note"), num_shards=2, seed=5, jobs=1,
                   progress=False)
    tfk.convert(tmp_path / "labels.csv", tmp_path / "a", images=images, **options)
    tfk.convert(storage.join(src, "labels.csv"), tmp_path / "b",
                images=storage.join(src, "images"), **options)
    assert shard_bytes(str(tmp_path / "a")) == shard_bytes(str(tmp_path / "b"))
    assert tfk.load_manifest(tmp_path / "b").options["images"] == storage.join(src, "images")

    copy_tree(str(folder), storage.join(src, "classes"))
    tfk.convert(folder, tmp_path / "c", num_shards=1, seed=1, jobs=1, progress=False)
    tfk.convert(storage.join(src, "classes"), tmp_path / "d", num_shards=1, seed=1, jobs=1,
                progress=False)
    assert shard_bytes(str(tmp_path / "c")) == shard_bytes(str(tmp_path / "d"))
    assert tfk.load_manifest(tmp_path / "d").records == 24


def test_a_missing_image_on_a_url_is_a_reported_row(tmp_path, table):
    frame, images = table
    src = ram_url("missing")
    copy_tree(str(images), src)
    storage.remove(storage.join(src, frame["image_name"][4]))
    m = tfk.write_frame(frame, tmp_path / "out", images=src, label="colour", on_error="skip",
                        jobs=1, progress=False)
    assert (m.records, m.skipped) == (len(frame) - 1, 1)
    errors = (tmp_path / "out" / "errors.csv").read_text().splitlines()
    assert errors[1].startswith(f"4,{frame['image_name'][4]},{src}/") and "file not found" in errors[1]


def test_worker_processes_write_to_a_url_all_of_them_see(tmp_path, table):
    # file:// goes through gfile in each loky worker (which then imports TensorFlow).
    frame, images = table
    options = dict(images=images, label="colour", num_shards=2, seed=2, progress=False)
    tfk.write_frame(frame, tmp_path / "local", jobs=1, **options)
    url = "file://" + str(tmp_path / "url")
    m = tfk.write_frame(frame, url, jobs=2, **options)
    assert m.directory == url
    assert shard_bytes(url) == shard_bytes(str(tmp_path / "local"))


def test_cli_inspect_and_verify_take_a_url(tmp_path, table):
    frame, images = table
    url = "file://" + str(tmp_path / "out")
    tfk.write_frame(frame, url, images=images, label="colour", num_shards=2, jobs=1, progress=False)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-m", "tfrecordkit", "inspect", url, "--json"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["records"] == len(frame) and all(f.startswith("file://") for f in info["files"])
    out = subprocess.run([sys.executable, "-m", "tfrecordkit", "verify", url, "--json"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0 and json.loads(out.stdout)["records_ok"] == len(frame)
    records = [r.data for f in tfk.load_manifest(url).files for r in iter_records(f)]
    assert len(records) == len(frame)
