"""Reading, checking and re-encoding one image with Pillow (pillow-simd); no TensorFlow.

`load_image` is what a writer worker calls per row. It raises `ValueError` with a short
reason ("file is empty (0 bytes)"); the caller adds the row and file.
"""
from __future__ import annotations

import errno
import io
import os
import re
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, ImageOps, features

from . import storage

# Formats whose bytes TensorFlow decodes (decode_jpeg/decode_png) and that are kept as they are.
KEPT_FORMATS = ("jpeg", "png")
RAW = "raw"
_EXIF_ORIENTATION = 0x0112
_ROTATES_90 = (5, 6, 7, 8)
_RESAMPLE = Image.Resampling.BILINEAR
# Shrinking for `max_size` (stored once, read every epoch): LANCZOS, after box-reducing by
# whole factors down to twice the target (as `Image.thumbnail` does), which costs little.
_SHRINK = Image.Resampling.LANCZOS
_REDUCING_GAP = 2.0
_CHANNELS = {"1": 1, "L": 1, "I": 1, "F": 1, "I;16": 1, "I;16B": 1, "I;16L": 1, "LA": 2,
             "La": 2, "RGB": 3, "YCbCr": 3, "CMYK": 3, "LAB": 3, "HSV": 3, "RGBA": 4, "RGBa": 4}


@dataclass(frozen=True)
class EncodedImage:
    """Bytes ready for ``image/encoded`` and the facts stored beside them."""

    data: bytes
    format: str
    height: int
    width: int
    channels: int
    kept: bool  # True when `data` is the source file byte-for-byte


@dataclass(frozen=True)
class ImageOptions:
    """The part of `WriteOptions` a worker needs per image (plain, picklable)."""

    image_size: tuple[int, int] | None = None
    resize_mode: str = "stretch"
    image_format: str = "keep"
    jpeg_quality: int = 90
    validate: str = "full"
    max_image_pixels: int = 89_478_485
    max_size: int | None = None                          # longer side at most this (shrink only)
    crop_box: tuple[int, int, int, int] | None = None    # (left, top, right, bottom) of every image


def sniff_format(data: bytes) -> str | None:
    """The image format named by the file's magic bytes, or None.

    Example:
        >>> sniff_format(b"\\x89PNG\\r\\n\\x1a\\n...")
        'png'
    """
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:2] == b"BM":
        return "bmp"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    return None


# Start-of-frame markers (baseline, progressive, lossless, arithmetic): they carry the size.
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_HEADER_READ = 4096


def _exif_orientation(segment: bytes) -> int:
    """The EXIF orientation (1-8) an APP1 segment's body holds; 1 when it holds none."""
    if not segment.startswith(b"Exif\0\0"):
        return 1
    tiff = segment[6:]
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        return 1
    try:
        ifd = struct.unpack_from(order + "I", tiff, 4)[0]
        for i in range(struct.unpack_from(order + "H", tiff, ifd)[0]):
            tag, kind = struct.unpack_from(order + "HH", tiff, ifd + 2 + 12 * i)
            if tag == _EXIF_ORIENTATION and kind == 3:   # SHORT
                value = struct.unpack_from(order + "H", tiff, ifd + 10 + 12 * i)[0]
                return value if 1 <= value <= 8 else 1
    except struct.error:    # a cut or malformed block: as Pillow does, upright
        pass
    return 1


def image_file_header(path: str) -> tuple[str | None, tuple[int, int, int] | None]:
    """(format, jpeg) of an image file from one read of its start: the format its
    signature names (`sniff_format`), and for a JPEG (height, width, EXIF orientation 1-8)
    from its frame header and APP1 block, reading only the segments before the frame
    header (about 8 us a file; Pillow's open takes 60). `jpeg` is None for other formats
    and for a JPEG whose markers end or break before a frame header. The size is the one
    TensorFlow's decoder reads; the orientation the one `load_image` turns it upright by.

    Example:
        >>> image_file_header("cat.jpg")
        ('jpeg', (313, 249, 1))
    """
    with open(path, "rb", buffering=0) as f:
        data = f.read(_HEADER_READ)
        kind = sniff_format(data)
        return kind, _jpeg_header(f, data) if kind == "jpeg" else None


def _jpeg_header(f, data: bytes) -> tuple[int, int, int] | None:
    """(height, width, orientation) from JPEG file `f`, whose first bytes are `data`."""
    orientation, base, pos = None, 0, 2
    while True:
        if pos + 9 > len(data):   # the next segment header lies beyond what was read
            base += pos
            f.seek(base)
            data, pos = f.read(_HEADER_READ), 0
            if len(data) < 9:
                return None
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:        # fill byte
            pos += 1
        elif marker in _JPEG_SOF:
            height, width = struct.unpack_from(">HH", data, pos + 5)
            return (height, width, orientation or 1) if height and width else None
        elif marker in (0xD9, 0xDA):   # end of image, start of scan: no frame header
            return None
        else:
            length = struct.unpack_from(">H", data, pos + 2)[0]
            if marker == 0xE1 and orientation is None and length > 8:   # APP1: EXIF?
                if pos + 2 + length <= len(data):
                    segment = data[pos + 4:pos + 2 + length]
                else:
                    f.seek(base + pos + 4)
                    segment = f.read(length - 2)
                if segment.startswith(b"Exif\0\0"):
                    orientation = _exif_orientation(segment)
            pos += 2 + length


def channels_of(image: Image.Image) -> int:
    """Channels TensorFlow's decoder yields for this image when asked for its own count."""
    if image.mode == "P":
        return 4 if "transparency" in image.info else 3
    return _CHANNELS.get(image.mode, 3)


def _allow_pixels(limit: int) -> None:
    # Pillow refuses images above its own global limit while opening them, before we see the
    # size; so that `max_image_pixels` decides, Pillow's limit is raised to it when lower (never
    # lowered, never disabled). Our own check below runs on the header, before any pixel exists.
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < limit:
        Image.MAX_IMAGE_PIXELS = limit


def _open(data: bytes, max_pixels: int, source_format: str) -> Image.Image:
    _allow_pixels(max_pixels)
    try:
        image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        # Pillow's own check, on the header too, above twice its limit (the warning arrives
        # as an exception only where the caller made warnings errors).
        found = re.search(r"\((\d+) pixels\)", str(e))
        size = f"{int(found.group(1)):,} pixels" if found else "the image"
        raise ValueError(f"refused as a decompression bomb: {size} exceeds the limit of "
                         f"{max_pixels:,} (max_image_pixels)") from None
    except Exception as e:  # PIL raises many types for undecodable data
        if source_format == "webp" and not features.check("webp"):
            raise ValueError("is a WebP image and this Pillow build cannot read WebP (no "
                             "libwebp); convert it to PNG or JPEG") from None
        raise ValueError(f"image data is corrupt or truncated ({type(e).__name__}: {e})") from None
    width, height = image.size
    if width < 1 or height < 1:
        raise ValueError(f"has an empty size ({width}x{height})")
    if width * height > max_pixels:
        raise ValueError(f"refused as a decompression bomb: {width}x{height} = {width * height:,} "
                         f"pixels exceeds the limit of {max_pixels:,} (max_image_pixels)")
    return image


def _decode(image: Image.Image) -> None:
    # LOAD_TRUNCATED_IMAGES must stay False so truncated files fail here, not in training.
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set; truncated images "
                           "would be stored silently; unset it before converting.")
    try:
        image.load()
    except Exception as e:
        if "decoder" in str(e) and "not available" in str(e):
            raise ValueError(f"needs an image codec this Pillow build lacks ({e}); convert it "
                             "to PNG or JPEG") from None
        raise ValueError(f"image data is corrupt or truncated ({type(e).__name__}: {e})") from None


def check_png(data: bytes) -> str | None:
    """Why TensorFlow's PNG decoder would refuse these bytes, or None when it would not.

    Pillow does not check the CRCs of a PNG's image data, and stops without needing the
    end chunk, while libpng (inside TensorFlow) refuses a file whose critical chunks fail
    their CRC or that has no IEND: such a file passes Pillow and fails in training.

    Example:
        >>> check_png(open("ok.png", "rb").read()) is None
        True
    """
    view, pos, size = memoryview(data), 8, len(data)
    while pos + 12 <= size:
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        name = kind.decode("latin-1")
        if end > size:
            return f"PNG chunk {name} at byte {pos} runs past the end of the file (truncated)"
        critical = not kind[0] & 0x20   # an upper-case first letter
        if critical and zlib.crc32(view[pos + 4:end - 4]) != struct.unpack_from(">I", data, end - 4)[0]:
            return f"PNG chunk {name} at byte {pos} fails its CRC check (the data is damaged)"
        if kind == b"IEND":
            return None
        pos = end
    return "PNG has no IEND chunk (the file is truncated)"


def to_rgb(image: Image.Image) -> Image.Image:
    """Converts any Pillow mode to 8-bit RGB, scaling 16- and 32-bit greys instead of clipping."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        array = np.asarray(image, dtype=np.float64)
        # 16-bit PNG/TIFF always span 0..65535 (a dark one too), as TensorFlow scales them;
        # 32-bit "I" and float images carry no range, so 8-bit values stay as they are.
        sixteen = image.mode.startswith("I;16") or (image.mode == "I" and array.max(initial=0) > 255)
        top = 65535.0 if sixteen else 255.0
        array = np.clip(np.rint(array * (255.0 / top)), 0, 255).astype(np.uint8)
        return Image.fromarray(array, "L").convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image.convert("RGB")


def resize(image: Image.Image, size: tuple[int, int], mode: str) -> Image.Image:
    """Resizes to ``size`` = (height, width): ``stretch`` ignores the aspect ratio, ``crop``
    fills and centre-crops, ``pad`` fits inside and pads with black."""
    height, width = size
    if image.size == (width, height):
        return image
    if mode == "stretch":
        return image.resize((width, height), _RESAMPLE)
    if mode == "crop":
        return ImageOps.fit(image, (width, height), method=_RESAMPLE)
    w, h = image.size
    if round(h / w * width) >= 1 and round(w / h * height) >= 1:
        return ImageOps.pad(image, (width, height), method=_RESAMPLE, color=(0, 0, 0))
    # Pillow would scale a 20000x1 strip to 0 pixels high: keep at least one each way.
    scale = min(width / w, height / h)
    fitted = (min(width, max(1, round(w * scale))), min(height, max(1, round(h * scale))))
    out = Image.new(image.mode, (width, height), (0, 0, 0) if image.mode == "RGB" else 0)
    out.paste(image.resize(fitted, _RESAMPLE),
              ((width - fitted[0]) // 2, (height - fitted[1]) // 2))
    return out


def shrunk_size(width: int, height: int, max_size: int | None) -> tuple[int, int] | None:
    """(width, height) scaled so the longer side is `max_size`, aspect kept; None when the
    image already fits (images are never enlarged).

    Example:
        >>> shrunk_size(400, 200, 100)
        (100, 50)
    """
    longer = max(width, height)
    if max_size is None or longer <= max_size:
        return None
    scale = max_size / longer
    return max(1, round(width * scale)), max(1, round(height * scale))


def crop_to(image: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    """The region `box` = (left, top, right, bottom) of `image` (Pillow's convention: right
    and bottom exclusive); a box not wholly inside the image is refused, never padded.

    Example:
        >>> crop_to(Image.new("RGB", (400, 100)), (186, 0, 300, 30)).size
        (114, 30)
    """
    left, top, right, bottom = box
    width, height = image.size
    if not (0 <= left < right <= width and 0 <= top < bottom <= height):
        raise ValueError(f"crop box (left, top, right, bottom) = ({left}, {top}, {right}, {bottom}) "
                         f"is not inside the {width}x{height} image (width x height)")
    return image.crop((left, top, right, bottom))


def encode(image: Image.Image, image_format: str, jpeg_quality: int) -> bytes:
    """Encodes an RGB image as ``jpeg``, ``png`` or ``raw`` (HWC uint8 bytes)."""
    if image_format == RAW:
        return image.tobytes()
    buffer = io.BytesIO()
    if image_format == "jpeg":
        image.save(buffer, "JPEG", quality=jpeg_quality)
    else:
        image.save(buffer, "PNG", compress_level=6)
    return buffer.getvalue()


def load_image(path: str | os.PathLike, options: ImageOptions) -> EncodedImage:
    """Reads one image file, checks it and returns what to store.

    Kept byte-for-byte when the options allow and TensorFlow can decode it as it is
    (JPEG or PNG, upright, not CMYK, within `max_size`, not cropped); otherwise decoded,
    turned upright by its EXIF orientation, converted to RGB, cropped to `crop_box` (in
    upright pixels; a writer sets it per row for `bbox_columns`), resized or shrunk to
    `max_size`, and encoded anew.

    Example:
        >>> load_image("cat.jpg", ImageOptions(image_size=(64, 64), image_format="jpeg")).height
        64
    """
    try:
        storage.require_regular_file(path, "image file")   # a FIFO would block the worker
        with storage.open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ValueError("file not found") from None
    except IsADirectoryError:
        raise ValueError("is a directory, not an image file") from None
    except OSError as e:
        if e.errno == errno.EINVAL and (e.strerror or "").startswith("is "):
            raise ValueError(e.strerror) from None
        raise ValueError(f"cannot be read ({e.strerror or e})") from None
    if not data:
        raise ValueError("file is empty (0 bytes)")
    source_format = sniff_format(data)
    if source_format is None:
        raise ValueError("is not an image (no JPEG, PNG, GIF, BMP, WebP or TIFF signature)")
    image = _open(data, options.max_image_pixels, source_format)
    if options.validate == "full" and source_format == "png":
        problem = check_png(data)
        if problem:
            raise ValueError(problem)
    if source_format == "jpeg" and "exif" not in image.info and "xmp" not in image.info:
        orientation = 1   # no block to hold an orientation; getexif would parse nothing
    else:
        try:
            orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
        except Exception:  # a malformed EXIF block is no reason to lose the picture
            orientation = 1

    box = options.crop_box
    # The longer side does not depend on the EXIF rotation: the target is known before decoding.
    target = None if box is not None else shrunk_size(*image.size, options.max_size)
    keep = (options.image_format == "keep" and options.image_size is None
            and source_format in KEPT_FORMATS and orientation in (0, 1)
            and image.mode != "CMYK" and box is None and target is None)
    if keep:
        if options.validate == "full":
            _decode(image)
        width, height = image.size
        return EncodedImage(data, source_format, height, width, channels_of(image), True)

    if options.image_size is not None and source_format == "jpeg" and box is None:
        # DCT-domain downscaling: decode at 1/2, 1/4 or 1/8 scale when that still covers the target.
        target_h, target_w = options.image_size
        if orientation in _ROTATES_90:
            target_h, target_w = target_w, target_h
        image.draft("RGB", (target_w, target_h))
    elif target is not None and source_format == "jpeg":
        # For the filter, DCT scaling stops at twice the target (Image.thumbnail's rule).
        image.draft("RGB", (int(target[0] * _REDUCING_GAP), int(target[1] * _REDUCING_GAP)))
    _decode(image)
    if orientation not in (0, 1):   # upright already: exif_transpose would only copy it
        try:
            image = ImageOps.exif_transpose(image)
        except Exception:  # a malformed EXIF block must not lose the picture
            pass
    image = to_rgb(image)
    image, changed = _region_and_size(image, options, box, target, orientation)
    if options.image_format == "keep":
        # Not decodable by TensorFlow as it was (GIF, BMP, WebP, TIFF, CMYK or rotated):
        # JPEG sources stay JPEG, the rest become lossless PNG.
        fmt = "jpeg" if source_format == "jpeg" else "png"
        # Re-encoding only to make it decodable (no resize): stay close to the original.
        quality = options.jpeg_quality if changed else max(options.jpeg_quality, 95)
    else:
        fmt, quality = options.image_format, options.jpeg_quality
    width, height = image.size
    return EncodedImage(encode(image, fmt, quality), fmt, height, width, 3, False)


def _region_and_size(image: Image.Image, options: ImageOptions,
                     box: tuple[int, int, int, int] | None, target: tuple[int, int] | None,
                     orientation: int) -> tuple[Image.Image, bool]:
    """Crop first, then resize (`image_size`) or shrink (`max_size`); whether pixels changed."""
    if box is not None:
        image = crop_to(image, box)
        target = shrunk_size(*image.size, options.max_size)
    elif target is not None and orientation in _ROTATES_90:
        target = target[::-1]
    if options.image_size is not None:
        return resize(image, options.image_size, options.resize_mode), True
    if target is not None:
        return image.resize(target, _SHRINK, reducing_gap=_REDUCING_GAP), True
    return image, box is not None
