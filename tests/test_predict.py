import threading

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import tfrecordkit as tfk
from tfrecordkit.errors import OptionError
from tfrecordkit.options import ReadOptions

from conftest import make_image

SIZE = 16


def tiny_model(classes, size=8, outputs=None, name=None, seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    if outputs is None:
        return keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(x), name=name)
    return keras.Model(inputs, {name: keras.layers.Dense(n, activation=act, name=name)(x)
                                for name, (n, act) in outputs.items()})


def colour_model(size=SIZE, name="colour"):
    """Class = the dominant colour channel, by a wide margin on the fixtures' images:
    the reference check's argmax does not hinge on rounding."""
    import keras

    inputs = keras.Input((size, size, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    dense = keras.layers.Dense(3, activation="softmax")
    out = dense(x)
    dense.set_weights([np.eye(3, dtype=np.float32)[:, [2, 1, 0]] * 8, np.zeros(3, np.float32)])
    return keras.Model(inputs, out, name=name)   # columns 0, 1, 2 = blue, green, red


def pil_images(paths, size=SIZE):
    """The reference: decoded and resized by hand with PIL, float32 in [0, 1]."""
    out = []
    for p in paths:
        image = Image.open(p).convert("RGB")
        if image.size != (size, size):
            image = image.resize((size, size), Image.BILINEAR)
        out.append(np.asarray(image, np.float32) / 255.0)
    return np.stack(out)


def class_columns(table):
    return table[[c for c in table.columns if c not in ("id", "error") and c[0].isdigit()]]


@pytest.fixture
def dataset(tmp_path, table):
    frame, images = table
    tfk.write_frame(frame, tmp_path / "out", images=images, label="colour", multi_label="tags",
                    image_size=8, image_format="png", num_shards=2, seed=0, progress=False)
    return tmp_path / "out", frame


# ----------------------------------------------------------------------------- dataset directories

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


def test_predict_dataset_ids_aligned_one_to_one(dataset):
    out, frame = dataset
    model = tiny_model(3)
    table = tfk.predict(model, out, batch_size=7)
    assert table.columns.tolist() == ["id", "blue", "green", "red"]
    manifest = tfk.load_manifest(out)
    assert len(table) == manifest.records == 30
    assert sorted(table["id"]) == sorted(frame["image_name"])
    assert np.allclose(table[["blue", "green", "red"]].sum(axis=1), 1.0, atol=1e-5)
    # Row i of the table is the model's output for the image of record i ...
    from tfrecordkit.read import build

    images = np.concatenate([b.numpy() for b in build(manifest, ReadOptions(batch_size=30, shuffle=False), labels=[])])
    direct = model.predict(images, verbose=0)
    assert np.allclose(table[["blue", "green", "red"]].to_numpy(), direct, atol=1e-5)
    # ... and that image is the source file the id names.
    from tfrecordkit.example import decode_example
    from tfrecordkit.records import iter_records

    names = [decode_example(r.data)["image/filename"][1][0].decode()
             for f in manifest.files for r in iter_records(f)]
    assert table["id"].tolist() == names


def test_predict_dataset_reads_the_records_once(dataset, monkeypatch):
    import sys

    predict_module = sys.modules["tfrecordkit.predict"]   # `tfk.predict` is the function
    calls = []
    real = predict_module.build
    monkeypatch.setattr(predict_module, "build", lambda *a, **k: calls.append(k) or real(*a, **k))
    tfk.predict(tiny_model(3), dataset[0])
    assert len(calls) == 1 and calls[0]["ids"] is True


def test_predict_passes_are_not_autotuned(dataset, folder, monkeypatch):
    """tf.data's autotuning thread held the end of a pass for up to 2.6 s (the iterator's
    deletion waits on it); predict's finite passes, over a dataset or files, run without."""
    import sys

    predict_module = sys.modules["tfrecordkit.predict"]
    seen = []
    real = predict_module._run
    monkeypatch.setattr(predict_module, "_run", lambda models, batches, *a: (
        seen.append(batches.options().autotune.enabled), real(models, batches, *a))[1])
    tfk.predict(tiny_model(3), dataset[0])
    tfk.predict(tiny_model(3), folder, image_size=8)
    assert seen == [False, False]


def test_predict_multi_output_and_mismatch(dataset):
    out, _ = dataset
    model = tiny_model(3, outputs={"colour": (3, "softmax"), "tags": (3, "sigmoid")})
    table = tfk.predict(model, out)
    assert table.columns.tolist() == ["id", "colour/blue", "colour/green", "colour/red",
                                      "tags/bright", "tags/odd", "tags/warm"]
    with pytest.raises(OptionError, match="output for `colour` has 5 values but the label has 3 classes"):
        tfk.predict(tiny_model(5), out, label="colour")


def test_output_names_never_hold_a_doubled_slash(dataset):
    import keras

    out, _ = dataset
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    listed = keras.Model(inputs, [keras.layers.Dense(2)(x), keras.layers.Dense(1)(x)], name="m1")
    keyed = keras.Model(inputs, {"m1": keras.layers.Dense(2, name="m1")(x),
                                 "m2": keras.layers.Dense(1, name="m2")(x)}, name="m2")
    table = tfk.predict([listed, keyed], out, label=False)
    assert table.columns.tolist() == ["id", "m1/output_0/0", "m1/output_0/1", "m1/output_1",
                                      "m2/m1/0", "m2/m1/1", "m2/m2"]
    single = tfk.predict(listed, out, label=False)
    assert single.columns.tolist() == ["id", "output_0/0", "output_0/1", "output_1"]
    assert not any("//" in c for c in [*table.columns, *single.columns])


# ----------------------------------------------------------------------------- image files

def test_predict_folder_ids_and_values(folder):
    model = tiny_model(3, size=SIZE)
    table = tfk.predict(model, folder, batch_size=5)
    ids = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png"))
    assert table["id"].tolist() == ids and len(ids) == 24   # README.txt left out
    assert table.columns.tolist() == ["id", "0", "1", "2"]
    # The images are already 16x16 PNGs: nothing to resize, so the values are exact.
    expected = model.predict(pil_images([folder / i for i in ids]), verbose=0)
    assert np.allclose(class_columns(table).to_numpy(), expected, atol=1e-5)


def test_predict_resizes_like_a_hand_reference(table):
    frame, images = table
    model = colour_model()
    paths = [images / n for n in frame["image_name"]]
    result = tfk.predict(model, [str(p) for p in paths])
    assert result["id"].tolist() == [str(p) for p in paths]
    expected = model.predict(pil_images(paths), verbose=0)
    got = class_columns(result).to_numpy()
    assert (got.argmax(1) == expected.argmax(1)).mean() >= 0.97
    assert np.allclose(got, expected, atol=0.05)
    names = np.array(["blue", "green", "red"])
    assert (names[got.argmax(1)] == frame["colour"]).all()


def test_predict_csv_carries_its_other_columns(tmp_path, table):
    frame, images = table
    csv = tmp_path / "new.csv"
    frame.to_csv(csv, index=False)
    result = tfk.predict(colour_model(), csv, images=images, batch_size=4)
    assert result.columns.tolist() == ["id", "colour", "tags", "score", "count", "note",
                                       "0", "1", "2"]
    assert result["id"].tolist() == frame["image_name"].tolist()
    assert result["note"].tolist() == frame["note"].tolist()
    assert np.allclose(result["score"], frame["score"])
    reference = tfk.predict(colour_model(), [str(images / n) for n in frame["image_name"]])
    assert np.allclose(class_columns(result).to_numpy(), class_columns(reference).to_numpy(),
                       atol=1e-6)


def test_predict_parquet_with_image_column_and_own_id(tmp_path, table):
    frame, images = table
    parquet = tmp_path / "new.parquet"
    frame.assign(id=range(30))[["id", "colour", "image_name"]].to_parquet(parquet)
    result = tfk.predict(colour_model(), parquet, images=images, image_column="image_name")
    # The table has its own `id`: the image column keeps its name.
    assert result.columns.tolist() == ["image_name", "id", "colour", "0", "1", "2"]
    assert result["id"].tolist() == list(range(30))
    names = np.array(["blue", "green", "red"])
    assert (names[class_columns(result).to_numpy().argmax(1)] == frame["colour"]).all()


def test_predict_table_image_root_is_checked_first(tmp_path, table):
    frame, _ = table
    csv = tmp_path / "new.csv"
    frame.to_csv(csv, index=False)
    with pytest.raises(OptionError, match="None of the first 30 images of .*new.csv is in `images`"):
        tfk.predict(colour_model(), csv, images=tmp_path)
    with pytest.raises(OptionError, match="`image_column` 'path' is not a column of"):
        tfk.predict(colour_model(), csv, images=tmp_path, image_column="path")


def test_predict_list_glob_and_single_file_agree(folder):
    model = tiny_model(3, size=SIZE)
    whole = tfk.predict(model, folder).set_index("id")
    reds = sorted(str(p) for p in (folder / "Red").glob("*.png"))
    by_glob = tfk.predict(model, str(folder / "Red" / "*.png"))
    by_list = tfk.predict(model, [folder / "Red" / "3.png", folder / "Red" / "0.png"])
    one = tfk.predict(model, folder / "Red" / "3.png")
    assert by_glob["id"].tolist() == reds
    assert by_list["id"].tolist() == [str(folder / "Red" / "3.png"), str(folder / "Red" / "0.png")]
    assert one["id"].tolist() == [str(folder / "Red" / "3.png")]
    expected = whole.loc[["Red/3.png", "Red/0.png"]].to_numpy()
    assert np.allclose(class_columns(by_list).to_numpy(), expected, atol=1e-6)
    assert np.allclose(class_columns(one).to_numpy(), expected[:1], atol=1e-6)
    assert np.allclose(class_columns(by_glob).to_numpy(),
                       whole.loc[[f"Red/{i}.png" for i in range(8)]].to_numpy(), atol=1e-6)


def test_unreadable_images_get_an_error_and_the_rest_are_predicted(folder, caplog):
    model = tiny_model(3, size=SIZE)
    clean = tfk.predict(model, folder).set_index("id")
    (folder / "Red" / "broken.jpg").write_bytes(b"not an image at all")
    png = (folder / "Blue" / "0.png").read_bytes()
    (folder / "Blue" / "cut.png").write_bytes(png[:40])
    with caplog.at_level("WARNING", logger="tfrecordkit.predict"):
        table = tfk.predict(model, folder, batch_size=4).set_index("id")
    assert len(table) == 26
    bad = table.loc[["Blue/cut.png", "Red/broken.jpg"]]
    assert bad[["0", "1", "2"]].isna().all().all()
    assert bad["error"].str.startswith("cannot be decoded as an image").all()
    assert "{{function_node" not in bad["error"].iloc[0]
    good = table.drop(index=bad.index)
    assert good["error"].isna().all()
    assert np.allclose(good[["0", "1", "2"]].to_numpy(), clean[["0", "1", "2"]].to_numpy(), atol=1e-6)
    assert "image Red/broken.jpg (row 25): cannot be decoded" in caplog.text
    assert "2 of 26 images could not be read or decoded" in caplog.text


@pytest.mark.parametrize("crop, ratios", [
    (None, {(1, 1): 4, (2, 1): 4, (4, 1): 2, (8, 1): 3, None: 2}),
    ("center", {(1, 1): 6, (2, 1): 4, (4, 1): 3, None: 2}),    # the ratio the central window allows
])
def test_jpegs_of_every_dct_scale_decode_as_the_reader_decodes_them(tmp_path, crop, ratios):
    """predict decodes each JPEG with a decoder for its DCT ratio (read from its header,
    no branch per image) and the rest with the reader's own: the pixels are the reader's."""
    import keras
    import tensorflow as tf

    from tfrecordkit.image_files import _decode_groups
    from tfrecordkit.preprocess import image_decoder

    root = tmp_path / "photos"
    sizes = [(20, 18), (40, 36), (70, 64), (150, 140), (33, 80), (90, 17)]
    for i, hw in enumerate(sizes * 2):
        make_image(root / f"{i:02d}.jpg", (200, 120, 40), hw, seed=i)
    make_image(root / "png.png", (20, 40, 200), (30, 30))
    make_image(root / "png_named.jpg", (20, 40, 200), (50, 50), fmt="PNG")
    good = (root / "03.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(good[:len(good) // 2])   # its header reads, not its data
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten()])
    table = tfk.predict(model, root, batch_size=5, crop=crop).set_index("id")
    paths = sorted(str(p) for p in root.iterdir())
    opts = ReadOptions(image_size=(16, 16), shuffle=False, crop=crop)
    groups = _decode_groups(paths, list(range(len(paths))), opts, (16, 16))
    assert {r: len(m) for r, m in groups.items()} == ratios
    assert table.loc["truncated.jpg", "error"].startswith("cannot be decoded as an image")
    decode = image_decoder(opts, (16, 16))
    for path in paths:
        name = path.rsplit("/", 1)[1]
        if name == "truncated.jpg":
            continue
        expected = decode(tf.constant(open(path, "rb").read())).numpy().ravel()
        np.testing.assert_allclose(table.loc[name, [str(i) for i in range(768)]].to_numpy(float),
                                   expected, atol=1e-6, err_msg=name)
    assert table["error"].notna().sum() == 1


@pytest.mark.parametrize("crop", [None, "center"])
def test_phone_photos_are_predicted_upright_as_convert_stores_them(tmp_path, crop):
    """A JPEG's EXIF orientation turns it upright in `convert` (Pillow's exif_transpose);
    predicting the folder must show the model the same picture, not the sideways pixels."""
    import keras
    import tensorflow as tf
    from PIL import ImageOps

    rng = np.random.default_rng(0)
    stored = Image.fromarray(rng.integers(0, 255, (6, 9, 3)).astype(np.uint8)).resize((45, 30))
    root = tmp_path / "photos"
    root.mkdir()
    for orientation in range(1, 9):
        exif = stored.getexif()
        exif[0x0112] = orientation
        stored.save(root / f"o{orientation}.jpg", quality=100, exif=exif.tobytes())
    model = keras.Sequential([keras.Input((24, 20, 3)), keras.layers.Flatten()])
    table = tfk.predict(model, root, crop=crop).set_index("id")
    def expected(orientation):
        upright = np.asarray(ImageOps.exif_transpose(Image.open(root / f"o{orientation}.jpg")))
        if crop:
            upright = tf.image.central_crop(upright, 0.875)
        return tf.image.resize(upright, (24, 20)).numpy().ravel() / 255.0

    for orientation in range(1, 9):
        got = table.loc[f"o{orientation}.jpg", [str(i) for i in range(24 * 20 * 3)]].to_numpy(float)
        # 0.012: Pillow's and TensorFlow's JPEG decoders; a picture the wrong way up: 0.2
        assert np.abs(got - expected(orientation)).mean() < 0.02, orientation
        if orientation in (2, 3, 4):
            assert np.abs(got - expected(1)).mean() > 0.1, orientation


def test_tiff_files_are_predicted_as_convert_then_read_gives_them(tmp_path):
    """TensorFlow decodes no TIFF; `convert` takes them (through Pillow), so predict does."""
    import keras

    root = tmp_path / "scans" / "a"
    make_image(root / "rgb.tif", (200, 30, 90), (30, 40), fmt="TIFF")
    make_image(root / "grey.tiff", (90, 90, 90), (20, 24), fmt="TIFF", mode="L")
    (root / "broken.tif").write_bytes(b"II*\0" + b"\0" * 40)
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten()])
    table = tfk.predict(model, tmp_path / "scans").set_index("id")
    tfk.write_folder(tmp_path / "scans", tmp_path / "out", on_error="skip", progress=False)
    stored = tfk.predict(model, tmp_path / "out", label=False).set_index("id")
    columns = [str(i) for i in range(16 * 16 * 3)]
    for name in ("rgb.tif", "grey.tiff"):
        np.testing.assert_allclose(table.loc[f"a/{name}", columns].to_numpy(float),
                                   stored.loc[f"a/{name}", columns].to_numpy(float), atol=1e-6)
    assert table["error"].notna().sum() == 1 and table.loc["a/broken.tif", "error"]


def test_a_fifo_in_a_folder_is_an_error_row_not_a_hang(folder):
    import os

    os.mkfifo(folder / "Red" / "pipe.jpg")   # tf.io.read_file would block on it forever
    table = tfk.predict(tiny_model(3, size=SIZE), folder).set_index("id")
    assert len(table) == 25
    assert table.loc["Red/pipe.jpg", "error"] == "cannot be read: is a FIFO (named pipe), not a regular image file"
    assert table.drop(index="Red/pipe.jpg")["error"].isna().all()


def test_missing_and_bad_table_rows_get_an_error(tmp_path, table):
    frame, images = table
    csv = tmp_path / "new.csv"
    frame[["image_name"]].iloc[:3].assign(image_name=["img_000.png", "gone.jpg", "/etc/passwd"]) \
        .to_csv(csv, index=False)
    result = tfk.predict(colour_model(), csv, images=images)
    assert result["error"].isna().tolist() == [True, False, False]
    assert result["error"][1].startswith("cannot be read: No such file")
    assert "is absolute" in result["error"][2]
    assert np.isfinite(class_columns(result).iloc[0]).all()


# ----------------------------------------------------------------------------- models

def test_several_models_match_single_predictions(folder, tmp_path):
    a, b = tiny_model(3, size=SIZE, seed=1), tiny_model(2, size=SIZE, seed=2)
    one_a, one_b = tfk.predict(a, folder), tfk.predict(b, folder)
    both = tfk.predict({"first": a, "second": b}, folder)
    assert both.columns.tolist() == ["id", "first/0", "first/1", "first/2", "second/0", "second/1"]
    assert np.allclose(both[["first/0", "first/1", "first/2"]], one_a[["0", "1", "2"]], atol=1e-6)
    assert np.allclose(both[["second/0", "second/1"]], one_b[["0", "1"]], atol=1e-6)
    path = tmp_path / "a.keras"
    a.save(path)
    listed = tfk.predict([a, str(path)], folder)   # the same name twice: made unique
    name = a.name
    assert listed.columns.tolist() == ["id", *(f"{n}/{i}" for n in (name, f"{name}_1") for i in range(3))]
    assert np.allclose(listed[[f"{name}_1/{i}" for i in range(3)]], one_a[["0", "1", "2"]], atol=1e-6)


def test_saved_model_paths(folder, tmp_path):
    model = tiny_model(3, size=SIZE)
    expected = class_columns(tfk.predict(model, folder)).to_numpy()
    model.save(tmp_path / "m.h5")
    model.export(tmp_path / "saved")
    for path in (tmp_path / "m.h5", tmp_path / "saved"):
        table = tfk.predict(path, folder)
        assert np.allclose(table.iloc[:, 1:].to_numpy(np.float32), expected, atol=1e-5), path
    with pytest.raises(OptionError, match="is a directory without saved_model.pb"):
        tfk.predict(str(folder), folder)


def test_models_with_different_sizes_need_image_size(folder):
    with pytest.raises(OptionError, match=r"different input sizes \(a: 16x16, b: 8x8\)"):
        tfk.predict({"a": tiny_model(3, size=SIZE), "b": tiny_model(3, size=8)}, folder)


def test_argument_errors(folder):
    model = tiny_model(3, size=SIZE)
    with pytest.raises(OptionError, match=r"`crop` must be None or \"center\" .*; received crop='middle'"):
        tfk.predict(model, folder, crop="middle")
    with pytest.raises(OptionError, match="`source` '.*nowhere' does not exist"):
        tfk.predict(model, folder / "nowhere")
    with pytest.raises(OptionError, match="`label` names labels of a dataset directory"):
        tfk.predict(model, folder, label="colour")
    with pytest.raises(OptionError, match="`split` names a split of a dataset directory"):
        tfk.predict(model, folder, split="val")
    with pytest.raises(OptionError, match="`batch_size` must be a positive integer"):
        tfk.predict(model, folder, batch_size=0)
    with pytest.raises(OptionError, match="`resize_mode` must be one of"):
        tfk.Predictor("nothing.keras", resize_mode="squash")   # before the model is looked for
    with pytest.raises(OptionError, match="`model` 'nothing.keras' does not exist"):
        tfk.Predictor("nothing.keras")


def test_center_crop_reaches_the_reader(folder):
    import tensorflow as tf

    model = tiny_model(3, size=8)
    cropped = tfk.predict(model, folder, crop="center")
    ids = cropped["id"].tolist()
    assert len(ids) == 24
    # The reader's centre crop: central_crop(0.875), then an antialiased resize (PNG) to 8x8.
    images = pil_images([folder / i for i in ids]).astype("float32")
    expected = model.predict(tf.image.resize(tf.image.central_crop(images, 0.875), (8, 8),
                                             antialias=True).numpy(),
                             verbose=0)
    assert np.allclose(class_columns(cropped).to_numpy(), expected, atol=1e-4)
    plain = tfk.predict(model, folder)
    assert not np.allclose(class_columns(plain).to_numpy(), expected, atol=1e-4)


# ----------------------------------------------------------------------------- Predictor

def test_predictor_inputs_agree(folder):
    model = tiny_model(3, size=SIZE)
    predictor = tfk.Predictor(model)
    paths = [folder / "Green" / f"{i}.png" for i in range(3)]
    pixels = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])
    expected = model.predict(pixels.astype(np.float32) / 255.0, verbose=0)
    assert np.allclose(predictor(pixels), expected, atol=1e-5)                    # uint8 NHWC
    assert np.allclose(predictor(pixels / 255.0), expected, atol=1e-5)            # float NHWC
    assert np.allclose(predictor.predict([str(p) for p in paths]), expected, atol=1e-5)
    assert np.allclose(predictor([p.read_bytes() for p in paths]), expected, atol=1e-5)
    one = predictor(pixels[0])                                                    # HWC: no batch axis
    assert one.shape == (3,) and np.allclose(one, expected[0], atol=1e-5)
    assert np.allclose(predictor(paths[0]), expected[0], atol=1e-5)
    assert np.allclose(predictor(paths[0].read_bytes()), expected[0], atol=1e-5)
    # Another size is resized like the reader does: the same as predicting the file.
    big = np.asarray(Image.open(paths[0]).convert("RGB").resize((32, 32), Image.NEAREST))
    assert np.allclose(predictor(big), expected[0], atol=0.05)
    assert predictor(np.zeros((70, 16, 16, 3), np.uint8)).shape == (70, 3)   # > batch_size
    table = tfk.predict(model, paths)
    assert np.allclose(class_columns(table).to_numpy(), expected, atol=1e-5)


def test_predictor_from_four_threads(folder):
    model = tiny_model(3, size=SIZE)
    predictor = tfk.Predictor(model)
    rng = np.random.default_rng(0)
    requests = [rng.integers(0, 255, (int(rng.integers(1, 4)), 16 + 8 * (i % 3), 16, 3), np.uint8)
                for i in range(24)]
    expected = [predictor(r) for r in requests]
    results: dict[int, list] = {}

    def work(t):
        results[t] = [predictor(r) for r in requests[t::4] * 3]

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for t in range(4):
        for got, want in zip(results[t], expected[t::4] * 3):
            assert np.array_equal(got, want)


def test_predictor_several_outputs_and_errors(folder):
    model = tiny_model(3, size=SIZE, outputs={"colour": (3, "softmax"), "tags": (2, "sigmoid")})
    predictor = tfk.Predictor({"a": model, "b": tiny_model(3, size=SIZE)})
    out = predictor(np.zeros((2, 16, 16, 3), np.float32))
    assert sorted(out) == ["a/colour", "a/tags", "b"]
    assert out["a/tags"].shape == (2, 2) and out["b"].shape == (2, 3)
    with pytest.raises(OptionError, match="received an array of int64"):
        predictor(np.zeros((16, 16, 3), np.int64))
    with pytest.raises(OptionError, match="Cannot read the image file '.*missing.png'"):
        predictor(str(folder / "missing.png"))
    with pytest.raises(OptionError, match=r"An image in `x` \(images 0 to 1\) cannot be decoded: "
                                          "Unknown image file format"):
        predictor([(folder / "Red" / "0.png").read_bytes(), b"junk"])


# ----------------------------------------------------------------------------- command line

def test_cli_predict_writes_csv_and_parquet(tmp_path, folder, capsys):
    from tfrecordkit.cli import main

    model = tiny_model(3, size=SIZE)
    model.save(tmp_path / "m.keras")
    expected = tfk.predict(model, folder)
    for name, quiet in (("out.csv", []), ("out.parquet", ["--quiet"])):
        out = tmp_path / name
        assert main(["predict", str(tmp_path / "m.keras"), str(folder), "-o", str(out),
                     "--batch-size", "5", *quiet]) == 0
        assert capsys.readouterr().out.strip() == str(out)
        written = pd.read_csv(out) if name.endswith(".csv") else pd.read_parquet(out)
        assert written["id"].tolist() == expected["id"].tolist()
        assert np.allclose(written[["0", "1", "2"]], expected[["0", "1", "2"]], atol=1e-6)
    assert main(["predict", str(tmp_path / "m.keras"), str(folder), "-o", str(tmp_path / "x.txt")]) == 2
    assert "`--output` must end in .csv or .parquet" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["predict", str(tmp_path / "m.keras"), str(folder), "-o", "c.csv", "--crop", "middle"])
    assert exit_.value.code == 2


def test_remote_files_take_the_readers_decoder_without_a_header_read(monkeypatch):
    from tfrecordkit import image_files

    monkeypatch.setattr(image_files, "image_file_header", lambda path: pytest.fail(f"read {path}"))
    opts = ReadOptions(image_size=(16, 16))
    assert image_files._decode_groups(["gs://bucket/a.jpg", "s3://b/c.jpg"], [0, 1], opts,
                                      (16, 16)) == {None: [0, 1]}
