"""The bad-input catalogue: one label table mixing good rows, valid-but-odd images and every
kind of bad row, converted under both error policies."""
import io
import json
import os
import struct
import subprocess
import sys
import unicodedata
import zlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import tfrecordkit as tfk
import tfrecordkit.images as images_module
from tfrecordkit.cli import main
from tfrecordkit.errors import OptionError, SourceError
from tfrecordkit.example import decode_example
from tfrecordkit.images import ImageOptions, load_image
from tfrecordkit.records import iter_records

JPEG_TOLERANCE = 12.0    # mean absolute difference per channel for lossy images


def _base(height=12, width=16):
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 15, y * 20, np.full_like(x, 128)], axis=-1).astype(np.uint8)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(width, height, bit_depth, colour_type, rows: bytes, level=6) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) +
            _png_chunk(b"IDAT", zlib.compress(rows, level)) + _png_chunk(b"IEND", b""))


def _bomb_png(side=50_000) -> bytes:
    """A 1-bit PNG of side x side pixels (2.5 billion) in about 300 KB."""
    row = bytes(1 + (side + 7) // 8)
    packer = zlib.compressobj(9)
    block = row * 1000
    idat = b"".join(packer.compress(block) for _ in range(side // 1000)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) +
            _png_chunk(b"IEND", b""))


@pytest.fixture(scope="session")
def bomb_bytes():
    return _bomb_png()


def _noise(size=64, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (size, size, 3)).astype(np.uint8)


def _save(image, path, fmt=None, **kw):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image.save(path, fmt, **kw)
    return path


@pytest.fixture
def catalogue(tmp_path, bomb_bytes):
    """(csv path, image root, outside dir, rows): rows are dicts with the CSV cells plus
    `expect`: "good", ("odd", expected RGB array, lossless), or ("bad", reason pattern)."""
    root, outside = tmp_path / "images", tmp_path / "outside"
    base = _base()
    rows = []

    def add(image_id, expect, label="a", tags="x"):
        rows.append({"image": image_id, "label": label, "tags": tags, "expect": expect})

    # Good rows: plain RGB JPEGs.
    for i in range(4):
        _save(Image.fromarray(np.roll(base, i, axis=1)), root / f"good_{i}.jpg")
        add(f"good_{i}.jpg", ("odd", np.roll(base, i, axis=1), False), label="ab"[i % 2])
    # Valid but odd images: each must land and decode as RGB.
    grey = np.asarray(Image.fromarray(base).convert("L"))
    grey3 = np.repeat(grey[..., None], 3, axis=-1)
    _save(Image.fromarray(base).convert("CMYK"), root / "cmyk.jpg")
    add("cmyk.jpg", ("odd", base, False))
    _save(Image.fromarray(grey), root / "grey.png")
    add("grey.png", ("odd", grey3, True))
    _save(Image.fromarray(grey), root / "grey.jpg")
    add("grey.jpg", ("odd", grey3, False))
    deep = grey.astype(np.uint16) * 257                    # 16-bit grey, full range
    (root / "deep_grey.png").write_bytes(_png(16, 12, 16, 0, b"".join(
        b"\x00" + deep[y].astype(">u2").tobytes() for y in range(12))))
    add("deep_grey.png", ("odd", grey3, True))
    deep_rgb = base.astype(np.uint16) * 257                # 16-bit RGB
    (root / "deep_rgb.png").write_bytes(_png(16, 12, 16, 2, b"".join(
        b"\x00" + deep_rgb[y].astype(">u2").tobytes() for y in range(12))))
    add("deep_rgb.png", ("odd", base, True))
    rgba = np.concatenate([base, np.linspace(0, 255, 12 * 16).reshape(12, 16, 1).astype(np.uint8)], -1)
    _save(Image.fromarray(rgba, "RGBA"), root / "rgba.png")
    add("rgba.png", ("odd", base, True))
    la = Image.fromarray(np.stack([grey, np.full_like(grey, 100)], -1), "LA")
    _save(la, root / "grey_alpha.png")
    add("grey_alpha.png", ("odd", grey3, True))
    palette = Image.fromarray(base).quantize(16)
    _save(palette, root / "palette.png")
    add("palette.png", ("odd", np.asarray(palette.convert("RGB")), True))
    _save(palette, root / "palette_trns.png", transparency=0)
    add("palette_trns.png", ("odd", np.asarray(palette.convert("RGB")), True))
    bilevel = Image.fromarray(base).convert("1")
    _save(bilevel, root / "bilevel.png")
    add("bilevel.png", ("odd", np.asarray(bilevel.convert("RGB")), True))
    _save(Image.fromarray(base), root / "png_bytes.jpg", "PNG")      # PNG named .jpg
    add("png_bytes.jpg", ("odd", base, True))
    gif = Image.fromarray(base).quantize(64)
    _save(gif, root / "still.gif")
    add("still.gif", ("odd", np.asarray(gif.convert("RGB")), True))
    _save(Image.fromarray(base), root / "bitmap.bmp")
    add("bitmap.bmp", ("odd", base, True))
    unicode_name = "café_naïve_日本.jpg"
    _save(Image.fromarray(base), root / unicode_name)
    add(unicode_name, ("odd", base, False))
    nfd = unicodedata.normalize("NFD", "résumé.png")              # macOS writes names so
    _save(Image.fromarray(base), root / nfd)
    add(unicodedata.normalize("NFC", "résumé.png"), ("odd", base, True))
    _save(Image.fromarray(base), root / "no_extension_id.png")
    add("no_extension_id", ("odd", base, True))                      # id without its extension
    _save(Image.fromarray(base), root / "sub" / "nested.png")
    add("sub/nested", ("odd", base, True))
    phone = Image.fromarray(base)
    exif = phone.getexif()
    exif[0x0112] = 6                                                 # rotate 90 degrees clockwise
    _save(phone, root / "phone.jpg", exif=exif, quality=95)
    add("phone.jpg", ("odd", np.rot90(base, k=-1), False))
    os.symlink(root / "good_0.jpg", root / "alias.jpg")              # a link inside the root is fine
    add("alias.jpg", ("odd", base, False))
    # An empty multi-label cell is "no tags" (a good row).
    _save(Image.fromarray(base), root / "untagged.png")
    add("untagged.png", ("odd", base, True), tags="")

    # Bad rows: each must be refused with its reason.
    add("missing.jpg", ("bad", "file not found"))
    (root / "empty.jpg").write_bytes(b"")
    add("empty.jpg", ("bad", r"file is empty \(0 bytes\)"))
    (root / "notes.jpg").write_text("this is not an image")
    add("notes.jpg", ("bad", "is not an image"))
    noise = io.BytesIO()
    Image.fromarray(_noise()).save(noise, "JPEG", quality=90)
    (root / "truncated.jpg").write_bytes(noise.getvalue()[: len(noise.getvalue()) // 2])
    add("truncated.jpg", ("bad", "corrupt or truncated"))
    noise = io.BytesIO()
    Image.fromarray(_noise(seed=1)).save(noise, "PNG")
    damaged = bytearray(noise.getvalue())
    damaged[damaged.index(b"IDAT") + 100] ^= 0x55                    # Pillow decodes it; TF would not
    (root / "damaged.png").write_bytes(bytes(damaged))
    add("damaged.png", ("bad", "PNG chunk IDAT at byte 33 fails its CRC check"))
    (root / "bomb.png").write_bytes(bomb_bytes)
    add("bomb.png", ("bad", r"refused as a decompression bomb: 2,500,000,000 pixels exceeds "
                            r"the limit of 89,478,485 \(max_image_pixels\)"))
    secret = _save(Image.fromarray(np.full((13, 17, 3), (0, 255, 0), np.uint8)), outside / "secret.png")
    add("../outside/secret.png", ("bad", "leads outside the image root"))
    add(str(secret), ("bad", "is absolute"))
    os.symlink(secret, root / "link_out.png")
    add("link_out.png", ("bad", r"resolves outside the image root \(symbolic link\?\)"))
    os.symlink(outside, root / "linked_dir")
    add("linked_dir/secret.png", ("bad", r"resolves outside the image root"))
    _save(Image.fromarray(base), root / "unlabelled.png")
    add("unlabelled.png", ("bad", "label `label` is missing"), label="")
    _save(Image.fromarray(base), root / "nan_label.png")
    add("nan_label.png", ("bad", "label `label` is missing"), label="nan")
    add("good_1.jpg", ("bad", "the same id as row 1; ids must be unique"))   # a duplicate id

    frame = pd.DataFrame([{k: r[k] for k in ("image", "label", "tags")} for r in rows])
    path = tmp_path / "labels.csv"
    frame.to_csv(path, index=False)
    return path, root, outside, rows


def _records(out):
    manifest = tfk.load_manifest(out)
    return [decode_example(r.data) for f in manifest.files for r in iter_records(f)]


def test_skip_lands_every_good_and_odd_image_as_rgb_and_reports_every_bad_row(
        catalogue, tmp_path, monkeypatch, caplog):
    import tensorflow as tf

    path, root, outside, rows = catalogue
    opened = []
    real_open = images_module.storage.open
    out = tmp_path / "out"

    def spy(file, *args, **kwargs):   # every file the writer opens, but for its own output
        if not os.path.realpath(file).startswith(os.path.realpath(out) + os.sep):
            opened.append(os.path.realpath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(images_module.storage, "open", spy)
    m = tfk.convert(path, out, images=root, label="label", multi_label="tags", on_error="skip",
                    num_shards=2, seed=0, jobs=1, progress=False)

    good = {r["image"]: r["expect"] for r in rows if r["expect"][0] == "odd"}
    bad = {i: r for i, r in enumerate(rows) if r["expect"][0] == "bad"}
    assert (m.records, m.skipped, m.source_rows) == (len(good), len(bad), len(rows))
    assert m.duplicates == 1 and json.loads((out / "dataset.json").read_text())["duplicate_ids"] == 1
    assert "1 rows repeat the id of an earlier row (e.g. 'good_1.jpg')" in caplog.text
    assert m.vocabularies["label"] == ["a", "b"]                      # never a class called nan

    errors = pd.read_csv(out / "errors.csv", keep_default_na=False)
    assert errors.columns.tolist() == ["row", "id", "source", "reason"]
    assert errors["row"].tolist() == sorted(bad)
    for _, error in errors.iterrows():
        row = bad[error["row"]]
        assert error["id"] == row["image"]
        assert pd.Series([error["reason"]]).str.contains(row["expect"][1]).all(), error.to_dict()
    assert errors.set_index("id").loc["bomb.png", "source"] == str(root / "bomb.png")

    # Nothing outside the image root was opened, stored or decoded.
    real_root = os.path.realpath(root)
    assert opened and all(p.startswith(real_root + os.sep) for p in opened)
    records = _records(out)
    names = sorted(r["image"][1][0].decode() for r in records)
    assert names == sorted(good)
    for record in records:
        name = record["image"][1][0].decode()
        expected, lossless = good[name][1], good[name][2]
        encoded = record["image/encoded"][1][0]
        pixels = tf.io.decode_image(encoded, channels=3, expand_animations=False).numpy()
        height, width = record["image/height"][1][0], record["image/width"][1][0]
        assert pixels.shape == (height, width, 3) == expected.shape, name
        diff = np.abs(pixels.astype(int) - expected.astype(int))
        if lossless:
            assert diff.max() <= 1, name
        else:
            assert diff.mean() < JPEG_TOLERANCE, (name, diff.mean())
        fmt = record["image/format"][1][0].decode()
        assert fmt == ("png" if encoded.startswith(b"\x89PNG") else "jpeg"), name
    by_name = {r["image"][1][0].decode(): r for r in records}
    assert by_name["untagged.png"]["tags"][1] == []                   # empty multi-label: no tags
    assert by_name["résumé.png"]["image/filename"][1][0].decode() == unicodedata.normalize("NFD", "résumé.png")
    assert by_name["no_extension_id"]["image/filename"][1][0] == b"no_extension_id.png"
    assert by_name["cmyk.jpg"]["image/format"][1][0] == b"jpeg"       # transcoded, stays JPEG
    assert by_name["deep_grey.png"]["image/channels"][1][0] == 1      # kept as it is

    # And through the reader, every record as an RGB float image.
    batches = list(tfk.read(out, batch_size=8, image_size=10, shuffle=False))
    images = np.concatenate([b[0].numpy() for b in batches])
    assert images.shape == (len(good), 10, 10, 3) and 0.0 <= images.min() and images.max() <= 1.0


def test_raise_names_a_bad_row_and_leaves_no_dataset(catalogue, tmp_path, capsys):
    path, root, _, rows = catalogue
    args = ["convert", str(path), str(tmp_path / "out"), "--images", str(root), "--label", "label",
            "--multi-label", "tags", "--jobs", "2", "--num-shards", "3", "--quiet"]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    duplicate = len(rows) - 1
    assert err == (f"tfrecordkit: error: row {duplicate} (id 'good_1.jpg', file {root / 'good_1.jpg'}): "
                   "the same id as row 1; ids must be unique so that each prediction maps back to "
                   "one row; fix or remove the row, or pass on_error='skip' (--on-error skip) to "
                   "skip bad rows and list them in errors.csv.")
    assert not (tmp_path / "out").exists()
    with pytest.raises(SourceError):
        main(["--debug"] + args)                                       # --debug: the traceback

    # Without the duplicate, the first bad image stops the run, with two workers writing.
    frame = pd.read_csv(path).iloc[:-1]
    frame.to_csv(path, index=False)
    assert main(args) == 1
    err = capsys.readouterr().err
    bad = [r for r in rows[:-1] if r["expect"][0] == "bad"]
    assert any(f"(id '{r['image']}'" in err for r in bad) and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", [
    "missing.jpg", "empty.jpg", "notes.jpg", "truncated.jpg", "damaged.png", "bomb.png",
    "../outside/secret.png", "absolute", "link_out.png", "linked_dir/secret.png",
    "unlabelled.png", "nan_label.png"])
def test_each_bad_kind_alone_is_refused_with_its_reason(catalogue, tmp_path, name):
    path, root, outside, rows = catalogue
    row = next(r for r in rows if r["image"] == name or (name == "absolute" and os.path.isabs(r["image"])))
    frame = pd.read_csv(path)
    frame = frame[frame["image"].isin(["good_0.jpg", "grey.png", row["image"]])]
    frame.to_csv(path, index=False)
    out = tmp_path / "one"
    out.mkdir()                                   # an existing empty directory stays, empty
    with pytest.raises(SourceError, match=row["expect"][1]) as info:
        tfk.convert(path, out, images=root, label="label", seed=0, jobs=1, progress=False)
    error = info.value
    assert error.row == 2 and error.id == row["image"]
    assert str(error).startswith(f"row 2 (id {row['image']!r}")
    assert os.listdir(out) == []


def test_missing_columns_list_the_columns_that_exist(catalogue, tmp_path, capsys):
    path, root, _, _ = catalogue
    with pytest.raises(OptionError, match=r"`label` names column 'class', which is not in the "
                                          r"table; the columns are: image, label, tags\."):
        tfk.convert(path, tmp_path / "x", images=root, label="class")
    with pytest.raises(OptionError, match=r"`id_column` names column 'file', which is not in the "
                                          r"table; the columns are: image, label, tags\."):
        tfk.convert(path, tmp_path / "x", images=root, id_column="file")
    assert main(["convert", str(path), str(tmp_path / "x"), "--images", str(root),
                 "--multi-label", "labels"]) == 2
    assert "`multi_label` names column 'labels'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmHWM from /proc")
def test_bomb_is_refused_from_its_header_without_allocating(tmp_path, bomb_bytes):
    (tmp_path / "bomb.png").write_bytes(bomb_bytes)
    assert len(bomb_bytes) < 400_000
    # VmHWM: this process's peak resident memory (ru_maxrss would carry pytest's across exec).
    script = ("from tfrecordkit.images import ImageOptions, load_image\n"
              "try:\n"
              f"    load_image({str(tmp_path / 'bomb.png')!r}, ImageOptions())\n"
              "except ValueError as e:\n"
              "    print(e)\n"
              "status = open('/proc/self/status').read()\n"
              "print(status.split('VmHWM:')[1].split()[0])\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, cwd=os.path.dirname(os.path.dirname(__file__)))
    reason, peak_kb = result.stdout.strip().splitlines()
    assert reason == ("refused as a decompression bomb: 2,500,000,000 pixels exceeds the limit "
                      "of 89,478,485 (max_image_pixels)")
    assert int(peak_kb) < 300_000          # 2.5 billion pixels would need 2.5 GB


def test_pixel_limit_is_configurable_both_ways(tmp_path, monkeypatch):
    path = _save(Image.fromarray(_noise(40)), tmp_path / "a.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)     # Pillow's own limit below ours
    assert load_image(path, ImageOptions(max_image_pixels=2000)).height == 40
    with pytest.raises(ValueError, match=r"40x40 = 1,600 pixels exceeds the limit of 1,500 "
                                         r"\(max_image_pixels\)"):
        load_image(path, ImageOptions(max_image_pixels=1500))


def test_header_validation_keeps_what_full_validation_refuses(catalogue, tmp_path):
    path, root, _, _ = catalogue
    frame = pd.DataFrame({"image": ["good_0.jpg", "truncated.jpg", "damaged.png"], "label": ["a"] * 3})
    with pytest.raises(SourceError, match="truncated"):
        tfk.write_frame(frame, tmp_path / "full", images=root, shuffle=False, progress=False)
    m = tfk.write_frame(frame, tmp_path / "header", images=root, validate="header", progress=False)
    assert m.records == 3 and m.options["validate"] == "header"
    report = tfk.verify(tmp_path / "header", decode_images=True)
    assert sorted(c["reason"].split(" (")[0] for c in report.corrupt) == ["image does not decode"] * 2
    assert report.records_ok == 1
