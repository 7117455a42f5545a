"""Stored regions and sizes: --max-size, --crop-box and --bbox-columns (issue 14, write side)."""
import io
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import tfrecordkit as tfk
from tfrecordkit.cli import main
from tfrecordkit.errors import OptionError, SourceError
from tfrecordkit.example import decode_example
from tfrecordkit.images import ImageOptions, load_image, shrunk_size
from tfrecordkit.options import WriteOptions
from tfrecordkit.records import iter_records


def noise(path, size, seed=0, fmt=None, exif=None):
    """A noisy RGB image of `size` = (width, height): every pixel differs, so crops are checkable."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGB")
    image.save(path, fmt, **({"exif": exif} if exif else {}))
    return path


def pixels(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def records_by_id(directory, id_column="name"):
    manifest = tfk.load_manifest(directory)
    out = {}
    for file in manifest.files:
        for record in iter_records(file):
            ex = decode_example(record.data)
            out[ex[id_column][1][0].decode()] = ex
    return out


# ----------------------------------------------------------------------------- one image

def test_max_size_shrinks_longer_side_and_keeps_small_images_byte_for_byte(tmp_path):
    big = load_image(noise(tmp_path / "big.jpg", (400, 200)), ImageOptions(max_size=100))
    assert (big.format, big.width, big.height, big.kept) == ("jpeg", 100, 50, False)
    assert pixels(big.data).shape == (50, 100, 3)
    small_path = noise(tmp_path / "small.jpg", (80, 40))
    small = load_image(small_path, ImageOptions(max_size=100))
    assert small.kept and small.data == small_path.read_bytes()
    png = load_image(noise(tmp_path / "big.png", (400, 200)), ImageOptions(max_size=100))
    assert (png.format, png.width, png.height) == ("png", 100, 50)
    tall = load_image(noise(tmp_path / "tall.png", (30, 301)), ImageOptions(max_size=100))
    assert (tall.width, tall.height) == (10, 100)
    assert shrunk_size(100, 50, 100) is None and shrunk_size(3, 1000, 10) == (1, 10)


def test_max_size_follows_exif_rotation(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6   # rotate 90: stored 400x200, seen 200x400
    path = noise(tmp_path / "phone.jpg", (400, 200), exif=exif.tobytes())
    image = load_image(path, ImageOptions(max_size=100))
    assert (image.width, image.height, image.kept) == (50, 100, False)


def test_max_size_with_explicit_format_reencodes_all(tmp_path):
    image = load_image(noise(tmp_path / "s.jpg", (80, 40)), ImageOptions(max_size=100, image_format="png"))
    assert (image.format, image.width, image.height, image.kept) == ("png", 80, 40, False)


def test_crop_box_stores_exactly_the_box(tmp_path):
    path = noise(tmp_path / "a.png", (400, 100))
    box = (186, 0, 300, 30)
    expected = np.asarray(Image.open(path).crop(box))
    image = load_image(path, ImageOptions(crop_box=box))   # keep: PNG stays PNG, lossless
    assert (image.format, image.width, image.height, image.kept) == ("png", 114, 30, False)
    assert np.array_equal(pixels(image.data), expected)
    raw = load_image(path, ImageOptions(crop_box=box, image_size=(30, 114), image_format="raw"))
    assert raw.data == expected.tobytes()   # a resize to its own size changes nothing
    jpeg = load_image(noise(tmp_path / "a.jpg", (400, 100)), ImageOptions(crop_box=box))
    assert (jpeg.format, jpeg.width, jpeg.height) == ("jpeg", 114, 30)


def test_crop_comes_before_max_size_and_resize(tmp_path):
    path = noise(tmp_path / "a.png", (400, 200))
    image = load_image(path, ImageOptions(crop_box=(0, 0, 200, 200), max_size=100))
    expected = Image.open(path).crop((0, 0, 200, 200)).resize((100, 100), Image.Resampling.LANCZOS)
    assert (image.width, image.height) == (100, 100)
    assert np.abs(pixels(image.data).astype(int) - np.asarray(expected).astype(int)).max() <= 2
    resized = load_image(path, ImageOptions(crop_box=(0, 0, 200, 100), image_size=(10, 20)))
    assert (resized.height, resized.width) == (10, 20)


def test_crop_box_outside_the_image_is_refused(tmp_path):
    path = noise(tmp_path / "a.png", (100, 50))
    with pytest.raises(ValueError, match=r"crop box \(left, top, right, bottom\) = \(186, 0, 300, 30\) "
                                         r"is not inside the 100x50 image"):
        load_image(path, ImageOptions(crop_box=(186, 0, 300, 30)))


# ----------------------------------------------------------------------------- options

@pytest.mark.parametrize("options, message", [
    ({"max_size": 0}, r"`max_size` must be a number of pixels from 1 to 65535"),
    ({"max_size": 64, "image_size": 32}, r"Pass either `max_size` .* or `image_size`"),
    ({"crop_box": "1,2,3"}, r"`crop_box` must be a box \"LEFT,TOP,RIGHT,BOTTOM\""),
    ({"crop_box": (5, 0, 5, 10)}, r"`crop_box` must be a box"),
    ({"crop_box": "0,0,1.5,2"}, r"`crop_box` must be a box"),
    ({"bbox_columns": "x,y,w"}, r"`bbox_columns` must be four column names"),
    ({"crop_box": (0, 0, 4, 4), "bbox_columns": "x,y,w,h"}, r"Pass either `crop_box` .* or `bbox_columns`"),
])
def test_bad_region_options(options, message):
    with pytest.raises(OptionError, match=message):
        WriteOptions(**options)


def test_region_options_parse_strings():
    opts = WriteOptions(max_size=256, crop_box=" 186, 0,300,30", image_format="jpeg")
    assert opts.crop_box == (186, 0, 300, 30) and opts.to_json()["crop_box"] == [186, 0, 300, 30]
    assert WriteOptions(bbox_columns="x, y,w,h").bbox_columns == ("x", "y", "w", "h")
    assert WriteOptions(crop_box=np.array([1, 2, 3, 4])).crop_box == (1, 2, 3, 4)


# ----------------------------------------------------------------------------- whole writes

@pytest.fixture
def boxes(tmp_path):
    """A table of 4 PNGs of 60x40 with per-row boxes x,y,w,h (floats, as Kaggle has them)."""
    images = tmp_path / "images"
    images.mkdir()
    for i in range(4):
        noise(images / f"{i}.png", (60, 40), seed=i)
    frame = pd.DataFrame({"name": [f"{i}.png" for i in range(4)], "label": ["a", "b", "a", "b"],
                          "x": [0, 10.0, 5, 59], "y": [0, 5.0, 30, 39], "w": [60, 20, 7, 1],
                          "h": [40, 10.4, 10, 1]})
    return frame, images


def test_bbox_columns_store_each_rows_box(tmp_path, boxes):
    frame, images = boxes
    m = tfk.write_frame(frame, tmp_path / "out", images=images, label="label",
                        bbox_columns=("x", "y", "w", "h"), progress=False)
    records = records_by_id(tmp_path / "out")
    for (_, row), box in zip(frame.iterrows(), [(0, 0, 60, 40), (10, 5, 30, 15), (5, 30, 12, 40),
                                                (59, 39, 60, 40)]):
        ex = records[row["name"]]
        expected = np.asarray(Image.open(images / row["name"]).crop(box))
        assert np.array_equal(pixels(ex["image/encoded"][1][0]), expected)
        assert ex["image/format"][1] == [b"png"]
        assert (ex["image/width"][1][0], ex["image/height"][1][0]) == (box[2] - box[0], box[3] - box[1])
        assert ex["x"][1] == [pytest.approx(row["x"])]   # the box columns are still stored
    manifest = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert manifest["options"]["bbox_columns"] == ["x", "y", "w", "h"]
    assert manifest["image"]["crop"] == {"bbox_columns": ["x", "y", "w", "h"]}
    assert m.image["kept_bytes"] == 0


def test_bbox_columns_travel_even_when_not_stored(tmp_path, boxes):
    frame, images = boxes
    tfk.write_frame(frame, tmp_path / "out", images=images, label="label", columns=[],
                    bbox_columns="x,y,w,h", progress=False)
    ex = records_by_id(tmp_path / "out")["1.png"]
    assert "x" not in ex and (ex["image/width"][1][0], ex["image/height"][1][0]) == (20, 10)


@pytest.mark.parametrize("column, value, reason", [
    ("w", np.nan, "bounding box column `w` is empty"),
    ("w", 0, r"bounding box \(x, y, width, height\) = \(10, 5, 0, 10.4\) has no area"),
    ("x", -3, r"bounding box \(x, y, width, height\) = \(-3, 5, 20, 10.4\) starts outside the image"),
    ("x", 50, r"crop box \(left, top, right, bottom\) = \(50, 5, 70, 15\) is not inside the 60x40 image"),
    ("h", "tall", r"bounding box column `h` holds 'tall', not a number of pixels"),
    ("h", 0.2, r"bounding box \(x, y, width, height\) = \(10, 5, 20, 0.2\) is smaller than a pixel once "
                r"rounded to whole pixels"),
])
def test_bad_boxes_are_bad_rows(tmp_path, boxes, column, value, reason):
    frame, images = boxes
    frame = frame.astype({column: object})
    frame.loc[1, column] = value
    with pytest.raises(SourceError, match=r"^row 1 \(id '1.png', file .*1.png\): " + reason):
        tfk.write_frame(frame, tmp_path / "raise", images=images, label="label",
                        bbox_columns="x,y,w,h", progress=False)
    m = tfk.write_frame(frame, tmp_path / "skip", images=images, label="label",
                        bbox_columns="x,y,w,h", on_error="skip", progress=False)
    assert (m.records, m.skipped) == (3, 1)
    errors = pd.read_csv(tmp_path / "skip" / "errors.csv")
    assert errors["row"].tolist() == [1] and errors["id"].tolist() == ["1.png"]
    assert pd.Series(errors["reason"]).str.contains(reason).all()


def test_missing_bbox_column_is_named(tmp_path, boxes):
    frame, images = boxes
    with pytest.raises(OptionError, match=r"`bbox_columns` names 'width', which is not a column"):
        tfk.write_frame(frame, tmp_path / "out", images=images, bbox_columns="x,y,width,h")


def test_crop_box_outside_one_image_is_a_bad_row(tmp_path, boxes):
    frame, images = boxes
    noise(images / "2.png", (30, 20), seed=2)   # smaller than the box below
    m = tfk.write_frame(frame, tmp_path / "out", images=images, label="label",
                        crop_box=(0, 0, 40, 20), on_error="skip", progress=False)
    assert (m.records, m.skipped) == (3, 1)
    reason = pd.read_csv(tmp_path / "out" / "errors.csv")["reason"][0]
    assert reason == ("crop box (left, top, right, bottom) = (0, 0, 40, 20) is not inside the "
                      "30x20 image (width x height)")


# ----------------------------------------------------------------------------- command line

def test_cli_max_size_and_crop_recorded_and_inspected(tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    noise(images / "big.jpg", (400, 200))
    noise(images / "small.jpg", (80, 40), seed=1)
    noise(images / "big.png", (400, 200), seed=2)
    pd.DataFrame({"name": ["big.jpg", "small.jpg", "big.png"]}).to_csv(tmp_path / "t.csv", index=False)
    out = tmp_path / "out"
    assert main(["convert", str(tmp_path / "t.csv"), str(out), "--images", str(images),
                 "--max-size", "100", "--quiet"]) == 0
    records = records_by_id(out)
    assert records["small.jpg"]["image/encoded"][1][0] == (images / "small.jpg").read_bytes()
    assert [(records[n]["image/format"][1][0], records[n]["image/width"][1][0],
             records[n]["image/height"][1][0]) for n in ("big.jpg", "big.png")] == \
        [(b"jpeg", 100, 50), (b"png", 100, 50)]
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["options"]["max_size"] == 100
    assert (manifest["image"]["max_size"], manifest["image"]["max_side"], manifest["image"]["kept_bytes"]) == (100, 100, 1)
    capsys.readouterr()
    assert main(["inspect", str(out), "-n", "0"]) == 0
    assert "stored images: max side 100 (largest stored 100)\n" in capsys.readouterr().out


def test_cli_crop_box_and_bad_combinations(tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    noise(images / "a.png", (400, 100))
    pd.DataFrame({"name": ["a.png"]}).to_csv(tmp_path / "t.csv", index=False)
    out = tmp_path / "out"
    assert main(["convert", str(tmp_path / "t.csv"), str(out), "--images", str(images),
                 "--crop-box", "186,0,300,30", "--max-size", "57", "--quiet"]) == 0
    ex = records_by_id(out)["a.png"]
    assert (ex["image/width"][1][0], ex["image/height"][1][0]) == (57, 15)
    assert json.loads((out / "dataset.json").read_text())["options"]["crop_box"] == [186, 0, 300, 30]
    capsys.readouterr()
    assert main(["inspect", str(out), "--json", "-n", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["stored_images"] == (
        "max side 57 (largest stored 57), cropped to box (186, 0, 300, 30) (left, top, right, bottom)")
    code = main(["convert", str(tmp_path / "t.csv"), str(tmp_path / "o2"), "--images", str(images),
                 "--max-size", "64", "--image-size", "32", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "Pass either `max_size` (shrink, keeping the aspect ratio) or `image_size`" in err
    code = main(["convert", str(tmp_path / "t.csv"), str(tmp_path / "o3"), "--images", str(images),
                 "--crop-box", "0,0,10", "--quiet"])
    assert code == 2 and "`crop_box` must be a box" in capsys.readouterr().err


def test_a_row_per_box_says_how_to_store_each_box(tmp_path, boxes):
    # Kaggle's detection tables list several boxes of one image; keyed by the image they
    # are duplicates, and the sentence says how to keep each box as its own record.
    frame, images = boxes
    frame = pd.concat([frame, frame.iloc[[1]]], ignore_index=True)
    with pytest.raises(SourceError, match=r"row 4 .*the same id as row 1; .*\(a row per box: "
                                          r"name a column unique to each row with --id-column"):
        tfk.write_frame(frame, tmp_path / "out", images=images, label="label",
                        bbox_columns="x,y,w,h", progress=False)
    frame["box"] = [f"b{i}" for i in range(len(frame))]
    tfk.write_frame(frame, tmp_path / "out2", images=images, label="label", id_column="box",
                    image_column="name", bbox_columns="x,y,w,h", progress=False)
    records = records_by_id(tmp_path / "out2", "box")
    assert sorted(records) == [f"b{i}" for i in range(5)]
    assert records["b4"]["image/encoded"][1] == records["b1"]["image/encoded"][1]   # the same box
