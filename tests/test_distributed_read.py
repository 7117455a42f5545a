"""Reading from many machines: a worker's share of the shards, and tf.data service."""
import logging
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from conftest import COLOURS, make_image

import tfrecordkit as tfk
from tfrecordkit.errors import OptionError
from tfrecordkit.stream import assign_files

# Large images among small ones: shards of about equal bytes hold unequal record counts.
BIG = (0, 1, 2, 12, 13, 30)
ROWS = 40


@pytest.fixture(scope="module")
def uneven(tmp_path_factory):
    """A dataset of 40 records (label `count` is the row number) in 5 unequal shards."""
    tmp = tmp_path_factory.mktemp("uneven")
    names, rows = list(COLOURS), []
    for i in range(ROWS):
        size = (40, 40) if i in BIG else (8, 8)
        make_image(tmp / "images" / f"img_{i:03d}.png", COLOURS[names[i % 3]], size, seed=i)
        rows.append({"image_name": f"img_{i:03d}.png", "colour": names[i % 3], "count": i})
    manifest = tfk.write_frame(pd.DataFrame(rows), tmp / "out", images=tmp / "images",
                               label="colour", num_shards=5, shuffle=False, progress=False)
    sizes = [s.records for s in manifest.shards]
    assert len(sizes) == 5 and len(set(sizes)) > 2 and sum(sizes) == ROWS
    return tmp / "out", manifest


def _ids_and_batches(ds):
    ids, batches = [], 0
    for _, counts in ds:
        ids += counts.numpy().tolist()
        batches += 1
    return ids, batches


def test_assign_files_is_greedy_by_records_and_covers_every_file():
    assert assign_files([10, 30, 20, 5], 2) == [[1, 3], [0, 2]]
    sizes = [2, 9, 3, 17, 9, 1, 1]
    for n in (1, 2, 3, 4, 7):
        groups = assign_files(sizes, n)
        assert sorted(f for g in groups for f in g) == list(range(len(sizes)))
        loads = [sum(sizes[f] for f in g) for g in groups]
        assert max(loads) - min(loads) <= max(sizes) and all(groups)
        assert groups == assign_files(sizes, n)


@pytest.mark.parametrize("n", [2, 3])
def test_workers_read_disjoint_balanced_shares_with_their_cardinality(uneven, n):
    out, manifest = uneven
    seen = []
    largest = max(s.records for s in manifest.shards)
    for index in range(n):
        ds = tfk.read(out, num_workers=n, worker_index=index, batch_size=4, image_size=8,
                      label="count", seed=index)
        ids, batches = _ids_and_batches(ds)
        assert int(ds.cardinality()) == batches == -(-len(ids) // 4)
        assert abs(len(ids) - ROWS / n) <= largest
        seen += ids
    assert sorted(seen) == list(range(ROWS))


def test_input_context_reads_its_pipelines_share(uneven):
    import tensorflow as tf

    out, _ = uneven
    ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1)
    ds = tfk.read(out, input_context=ctx, batch_size=ctx.get_per_replica_batch_size(8),
                  image_size=8, label="count", shuffle=False)
    ids, batches = _ids_and_batches(ds)
    same, _ = _ids_and_batches(tfk.read(out, num_workers=2, worker_index=1, batch_size=8,
                                        image_size=8, label="count", shuffle=False))
    assert ids == same and int(ds.cardinality()) == batches and 0 < len(ids) < ROWS


def test_fewer_files_than_workers_shards_by_record(uneven, caplog):
    out, _ = uneven
    caplog.set_level(logging.INFO, logger="tfrecordkit.stream")
    seen = []
    for index in range(6):
        ds = tfk.read(out, num_workers=6, worker_index=index, batch_size=3, image_size=8,
                      label="count", seed=0)
        ids, batches = _ids_and_batches(ds)
        # every 6-th record of the epoch's order over all shards: the single reader's order
        assert len(ids) == len(range(index, ROWS, 6))
        assert int(ds.cardinality()) == batches
        seen.append(ids)
    alone, _ = _ids_and_batches(tfk.read(out, batch_size=3, image_size=8, label="count", seed=0))
    assert [seen[p % 6][p // 6] for p in range(ROWS)] == alone
    assert "5 shard files for 6 workers, so each worker reads every file" in caplog.text


def test_worker_and_service_options_are_checked(uneven):
    import tensorflow as tf

    out, _ = uneven
    bad = [
        (dict(num_workers=2), "pass both or neither; received num_workers=2, worker_index=None"),
        (dict(num_workers=2, worker_index=2), "from 0 to 1 for num_workers=2; received worker_index=2"),
        (dict(num_workers=0, worker_index=0), "positive integer; received num_workers=0"),
        (dict(input_context=tf.distribute.InputContext(), num_workers=1, worker_index=0),
         "Pass `input_context` or `num_workers`/`worker_index`, not both"),
        (dict(input_context="ctx"), "must be a tf.distribute.InputContext"),
        (dict(service="http://host:5000"), "`service` must be a tf.data service dispatcher address"),
        (dict(service="host"), "received service='host'"),
        (dict(service="host:5000", on_corrupt="skip"), "cannot run on tf.data service workers"),
        (dict(service="host:5000", cache=True), "leave cache=False with `service`"),
        (dict(service_job_name="train"), "needs `service`"),
        (dict(service="host:5000", service_job_name="train", num_workers=2, worker_index=0),
         "service_job_name, not both"),
    ]
    for kwargs, message in bad:
        with pytest.raises(OptionError, match=message.replace("(", r"\(")):
            tfk.read(out, image_size=8, **kwargs)


def test_service_workers_deliver_every_record_once_per_epoch(uneven):
    import tensorflow as tf

    service = tf.data.experimental.service
    out, _ = uneven
    dispatcher = service.DispatchServer(service.DispatcherConfig(port=0))
    address = dispatcher.target.split("://")[1]
    workers = [service.WorkerServer(service.WorkerConfig(dispatcher_address=address, port=0))
               for _ in range(2)]
    plain = {}
    for images, labels in tfk.read(out, batch_size=8, image_size=8, label=["count", "colour"],
                                   dtype="uint8", shuffle=False):
        for image, i, colour in zip(images.numpy(), labels["count"].numpy(),
                                    labels["colour"].numpy()):
            plain[int(i)] = (image, int(colour))
    assert sorted(plain) == list(range(ROWS))

    for target in (dispatcher.target, address):   # "grpc://host:port" and "host:port"
        ds = tfk.read(out, batch_size=4, image_size=8, label=["count", "colour"], dtype="uint8",
                      seed=1, service=target)
        assert int(ds.cardinality()) == tf.data.UNKNOWN_CARDINALITY
        assert ds.element_spec[0].shape.as_list() == [None, 8, 8, 3]
        for _ in range(2):       # each pass over the dataset is an epoch, a job of its own
            seen = Counter()
            for images, labels in ds:
                for image, i, colour in zip(images.numpy(), labels["count"].numpy(),
                                            labels["colour"].numpy()):
                    seen[int(i)] += 1
                    assert np.array_equal(image, plain[int(i)][0])
                    assert int(colour) == plain[int(i)][1]
            assert seen == Counter(range(ROWS))
    repeated = tfk.read(out, batch_size=5, image_size=8, label="count", repeat=2,
                        service=dispatcher.target)
    ids, _ = _ids_and_batches(repeated)
    assert Counter(ids) == Counter({i: 2 for i in range(ROWS)})
    shared, _ = _ids_and_batches(tfk.read(out, batch_size=8, image_size=8, label="count",
                                          service=address, service_job_name="train"))
    assert sorted(shared) == list(range(ROWS))
    share, _ = _ids_and_batches(tfk.read(out, batch_size=8, image_size=8, label="count",
                                         service=address, num_workers=2, worker_index=0))
    alone, _ = _ids_and_batches(tfk.read(out, batch_size=8, image_size=8, label="count",
                                         num_workers=2, worker_index=0))
    assert sorted(share) == sorted(alone) and 0 < len(share) < ROWS
    del workers


def test_distribute_datasets_from_function_passes_its_input_context(uneven):
    import tensorflow as tf

    out, _ = uneven
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    dist = strategy.distribute_datasets_from_function(lambda ctx: tfk.read(
        out, input_context=ctx, batch_size=ctx.get_per_replica_batch_size(8), image_size=8,
        label="count"))
    ids = [i for _, counts in dist for i in counts.numpy().tolist()]
    assert sorted(ids) == list(range(ROWS))
