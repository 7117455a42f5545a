import json
import os

import pytest

import tfrecordkit as tfk
from tfrecordkit.cli import main
from tfrecordkit.inspect import InspectFrame, Thumbnail
from tfrecordkit.records import format_index, index_entries


@pytest.fixture
def dataset(tmp_path, table):
    frame, images = table
    tfk.write_frame(frame, tmp_path / "out", images=images, label="colour", multi_label="tags",
                    num_shards=2, seed=0, progress=False)
    return tmp_path / "out", frame, images


def foreign_gzip(tmp_path):
    """Examples written by TensorFlow, GZIP, where `caption` is often present but empty."""
    import tensorflow as tf

    path = str(tmp_path / "foreign.tfrecord.gz")
    png = open(os.path.join(os.path.dirname(__file__), "..", "data_samples", "folders", "zero",
                            "0000.png"), "rb").read()
    with tf.io.TFRecordWriter(path, tf.io.TFRecordOptions(compression_type="GZIP")) as w:
        for i in range(25):
            feature = {
                "img": tf.train.Feature(bytes_list=tf.train.BytesList(value=[png])),
                "y": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 3])),
                "box": tf.train.Feature(float_list=tf.train.FloatList(value=[0.1, 0.2, 0.3, 0.4][: i % 5])),
                "caption": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"a dog"] if i % 4 == 0 else [])),
            }
            if i % 2:
                feature["rare"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[7]))
            w.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    return path


def test_count_from_manifest_index_and_framing(dataset, tmp_path):
    out, _, _ = dataset
    assert tfk.count(out) == 30
    shard = tfk.load_manifest(out).files[0]
    n = len(open(shard + ".idx").read().splitlines())
    assert tfk.count(shard) == n                       # from .idx
    os.remove(shard + ".idx")
    assert tfk.count(shard) == n                       # from the framing
    path = foreign_gzip(tmp_path)
    assert tfk.count(path) == 25


def test_infer_foreign_gzip_with_empty_features(tmp_path):
    path = foreign_gzip(tmp_path)
    info = tfk.infer(path)
    assert info.kind == "Example" and info.scanned == 25
    f = info.features
    assert (f["img"].dtype, f["img"].image) == ("bytes", {"png": 25})
    assert (f["y"].dtype, f["y"].min_len, f["y"].max_len, f["y"].present) == ("int64", 1, 1, 25)
    assert (f["box"].dtype, f["box"].min_len, f["box"].max_len, f["box"].empty) == ("float", 0, 4, 5)
    assert (f["caption"].present, f["caption"].empty) == (25, 18)
    assert f["rare"].present == 12
    assert not info.conflicts()


def test_schema_spec_reads_foreign_file_with_tf_data(tmp_path):
    import tensorflow as tf

    path = foreign_gzip(tmp_path)
    spec = tfk.schema(path)
    assert isinstance(spec["y"], tf.io.FixedLenFeature) and isinstance(spec["box"], tf.io.VarLenFeature)
    assert isinstance(spec["rare"], tf.io.VarLenFeature)
    ds = tf.data.TFRecordDataset(path, compression_type="GZIP").batch(10).map(
        lambda x: tf.io.parse_example(x, spec))
    batches = list(ds)
    assert [int(b["y"].shape[0]) for b in batches] == [10, 10, 5]
    assert batches[0]["y"].numpy().tolist() == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]


def test_sequence_examples(tmp_path):
    import tensorflow as tf

    path = str(tmp_path / "seq.tfrecord")
    with tf.io.TFRecordWriter(path) as w:
        for i in range(4):
            se = tf.train.SequenceExample()
            se.context.feature["id"].bytes_list.value.append(f"s{i}".encode())
            frames = se.feature_lists.feature_list["frames"]
            for t in range(i + 1):
                frames.feature.add().float_list.value.extend([t, t + 0.5])
            w.write(se.SerializeToString())
    info = tfk.infer(path)
    assert info.kind == "SequenceExample"
    assert info.sequence_features["frames"].dtype == "float"
    assert (info.sequence_features["frames"].min_len, info.sequence_features["frames"].max_len) == (1, 4)
    context, sequence = tfk.schema(path)
    parsed = tf.io.parse_sequence_example(next(iter(tf.data.TFRecordDataset(path).batch(4))),
                                          context_features=context, sequence_features=sequence)
    assert parsed[0]["id"].numpy().tolist() == [b"s0", b"s1", b"s2", b"s3"]
    rows = tfk.inspect(path, n=2)
    assert rows["id"].tolist() == ["s0", "s1"] and rows["frames"][1] == [[0.0, 0.5], [1.0, 1.5]]


def test_type_drift_across_files_is_reported(tmp_path):
    import tensorflow as tf

    for name, value in (("a.tfrecord", tf.train.Feature(int64_list=tf.train.Int64List(value=[1]))),
                        ("b.tfrecord", tf.train.Feature(float_list=tf.train.FloatList(value=[1.5])))):
        with tf.io.TFRecordWriter(str(tmp_path / name)) as w:
            for _ in range(3):
                w.write(tf.train.Example(features=tf.train.Features(feature={"x": value})).SerializeToString())
    info = tfk.infer(str(tmp_path / "*.tfrecord"))
    assert dict(info.features["x"].dtypes) == {"int64": 3, "float": 3}
    assert info.conflicts() == ["feature `x` has differing types: int64 in 3 records (a.tfrecord); "
                                "float in 3 records (b.tfrecord)"]
    described = tfk.describe(str(tmp_path))
    assert described["records"] == 6 and described["conflicts"] == info.conflicts()


def test_inspect_our_dataset_decodes_labels_and_images(dataset):
    out, frame, images = dataset
    rows = tfk.inspect(out, n=4)
    assert isinstance(rows, InspectFrame) and len(rows) == 4
    by_name = frame.set_index("image_name")
    for _, row in rows.iterrows():
        source = by_name.loc[row["image_name"]]
        assert row["colour"] == source["colour"]
        assert sorted(row["tags"]) == sorted(source["tags"].split())
        assert row["score"] == pytest.approx(source["score"]) and row["note"] == source["note"]
        thumb = row["image/encoded"]
        assert isinstance(thumb, Thumbnail) and thumb.format in ("jpeg", "png")
        assert repr(thumb) in ("<jpeg 20x24>", "<png 20x24>", "<jpeg 28x16>", "<png 28x16>")
    page = rows._repr_html_()
    assert page.count('<img src="data:image/png;base64,') == 4
    assert len(tfk.inspect(out, n=0)) == 0


def test_cli_inspect_text_json_and_non_examples(dataset, tmp_path, capsys):
    out, _, _ = dataset
    assert main(["inspect", str(out), "-n", "2"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("2 files, 30 records (counted from dataset.json); tf.train.Example")
    assert "colour" in text and "class, 3 values: blue, green, red" in text
    assert "first 2 records:" in text
    assert main(["inspect", foreign_gzip(tmp_path), "--json", "-n", "1"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["records"] == 25 and info["counted_from"] == "framing scan"
    assert info["features"]["box"] | {} == {**info["features"]["box"], "dtype": "float",
                                            "min_len": 0, "max_len": 4}
    assert info["rows"][0]["img"] == "<png 24x24>" and info["rows"][0]["caption"] == "a dog"

    import tensorflow as tf

    logdir = tmp_path / "tb"
    writer = tf.summary.create_file_writer(str(logdir))
    with writer.as_default():
        tf.summary.write("loss", tf.constant(0.5), step=1)   # a TensorBoard event file
    writer.close()
    events = next(str(p) for p in logdir.iterdir())
    assert main(["inspect", events]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is not a tf.train.Example or SequenceExample" in err
    assert "TensorBoard" in err and "Traceback" not in err


def test_stats(dataset):
    out, frame, _ = dataset
    s = tfk.stats(out)
    assert s.records == 30
    colours = s.classes[s.classes["label"] == "colour"].set_index("class")["count"].to_dict()
    assert colours == frame["colour"].value_counts().to_dict()
    tags = s.classes[s.classes["label"] == "tags"].set_index("class")["count"].to_dict()
    assert tags == {"bright": 15, "odd": 15, "warm": 10}
    assert s.image_sizes.set_index(["height", "width"])["count"].to_dict() == {(24, 20): 15, (16, 28): 15}
    assert s.shards["records"].sum() == 30 and (s.shards["bytes"] > 0).all()
    assert "30 records" in repr(s) and "<h4>classes</h4>" in s._repr_html_()


def test_stats_per_split(tmp_path, table):
    frame, images = table
    tfk.write_frame(frame, tmp_path / "out", images=images, label="colour",
                    split="train=0.8,val=0.2", seed=0, progress=False)
    s = tfk.stats(tmp_path / "out")
    assert s.records == 30 and s.classes.columns.tolist()[0] == "split"
    counts = s.classes.groupby("split")["count"].sum().to_dict()
    assert counts == {"train": 24, "val": 6}
    assert set(s.shards["split"]) == {"train", "val"}


def test_show_batch_draws_decoded_labels(dataset):
    import matplotlib

    matplotlib.use("Agg")
    out, _, _ = dataset
    ds = tfk.read(out, batch_size=6, image_size=12, label="colour", shuffle=False)
    figure = tfk.show_batch(ds, vocabulary=out, columns=3)
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    _, labels = next(iter(ds))
    names = tfk.load_manifest(out).vocabularies["colour"]
    assert titles == [names[i] for i in labels.numpy()]
    multi = tfk.show_batch(tfk.read(out, batch_size=4, image_size=12, shuffle=False), vocabulary=out, n=2)
    assert multi.axes[0].get_title().startswith("colour: ")


def test_show_batch_takes_unbatched_datasets_and_single_images(dataset):
    import matplotlib

    matplotlib.use("Agg")
    out, _, _ = dataset
    single = tfk.read(out, batch_size=None, image_size=12, label="colour", shuffle=False)
    figure = tfk.show_batch(single, vocabulary=out, n=5)
    names = tfk.load_manifest(out).vocabularies["colour"]
    expected = [names[int(y)] for _, y in single.take(5)]
    assert [ax.get_title() for ax in figure.axes if ax.get_title()] == expected
    image, label = next(iter(single))
    one = tfk.show_batch((image, label), vocabulary=out)
    assert [ax.get_title() for ax in one.axes if ax.get_title()] == expected[:1]


INDEPENDENT_READER = r"""
import hashlib, json, sys
from tfrecord.reader import tfrecord_loader
from tfrecord.tools.tfrecord2idx import create_index

out = []
for shard in sys.argv[1:]:
    create_index(shard, shard + ".theirs")
    for record in tfrecord_loader(shard, shard + ".idx", {"image/encoded": "byte",
                                                       "image_name": "byte", "colour": "int"}):
        out.append([bytes(record["image_name"]).decode(),
                    hashlib.sha256(bytes(record["image/encoded"])).hexdigest(),
                    int(record["colour"][0])])
assert "tensorflow" not in sys.modules
print(json.dumps(out))
"""


def test_interop_with_the_tfrecord_package(dataset):
    """An independent reader with no TensorFlow (the `tfrecord` package, in its own process,
    since its protos clash with TensorFlow's) reads our shards and .idx files exactly."""
    import hashlib
    import subprocess
    import sys

    out, frame, images = dataset
    manifest = tfk.load_manifest(out)
    result = subprocess.run([sys.executable, "-c", INDEPENDENT_READER, *manifest.files],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    by_name = frame.set_index("image_name")
    vocab = manifest.vocabularies["colour"]
    assert sorted(name for name, _, _ in records) == sorted(frame["image_name"])
    for name, digest, colour in records:
        assert digest == hashlib.sha256((images / name).read_bytes()).hexdigest()
        assert vocab[colour] == by_name.loc[name, "colour"]
    for shard in manifest.files:
        assert open(shard + ".theirs").read() == open(shard + ".idx").read() == format_index(index_entries(shard))
