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

from .options import ReadOptions

# Random-resized crop: windows drawn before falling back to a central crop (as TF's
# ImageNet preprocessing and torchvision do).
CROP_ATTEMPTS = 10
_JPEG_RATIOS = (1, 2, 4, 8)     # the DCT scales libjpeg decodes at
# Independent random streams of one image, kept apart in the seed's top bits.
_CROP_STREAM, _FLIP_STREAM = 0, 1
# A random crop of an image of one stored size picks its DCT scale per image only when the
# image's shorter side is at least this many times the target's longer side.
_SCALED_CROP_MIN = 2.8


def resizer(opts: ReadOptions, size: tuple[int, int] | None):
    """fit(image, antialias): image [h, w, c] -> float32 [height, width, c] by
    `opts.resize_mode`, or the image as it is when no size is asked for. An antialiased
    result is clipped to [0, 255]: its kernel's weights sum to a hair over 1 (a white image
    came out at 255.00003); a bilinear one never leaves its pixels' range."""
    import tensorflow as tf

    def fit(image, antialias: bool):
        resized = by_mode(image, antialias)
        return tf.clip_by_value(resized, 0.0, 255.0) if antialias and size is not None else resized

    def by_mode(image, antialias: bool):
        if size is None:
            return image
        height, width = size
        if opts.resize_mode == "pad":
            # resize_with_pad, but never 0 pixels on a side (a 1x20000 strip fails there).
            shape = tf.shape(image)
            h, w = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
            ratio = tf.maximum(w / width, h / height)
            new_h = tf.clip_by_value(tf.cast(tf.floor(h / ratio), tf.int32), 1, height)
            new_w = tf.clip_by_value(tf.cast(tf.floor(w / ratio), tf.int32), 1, width)
            image = tf.image.resize(image, tf.stack([new_h, new_w]), antialias=antialias)
            return tf.image.pad_to_bounding_box(image, (height - new_h) // 2,
                                                (width - new_w) // 2, height, width)
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


def image_seed(seed: int, key, stream: int):
    """The stateless seed of one image's `stream` of draws: (read seed, stream << 56 |
    epoch << 32 | index), for epochs below 2**24 and indices below 2**32. Stateless ops
    hash their 128-bit seed through Philox, so neighbouring keys give unrelated draws."""
    import tensorflow as tf

    key = tf.cast(key, tf.int64)
    return tf.stack([tf.constant(seed, tf.int64), (stream << 56) + key[0] * (1 << 32) + key[1]])


def central_window(height: int, width: int, fraction: float) -> tuple[int, int, int, int]:
    """tf.image.central_crop's window (top, left, height, width) for a known size."""
    top, left = int((height - height * fraction) / 2), int((width - width * fraction) / 2)
    return top, left, height - 2 * top, width - 2 * left


def dct_ratio(opts: ReadOptions, height: int, width: int, size: tuple[int, int]) -> int:
    """The DCT ratio (1, 2, 4 or 8) the decoder takes for a JPEG of `height` x `width` when
    `opts.crop` is None or "center": the largest that still leaves the decoded image (or
    its central window) at least `size` on both sides, as `at_dct_scale` picks it.

    Example:
        >>> dct_ratio(ReadOptions(), 300, 520, (128, 128))
        2
    """
    if opts.crop == "center":
        height, width = central_window(height, width, opts.crop_fraction)[2:]
    scale = min(height // size[0], width // size[1])
    return max(r for r in _JPEG_RATIOS if scale >= r or r == 1)


def crop_window(opts: ReadOptions, shape, key=None, seed: int = 0):
    """int32 [top, left, height, width] of the crop of an image of `shape` [h, w, ...].

    "center": tf.image.central_crop's window of `crop_fraction`, to the pixel. "random":
    Inception's random-resized crop, drawn by one `stateless_sample_distorted_bounding_box`
    as TF's Inception and ResNet pipelines draw it (width/height ratio uniform in
    `crop_aspect`, then the height uniform between those of the smallest and largest area
    in `crop_area`, so with the default range a crop averages about 0.4 of the image where
    torchvision's uniform area averages 0.54; up to `CROP_ATTEMPTS` tries). When no try
    fits, the op returns the whole image; then, as TF's ImageNet pipeline and torchvision
    do, the central crop of the largest window whose aspect is in the range is taken
    instead (the whole image when its own aspect is).
    The op does in one kernel what about forty scalar ops cost 0.1 ms per image to do.
    """
    import tensorflow as tf

    hw = tf.cast(shape[:2], tf.int32)
    if opts.crop == "center":
        full = tf.cast(hw, tf.float64)
        start = tf.cast((full - full * opts.crop_fraction) / 2, tf.int32)
        return tf.concat([start, hw - 2 * start], 0)
    begin, box, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.concat([hw, [1]], 0), tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=image_seed(seed, key, _CROP_STREAM), min_object_covered=opts.crop_area[0],
        aspect_ratio_range=opts.crop_aspect, area_range=opts.crop_area,
        max_attempts=CROP_ATTEMPTS, use_image_if_no_bounding_boxes=True)
    (low, high), wh = opts.crop_aspect, tf.cast(tf.reverse(hw, [0]), tf.float64)
    narrowed = tf.clip_by_value(tf.cast(tf.round(wh * [1 / low, high]), tf.int32), 1, hw)
    missed = tf.reduce_all(tf.equal(box[:2], hw))
    return tf.where(missed, tf.concat([(hw - narrowed) // 2, narrowed], 0),
                    tf.concat([begin[:2], box[:2]], 0))


def scaled_window(window, r: int, shape):
    """A window [top, left, height, width] of an image of `shape` [h, w] in the pixels of
    that image decoded at DCT ratio `r`: each edge on the nearest pixel of the 1/r grid
    (at most r/2 source pixels off, a tie outwards, so a central window stays centred),
    where flooring each would move it up to r - 1 pixels up and left. Plain ints or int32
    tensors.
    """
    import tensorflow as tf

    tensor = tf.is_tensor(window) or tf.is_tensor(shape)
    top, left, height, width = (window[i] for i in range(4))
    smaller = tf.minimum if tensor else min
    bigger = tf.maximum if tensor else max
    edges = []
    for start, extent, side in ((top, height, shape[0]), (left, width, shape[1])):
        first = (2 * start + r - 1) // (2 * r)     # a tie widens the window: both edges out
        last = smaller((2 * (start + extent) + r) // (2 * r), (side + r - 1) // r)
        edges.append((first, bigger(last - first, 1)))
    (top, height), (left, width) = edges
    return tf.stack([top, left, height, width]) if tensor else [top, left, height, width]


def cut(image, window):
    """The `window` [top, left, height, width] of an [h, w, c] image."""
    import tensorflow as tf

    return tf.slice(image, tf.concat([window[:2], [0]], 0), tf.concat([window[2:], [-1]], 0))


def flipper(opts: ReadOptions, seed: int):
    """flip(image, key): mirrored left-right with probability 1/2 when `opts.flip`.

    The draw is `tf.image.stateless_random_flip_left_right`'s (a stateless uniform below
    0.5, the same images flip), but the mirror is a reverse over an axis list that is [1]
    or empty instead of its `tf.cond`: a branch costs about 0.05 ms per image in a tf.data
    map on two cores, a tenth of decoding a 224 px crop."""
    import tensorflow as tf

    def flip(image, key):
        if not opts.flip:
            return image
        coin = tf.random.stateless_uniform([], image_seed(seed, key, _FLIP_STREAM),
                                           minval=0, maxval=1.0) < 0.5
        return tf.reverse(image, tf.range(1, 1 + tf.cast(coin, tf.int32)))

    return flip


def at_dct_scale(window_h, window_w, size, decode_at):
    """decode_at(r) for the largest DCT ratio r (1, 2, 4, 8) that still leaves the decoded
    window at least the target `size` (the window is at least r times it on both sides).
    The choice is a chain of two-way tf.conds, entered only as far as the window's scale
    reaches: a four-way tf.switch_case cost about 0.1 ms more per image."""
    import tensorflow as tf

    scale = tf.minimum(tf.cast(window_h, tf.int32) // size[0], tf.cast(window_w, tf.int32) // size[1])

    def from_ratio(i):
        if i + 1 == len(_JPEG_RATIOS):
            return decode_at(_JPEG_RATIOS[i])
        return tf.cond(scale >= _JPEG_RATIOS[i + 1], lambda: from_ratio(i + 1),
                       lambda: decode_at(_JPEG_RATIOS[i]))

    return from_ratio(0)


def raw_batch_decoder(opts: ReadOptions, stored: tuple[int, int], size, seed: int = 0):
    """Raw pixels of one stored size: the whole batch decodes with one reshape; a centre
    crop (one window for all) slices the whole batch, a random crop or flip goes image by
    image (each its own draws)."""
    import tensorflow as tf

    fit, finish, flip = resizer(opts, size), finisher(opts), flipper(opts, seed)
    h, w = stored
    out = size or (h, w)

    def decode(encoded, height=None, width=None, key=None):
        images = set_channels(tf.reshape(tf.io.decode_raw(encoded, tf.uint8), [-1, h, w, 3]),
                               opts.channels)
        if opts.random_augment:
            def one(parts):
                image, k = parts
                if opts.crop == "random":
                    image = cut(image, crop_window(opts, tf.shape(image), k, seed))
                image = fit(image, True) if size is not None else tf.cast(image, tf.float32)
                return tf.ensure_shape(finish(flip(image, k)), [out[0], out[1], opts.channels])
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


def image_decoder(opts: ReadOptions, size, seed: int = 0, stored: dict | None = None,
                  jpeg_ratio: int | None = None):
    """decode(encoded, height=None, width=None, key=None): one encoded image -> [H, W, C].

    JPEGs are decoded at 1/2, 1/4 or 1/8 scale (DCT scaling, nearly free) when that still
    covers the target size, which leaves less than a 2x shrink on the shorter side, so a
    plain bilinear resize follows (antialiasing would double the cost of every image).
    With a crop, a JPEG's window is found from its size and only the window is decoded
    (`decode_and_crop_jpeg`), at the DCT scale the window allows (a random window of an
    image of one stored size under `_SCALED_CROP_MIN` times the target: at full scale).
    The size is dataset.json's when every image has one, else read from the JPEG's header
    (`extract_jpeg_shape`); `height` and `width` stored beside the image only pick a whole
    image's DCT scale. Other formats are decoded whole, cropped, and resized with
    antialiasing (kept exactly when already the size). `key` is the record's
    (epoch, index), needed by random crops and flips; `seed` is the read's. `stored` is
    what dataset.json says of the images ("format", "size"): when every image is a JPEG of
    one size, the format check, the window (but a random one) and the DCT scale are fixed
    here instead of per image in the graph (a tf.cond per image costs about 0.05 ms, a
    tenth of decoding a 256 px photo), and an image that decodes to the target size is
    not resized at all. `jpeg_ratio` (crop None or "center"): every image is a JPEG to
    decode at this DCT ratio (`dct_ratio` of its size, read from its header beforehand:
    `predict` groups image files so), with no branch per image at all.
    """
    import tensorflow as tf

    fit, finish, flip = resizer(opts, size), finisher(opts), flipper(opts, seed)
    channels = opts.channels
    stored = stored or {}
    all_jpeg = stored.get("format") == "jpeg" or jpeg_ratio is not None
    known = tuple(int(v) for v in stored["size"]) if stored.get("size") else None
    fixed = known if size else None
    if fixed and opts.crop != "random":   # the window and its DCT scale, known now
        top, left, ch, cw = (0, 0) + fixed if opts.crop is None else central_window(
            *fixed, opts.crop_fraction)
        ratio = dct_ratio(opts, *fixed, size)
        fixed_window = [top // ratio, left // ratio, max(ch // ratio, 1), max(cw // ratio, 1)]
        if opts.crop == "center" and ratio > 1:
            fixed_window = scaled_window([top, left, ch, cw], ratio, fixed)
        # What libjpeg hands back: the whole image scaled up to the next pixel, or the window.
        decoded = ((-(-fixed[0] // ratio), -(-fixed[1] // ratio)) if opts.crop is None
                   else tuple(fixed_window[2:]))
        exact = decoded == tuple(size)   # already the target size: no resize at all
    else:
        fixed, exact = None, False
    # Whether a random window picks its DCT scale: the branch costs about 0.07 ms an image,
    # and only windows of at least twice the target gain (1/2 scale). Of Inception's windows
    # (default ranges), 4% reach that at 2.3x the target (512 px for 224), 15% at 2.6x,
    # 27% at 2.9x, 60% at 4x: below 2.8x the branch costs more than it saves.
    scaled_crops = not (known and size) or min(known) >= _SCALED_CROP_MIN * max(size)

    # Mirrored before a stretching resize, on the uint8 pixels, when those are about the
    # target's (a reverse costs about 0.8 ns a uint8 value, 1.6 a float32): a bilinear resize
    # with half-pixel centres is symmetric, so the result is the same. A random crop's window
    # is most often larger than the target (0.4 of a 512 px image against 224 px: twice the
    # values), so it flips after the resize, about 5% faster per image. resize_mode "crop"
    # or "pad" can be a pixel off centre, so those flip after resizing too.
    early = opts.resize_mode == "stretch" and opts.crop != "random"
    pre_flip = flip if early else (lambda image, key: image)

    def decode_any(encoded):
        image = tf.io.decode_image(encoded, channels=channels, expand_animations=False)
        image.set_shape([None, None, channels])
        return image

    def decode(encoded, height=None, width=None, key=None):
        def jpeg_size(from_record: bool):
            """(height, width): dataset.json's one size, else the record's (`from_record`:
            only to pick a whole image's DCT scale, where a missing or wrong stored size
            costs quality, never a crop window outside the image), else the header's."""
            if known:
                return tf.constant(known, tf.int32)
            if from_record and height is not None:
                return tf.cast(tf.stack([height, width]), tf.int32)
            return tf.io.extract_jpeg_shape(encoded)[:2]

        def other():
            image = decode_any(encoded)
            if opts.crop is not None:
                image = cut(image, crop_window(opts, tf.shape(image), key, seed))
            image = pre_flip(image, key)
            if size is None:
                return tf.cast(image, tf.float32)
            shape = tf.shape(image)
            same = tf.logical_and(tf.equal(shape[0], size[0]), tf.equal(shape[1], size[1]))
            return tf.cond(same, lambda: tf.cast(image, tf.float32), lambda: fit(image, True))

        def jpeg():
            if fixed and opts.crop is None:
                image = tf.io.decode_jpeg(encoded, channels=channels, ratio=ratio)
            elif fixed:
                image = tf.io.decode_and_crop_jpeg(encoded, fixed_window, channels=channels,
                                                   ratio=ratio)
            elif size is None:
                image = (decode_any(encoded) if opts.crop is None else
                         tf.io.decode_and_crop_jpeg(encoded, crop_window(
                             opts, jpeg_size(False), key, seed), channels=channels))
                return tf.cast(pre_flip(tf.ensure_shape(image, [None, None, channels]), key),
                               tf.float32)
            elif opts.crop is None and jpeg_ratio:
                image = tf.io.decode_jpeg(encoded, channels=channels, ratio=jpeg_ratio)
            elif opts.crop is None:
                hw = jpeg_size(True)
                image = at_dct_scale(hw[0], hw[1], size, lambda r: tf.io.decode_jpeg(
                    encoded, channels=channels, ratio=r))
            else:
                hw = jpeg_size(False)
                window = crop_window(opts, hw, key, seed)

                def cropped(r):   # with `ratio`, the window is in the scaled image's pixels
                    if opts.crop == "center" and r > 1:
                        scaled = scaled_window(window, r, hw)
                    else:
                        scaled = tf.concat([window[:2] // r, tf.maximum(window[2:] // r, 1)], 0)
                    return tf.io.decode_and_crop_jpeg(encoded, scaled, channels=channels, ratio=r)

                if jpeg_ratio and opts.crop == "center":
                    image = cropped(jpeg_ratio)
                elif scaled_crops:
                    image = at_dct_scale(window[2], window[3], size, cropped)
                else:
                    image = tf.io.decode_and_crop_jpeg(encoded, window, channels=channels)
            image = pre_flip(image, key)
            if exact:   # a bilinear resize to the same size is the identity, at a cost
                return tf.cast(tf.ensure_shape(image, [size[0], size[1], channels]), tf.float32)
            return fit(tf.ensure_shape(image, [None, None, channels]), False)

        if all_jpeg:
            image = jpeg()
        else:
            is_jpeg = tf.equal(tf.strings.substr(encoded, 0, 3), b"\xff\xd8\xff")
            image = tf.cond(is_jpeg, jpeg, other)
        image = finish(image if early else flip(image, key))
        if size is None:
            return image
        # Branches lose the static size; Keras and users build on element_spec.
        return tf.ensure_shape(image, [size[0], size[1], channels])

    return decode
