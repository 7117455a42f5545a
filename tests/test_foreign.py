"""Other writers' image TFRecords, written here with plain `tf.io.TFRecordWriter`, read,
trained on, predicted and described with no dataset.json and no feature spec."""
import io
import json

import numpy as np
import pytest
from PIL import Image

import tfrecordkit as tfk
from tfrecordkit.cli import main
from tfrecordkit.errors import DatasetError, OptionError
from tfrecordkit.locate import locate

PER_FILE = 5
FILES = 2
# ImageNet's classes are 1-based: 1..3 here, so the vocabulary is 0..3 and Dense(4) lines up.
LABELS = [1 + (i * 7) % 3 for i in range(PER_FILE * FILES)]


def _feature(value):
    import tensorflow as tf

    if isinstance(value, bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
    if isinstance(value, float):
        return tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def _image(i, fmt, size):
    rng = np.random.default_rng(i)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(buffer, fmt)
    return buffer.getvalue()


def write_imagenet(directory, ext="", compression=None):
    """TensorFlow's build_imagenet_data.py layout: train-00000-of-00002, no extension."""
    import tensorflow as tf

    directory.mkdir(parents=True, exist_ok=True)
    options = tf.io.TFRecordOptions(compression_type=compression or "")
    for f in range(FILES):
        with tf.io.TFRecordWriter(str(directory / f"train-{f:05d}-of-{FILES:05d}{ext}"), options) as w:
            for i in range(f * PER_FILE, (f + 1) * PER_FILE):
                size = (10 + i % 3, 12 + i % 2)
                w.write(tf.train.Example(features=tf.train.Features(feature={
                    "image/encoded": _feature(_image(i, "JPEG", size)),
                    "image/format": _feature(b"JPEG"),
                    "image/class/label": _feature(LABELS[i]),
                    "image/class/synset": _feature(f"n0{LABELS[i]}".encode()),
                    "image/filename": _feature(f"ILSVRC2012_val_{i:08d}.JPEG".encode()),
                    "image/height": _feature(size[0]),
                    "image/width": _feature(size[1]),
                    "image/colorspace": _feature(b"RGB"),
                })).SerializeToString())
    return directory


def write_tfds(directory, ext=".tfrecord", compression=None):
    """A tfds-like layout: `image` PNG bytes of one size, `label` int64 (0-based), `score`."""
    import tensorflow as tf

    directory.mkdir(parents=True, exist_ok=True)
    options = tf.io.TFRecordOptions(compression_type=compression or "")
    for f in range(FILES):
        name = f"toy-train{ext}-{f:05d}-of-{FILES:05d}"
        with tf.io.TFRecordWriter(str(directory / name), options) as w:
            for i in range(f * PER_FILE, (f + 1) * PER_FILE):
                w.write(tf.train.Example(features=tf.train.Features(feature={
                    "image": _feature(_image(i, "PNG", (8, 8))),
                    "label": _feature(LABELS[i] - 1),
                    "score": _feature(i / 4),
                })).SerializeToString())
    (directory / "dataset_info.json").write_text("{}")   # tfds leaves these beside the shards
    (directory / "features.json").write_text("{}")
    return directory


def _labels(ds):
    return np.concatenate([y.numpy() for _, y in ds]).tolist()


@pytest.mark.parametrize("ext,compression", [("", None), ("", "GZIP"), (".tfrecord", None)])
def test_imagenet_shards_read_with_exact_labels_by_directory_and_by_glob(tmp_path, ext, compression):
    d = write_imagenet(tmp_path / "imagenet", ext, compression)
    for path in (d, str(d / "train-*")):
        ds = tfk.read(path, label="image/class/label", shuffle=False, batch_size=4, image_size=8)
        assert ds.cardinality().numpy() == 3            # 10 records in batches of 4: known
        assert _labels(ds) == LABELS                      # the stored numbers, in record order
    manifest = locate(d, label="image/class/label").manifest
    assert manifest.vocabularies == {"image/class/label": [0, 1, 2, 3]}
    assert manifest.schema.id_column == "image/filename" and manifest.image_key == "image/encoded"
    unbatched = tfk.read(d, label="image/class/label", shuffle=False, batch_size=None, image_size=8)
    assert unbatched.cardinality().numpy() == 10


def test_imagenet_shards_train_predict_and_stats(tmp_path):
    import keras

    d = write_imagenet(tmp_path / "imagenet")
    train = tfk.read(d, label="image/class/label", batch_size=4, image_size=8, seed=0)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(4, activation="softmax")])   # classes 0..3
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(train, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    table = tfk.predict(model, d)
    assert table["id"].tolist() == [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(10)]
    assert list(table.columns) == ["id", "0", "1", "2", "3"]
    assert np.allclose(table[["0", "1", "2", "3"]].sum(axis=1), 1.0, atol=1e-5)
    s = tfk.stats(d)
    assert s.records == 10
    balance = dict(zip(s.classes["class"], s.classes["count"]))
    assert balance == {k: LABELS.count(k) for k in set(LABELS)}
    assert set(s.classes["label"]) == {"image/class/label"}
    assert s.image_sizes["count"].sum() == 10 and len(s.image_sizes) == 6
    assert "classes:\n" in repr(s) and "image/class/label" in repr(s)


def test_tfds_layout_with_default_label_known_size_float_target_and_dict_labels(tmp_path):
    d = write_tfds(tmp_path / "toy", compression="GZIP")
    loc = locate(d)
    assert loc.compression == "gzip" and len(loc.files) == 2
    manifest = loc.manifest
    assert manifest.image_key == "image" and manifest.size_keys is None
    assert manifest.image["size"] == [8, 8] and manifest.schema.labels == ("label",)
    ds = tfk.read(d, shuffle=False, batch_size=4)          # no image_size: all are 8x8
    images, labels = next(iter(ds))
    assert images.shape == (4, 8, 8, 3) and _labels(ds) == [k - 1 for k in LABELS]
    expected = np.asarray(Image.open(io.BytesIO(_image(0, "PNG", (8, 8)))), np.float32) / 255
    assert np.allclose(images[0].numpy(), expected)
    both = tfk.read(d, label=["label", "score"], shuffle=False, batch_size=10)
    _, y = next(iter(both))
    assert y["label"].numpy().tolist() == [k - 1 for k in LABELS]
    assert np.allclose(y["score"].numpy(), [i / 4 for i in range(10)])
    s = tfk.stats(d, label=["label", "score"])
    target = s.targets.set_index("label").loc["score"]
    assert target["count"] == 10 and target["min"] == 0 and target["max"] == 2.25
    assert target["mean"] == pytest.approx(np.mean([i / 4 for i in range(10)]))
    assert target["std"] == pytest.approx(np.std([i / 4 for i in range(10)]))
    assert set(s.classes["label"]) == {"label"}


def test_records_without_an_id_feature_predict_with_record_numbers(tmp_path):
    import keras

    d = write_tfds(tmp_path / "toy", ext="")
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    table = tfk.predict(model, d)
    assert table["id"].tolist() == [str(i) for i in range(10)]
    assert list(table.columns) == ["id", "0", "1", "2"]


def test_keys_named_by_hand_and_their_errors(tmp_path):
    d = write_imagenet(tmp_path / "imagenet")
    ds = tfk.read(d, label="image/height", id_key="image/class/synset", shuffle=False,
                  batch_size=10, image_size=8)
    assert _labels(ds) == [10 + i % 3 for i in range(10)]
    with pytest.raises(OptionError, match=r"`label` names 'nope', which is not an int64 or float "
                                          r"feature of .*; those are: image/class/label, "
                                          r"image/height, image/width"):
        tfk.read(d, label="nope", image_size=8)
    with pytest.raises(OptionError, match=r"`image_key` names 'image/class/label', which is not a "
                                          r"bytes feature"):
        tfk.read(d, image_key="image/class/label", image_size=8)
    with pytest.raises(OptionError, match=r"`id_key` names 'image/width', which is not a bytes"):
        tfk.read(d, id_key="image/width", image_size=8)


def test_index_manifest_makes_them_read_as_ours(tmp_path, capsys):
    d = write_imagenet(tmp_path / "imagenet")
    before = tfk.read(d, label="image/class/label", shuffle=False, batch_size=4, image_size=8)
    images_before = np.concatenate([x.numpy() for x, _ in before])
    with pytest.raises(DatasetError, match="holds TFRecord files but no dataset.json"):
        tfk.load_manifest(d)
    assert main(["index", str(d), "--manifest", "--label", "image/class/label"]) == 0
    out = capsys.readouterr().out
    assert "10 records in 2 files; image image/encoded, id image/filename, labels " \
           "image/class/label (4 classes)" in out
    manifest = tfk.load_manifest(d)
    assert manifest.records == 10 and [s.records for s in manifest.shards] == [5, 5]
    assert all(len(s.sha256) == 64 for s in manifest.shards)
    assert manifest.vocabularies["image/class/label"] == [0, 1, 2, 3]
    assert (d / "train-00000-of-00002.idx").exists()
    stored = json.loads((d / "dataset.json").read_text())
    assert stored["options"]["label"] == ["image/class/label"]
    assert {k for k, v in stored["schema"]["features"].items() if v["kind"] == "image"} == \
        {"image/encoded", "image/height", "image/width"}
    after = tfk.read(d, shuffle=False, batch_size=4, image_size=8)   # the label is recorded
    assert _labels(after) == LABELS
    assert np.array_equal(np.concatenate([x.numpy() for x, _ in after]), images_before)
    assert tfk.verify(d).ok and locate(d).counted_from == "dataset.json"
    assert main(["index", str(d), "--manifest"]) == 1
    assert "already has a dataset.json; pass --force" in capsys.readouterr().err
    assert main(["index", str(d), "--manifest", "--force", "--label", "image/height"]) == 0
    assert tfk.load_manifest(d).schema.labels == ("image/height",)


def test_remote_url_of_extensionless_shards(tmp_path):
    import tensorflow as tf

    local = write_imagenet(tmp_path / "imagenet")
    for f in sorted(local.iterdir()):
        tf.io.gfile.copy(str(f), f"ram://foreign/{f.name}", overwrite=True)
    ds = tfk.read("ram://foreign", label="image/class/label", shuffle=False, batch_size=4,
                  image_size=8)
    assert _labels(ds) == LABELS and ds.cardinality().numpy() == 3
    assert tfk.count("ram://foreign") == 10


def test_a_sample_short_of_every_record_leaves_classes_unknown_until_index_manifest(
        tmp_path, monkeypatch):
    from tfrecordkit import inference

    d = write_imagenet(tmp_path / "imagenet")
    monkeypatch.setattr(inference, "MANIFEST_SAMPLE_RECORDS", 4)   # 2 of each file's 5
    manifest = locate(d, label="image/class/label").manifest
    assert manifest.schema["image/class/label"].kind == "int64" and manifest.vocabularies == {}
    assert manifest.image["size"] is None and manifest.records == 10
    ds = tfk.read(d, label="image/class/label", shuffle=False, batch_size=4, image_size=8)
    assert _labels(ds) == LABELS
    with pytest.raises(OptionError, match=r"`label_mode='categorical'` needs the classes of "
                                          r"'image/class/label'.*index PATH --manifest"):
        tfk.read(d, label="image/class/label", label_mode="categorical", image_size=8)
    assert main(["index", str(d), "--manifest", "--label", "image/class/label"]) == 0
    one_hot = tfk.read(d, label_mode="categorical", shuffle=False, batch_size=10, image_size=8)
    assert np.argmax(next(iter(one_hot))[1].numpy(), axis=1).tolist() == LABELS


def test_images_of_unknown_size_ask_for_image_size(tmp_path):
    d = write_imagenet(tmp_path / "imagenet")
    with pytest.raises(OptionError, match=r"are not known to share one size \(no dataset.json "
                                          r"records it\), so a batch needs `image_size`"):
        tfk.read(d)


def test_an_image_size_stored_wrong_in_the_records_is_not_taken_for_the_images(tmp_path):
    """The images' size comes from the images: crops drawn from a stored image/height and
    image/width ten times too large fell outside the image and failed the read."""
    import tensorflow as tf

    d = tmp_path / "wrong"
    d.mkdir()
    with tf.io.TFRecordWriter(str(d / "train-00000-of-00001")) as w:
        for i in range(12):
            w.write(tf.train.Example(features=tf.train.Features(feature={
                "image/encoded": _feature(_image(i, "JPEG", (30, 40))),
                "image/class/label": _feature(i % 3),
                "image/height": _feature(300), "image/width": _feature(400),
            })).SerializeToString())
    assert locate(d).manifest.image["size"] == [30, 40]
    for crop in ("random", "center"):
        images, labels = next(iter(tfk.read(d, batch_size=12, image_size=16, crop=crop, seed=0,
                                            shuffle=False)))
        assert images.shape == (12, 16, 16, 3) and labels.numpy().tolist() == [0, 1, 2] * 4
    main(["index", str(d), "--manifest"])
    assert tfk.load_manifest(d).image["size"] == [30, 40]
