"""In-graph preprocessing: crop windows, the fused JPEG crop, flips, seeds."""
import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import tfrecordkit as tfk
from tfrecordkit.errors import OptionError
from tfrecordkit.options import ReadOptions
from tfrecordkit.preprocess import (_FLIP_STREAM, central_window, crop_window, dct_ratio,
                                    flipper, image_decoder, image_seed)

from conftest import COLOURS, make_image


def _stored_images(out):
    """The stored image bytes of a dataset, in record order."""
    manifest = tfk.load_manifest(out)
    spec = {"image/encoded": tf.io.FixedLenFeature([], tf.string)}
    return [tf.io.parse_single_example(r, spec)["image/encoded"]
            for r in tf.data.TFRecordDataset(manifest.files)]


def _photo(height, width, quality=95):
    """JPEG bytes of a smooth gradient with some texture (compresses like a photo)."""
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 / width, y * 255 / height, (x + y) % 256], -1)
    pixels += np.random.default_rng(0).integers(0, 20, pixels.shape)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


@pytest.mark.parametrize("kwargs, message", [
    ({"crop": "middle"}, 'crop` must be one of None, "random", "center"; received crop=\'middle\''),
    ({"crop_area": (0, 1)}, r"`crop_area` must be a pair \(low, high\) of fractions of the "
                            r"image's area, above 0 and at most 1, with low <= high; received crop_area=\(0, 1\)"),
    ({"crop_area": (0.5, 0.2)}, r"received crop_area=\(0.5, 0.2\)"),
    ({"crop_area": (0.1, 1.5)}, r"at most 1, with low <= high; received crop_area=\(0.1, 1.5\)"),
    ({"crop_area": "0.1"}, r"received crop_area='0.1'"),
    ({"crop_aspect": (2, 1)}, r"`crop_aspect` must be a pair \(low, high\) of width/height ratios, "
                              r"above 0, with low <= high; received crop_aspect=\(2, 1\)"),
    ({"crop_aspect": (1, float("nan"))}, r"received crop_aspect=\(1, nan\)"),
    ({"crop_fraction": 0}, r"`crop_fraction` must be a number in \(0, 1\], the central part kept "
                           r'by crop="center"; received crop_fraction=0'),
    ({"crop_fraction": 1.5}, r"received crop_fraction=1.5"),
    ({"flip": "yes"}, r"`flip` must be True or False; received flip='yes'"),
])
def test_options_refuse_bad_crops(kwargs, message):
    with pytest.raises(OptionError, match=message):
        ReadOptions(**kwargs)


def test_options_keep_good_crops():
    opts = ReadOptions(crop="random", crop_area=[0.25, 1], crop_aspect=(1, 1), flip=True)
    assert opts.crop_area == (0.25, 1.0) and opts.crop_aspect == (1.0, 1.0)
    assert opts.random_augment and not ReadOptions(crop="center").random_augment
    assert ReadOptions(flip=True).random_augment and ReadOptions().crop is None


def test_center_window_is_central_crops():
    for height, width, fraction in ((40, 36, 0.875), (7, 9, 0.5), (512, 300, 0.875), (5, 5, 1.0)):
        image = tf.zeros([height, width, 1])
        expected = tf.image.central_crop(image, fraction).shape[:2]
        top, left, h, w = central_window(height, width, fraction)
        assert (h, w) == tuple(expected) and (top, left) == ((height - h) // 2, (width - w) // 2)
        dynamic = crop_window(ReadOptions(crop="center", crop_fraction=fraction), [height, width])
        assert dynamic.numpy().tolist() == [top, left, h, w]


def test_random_windows_are_inside_seeded_and_spread():
    opts = ReadOptions(crop="random")
    keys = [tf.constant([e, i], tf.int64) for e in range(2) for i in range(200)]
    windows = np.array([crop_window(opts, [90, 120], k, seed=7).numpy() for k in keys])
    top, left, h, w = windows.T
    assert (top >= 0).all() and (left >= 0).all() and (h >= 1).all() and (w >= 1).all()
    assert (top + h <= 90).all() and (left + w <= 120).all()
    area = h * w / (90 * 120)
    # TF's Inception draw: the height uniform between the smallest and largest area's, so
    # the area averages about 0.4 (torchvision's uniform area: 0.54)
    assert area.min() >= 0.08 - 0.01 and area.max() <= 1 and 0.3 < area.mean() < 0.6
    assert (area > 0.7).sum() > 10 and (area < 0.2).sum() > 10
    aspect = w / h
    assert (aspect > 0.7).all() and (aspect < 1.4).all()          # 3/4..4/3, rounded to pixels
    assert len({tuple(v) for v in windows}) > 350                 # (epoch, index) -> new draws
    again = [crop_window(opts, [90, 120], k, seed=7).numpy() for k in keys[:20]]
    assert np.array_equal(np.array(again), windows[:20])
    other_seed = [crop_window(opts, [90, 120], k, seed=8).numpy() for k in keys[:20]]
    assert not np.array_equal(np.array(other_seed), windows[:20])
    exact = ReadOptions(crop="random", crop_area=(0.25, 0.25), crop_aspect=(1, 1))
    h, w = crop_window(exact, [80, 80], keys[3], seed=1).numpy()[2:]
    assert (h, w) == (40, 40)


def test_random_window_falls_back_to_a_central_crop_in_the_aspect_range():
    # a 10 x 200 strip: no window with width/height in [3/4, 4/3] covers 8% of it
    opts = ReadOptions(crop="random")
    window = crop_window(opts, [10, 200], tf.constant([0, 1], tf.int64), seed=0).numpy()
    assert window.tolist() == [0, 93, 10, 13]        # 10 x round(10 * 4/3), centred


def test_flip_draws_as_tf_image_stateless_random_flip_left_right():
    image = tf.constant(np.random.default_rng(1).integers(0, 256, (6, 9, 3), dtype=np.uint8))
    flip = flipper(ReadOptions(flip=True), seed=11)
    flips = 0
    for i in range(64):
        key = tf.constant([2, i], tf.int64)
        ours = flip(image, key).numpy()
        theirs = tf.image.stateless_random_flip_left_right(
            image, image_seed(11, key, _FLIP_STREAM)).numpy()
        assert np.array_equal(ours, theirs), i
        flips += np.array_equal(ours, image.numpy()[:, ::-1])
    assert 16 <= flips <= 48


def test_jpeg_decodes_only_the_window_like_decode_then_crop():
    encoded = _photo(300, 400)
    for size in ((150, 150), (40, 60)):   # DCT scale 1, then at least 2 on the window
        opts = ReadOptions(crop="random", image_size=size)
        decode = image_decoder(opts, size, seed=3)
        for i in range(4):
            key = tf.constant([0, i], tf.int64)
            fused = decode(tf.constant(encoded), 300, 400, key).numpy()
            window = crop_window(opts, [300, 400], key, seed=3)
            full = tf.io.decode_jpeg(encoded, channels=3)
            cropped = full[window[0]:window[0] + window[2], window[1]:window[1] + window[3]]
            reference = tf.image.resize(cropped, size, antialias=True).numpy() / 255.0
            assert fused.shape == size + (3,)
            # the same pixels; DCT scaling and the crop's block edges move them slightly
            assert np.abs(fused - reference).mean() < 0.02, (size, i)


def test_center_crop_matches_central_crop_and_resize_on_png_and_raw(tmp_path):
    folder = tmp_path / "images"
    for i in range(6):
        make_image(folder / "a" / f"{i}.png", COLOURS["red"], (40, 36), seed=i)
    png, raw = tmp_path / "png", tmp_path / "raw"
    tfk.write_folder(folder, png, seed=0, progress=False)
    tfk.write_folder(folder, raw, image_size=(40, 36), image_format="raw", seed=0, progress=False)
    stored = [tf.io.decode_png(e, channels=3) for e in _stored_images(png)]
    expected = np.stack([tf.image.resize(tf.image.central_crop(im, 0.875), (20, 18),
                                         antialias=True).numpy() / 255.0 for im in stored])
    for out in (png, raw):
        images = next(iter(tfk.read(out, batch_size=6, image_size=(20, 18), shuffle=False,
                                    crop="center", label=False))).numpy()
        np.testing.assert_allclose(images, expected, atol=1e-5)
    # without resizing, the window itself, to the pixel
    images = next(iter(tfk.read(png, batch_size=6, image_size=(36, 32), shuffle=False,
                                crop="center", label=False, dtype="uint8"))).numpy()
    assert np.array_equal(images, np.stack([tf.image.central_crop(im, 0.875).numpy()
                                            for im in stored]))


def test_center_crop_on_jpeg_is_close_to_central_crop_and_resize(tmp_path):
    folder = tmp_path / "images"
    for i in range(4):
        (folder / "a").mkdir(parents=True, exist_ok=True)
        (folder / "a" / f"{i}.jpg").write_bytes(_photo(96, 128))
    out = tmp_path / "jpeg"
    tfk.write_folder(folder, out, seed=0, progress=False)
    expected = np.stack([tf.image.resize(tf.image.central_crop(tf.io.decode_jpeg(e, channels=3), 0.875),
                                         (21, 28), antialias=True).numpy() / 255.0
                         for e in _stored_images(out)])
    images = next(iter(tfk.read(out, batch_size=4, image_size=(21, 28), shuffle=False,
                                crop="center", label=False))).numpy()
    assert np.abs(images - expected).mean() < 0.02


def test_flip_mirrors_about_half_the_images():
    encoded = tf.constant(_photo(32, 48))
    plain = image_decoder(ReadOptions(), (32, 48))(encoded, 32, 48).numpy()
    decode = image_decoder(ReadOptions(flip=True), (32, 48), seed=5)
    flipped = [bool(np.array_equal(decode(encoded, 32, 48, tf.constant([0, i], tf.int64)).numpy(),
                                   plain[:, ::-1])) for i in range(40)]
    same = [bool(np.array_equal(decode(encoded, 32, 48, tf.constant([0, i], tf.int64)).numpy(),
                                plain)) for i in range(40)]
    assert all(f != s for f, s in zip(flipped, same))   # each is one or the other
    assert 8 <= sum(flipped) <= 32


@pytest.mark.parametrize("side, ratio", [(1024, 8), (600, 4), (300, 2), (200, 1)])
def test_jpeg_decodes_at_the_largest_dct_scale_that_covers_the_target(side, ratio):
    encoded = tf.constant(_photo(side, side, quality=90))
    size = (128, 128)
    scaled = tf.io.decode_jpeg(encoded, channels=3, ratio=ratio)
    reference = tf.image.resize(scaled, size).numpy() / 255.0
    decode = image_decoder(ReadOptions(), size)
    from_header = decode(encoded).numpy()                 # size read from the JPEG's header
    from_record = decode(encoded, side, side).numpy()     # size stored beside the image
    np.testing.assert_allclose(from_header, reference, atol=1e-6)
    np.testing.assert_array_equal(from_header, from_record)
    if ratio == 8:   # decoded straight to the target size: the pixels, not resampled
        np.testing.assert_array_equal(from_header, scaled.numpy() / np.float32(255.0))


@pytest.mark.parametrize("crop", [None, "center"])
@pytest.mark.parametrize("height, width", [(1024, 1100), (600, 300), (300, 520), (255, 900), (130, 40)])
def test_a_decoder_with_the_ratio_given_matches_the_one_that_picks_it(crop, height, width):
    """What predict's per-ratio decoders (ratio from the file's header) give is what the
    reader's decoder gives when it picks the DCT scale per image."""
    encoded = tf.constant(_photo(height, width, quality=90))
    size, opts = (128, 112), ReadOptions(crop=crop)
    ratio = dct_ratio(opts, height, width, size)
    window = central_window(height, width, 0.875)[2:] if crop else (height, width)
    assert ratio == max(r for r in (1, 2, 4, 8) if min(window[0] // 128, window[1] // 112) >= r
                        or r == 1)
    picked = image_decoder(opts, size)(encoded).numpy()
    given = image_decoder(opts, size, jpeg_ratio=ratio)(encoded).numpy()
    np.testing.assert_array_equal(given, picked)


def test_one_size_jpeg_datasets_skip_the_resize_when_the_dct_scale_lands_on_target():
    encoded = tf.constant(_photo(256, 192, quality=90))
    decode = image_decoder(ReadOptions(), (128, 96), stored={"format": "jpeg", "size": [256, 192]})
    expected = tf.io.decode_jpeg(encoded, channels=3, ratio=2).numpy() / np.float32(255.0)
    np.testing.assert_array_equal(decode(encoded).numpy(), expected)


@pytest.mark.parametrize("resize_mode", ["stretch", "crop", "pad"])
def test_flip_with_a_resize_is_the_mirror_of_the_unflipped_image(resize_mode):
    encoded = tf.constant(_photo(64, 96))
    size = (40, 50)
    plain = image_decoder(ReadOptions(resize_mode=resize_mode), size)(encoded).numpy()
    decode = image_decoder(ReadOptions(flip=True, resize_mode=resize_mode), size, seed=2)
    mirrored = 0
    for i in range(24):
        image = decode(encoded, key=tf.constant([1, i], tf.int64)).numpy()
        if np.allclose(image, plain, atol=1e-6):
            continue
        # stretch mirrors before resizing (the same pixels up to float rounding); crop and
        # pad, whose centring can be a pixel off, mirror after
        np.testing.assert_allclose(image, plain[:, ::-1], atol=1e-5)
        mirrored += 1
    assert 4 <= mirrored <= 20


def test_a_random_crop_takes_its_window_from_the_jpeg_not_a_stored_size_that_may_be_wrong():
    # Other writers' records may leave image/height and image/width out of some records (the
    # parse fills 0) or get them wrong; the window must still lie inside the image.
    encoded = tf.constant(_photo(120, 160))
    opts = ReadOptions(crop="random", image_size=(32, 32))
    decode = image_decoder(opts, (32, 32), seed=4)
    for stored in ((0, 0), (480, 640)):
        for i in range(6):
            key = tf.constant([0, i], tf.int64)
            image = decode(encoded, *stored, key=key).numpy()
            window = crop_window(opts, [120, 160], key, seed=4).numpy()
            assert image.shape == (32, 32, 3), (stored, window)
            np.testing.assert_array_equal(image, decode(encoded, key=key).numpy())


def _smooth_jpeg(height, width, seed):
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 255, (8, 10, 3)).astype(np.uint8))
    buffer = io.BytesIO()
    small.resize((width, height), Image.BICUBIC).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


@pytest.mark.parametrize("sizes", [[(300, 400)], [(300, 400), (310, 420)]],
                         ids=["one stored size", "sizes vary"])
def test_center_crop_at_dct_scale_stays_centred(tmp_path, sizes):
    # At 1/4 scale the window cannot start on every source pixel; `window // 4` put it up
    # to 3 pixels above and left of central_crop's (here 2 and 1); now each edge is the
    # nearest on the 1/4 grid.
    folder = tmp_path / "images" / "a"
    folder.mkdir(parents=True)
    for i, (h, w) in enumerate(sizes):
        (folder / f"{i}.jpg").write_bytes(_smooth_jpeg(h, w, i))
    tfk.write_folder(tmp_path / "images", tmp_path / "out", shuffle=False, progress=False)
    got = [x.numpy() for x in tfk.read(tmp_path / "out", batch_size=None, image_size=(64, 64),
                                       shuffle=False, crop="center", label=False)]
    for image, encoded in zip(got, _stored_images(tmp_path / "out")):
        full = tf.io.decode_jpeg(encoded, channels=3)
        top, left, h, w = central_window(*full.shape[:2], 0.875)
        def reference(dt, dl):
            window = full[top + dt:top + dt + h, left + dl:left + dl + w]
            return tf.image.resize(window, (64, 64), antialias=True).numpy() / 255.0
        centred, shifted = (np.abs(image - reference(*d)).mean() for d in [(0, 0), (-2, -2)])
        assert centred < 0.015 and centred < shifted   # before: 0.021-0.023


@pytest.mark.parametrize("mode", ["stretch", "pad", "crop"])
def test_antialiased_resize_stays_within_0_and_1(mode):
    # The antialiasing kernel's weights sum to a hair over 1: a white PNG came out at
    # 1.0000001, outside the [0, 1] that float32 images promise.
    buffer = io.BytesIO()
    Image.fromarray(np.full((50, 40, 3), 255, np.uint8)).save(buffer, "PNG")
    image = image_decoder(ReadOptions(resize_mode=mode), (32, 32))(tf.constant(buffer.getvalue()))
    assert float(tf.reduce_max(image)) == 1.0
