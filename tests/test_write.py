import json
import os

import pandas as pd
import pytest

import tfrecordkit as tfk
from tfrecordkit.errors import OptionError, SourceError
from tfrecordkit.example import decode_example
from tfrecordkit.records import format_index, index_entries, iter_records


def records_of(directory):
    """Every record of a dataset directory, decoded without TensorFlow, in manifest order."""
    manifest = tfk.load_manifest(directory)
    return [decode_example(r.data) for f in manifest.files for r in iter_records(f)]


def test_round_trip_every_byte_and_label_with_plain_tf_data(tmp_path, table):
    import tensorflow as tf

    frame, images = table
    m = tfk.write_frame(frame, tmp_path / "out", images=images, label="colour",
                        multi_label="tags", num_shards=3, seed=5, progress=False)
    assert (m.records, m.source_rows, m.skipped, len(m.shards)) == (30, 30, 0, 3)
    vocab_colour, vocab_tags = m.vocabularies["colour"], m.vocabularies["tags"]
    assert vocab_colour == ["blue", "green", "red"] and vocab_tags == ["bright", "odd", "warm"]
    spec = {
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        "image/format": tf.io.FixedLenFeature([], tf.string),
        "image/height": tf.io.FixedLenFeature([], tf.int64),
        "image/width": tf.io.FixedLenFeature([], tf.int64),
        "image/channels": tf.io.FixedLenFeature([], tf.int64),
        "image/filename": tf.io.FixedLenFeature([], tf.string),
        "image_name": tf.io.FixedLenFeature([], tf.string),
        "colour": tf.io.FixedLenFeature([], tf.int64),
        "tags": tf.io.VarLenFeature(tf.int64),
        "score": tf.io.FixedLenFeature([], tf.float32),
        "count": tf.io.FixedLenFeature([], tf.int64),
        "note": tf.io.FixedLenFeature([], tf.string),
    }
    seen = {}
    for serialized in tf.data.TFRecordDataset(m.files):
        ex = tf.io.parse_single_example(serialized, spec)
        name = ex["image_name"].numpy().decode()
        seen[name] = ex
    assert sorted(seen) == sorted(frame["image_name"])
    by_name = frame.set_index("image_name")
    for name, ex in seen.items():
        row = by_name.loc[name]
        raw = (images / name).read_bytes()
        assert ex["image/encoded"].numpy() == raw
        assert ex["image/format"].numpy() == (b"png" if name.endswith(".png") else b"jpeg")
        assert ex["image/filename"].numpy().decode() == name
        h, w = (24, 20) if int(name[4:7]) % 2 else (16, 28)
        assert (int(ex["image/height"]), int(ex["image/width"]), int(ex["image/channels"])) == (h, w, 3)
        assert vocab_colour[int(ex["colour"])] == row["colour"]
        tags = [vocab_tags[i] for i in tf.sparse.to_dense(ex["tags"]).numpy()]
        assert sorted(tags) == sorted(row["tags"].split())
        assert float(ex["score"]) == pytest.approx(row["score"])
        assert int(ex["count"]) == row["count"] and ex["note"].numpy().decode() == row["note"]


def test_dataset_json_and_index_files(tmp_path, table):
    frame, images = table
    m = tfk.write_frame(frame, tmp_path / "out", images=images, label="colour", num_shards=2,
                        seed=1, progress=False)
    data = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert data["format_version"] == 1 and data["records"] == 30 and data["skipped"] == 0
    assert data["source_rows"] == 30 and data["options"]["seed"] == 1
    assert data["schema"]["features"]["colour"]["vocabulary"] == ["blue", "green", "red"]
    assert [s["file"] for s in data["shards"]] == ["train-00000-of-00002.tfrecord",
                                                   "train-00001-of-00002.tfrecord"]
    for shard, path in zip(data["shards"], m.files):
        assert shard["bytes"] == os.path.getsize(path)
        idx = open(path + ".idx").read()
        assert idx == format_index(index_entries(path))
        assert len(idx.splitlines()) == shard["records"]
        first = idx.splitlines()[0].split()
        assert first[0] == "0" and int(first[1]) == len(next(iter_records(path)).data) + 16
    assert sorted(os.listdir(tmp_path / "out")) == sorted(
        ["dataset.json"] + [s["file"] for s in data["shards"]] + [s["file"] + ".idx" for s in data["shards"]])


def test_write_order_is_seeded(tmp_path, table):
    frame, images = table
    ids = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        tfk.write_frame(frame, tmp_path / name, images=images, seed=seed, progress=False)
        ids.append([r["image_name"][1][0] for r in records_of(tmp_path / name)])
    assert ids[0] == ids[1] and ids[0] != ids[2] and sorted(ids[0]) == sorted(ids[2])
    tfk.write_frame(frame, tmp_path / "d", images=images, shuffle=False, progress=False)
    assert [r["image_name"][1][0].decode() for r in records_of(tmp_path / "d")] == frame["image_name"].tolist()


def test_splits_disjoint_complete_stratified(tmp_path, table):
    frame, images = table
    m = tfk.write_frame(frame, tmp_path / "out", images=images, label="colour",
                        split="train=0.7,val=0.3", seed=2, jobs=2, progress=False)
    assert m.splits == {"train": 21, "val": 9}
    train = [r["image_name"][1][0] for r in records_of(tmp_path / "out" / "train")]
    val = [r["image_name"][1][0] for r in records_of(tmp_path / "out" / "val")]
    assert not set(train) & set(val)
    assert sorted(train + val) == sorted(n.encode() for n in frame["image_name"])
    val_colours = frame.set_index("image_name").loc[[v.decode() for v in val], "colour"]
    assert val_colours.value_counts().tolist() == [3, 3, 3]     # 30% of each class of 10
    assert tfk.load_manifest(tmp_path / "out", split="val").records == 9
    assert all(f.startswith(str(tmp_path / "out" / "val")) for f in tfk.load_manifest(tmp_path / "out", "val").files)


def test_resize_raw_gzip_by_size(tmp_path, table):
    import tensorflow as tf

    frame, images = table
    m = tfk.write_frame(frame, tmp_path / "out", images=images, image_size="12x10",
                        image_format="raw", compression="gzip", shard_size="2KB", progress=False)
    assert all(f.endswith(".tfrecord.gz") for f in m.files)
    assert len(m.files) == 8      # ceil(30 x (360 pixel bytes + 128 estimated overhead) / 2 KB)
    assert m.image == {"format": "raw", "size": [12, 10], "channels": 3, "kept_bytes": 0}
    records = list(tf.data.TFRecordDataset(m.files, compression_type="GZIP"))
    assert len(records) == 30
    ex = tf.io.parse_single_example(records[0], {"image/encoded": tf.io.FixedLenFeature([], tf.string)})
    assert len(ex["image/encoded"].numpy()) == 12 * 10 * 3


def test_folder_source(tmp_path, folder):
    m = tfk.write_folder(folder, tmp_path / "out", progress=False, seed=0)
    assert m.records == 24 and m.vocabularies["label"] == ["Blue", "Green", "Red"]
    got = {r["id"][1][0].decode(): r["label"][1][0] for r in records_of(tmp_path / "out")}
    assert got["Red/3.png"] == 2 and got["Blue/0.png"] == 0 and len(got) == 24
    with pytest.raises(OptionError, match="`images` does not apply to a folder source"):
        tfk.write_folder(folder, tmp_path / "x", images="elsewhere")


def test_bad_rows_raise_or_skip(tmp_path, table):
    frame, images = table
    (images / "img_003.jpg").write_bytes(b"")
    frame.loc[5, "colour"] = None
    frame.loc[7, "image_name"] = "missing.jpg"
    with pytest.raises(SourceError, match=r"row \d+ \(id '.*', file .*\): .*; fix or remove the row"):
        tfk.write_frame(frame, tmp_path / "a", images=images, label="colour", shuffle=False,
                        progress=False, jobs=1)
    assert not (tmp_path / "a").exists()      # the directory is left as it was: absent

    m = tfk.write_frame(frame, tmp_path / "b", images=images, label="colour", on_error="skip",
                        progress=False)
    assert (m.records, m.skipped, m.source_rows) == (27, 3, 30)
    errors = pd.read_csv(tmp_path / "b" / "errors.csv")
    assert errors.columns.tolist() == ["row", "id", "source", "reason"]
    assert errors["row"].tolist() == [3, 5, 7]
    assert errors["reason"].tolist() == ["file is empty (0 bytes)", "label `colour` is missing",
                                         "file not found"]
    assert errors["source"][0].endswith("img_003.jpg")


def test_out_dir_must_be_new_and_options_checked_first(tmp_path, table):
    frame, images = table
    tfk.write_frame(frame, tmp_path / "out", images=images, progress=False)
    with pytest.raises(OptionError, match="already holds a complete dataset"):
        tfk.write_frame(frame, tmp_path / "out", images=images, progress=False)
    with pytest.raises(OptionError, match="Unknown option `lable`"):
        tfk.write_frame(frame, tmp_path / "x", images=images, lable="colour")
    with pytest.raises(OptionError, match=r"`label` names column 'color', which is not in the table; "
                                          r"the columns are: image_name, colour, tags, score, count, note\."):
        tfk.write_frame(frame, tmp_path / "x", images=images, label="color")
    assert not (tmp_path / "x").exists()


def test_resume_keeps_complete_shards(tmp_path, table):
    frame, images = table
    out = tmp_path / "out"
    m = tfk.write_frame(frame, out, images=images, num_shards=3, seed=9, progress=False)
    expected = records_of(out)
    # Simulate a crash after two shards: no dataset.json, one shard missing, done-marks kept.
    os.remove(out / "dataset.json")
    os.remove(m.files[2])
    for f in m.files[:2]:
        name = os.path.basename(f)
        with open(out / f".{name}.done.json", "w") as fh:
            shard = next(s for s in m.shards if s.file == name)
            json.dump({"fingerprint": "stale", "split": "train", "file": name,
                       "records": shard.records, "bytes": shard.bytes, "sha256": shard.sha256}, fh)
    with pytest.raises(OptionError, match="not empty"):
        tfk.write_frame(frame, out, images=images, num_shards=3, seed=9, progress=False)
    again = tfk.write_frame(frame, out, images=images, num_shards=3, seed=9, resume=True, progress=False)
    assert again.shards == m.shards and records_of(out) == expected


def test_a_shard_task_is_plain_data_a_worker_writes_without_pandas(tmp_path, table, monkeypatch):
    # Each loky worker is a fresh process: the task it unpickles must not pull in pandas
    # (about half a second per worker) or TensorFlow; its shard equals the original.
    import dataclasses
    import pickle
    import subprocess
    import sys

    import tfrecordkit.pool as pool

    frame, images = table
    sent = []
    real = pool.write_shard
    monkeypatch.setattr(pool, "write_shard", lambda task: sent.append(task) or real(task))
    tfk.write_frame(frame, tmp_path / "out", images=images, label="colour", num_shards=1, jobs=1)
    task = sent[0]
    assert task.rows.numbers[:3] == [int(i) for i in task.rows.numbers[:3]]
    assert len(task.rows.values) == len(frame) and len(task.rows.columns) == len(task.rows.values[0])
    again = tmp_path / "again"
    again.mkdir()
    with open(tmp_path / "task.pkl", "wb") as f:
        pickle.dump(dataclasses.replace(task, directory=str(again), run_file=""), f)
    code = ("import pickle, sys; from tfrecordkit.shard import write_shard; "
            f"r = write_shard(pickle.load(open({str(tmp_path / 'task.pkl')!r}, 'rb'))); "
            "print(r.records, 'pandas' in sys.modules, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == [str(len(frame)), "False", "False"], out.stderr
    shard = task.spec.file
    assert (again / shard).read_bytes() == (tmp_path / "out" / shard).read_bytes()


def test_workers_start_while_the_client_plans_only_for_the_process_pool(monkeypatch):
    import joblib

    import tfrecordkit.pool as pool

    monkeypatch.setattr(pool, "_starting", None)
    pool.start_workers(1, None)
    assert pool._starting is None
    pool.start_workers(2, "threading")
    assert pool._starting is None
    with joblib.parallel_config(backend="threading"):   # a caller's choice is left alone
        pool.start_workers(2, None)
    assert pool._starting is None
    pool.start_workers(2, None)
    thread = pool._starting
    assert thread is not None and thread.name == "tfrecordkit-start-workers"
    thread.join(60)
    assert not thread.is_alive()
    # The processes it started are those a conversion's Parallel with the same jobs uses.
    import psutil

    running = {p.pid for p in psutil.Process().children(recursive=True)}
    used = set(joblib.Parallel(n_jobs=2)(joblib.delayed(os.getpid)() for _ in range(8)))
    assert used and used <= running


def test_size_estimates_stat_plain_paths_and_fall_back_to_resolving(tmp_path):
    from tfrecordkit.options import WriteOptions
    from tfrecordkit.write import _estimate_sizes

    (tmp_path / "a.jpg").write_bytes(b"x" * 1000)
    (tmp_path / "b.png").write_bytes(b"x" * 2000)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.jpg").write_bytes(b"x" * 3000)
    frame = pd.DataFrame({"id": ["a.jpg", "b", "sub/c", "missing.jpg"]})
    sizes = _estimate_sizes(frame, WriteOptions(images=str(tmp_path)), "id")
    # "b" has no file: the resolver finds b.png; "sub/c" likewise; a missing file counts 0.
    assert (sizes - sizes.min()).tolist() == [1000, 2000, 3000, 0]
    capped = _estimate_sizes(frame, WriteOptions(images=str(tmp_path), max_size=10,
                                                 image_format="jpeg"), "id")
    assert (capped - capped.min()).tolist() == [40, 40, 40, 0]


def test_image_facts_see_every_shape_of_a_shard(tmp_path):
    # Three shapes of one size first, then other sizes: dataset.json must not claim one
    # size (read would then cut every image's window as if it were 64x64) nor one channel
    # count.
    from conftest import make_image

    root = tmp_path / "img"
    for i, mode in enumerate(["L", "RGB", "RGBA"]):
        make_image(root / "a" / f"{i}.png", (i * 60, 40, 90), size=(64, 64), mode=mode)
    make_image(root / "b" / "photo.jpg", (200, 100, 50), size=(400, 300))
    make_image(root / "b" / "x.png", (10, 100, 50), size=(400, 300))
    m = tfk.write_folder(root, tmp_path / "out", shuffle=False, jobs=1, progress=False)
    assert m.image["size"] is None and m.image["channels"] is None
    ds = tfk.read(tmp_path / "out", batch_size=None, shuffle=False, label=False)
    assert sorted(tuple(x.shape) for x in ds) == [(64, 64, 3)] * 3 + [(400, 300, 3)] * 2
