import numpy as np
import pytest

import tfrecordkit as tfk
from tfrecordkit.errors import OptionError


def tiny_model(classes, size=8, outputs=None):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    if outputs is None:
        return keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(x))
    return keras.Model(inputs, {name: keras.layers.Dense(n, activation=act, name=name)(x)
                                for name, (n, act) in outputs.items()})


@pytest.fixture
def dataset(tmp_path, table):
    frame, images = table
    tfk.write_frame(frame, tmp_path / "out", images=images, label="colour", multi_label="tags",
                    image_size=8, image_format="png", num_shards=2, seed=0, progress=False)
    return tmp_path / "out", frame


def test_fit_on_shards_lowers_the_loss(dataset):
    import keras

    out, _ = dataset
    model = tiny_model(3)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    ds = tfk.read(out, batch_size=10, label="colour", seed=0)
    history = model.fit(ds, validation_data=tfk.read(out, batch_size=10, label="colour",
                                                     shuffle=False), epochs=8, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.6 * losses[0], losses
    assert history.history["val_accuracy"][-1] >= 0.9


def test_multi_output_fit_with_label_dict(dataset):

    out, _ = dataset
    model = tiny_model(3, outputs={"colour": (3, "softmax"), "tags": (3, "sigmoid")})
    model.compile(optimizer="adam", loss={"colour": "sparse_categorical_crossentropy",
                                          "tags": "binary_crossentropy"})
    history = model.fit(tfk.read(out, batch_size=10), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_predict_ids_aligned_one_to_one(dataset):
    out, frame = dataset
    model = tiny_model(3)
    table = tfk.predict(model, out, batch_size=7)
    assert table.columns.tolist() == ["id", "blue", "green", "red"]
    manifest = tfk.load_manifest(out)
    assert len(table) == manifest.records == 30
    assert sorted(table["id"]) == sorted(frame["image_name"])
    assert np.allclose(table[["blue", "green", "red"]].sum(axis=1), 1.0, atol=1e-5)
    # Row i of the table is the model's output for the image of record i.
    from tfrecordkit.options import ReadOptions
    from tfrecordkit.read import build

    images = np.concatenate([b.numpy() for b in build(manifest, ReadOptions(batch_size=30, shuffle=False), labels=[])])
    direct = model.predict(images, verbose=0)
    assert np.allclose(table[["blue", "green", "red"]].to_numpy(), direct, atol=1e-5)
    # ... and that image is the source file the id names.
    ids = [r for r in table["id"]]
    from tfrecordkit.example import decode_example
    from tfrecordkit.records import iter_records

    names = [decode_example(r.data)["image/filename"][1][0].decode()
             for f in manifest.files for r in iter_records(f)]
    assert ids == names


def test_predict_multi_output_and_mismatch(dataset):
    out, _ = dataset
    model = tiny_model(3, outputs={"colour": (3, "softmax"), "tags": (3, "sigmoid")})
    table = tfk.predict(model, out)
    assert table.columns.tolist() == ["id", "colour/blue", "colour/green", "colour/red",
                                      "tags/bright", "tags/odd", "tags/warm"]
    with pytest.raises(OptionError, match="output for `colour` has 5 values but the label has 3 classes"):
        tfk.predict(tiny_model(5), out, label="colour")
