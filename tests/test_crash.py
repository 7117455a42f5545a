"""Crash safety: a conversion killed at any moment leaves no partial file under a final name,
`--resume` finishes it into exactly the clean run's records, and two conversions into one
directory at once are refused."""
import json
import os
import random
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import tfrecordkit as tfk
import tfrecordkit.write as write_module
from tfrecordkit.cli import main
from tfrecordkit.errors import TfrecordkitError
from tfrecordkit.example import decode_example
from tfrecordkit.records import format_index, iter_records

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARD = re.compile(r"^train-\d{5}-of-\d{5}\.tfrecord$")


@pytest.fixture
def many(tmp_path):
    """(csv, image dir): 400 noisy 64x64 PNGs, enough work that a kill lands mid-shard."""
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for i in range(400):
        pixels = rng.integers(0, 255, (64, 64, 3)).astype(np.uint8)
        Image.fromarray(pixels).save(images / f"{i:03d}.png", compress_level=1)
        rows.append({"id": f"{i:03d}", "label": "abc"[i % 3]})
    pd.DataFrame(rows).to_csv(tmp_path / "labels.csv", index=False)
    return tmp_path / "labels.csv", images


def _convert_args(csv, images, out, *extra):
    return ["convert", str(csv), str(out), "--images", str(images), "--label", "label",
            "--image-size", "60", "--image-format", "png", "--num-shards", "8", "--jobs", "1",
            "--seed", "7", "--quiet", *extra]


def _start(args):
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-m", "tfrecordkit", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_until_planned(out, proc):
    """Until `proc` has taken the directory's lock and written its run file (the shards come next)."""
    while proc.poll() is None:
        try:
            if json.loads((out / write_module.RUN_NAME).read_text())["pid"] == proc.pid:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.002)


def _records(out):
    manifest = tfk.load_manifest(out)
    return [decode_example(r.data) for f in manifest.files for r in iter_records(f)]


def _check_no_partial_shard(out, clean):
    """Every file under a final shard name is complete: its CRCs hold, its .idx matches,
    and it is byte for byte the clean run's shard of that name."""
    for name in os.listdir(out):
        if SHARD.match(name):
            path = os.path.join(out, name)
            entries = [(r.offset, r.length) for r in iter_records(path)]   # raises when damaged
            with open(path + ".idx") as f:
                assert f.read() == format_index(entries), name
            with open(path, "rb") as f, open(os.path.join(clean, name), "rb") as g:
                assert f.read() == g.read(), name


def test_kill_at_random_moments_then_resume_equals_a_clean_run(many, tmp_path, capsys):
    csv, images = many
    clean, out = tmp_path / "clean", tmp_path / "out"
    started = time.monotonic()
    proc = _start(_convert_args(csv, images, clean))
    _wait_until_planned(clean, proc)
    writing_from = time.monotonic()
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    writing = max(time.monotonic() - writing_from, 0.05)
    assert time.monotonic() - started < 120

    rng = random.Random(1234)
    kills = refused = 0
    complete = []                      # final-named shards after each kill
    for attempt in range(6):
        proc = _start(_convert_args(csv, images, out, *(["--resume"] if attempt else [])))
        _wait_until_planned(out, proc)
        if attempt == 0 and proc.poll() is None:
            # A second conversion into the same directory meanwhile is refused, not mixed in.
            code = main(_convert_args(csv, images, out, "--resume"))
            err = capsys.readouterr().err
            if proc.poll() is None:
                assert code == 1 and f"Another conversion (process {proc.pid} on " in err
                refused += 1
        else:   # early enough that several rounds each add a few shards, at random points
            time.sleep(rng.uniform(0.05, 0.4) * writing)
        if proc.poll() is not None:
            assert proc.returncode == 0, proc.stderr.read()
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        kills += 1
        _check_no_partial_shard(out, clean)
        if (out / "dataset.json").exists():
            break                      # killed after it finished its work: complete as it is
        complete.append(sum(1 for n in os.listdir(out) if SHARD.match(n)))
    assert kills >= 3 and refused == 1
    assert complete == sorted(complete) and complete[-1] > 0   # resumed runs kept shards

    proc = _start(_convert_args(csv, images, out, "--resume"))
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    assert _records(out) == _records(clean)
    assert tfk.load_manifest(out).shards == tfk.load_manifest(clean).shards
    assert sorted(os.listdir(out)) == sorted(os.listdir(clean))          # no leftovers
    assert tfk.verify(out).ok


def test_interrupted_run_resumes_with_its_own_seed_and_keeps_complete_shards(
        table, tmp_path, monkeypatch, caplog):
    frame, images = table
    out = tmp_path / "out"
    calls = {"n": 0}
    import tfrecordkit.shard as shard_module

    real = shard_module.load_image

    def interrupted(path, options):
        calls["n"] += 1
        if calls["n"] == 17:           # in the third of five shards of six rows
            raise KeyboardInterrupt
        return real(path, options)

    monkeypatch.setattr(shard_module, "load_image", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tfk.write_frame(frame, out, images=images, num_shards=5, jobs=1, progress=False)
    monkeypatch.setattr(shard_module, "load_image", real)
    left = sorted(os.listdir(out))
    assert "dataset.json" not in left and write_module.LOCK_NAME not in left
    assert [n for n in left if SHARD.match(n)] == [f"train-0000{i}-of-00005.tfrecord" for i in (0, 1)]
    assert not [n for n in left if ".tmp-" in n]
    seed = json.loads((out / write_module.RUN_NAME).read_text())["seed"]

    caplog.set_level("INFO", logger="tfrecordkit")   # write.py and pool.py log here
    m = tfk.write_frame(frame, out, images=images, num_shards=5, jobs=1, progress=False,
                        resume=True)                                   # no seed given again
    assert "resume: kept 2 complete shards, writing 3" in caplog.text
    assert m.options["seed"] == seed
    clean = tfk.write_frame(frame, tmp_path / "clean", images=images, num_shards=5, seed=seed,
                            progress=False)
    assert m.shards == clean.shards and _records(out) == _records(tmp_path / "clean")
    assert sorted(os.listdir(out)) == sorted(os.listdir(tmp_path / "clean"))
    again = tfk.write_frame(frame, out, images=images, num_shards=5, progress=False, resume=True)
    assert again.shards == m.shards                                    # complete: nothing to do


def test_resume_clears_what_a_killed_run_left(table, tmp_path):
    frame, images = table
    out = tmp_path / "out"
    m = tfk.write_frame(frame, out, images=images, num_shards=3, seed=4, split="train=0.5,val=0.5",
                        progress=False)
    expected = sorted(os.listdir(out / "train"))
    os.remove(out / "dataset.json")                                     # as if killed just before it
    junk = [out / "train" / ".train-00000-of-00003.tfrecord.tmp-999-abcd",
            out / "train" / "train-00007-of-00009.tfrecord",           # a shard of another plan
            out / "train" / "train-00007-of-00009.tfrecord.idx",
            out / "dataset.json.tmp-999", out / write_module.LOCK_NAME]  # lock of a dead process
    for path in junk:
        path.write_bytes(b"partial")
    again = tfk.write_frame(frame, out, images=images, num_shards=3, seed=4,
                            split="train=0.5,val=0.5", progress=False, resume=True)
    assert again.shards == m.shards and again.splits == m.splits
    assert sorted(os.listdir(out / "train")) == expected
    assert sorted(os.listdir(out)) == ["dataset.json", "train", "val"]


def test_a_second_conversion_into_a_locked_directory_is_refused(table, tmp_path):
    frame, images = table
    out = tmp_path / "out"
    out.mkdir()
    with write_module._lock(str(out)):                # another conversion holds the directory
        for resume in (False, True):
            with pytest.raises(TfrecordkitError, match=rf"Another conversion \(process {os.getpid()} "
                                                       rf"on .*\) is writing to '{out}'; wait for it"):
                tfk.write_frame(frame, out, images=images, progress=False, resume=resume)
        assert os.listdir(out) == [write_module.LOCK_NAME]
    assert os.listdir(out) == []
    assert tfk.write_frame(frame, out, images=images, progress=False).records == 30
