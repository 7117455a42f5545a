"""Image preprocessing inside the tf.data graph, shared by `read` and `predict`:
decode (JPEGs at reduced DCT scale, and only their crop window), crop, resize by mode,
flip, channels, and the output dtype.

Randomness: every random draw is a `tf.random.stateless_*` op seeded by (the read's seed,
the record's epoch, its index in that epoch's order), so an image's crop and flip are a
pure function of where it sits in the stream: the same on every run and restart with the
same seed, different from one epoch to the next.

Every function here builds TensorFlow ops; TensorFlow is imported inside them, so
importing this module stays cheap.
"""
from __future__ import annotations

import math

from .options import ReadOptions

# Random-resized crop: windows drawn before falling back to a central crop (as TF's
# ImageNet preprocessing and torchvision do).
CROP_ATTEMPTS = 10
_DRAWS_PER_ATTEMPT = 4          # area, log-aspect, top, left
_JPEG_RATIOS = (1, 2, 4, 8)     # the DCT scales libjpeg decodes at


def resizer(opts: ReadOptions, size: tuple[int, int] | None):
    """fit(image, antialias): image [h, w, c] -> float32 [height, width, c] by
    `opts.resize_mode`, or the image as it is when no size is asked for."""
    import tensorflow as tf

    def fit(image, antialias: bool):
        if size is None:
            return image
        height, width = size
        if opts.resize_mode == "pad":
            return tf.image.resize_with_pad(image, height, width, antialias=antialias)
        if opts.resize_mode == "crop":
            shape = tf.shape(image)
            h, w = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
            scale = tf.maximum(height / h, width / w)
            crop_h = tf.minimum(shape[0], tf.cast(tf.math.ceil(height / scale), tf.int32))
            crop_w = tf.minimum(shape[1], tf.cast(tf.math.ceil(width / scale), tf.int32))
            image = tf.image.crop_to_bounding_box(image, (shape[0] - crop_h) // 2,
                                                  (shape[1] - crop_w) // 2, crop_h, crop_w)
        return tf.image.resize(image, size, antialias=antialias)

    return fit


def finisher(opts: ReadOptions):
    """float in [0, 255] (or uint8) -> the requested dtype and range."""
    import tensorflow as tf

    def finish(image):
        if opts.dtype == "uint8":
            if image.dtype == tf.uint8:
                return image
            return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        return tf.cast(image, tf.float32) / 255.0

    return finish


def set_channels(image, channels: int):
    import tensorflow as tf

    if image.shape[-1] == channels:
        return image
    return tf.image.rgb_to_grayscale(image) if channels == 1 else tf.image.grayscale_to_rgb(image)


def image_seed(seed: int, key):
    """The stateless seed of one image: (read seed, epoch << 32 | index). Stateless ops hash
    their 128-bit seed through Philox, so neighbouring keys give unrelated draws."""
    import tensorflow as tf

    key = tf.cast(key, tf.int64)
    return tf.stack([tf.constant(seed, tf.int64), key[0] * (1 << 32) + key[1]])


def draws(opts: ReadOptions, seed: int, key):
    """The uniform [0, 1) numbers one image's augmentation uses: `CROP_ATTEMPTS` rows of
    (area, log-aspect, top, left) for a random crop, then one for the flip."""
    import tensorflow as tf

    return tf.random.stateless_uniform([CROP_ATTEMPTS * _DRAWS_PER_ATTEMPT + 1],
                                       seed=image_seed(seed, key))


def central_window(height: int, width: int, fraction: float) -> tuple[int, int, int, int]:
    """tf.image.central_crop's window (top, left, height, width) for a known size."""
    top, left = int((height - height * fraction) / 2), int((width - width * fraction) / 2)
    return top, left, height - 2 * top, width - 2 * left


def crop_window(opts: ReadOptions, height, width, u=None):
    """(top, left, crop_height, crop_width) int32 of an image of `height` x `width`.

    "center": tf.image.central_crop's window of `crop_fraction`. "random": Inception's
    random-resized crop: an area fraction drawn uniformly from `crop_area` and an aspect
    ratio (width/height) log-uniformly from `crop_aspect`; the first of `CROP_ATTEMPTS`
    draws that fits is placed uniformly at random, and when none fits, the central crop of
    the largest window whose aspect lies in the range is taken (whole image if it does).
    """
    import tensorflow as tf

    h = tf.cast(height, tf.float64)
    w = tf.cast(width, tf.float64)
    height, width = tf.cast(height, tf.int32), tf.cast(width, tf.int32)
    if opts.crop == "center":
        # tf.image.central_crop's arithmetic, to the pixel
        top = tf.cast((h - h * opts.crop_fraction) / 2, tf.int32)
        left = tf.cast((w - w * opts.crop_fraction) / 2, tf.int32)
        return top, left, height - 2 * top, width - 2 * left
    u = tf.reshape(tf.cast(u[:CROP_ATTEMPTS * _DRAWS_PER_ATTEMPT], tf.float64),
                   [CROP_ATTEMPTS, _DRAWS_PER_ATTEMPT])
    (a0, a1), (r0, r1) = opts.crop_area, opts.crop_aspect
    area = h * w * (a0 + (a1 - a0) * u[:, 0])
    aspect = tf.exp(math.log(r0) + (math.log(r1) - math.log(r0)) * u[:, 1])
    ch = tf.cast(tf.round(tf.sqrt(area / aspect)), tf.int32)
    cw = tf.cast(tf.round(tf.sqrt(area * aspect)), tf.int32)
    fits = (ch >= 1) & (cw >= 1) & (ch <= height) & (cw <= width)
    first = tf.argmax(tf.cast(fits, tf.int32), output_type=tf.int32)
    ch, cw = ch[first], cw[first]
    top = tf.minimum(tf.cast(u[first, 2] * tf.cast(height - ch + 1, tf.float64), tf.int32), height - ch)
    left = tf.minimum(tf.cast(u[first, 3] * tf.cast(width - cw + 1, tf.float64), tf.int32), width - cw)
    # fallback: the whole image, narrowed to the nearest aspect in the range
    fall_h = tf.where(w / h < r0, tf.cast(tf.round(w / r0), tf.int32), height)
    fall_w = tf.where(w / h > r1, tf.cast(tf.round(h * r1), tf.int32), width)
    fall_h, fall_w = tf.clip_by_value(fall_h, 1, height), tf.clip_by_value(fall_w, 1, width)
    ok = tf.reduce_any(fits)
    return (tf.where(ok, top, (height - fall_h) // 2), tf.where(ok, left, (width - fall_w) // 2),
            tf.where(ok, ch, fall_h), tf.where(ok, cw, fall_w))


def jpeg_ratio(window_h, window_w, size):
    """Index into `_JPEG_RATIOS` of the largest DCT scale that still leaves the decoded
    window at least the target size (the window is at least 2x, 4x, 8x the target)."""
    import tensorflow as tf

    scale = tf.minimum(tf.cast(window_h, tf.int32) // size[0], tf.cast(window_w, tf.int32) // size[1])
    return tf.add_n([tf.cast(scale >= r, tf.int32) for r in _JPEG_RATIOS[1:]])


def raw_batch_decoder(opts: ReadOptions, stored: tuple[int, int], size, seed: int = 0):
    """Raw pixels of one stored size: the whole batch decodes with one reshape; a centre
    crop (one window for all) slices the whole batch, a random crop or flip goes image by
    image (each its own draws)."""
    import tensorflow as tf

    fit, finish = resizer(opts, size), finisher(opts)
    h, w = stored
    out = size or (h, w)

    def decode(encoded, height=None, width=None, key=None):
        images = set_channels(tf.reshape(tf.io.decode_raw(encoded, tf.uint8), [-1, h, w, 3]),
                               opts.channels)
        if opts.random_augment:
            def one(parts):
                image, k = parts
                u = draws(opts, seed, k)
                if opts.crop == "random":
                    top, left, ch, cw = crop_window(opts, h, w, u)
                    image = tf.image.crop_to_bounding_box(image, top, left, ch, cw)
                image = fit(image, True) if size is not None else tf.cast(image, tf.float32)
                if opts.flip:
                    image = flipped(image, u)
                return tf.ensure_shape(finish(image), [out[0], out[1], opts.channels])
            spec = tf.TensorSpec([out[0], out[1], opts.channels],
                                 tf.uint8 if opts.dtype == "uint8" else tf.float32)
            return tf.map_fn(one, (images, key), fn_output_signature=spec)
        if opts.crop == "center":
            top, left, ch, cw = central_window(h, w, opts.crop_fraction)
            images = images[:, top:top + ch, left:left + cw]
            h_in, w_in = ch, cw
        else:
            h_in, w_in = h, w
        if size is not None and tuple(size) != (h_in, w_in):
            images = tf.map_fn(lambda image: fit(image, True), images,
                               fn_output_signature=tf.float32)
        out_size = size or (h_in, w_in)
        return tf.ensure_shape(finish(images), [None, out_size[0], out_size[1], opts.channels])

    return decode


def flipped(image, u):
    """The image mirrored left-right when the last draw is below one half."""
    import tensorflow as tf

    return tf.cond(u[-1] < 0.5, lambda: tf.reverse(image, [1]), lambda: image)


def image_decoder(opts: ReadOptions, size, seed: int = 0):
    """decode(encoded, height, width, key=None): one encoded image -> [H, W, C].

    JPEGs are decoded at 1/2, 1/4 or 1/8 scale (DCT scaling, nearly free) when that still
    covers the target size, which leaves less than a 2x shrink on the shorter side, so a
    plain bilinear resize follows (antialiasing would double the cost of every image).
    With a crop, a JPEG's window is found from its header (`extract_jpeg_shape`) and only
    the window is decoded (`decode_and_crop_jpeg`), at the DCT scale the window allows.
    Other formats are decoded whole, cropped, and resized with antialiasing (kept exactly
    when already the size). `key` is the record's (epoch, index), needed by random crops
    and flips; `seed` is the read's.
    """
    import tensorflow as tf

    fit, finish = resizer(opts, size), finisher(opts)
    channels = opts.channels

    def decode_any(encoded):
        image = tf.io.decode_image(encoded, channels=channels, expand_animations=False)
        image.set_shape([None, None, channels])
        return image

    def decode(encoded, height, width, key=None):
        u = draws(opts, seed, key) if opts.random_augment else None

        def window(shape):
            return crop_window(opts, shape[0], shape[1], u)

        def other():
            image = decode_any(encoded)
            if opts.crop is not None:
                image = tf.image.crop_to_bounding_box(image, *window(tf.shape(image)))
            if size is None:
                return tf.cast(image, tf.float32)
            shape = tf.shape(image)
            same = tf.logical_and(tf.equal(shape[0], size[0]), tf.equal(shape[1], size[1]))
            return tf.cond(same, lambda: tf.cast(image, tf.float32), lambda: fit(image, True))

        def jpeg():
            if opts.crop is None:
                if size is None:
                    return tf.cast(decode_any(encoded), tf.float32)
                step = jpeg_ratio(height, width, size)
                image = tf.switch_case(step, [
                    lambda r=r: tf.io.decode_jpeg(encoded, channels=channels, ratio=r)
                    for r in _JPEG_RATIOS])
                return fit(tf.ensure_shape(image, [None, None, channels]), False)
            top, left, ch, cw = window(tf.io.extract_jpeg_shape(encoded))
            step = jpeg_ratio(ch, cw, size) if size is not None else tf.constant(0)

            def cropped(r):
                # with `ratio`, the window is in the coordinates of the scaled image
                scaled = tf.stack([top // r, left // r, tf.maximum(ch // r, 1), tf.maximum(cw // r, 1)])
                return tf.io.decode_and_crop_jpeg(encoded, scaled, channels=channels, ratio=r)

            image = tf.switch_case(step, [lambda r=r: cropped(r) for r in _JPEG_RATIOS])
            image = tf.ensure_shape(image, [None, None, channels])
            return fit(image, False) if size is not None else tf.cast(image, tf.float32)

        is_jpeg = tf.equal(tf.strings.substr(encoded, 0, 3), b"\xff\xd8\xff")
        image = tf.cond(is_jpeg, jpeg, other)
        if opts.flip:
            image = flipped(image, u)
        if size is None:
            return finish(image)
        # Branches lose the static size; Keras and users build on element_spec.
        return tf.ensure_shape(finish(image), [size[0], size[1], channels])

    return decode


def encoded_batch_decoder(opts: ReadOptions, size: tuple[int, int], seed: int = 0):
    """A batch of encoded images -> [B, height, width, C], one image after another inside
    one tf.data call: about 5% faster than unbatching, decoding each image as its own
    element and batching again (per-element overhead), with as many batches in flight as
    tf.data's autotuner finds cores for."""
    import tensorflow as tf

    decode = image_decoder(opts, size, seed)
    out = tf.TensorSpec([size[0], size[1], opts.channels],
                        tf.uint8 if opts.dtype == "uint8" else tf.float32)

    def decode_batch(encoded, height, width, key=None):
        parts = (encoded, height, width) if key is None else (encoded, height, width, key)
        return tf.map_fn(lambda p: decode(*p), parts, fn_output_signature=out)

    return decode_batch
