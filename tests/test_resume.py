"""Resuming mid-epoch: a seeded order that is a pure function of (seed, epoch), sought with
`start=` and `resume=`, and a Keras fit killed with SIGKILL that goes on with the same batches."""
import json
import os
import runpy
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from conftest import COLOURS, make_image

import tfrecordkit as tfk
from tfrecordkit.errors import OptionError
from tfrecordkit.stream import _Plan, resume_position

ROWS = 40
PER_EPOCH = 10        # batches of 4


def _write(tmp, name, **options):
    names, rows = list(COLOURS), []
    for i in range(ROWS):
        path = tmp / "images" / f"img_{i:03d}.png"
        if not path.exists():
            make_image(path, COLOURS[names[i % 3]], (8, 8), seed=i)
        rows.append({"image_name": f"img_{i:03d}.png", "count": i})
    return tfk.write_frame(pd.DataFrame(rows), tmp / name, images=tmp / "images", label="count",
                           num_shards=5, shuffle=False, progress=False, **options)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """40 PNG records (lossless; label `count` = row) in 5 shards, and the same as raw pixels."""
    tmp = tmp_path_factory.mktemp("resume")
    _write(tmp, "png", image_format="png")
    _write(tmp, "raw", image_format="raw", image_size=8)
    return tmp


def _batches(ds, passes=1):
    out = []
    for _ in range(passes):
        out += [(images.numpy(), labels.numpy()) for images, labels in ds]
    return out


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1])
                                    for x, y in zip(a, b))


@pytest.mark.parametrize("kind, starts", [("png", [(0, 5), (1, 0), (1, 9), (2, 10)]),
                                          ("raw", [(0, 1), (2, 3)])])
def test_start_yields_the_tail_of_an_uninterrupted_run_bit_for_bit(shards, kind, starts):
    kw = dict(batch_size=4, image_size=8, seed=3, shuffle_buffer=16)    # windows of 16 records
    full = _batches(tfk.read(shards / kind, repeat=3, **kw))
    assert len(full) == 3 * PER_EPOCH
    labels = [np.concatenate([y for _, y in full[e * PER_EPOCH:(e + 1) * PER_EPOCH]]) for e in range(3)]
    assert all(sorted(epoch) == list(range(ROWS)) for epoch in labels)
    assert not np.array_equal(labels[0], labels[1]) and not np.array_equal(labels[0], np.arange(ROWS))
    for epoch, batch in starts:
        tail = _batches(tfk.read(shards / kind, repeat=3 - epoch, start=(epoch, batch), **kw))
        assert _same(tail, full[epoch * PER_EPOCH + batch:]), (epoch, batch)


def test_passes_are_epochs_and_a_start_shortens_only_the_first(shards):
    kw = dict(batch_size=4, image_size=8, seed=3)
    full = _batches(tfk.read(shards / "png", repeat=3, **kw))
    ds = tfk.read(shards / "png", start=(1, 6), **kw)
    assert int(ds.cardinality()) == PER_EPOCH          # what Keras needs for every later epoch
    first, second = _batches(ds), _batches(ds)
    assert _same(first, full[PER_EPOCH + 6:2 * PER_EPOCH]) and _same(second, full[2 * PER_EPOCH:])
    again = tfk.read(shards / "png", **kw)
    assert _same(_batches(again, passes=3), full)
    peeked = tfk.read(shards / "png", **kw)
    next(iter(peeked))                                 # a pass dropped early is replayed
    assert _same(_batches(peeked, passes=2), full[:2 * PER_EPOCH])


def test_cached_epochs_are_seeded_and_seekable(shards):
    kw = dict(batch_size=4, image_size=8, seed=3, cache=True, shuffle_buffer=16)
    full = _batches(tfk.read(shards / "png", **kw), passes=2)     # the first pass fills the cache
    epochs = [np.concatenate([y for _, y in full[e * PER_EPOCH:(e + 1) * PER_EPOCH]]) for e in (0, 1)]
    assert all(sorted(e) == list(range(ROWS)) for e in epochs) and not np.array_equal(*epochs)
    assert _same(_batches(tfk.read(shards / "png", start=(1, 3), **kw)), full[13:])


def test_worker_shares_and_unbatched_records_seek_too(shards):
    for workers, indices in ((2, (0, 1)), (6, (5,))):  # by file (5 shards), and by record
        for index in indices:
            kw = dict(batch_size=2, image_size=8, seed=1, num_workers=workers,
                      worker_index=index, repeat=2)
            full = _batches(tfk.read(shards / "raw", **kw))
            per_epoch = len(full) // 2
            tail = _batches(tfk.read(shards / "raw", start=(1, 1), **{**kw, "repeat": 1}))
            assert _same(tail, full[per_epoch + 1:])
    records = [int(y) for _, y in tfk.read(shards / "png", batch_size=None, image_size=8, seed=2)]
    rest = [int(y) for _, y in tfk.read(shards / "png", batch_size=None, image_size=8, seed=2,
                                        start=(0, 13))]
    assert rest == records[13:] and sorted(records) == list(range(ROWS))


def test_order_does_not_depend_on_parallelism_and_matches_the_plan(shards):
    import tensorflow as tf

    kw = dict(batch_size=4, image_size=8, seed=5, shuffle_buffer=16)
    serial = tf.data.Options()
    serial.threading.private_threadpool_size = 1
    serial.autotune.enabled = False
    a = np.concatenate([y for _, y in _batches(tfk.read(shards / "png", **kw).with_options(serial))])
    b = np.concatenate([y for _, y in _batches(tfk.read(shards / "png", **kw))])
    assert np.array_equal(a, b)
    # the plan alone (numpy) says which records come from where, before the windows
    plan = _Plan(["f"] * 5, [8] * 5, [0, 8, 16, 24, 32], seed=5, salt=0, ordered=False,
                 window=16, seekable=False)
    rows, groups, start, first_window, _ = plan.ranges(0, 20)
    assert (start, first_window) == (16, 1) and len(groups) == 1
    assert sorted(rows[:, 2]) == [3, 3, 3, 3, 4]     # 16 records taken round robin from 5 files
    assert rows[:, 3].sum() == ROWS - 16


def test_missing_idx_and_gzip_fall_back_to_reading_past_records(shards, tmp_path):
    kw = dict(batch_size=4, image_size=8, seed=4, shuffle_buffer=16)
    full = _batches(tfk.read(shards / "png", **kw))
    _write(shards, "gz", image_format="png", compression="gzip")
    assert _same(_batches(tfk.read(shards / "gz", start=(0, 5), **kw)), full[5:])
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(shards / "png", bare)
    for idx in bare.glob("*.idx"):
        idx.unlink()
    assert _same(_batches(tfk.read(bare, start=(0, 5), **kw)), full[5:])


def test_resume_position_and_option_errors(shards, tmp_path):
    assert resume_position(tmp_path / "none") is None
    (tmp_path / "training_metadata.json").write_text(json.dumps({"epoch": 2, "batch": 4}))
    assert resume_position(tmp_path) == (2, 5)          # batches 0..4 trained: go on at 5

    class Backup:
        backup_dir, save_freq = str(tmp_path), "epoch"
    assert resume_position(Backup()) == (2, 0)          # saved at an epoch's end
    kw = dict(batch_size=4, image_size=8, seed=0)
    full = _batches(tfk.read(shards / "png", repeat=3, **kw))
    assert _same(_batches(tfk.read(shards / "png", resume=tmp_path, **kw)), full[25:30])
    assert _same(_batches(tfk.read(shards / "png", resume=tmp_path / "none", **kw)), full[:10])
    with pytest.raises(OptionError, match="needs a `seed`"):
        tfk.read(shards / "png", start=(1, 0))
    with pytest.raises(OptionError, match=r"`start` must be \(epoch, batch\)"):
        tfk.read(shards / "png", start=(1, -2), seed=0)
    with pytest.raises(OptionError, match="Pass `start` or `resume`, not both"):
        tfk.read(shards / "png", start=(1, 0), resume=tmp_path, seed=0)
    with pytest.raises(OptionError, match="cannot seek through tf.data service"):
        tfk.read(shards / "png", start=(1, 0), seed=0, service="localhost:5000")


def test_a_resumed_backup_records_absolute_positions(shards, tmp_path):
    import keras

    (tmp_path / "training_metadata.json").write_text(json.dumps({"epoch": 2, "batch": 3}))
    backup = keras.callbacks.BackupAndRestore(str(tmp_path), save_freq=2)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    backup.set_model(model)
    tfk.read(shards / "png", batch_size=4, image_size=8, seed=0, resume=backup)   # at (2, 4)
    for step in range(4):                 # Keras counts the resumed epoch's batches from 0
        backup.on_train_batch_end(step)
    saved = json.loads((tmp_path / "training_metadata.json").read_text())
    assert saved == {"epoch": 2, "batch": 7}  # batches 4..7 of epoch 2 trained: a kill resumes at 8
    backup.on_epoch_end(2)
    for step in range(2):
        backup.on_train_batch_end(step)
    assert json.loads((tmp_path / "training_metadata.json").read_text()) == {"epoch": 3, "batch": 1}


TRAIN = textwrap.dedent('''
    import json, os, signal, sys
    import keras, tensorflow as tf
    import tfrecordkit as tfk

    data, backup_dir, log_path, kill = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "kill"
    log = open(log_path, "a")
    where = {}

    def seen(labels):
        log.write(json.dumps([where["epoch"], labels.numpy().tolist()]) + "\\n")
        log.flush()
        return 0

    class Logged(keras.Model):
        def train_step(self, data):
            tf.py_function(seen, [data[1]], tf.int64)
            return super().train_step(data)

    class Killer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            where["epoch"] = epoch

        def on_train_batch_end(self, batch, logs=None):
            path = os.path.join(backup_dir, "training_metadata.json")
            if kill and where["epoch"] == 2 and batch >= 3 and os.path.exists(path):
                with open(path) as f:
                    if json.load(f) == {"epoch": 2, "batch": batch}:   # just backed up
                        os.kill(os.getpid(), signal.SIGKILL)

    inputs = keras.Input((8, 8, 3))
    model = Logged(inputs, keras.layers.Dense(40)(keras.layers.Flatten()(inputs)))
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    backup = keras.callbacks.BackupAndRestore(backup_dir, save_freq=3)
    train = tfk.read(data, batch_size=4, image_size=8, seed=0, resume=backup)
    model.fit(train, epochs=4, callbacks=[backup, Killer()], verbose=0)
    print("finished")
''')


def _epochs(log_path):
    batches = {}
    for line in log_path.read_text().splitlines():
        epoch, labels = json.loads(line)
        batches.setdefault(epoch, []).append(labels)
    return batches


def test_fit_killed_mid_epoch_and_restarted_trains_each_record_of_that_epoch_once(shards, tmp_path):
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(tfk.__file__))), os.environ.get("PYTHONPATH", "")]),
        "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}

    def run(backup, log, mode):
        return subprocess.run([sys.executable, str(script), str(shards / "png"), str(tmp_path / backup),
                               str(tmp_path / log), mode], env=env, capture_output=True, text=True,
                              timeout=300)

    killed = run("backup", "resumed.log", "kill")
    assert killed.returncode == -9, killed.stderr[-2000:]
    interrupted = _epochs(tmp_path / "resumed.log")
    assert len(interrupted[2]) == 4                      # batches 0..3 of epoch 2, then the kill
    restarted = run("backup", "resumed.log", "go")
    assert restarted.returncode == 0 and "finished" in restarted.stdout, restarted.stderr[-2000:]
    argv = sys.argv                                      # the uninterrupted run, in this process
    sys.argv = [str(script), str(shards / "png"), str(tmp_path / "plain"), str(tmp_path / "plain.log"), "go"]
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = argv
    resumed, plain = _epochs(tmp_path / "resumed.log"), _epochs(tmp_path / "plain.log")
    assert len(plain[2]) == PER_EPOCH
    assert resumed[2] == plain[2]                        # same batches, each record once
    assert sorted(sum(resumed[2], [])) == list(range(ROWS))
    assert resumed[3] == plain[3]                        # the next epoch is exact as well
