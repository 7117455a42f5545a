"""Conversion on a real dask.distributed cluster matches a local run byte for byte."""
from __future__ import annotations

import json
import os

import pytest

distributed = pytest.importorskip("dask.distributed")
joblib = pytest.importorskip("joblib")

import tfrecordkit as tfk
from tfrecordkit.cli import main
from tfrecordkit.errors import OptionError
from tfrecordkit.records import iter_records

OPTIONS = dict(label="colour", multi_label="tags", num_shards=4, seed=7,
               split="train=0.8,val=0.2", progress=False)


@pytest.fixture(scope="module")
def cluster():
    # Worker processes: they unpickle each task, so what they run is what a remote cluster runs.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as c:
        yield c


def _snapshot(out_dir) -> tuple[dict, dict]:
    """(every shard's records as bytes, each dataset.json's shards) under `out_dir`."""
    records, shards = {}, {}
    for directory, _, names in os.walk(out_dir):
        rel = os.path.relpath(directory, out_dir)
        for name in sorted(names):
            path = os.path.join(directory, name)
            if name.endswith(".tfrecord"):
                records[os.path.join(rel, name)] = list(iter_records(path))
            elif name == "dataset.json":
                with open(path, encoding="utf-8") as f:
                    shards[rel] = json.load(f)["shards"]
    return records, shards


@pytest.fixture
def local(table, tmp_path):
    frame, images = table
    tfk.write_frame(frame, tmp_path / "local", images=images, jobs=1, **OPTIONS)
    records, shards = _snapshot(tmp_path / "local")
    assert len(records) == 8 and sum(len(r) for r in records.values()) == 30
    return records, shards


def test_scheduler_address_matches_local(cluster, table, tmp_path, local):
    frame, images = table
    tfk.write_frame(frame, tmp_path / "dask", images=images, backend="dask",
                    scheduler=cluster.scheduler_address, **OPTIONS)
    assert _snapshot(tmp_path / "dask") == local


def test_callers_client_and_parallel_config(cluster, table, tmp_path, local, monkeypatch):
    frame, images = table
    monkeypatch.chdir(images.parent)   # relative paths: workers get them made absolute
    with distributed.Client(cluster) as client, joblib.parallel_config(backend="dask"):
        with distributed.get_task_stream(client) as stream:
            tfk.write_frame(frame, "dask", images="images", **OPTIONS)
        workers = {t["worker"] for t in stream.data}
        client_pid = os.getpid()
        worker_pids = set(client.run(os.getpid).values())
    assert _snapshot(tmp_path / "dask") == local
    assert workers and workers <= set(cluster.scheduler_info["workers"])
    assert client_pid not in worker_pids


def test_cli_backend_dask(cluster, table, tmp_path, local):
    frame, images = table
    frame.to_csv(tmp_path / "labels.csv", index=False)
    code = main(["convert", str(tmp_path / "labels.csv"), str(tmp_path / "cli"),
                 "--images", str(images), "--label", "colour", "--multi-label", "tags",
                 "--num-shards", "4", "--seed", "7", "--split", "train=0.8,val=0.2",
                 "--quiet", "--backend", "dask", "--scheduler", cluster.scheduler_address])
    assert code == 0
    assert _snapshot(tmp_path / "cli") == local


def test_one_shard_still_runs_on_the_cluster(cluster, table, tmp_path):
    frame, images = table
    with distributed.Client(cluster) as client:
        with distributed.get_task_stream(client) as stream:
            tfk.write_frame(frame, tmp_path / "one", images=images, num_shards=1,
                            backend="dask", progress=False)
    assert stream.data
    assert tfk.verify(tmp_path / "one").records_ok == 30


def test_dask_without_scheduler_or_client(table, tmp_path):
    frame, images = table
    with pytest.raises(OptionError, match=r"^backend='dask' needs a scheduler address "
                                          r"\(--scheduler tcp://host:8786\) or a running "
                                          r"dask.distributed Client\.$"):
        tfk.write_frame(frame, tmp_path / "out", images=images, backend="dask")
    assert not (tmp_path / "out").exists()   # failed before writing anything


def test_bad_row_on_a_worker_names_the_row(cluster, table, tmp_path):
    frame, images = table
    os.remove(images / frame.at[5, "image_name"])
    with pytest.raises(tfk.SourceError, match="row 5"):
        tfk.write_frame(frame, tmp_path / "out", images=images, num_shards=4, backend="dask",
                        scheduler=cluster.scheduler_address, progress=False)
    assert not (tmp_path / "out").exists()


def test_unreachable_scheduler(table, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("tfrecordkit.pool._SCHEDULER_TIMEOUT_S", 1)
    frame, images = table
    frame.to_csv(tmp_path / "labels.csv", index=False)
    code = main(["convert", str(tmp_path / "labels.csv"), str(tmp_path / "out"),
                 "--images", str(images), "--quiet", "--backend", "dask",
                 "--scheduler", "tcp://127.0.0.1:1"])
    assert code == 1
    assert "Could not connect to the dask scheduler at 'tcp://127.0.0.1:1'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
