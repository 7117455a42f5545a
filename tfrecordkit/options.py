"""Validated option dataclasses shared by the writers, the reader and the CLI.

Every check happens in ``__post_init__``, before any I/O, with one message shape:
"`name` must be ...; received name=value."
"""
from __future__ import annotations

import codecs
import math
import operator
import os
import re
from dataclasses import dataclass, fields
from typing import Any, Mapping, Sequence

from .errors import OptionError

DEFAULT_SHARD_BYTES = 128 << 20
# With no --shard-size/--num-shards, small datasets still get several shards so that
# every core writes, readers interleave files, and multi-worker training can shard by file.
DEFAULT_MIN_SHARDS = 16
MIN_ROWS_PER_SHARD = 256
DEFAULT_JPEG_QUALITY = 90
DEFAULT_MULTI_LABEL_SEP = " "
# Pillow refuses images above twice this many pixels; we refuse above it (decompression bombs).
DEFAULT_MAX_IMAGE_PIXELS = 89_478_485

RESIZE_MODES = ("stretch", "crop", "pad")
IMAGE_FORMATS = ("keep", "jpeg", "png", "raw")
COMPRESSIONS = ("none", "gzip")
BACKENDS = ("loky", "threading", "multiprocessing", "dask")
ON_ERROR = ("raise", "skip")
VALIDATE = ("full", "header")

_SIZE_UNITS = {"": 1, "B": 1, "KB": 1 << 10, "KIB": 1 << 10, "MB": 1 << 20, "MIB": 1 << 20,
               "GB": 1 << 30, "GIB": 1 << 30}
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def _fail(name: str, expected: str, value: Any) -> OptionError:
    return OptionError(f"`{name}` must be {expected}; received {name}={value!r}.")


def _one_of(name: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise _fail(name, "one of " + ", ".join(f'"{c}"' for c in choices), value)


def parse_image_size(value: Any, name: str = "image_size") -> tuple[int, int] | None:
    """Parses ``128``, ``"128"``, ``"128x96"`` (height x width) or ``(128, 96)``.

    Example:
        >>> parse_image_size("128x96")
        (128, 96)
    """
    if value is None:
        return None
    if isinstance(value, str):
        parts = value.lower().replace(" ", "").split("x")
        if not all(p.isdigit() for p in parts) or len(parts) not in (1, 2):
            raise _fail(name, 'a size like 128 or "128x96" (height x width)', value)
        sizes = [int(p) for p in parts]
    elif isinstance(value, int) and not isinstance(value, bool):
        sizes = [value]
    elif isinstance(value, Sequence) and len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        sizes = list(value)
    else:
        raise _fail(name, 'a size like 128, "128x96" or (height, width)', value)
    if len(sizes) == 1:
        sizes = sizes * 2
    if min(sizes) < 1 or max(sizes) > 65535:
        raise _fail(name, "between 1 and 65535 pixels on each side", value)
    return sizes[0], sizes[1]


def parse_byte_size(value: Any, name: str = "shard_size") -> int | None:
    """Parses ``"128MB"``, ``"64MiB"``, ``"500KB"`` or a number of bytes (units are powers of 1024).

    Example:
        >>> parse_byte_size("128MB")
        134217728
    """
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number, unit = float(value), ""
    elif isinstance(value, str):
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", value)
        if not match or match.group(2).upper() not in _SIZE_UNITS:
            raise _fail(name, 'a size like "128MB", "1GB" or a number of bytes', value)
        number, unit = float(match.group(1)), match.group(2).upper()
    else:
        raise _fail(name, 'a size like "128MB", "1GB" or a number of bytes', value)
    size = int(number * _SIZE_UNITS[unit])
    if size < 1:
        raise _fail(name, "at least 1 byte", value)
    return size


def parse_split(value: Any, name: str = "split") -> dict[str, float] | None:
    """Parses ``"train=0.9,val=0.1"`` or a mapping into ordered fractions that sum to 1.

    Example:
        >>> parse_split("train=0.8,val=0.2")
        {'train': 0.8, 'val': 0.2}
    """
    if value is None or value == "":
        return None
    expected = 'fractions like "train=0.9,val=0.1" that sum to 1'
    if isinstance(value, str):
        pairs = []
        for part in value.split(","):
            key, sep, number = part.partition("=")
            try:
                pairs.append((key.strip(), float(number)))
            except ValueError:
                raise _fail(name, expected, value) from None
            if not sep:
                raise _fail(name, expected, value)
    elif isinstance(value, Mapping):
        try:
            pairs = [(str(k), float(v)) for k, v in value.items()]
        except (TypeError, ValueError):
            raise _fail(name, expected, value) from None
    else:
        raise _fail(name, expected, value)
    split = dict(pairs)
    if len(split) != len(pairs) or len(split) < 1:
        raise _fail(name, expected + ", each name once", value)
    for key, frac in split.items():
        if not _SPLIT_NAME.match(key):
            raise _fail(name, "split names made of letters, digits, '_', '-' or '.'", value)
        if not (0 < frac <= 1) or math.isnan(frac):
            raise _fail(name, "fractions between 0 and 1", value)
    if abs(sum(split.values()) - 1) > 1e-6:
        raise _fail(name, expected, value)
    return split


# Names a user may give for separators that are awkward to type on a command line.
_SEP_NAMES = {"\\t": "\t", "tab": "\t", "TAB": "\t", "\\s": " ", "space": " "}


def _pairs(name: str, value: Any, example: str) -> list[tuple[str, str]]:
    """``"A=x"``, ``["A=x", "B=y"]`` or ``{"A": x}`` as (key, value-text-or-object) pairs."""
    if isinstance(value, Mapping):
        return [(k, v) for k, v in value.items()]
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Sequence):
        raise _fail(name, example, value)
    pairs = []
    for item in items:
        if not isinstance(item, str) or "=" not in item:
            raise _fail(name, example, value)
        key, _, rest = item.partition("=")
        pairs.append((key.strip(), rest))
    return pairs


def parse_one_hot(value: Any, name: str = "one_hot") -> dict[str, tuple[str, ...]] | None:
    """Parses ``"weather=clear,haze,cloudy"`` (repeatable as a list) or a mapping
    ``{"weather": ["clear", "haze", "cloudy"]}`` into feature name -> its 0/1 columns.

    Example:
        >>> parse_one_hot("weather=clear,haze")
        {'weather': ('clear', 'haze')}
    """
    if value is None or value == {} or value == ():
        return None
    example = 'NAME=COL,COL,... (or a mapping {"NAME": ["COL", ...]})'
    out: dict[str, tuple[str, ...]] = {}
    for key, columns in _pairs(name, value, example):
        if isinstance(columns, str):
            columns = [c.strip() for c in columns.split(",") if c.strip()]
        if (not isinstance(key, str) or not key or not isinstance(columns, Sequence)
                or not columns or not all(isinstance(c, str) and c for c in columns)):
            raise _fail(name, example, value)
        if key in out:
            raise _fail(name, example + ", each NAME once", value)
        if len(set(columns)) != len(columns):
            raise _fail(name, example + ", each column once", value)
        out[key] = tuple(columns)
    return out


def parse_num_classes(value: Any, name: str = "num_classes") -> dict[str, int] | None:
    """Parses ``"y0=500"`` (repeatable as a list) or ``{"y0": 500}``.

    Example:
        >>> parse_num_classes(["y0=500", "y1=10"])
        {'y0': 500, 'y1': 10}
    """
    if value is None or value == {} or value == ():
        return None
    example = 'COL=N with N a positive integer (or a mapping {"COL": N})'
    out: dict[str, int] = {}
    for key, number in _pairs(name, value, example):
        if isinstance(number, str):
            number = int(number.strip()) if number.strip().isdigit() else None
        if (not isinstance(key, str) or not key or not isinstance(number, int)
                or isinstance(number, bool) or number < 1 or key in out):
            raise _fail(name, example, value)
        out[key] = number
    return out


def parse_crop_box(value: Any, name: str = "crop_box") -> tuple[int, int, int, int] | None:
    """Parses ``"186,0,300,30"`` or ``(186, 0, 300, 30)``: (left, top, right, bottom) in
    pixels, Pillow's box convention (right and bottom exclusive).

    Example:
        >>> parse_crop_box("186,0,300,30")
        (186, 0, 300, 30)
    """
    if value is None:
        return None
    expected = 'a box "LEFT,TOP,RIGHT,BOTTOM" of whole pixels with LEFT < RIGHT and TOP < BOTTOM'
    try:   # a string, a tuple or list, or a numpy array
        parts = value.replace(" ", "").split(",") if isinstance(value, str) else list(value)
    except TypeError:
        raise _fail(name, expected, value) from None
    if len(parts) != 4:
        raise _fail(name, expected, value)
    try:   # operator.index: ints and numpy integers, never floats or bools
        box = tuple(int(p) if isinstance(p, str) else operator.index(p) for p in parts)
    except (ValueError, TypeError):
        raise _fail(name, expected, value) from None
    if any(isinstance(p, bool) for p in parts) or min(box) < 0 \
            or box[0] >= box[2] or box[1] >= box[3]:
        raise _fail(name, expected, value)
    return box


def parse_bbox_columns(value: Any, name: str = "bbox_columns") -> tuple[str, str, str, str] | None:
    """Parses ``"x,y,w,h"`` or ``("x", "y", "w", "h")``: the columns holding each row's box
    as left, top, width and height in pixels.

    Example:
        >>> parse_bbox_columns("x,y,w,h")
        ('x', 'y', 'w', 'h')
    """
    if value is None:
        return None
    parts = [p.strip() for p in value.split(",")] if isinstance(value, str) else value
    if (not isinstance(parts, Sequence) or len(parts) != 4
            or not all(isinstance(p, str) and p for p in parts)):
        raise _fail(name, 'four column names "X,Y,WIDTH,HEIGHT" (left, top, width, height)', value)
    return tuple(parts)


def _as_tuple(name: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise _fail(name, "a column name or a list of column names", value)


@dataclass(frozen=True)
class WriteOptions:
    """Options of `write_frame`, `write_folder` and ``tfrecordkit convert``.

    Strings from the command line (``"128x96"``, ``"64MB"``, ``"train=0.9,val=0.1"``)
    and their Python forms are both accepted and normalised.
    """

    images: str | None = None
    id_column: str | None = None
    image_column: str | None = None
    ext: str | None = None
    label: tuple[str, ...] = ()
    multi_label: tuple[str, ...] = ()
    multi_label_sep: str = DEFAULT_MULTI_LABEL_SEP
    one_hot: dict[str, tuple[str, ...]] | None = None
    num_classes: dict[str, int] | None = None
    sep: str | None = None
    encoding: str | None = None
    columns: tuple[str, ...] | None = None
    image_size: tuple[int, int] | None = None
    resize_mode: str = "stretch"
    image_format: str = "keep"
    jpeg_quality: int = DEFAULT_JPEG_QUALITY
    # The stored region and size (FFCV's max_resolution): crop first, then shrink.
    max_size: int | None = None
    crop_box: tuple[int, int, int, int] | None = None
    bbox_columns: tuple[str, str, str, str] | None = None
    shard_size: int | None = None
    num_shards: int | None = None
    compression: str = "none"
    split: dict[str, float] | None = None
    seed: int | None = None
    shuffle: bool = True
    jobs: int | None = None
    backend: str | None = None
    scheduler: str | None = None
    on_error: str = "raise"
    validate: str = "full"
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    resume: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        _plain_fields(self)
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        if self.images is not None:
            set_("images", os.fspath(self.images))
        set_("label", _as_tuple("label", self.label))
        set_("multi_label", _as_tuple("multi_label", self.multi_label))
        if isinstance(self.columns, str):
            set_("columns", tuple(c.strip() for c in self.columns.split(",") if c.strip()))
        elif self.columns is not None:
            set_("columns", _as_tuple("columns", self.columns))
        for name in ("id_column", "image_column", "ext", "scheduler"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise _fail(name, "a non-empty string or None", value)
        if self.ext is not None and not self.ext.startswith("."):
            set_("ext", "." + self.ext)
        both = set(self.label) & set(self.multi_label)
        if both:
            raise _fail("multi_label", "columns not also given as `label`", sorted(both))
        if not isinstance(self.multi_label_sep, str) or not self.multi_label_sep:
            raise _fail("multi_label_sep", "a non-empty string", self.multi_label_sep)
        self._check_label_tables()
        set_("image_size", parse_image_size(self.image_size))
        _one_of("resize_mode", self.resize_mode, RESIZE_MODES)
        _one_of("image_format", self.image_format, IMAGE_FORMATS)
        if not isinstance(self.jpeg_quality, int) or not 1 <= self.jpeg_quality <= 100:
            raise _fail("jpeg_quality", "an integer from 1 to 100", self.jpeg_quality)
        self._check_regions()
        set_("shard_size", parse_byte_size(self.shard_size))
        if self.num_shards is not None and (
                not isinstance(self.num_shards, int) or isinstance(self.num_shards, bool)
                or self.num_shards < 1):
            raise _fail("num_shards", "a positive integer", self.num_shards)
        if self.shard_size is not None and self.num_shards is not None:
            raise OptionError("Pass either `shard_size` or `num_shards`, not both; "
                              f"received shard_size={self.shard_size!r}, num_shards={self.num_shards!r}.")
        if self.compression is None:
            set_("compression", "none")
        _one_of("compression", self.compression, COMPRESSIONS)
        set_("split", parse_split(self.split))
        if self.seed is not None and (not isinstance(self.seed, int) or self.seed < 0):
            raise _fail("seed", "a non-negative integer or None", self.seed)
        if self.jobs is not None and (not isinstance(self.jobs, int) or self.jobs == 0):
            raise _fail("jobs", "a positive integer, a negative one counting back from all cores "
                        "(-1 = all), or None", self.jobs)
        if self.backend is not None:
            _one_of("backend", self.backend, BACKENDS)
        if self.scheduler is not None and self.backend != "dask":
            raise _fail("scheduler", 'given only with backend="dask"', self.scheduler)
        _one_of("on_error", self.on_error, ON_ERROR)
        _one_of("validate", self.validate, VALIDATE)
        if not isinstance(self.max_image_pixels, int) or self.max_image_pixels < 1:
            raise _fail("max_image_pixels", "a positive integer", self.max_image_pixels)
        if self.image_format == "raw" and self.image_size is None:
            raise OptionError('`image_format="raw"` stores decoded pixels and needs a fixed '
                              "`image_size` (--image-size) so every record has the same shape; "
                              "received image_size=None.")

    def _check_label_tables(self) -> None:
        """--one-hot, --num-classes, --sep and --encoding (see "Label tables" in the README)."""
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        set_("one_hot", parse_one_hot(self.one_hot))
        set_("num_classes", parse_num_classes(self.num_classes))
        for name, columns in (self.one_hot or {}).items():
            taken = {name, *columns} & {*self.label, *self.multi_label}
            if taken:
                raise _fail("one_hot", "feature names and columns not also given as `label` or "
                            f"`multi_label` ({sorted(taken)[0]!r} is)", self.one_hot)
        for name in self.num_classes or {}:
            if name not in self.label:
                raise _fail("num_classes", "class columns also given as `label` (--label "
                            f"{name})", self.num_classes)
        if self.sep is not None:
            if not isinstance(self.sep, str) or not self.sep:
                raise _fail("sep", "a separator such as ',', ';', '\\t' or '|', or None to sniff "
                            "it", self.sep)
            set_("sep", _SEP_NAMES.get(self.sep, self.sep))
        if self.encoding is not None:
            try:
                codecs.lookup(self.encoding)
            except (LookupError, TypeError):
                raise _fail("encoding", "a text encoding Python knows, such as 'utf-8', "
                            "'cp1252' or 'latin-1'", self.encoding) from None


    def _check_regions(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        if self.max_size is not None and (not isinstance(self.max_size, int)
                                          or isinstance(self.max_size, bool)
                                          or not 1 <= self.max_size <= 65535):
            raise _fail("max_size", "a number of pixels from 1 to 65535 (the longest side kept)",
                        self.max_size)
        if self.max_size is not None and self.image_size is not None:
            raise OptionError("Pass either `max_size` (shrink, keeping the aspect ratio) or "
                              "`image_size` (one fixed size), not both; received "
                              f"max_size={self.max_size!r}, image_size={self.image_size!r}.")
        set_("crop_box", parse_crop_box(self.crop_box))
        set_("bbox_columns", parse_bbox_columns(self.bbox_columns))
        if self.crop_box is not None and self.bbox_columns is not None:
            raise OptionError("Pass either `crop_box` (one region of every image) or "
                              "`bbox_columns` (a region per row), not both; received "
                              f"crop_box={self.crop_box!r}, bbox_columns={self.bbox_columns!r}.")

    @property
    def reencodes(self) -> bool:
        """Whether every image is decoded and written anew rather than kept byte-for-byte
        (with `max_size` alone, images already within it are kept)."""
        return (self.image_format != "keep" or self.image_size is not None
                or self.crop_box is not None or self.bbox_columns is not None)

    def to_json(self) -> dict[str, Any]:
        """The options as plain JSON values, for dataset.json."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, dict):   # one_hot's column tuples, as dataset.json reads back
                value = {k: list(v) if isinstance(v, tuple) else v for k, v in value.items()}
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


def option_names() -> list[str]:
    """Names accepted by `WriteOptions`, for error messages about unknown keywords."""
    return [f.name for f in fields(WriteOptions)]


# ----------------------------------------------------------------------------- reading

DEFAULT_BATCH_SIZE = 32
LABEL_MODES = ("int", "categorical")
DTYPES = ("float32", "uint8")
ON_CORRUPT = ("raise", "skip")
CROPS = ("random", "center")
# Inception-style random-resized crops, as in TF's ImageNet input pipeline and torchvision.
DEFAULT_CROP_AREA = (0.08, 1.0)
DEFAULT_CROP_ASPECT = (3 / 4, 4 / 3)
# The central 87.5% of an image: how ImageNet models trained on random crops are evaluated.
DEFAULT_CROP_FRACTION = 0.875
# `service` without a protocol: TF's default protocol is grpc.
_HOST_PORT = re.compile(r"^[^\s/:]+:\d+$")


def _plain(value: Any) -> Any:
    """numpy scalars and arrays, as a config read with numpy holds them (np.int64(32),
    np.float32(0.875), np.True_, np.array([0.08, 1.0])), as the Python values the checks
    take; anything else as it is."""
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (tuple, list)) and any(type(v).__module__ == "numpy" for v in value):
        return type(value)(_plain(v) for v in value)
    return value


def _plain_fields(options) -> None:
    for f in fields(options):
        object.__setattr__(options, f.name, _plain(getattr(options, f.name)))


def _range(name: str, value: Any, what: str, upper: float | None = None) -> tuple[float, float]:
    """A (low, high) pair of positive numbers with low <= high (<= upper)."""
    bound = f" and at most {upper:g}" if upper is not None else ""
    expected = f"a pair (low, high) of {what}, above 0{bound}, with low <= high"
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise _fail(name, expected, value)
    low, high = value
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) for v in value):
        raise _fail(name, expected, value)
    if not 0 < low <= high or (upper is not None and high > upper) or math.isinf(high):
        raise _fail(name, expected, value)
    return float(low), float(high)


@dataclass(frozen=True)
class ReadOptions:
    """Options of `read`, validated before TensorFlow is touched."""

    batch_size: int | None = DEFAULT_BATCH_SIZE
    image_size: tuple[int, int] | None = None
    label_mode: str = "int"
    shuffle: bool = True
    repeat: bool | int = False
    seed: int | None = None
    dtype: str = "float32"
    channels: int = 3
    resize_mode: str = "stretch"
    shuffle_buffer: int | None = None
    cache: bool | str = False
    drop_remainder: bool = False
    on_corrupt: str = "raise"
    num_workers: int | None = None
    worker_index: int | None = None
    service: str | None = None
    service_job_name: str | None = None
    crop: str | None = None
    crop_area: tuple[float, float] = DEFAULT_CROP_AREA
    crop_aspect: tuple[float, float] = DEFAULT_CROP_ASPECT
    crop_fraction: float = DEFAULT_CROP_FRACTION
    flip: bool = False
    start: tuple[int, int] | None = None
    resume: Any = None

    def __post_init__(self) -> None:
        _plain_fields(self)
        object.__setattr__(self, "image_size", parse_image_size(self.image_size))
        if self.batch_size is not None and (not isinstance(self.batch_size, int)
                                            or isinstance(self.batch_size, bool)
                                            or self.batch_size < 1):
            raise OptionError(f"`batch_size` must be a positive integer or None; "
                              f"received batch_size={self.batch_size!r}.")
        for name, choices in (("label_mode", LABEL_MODES), ("dtype", DTYPES),
                              ("resize_mode", RESIZE_MODES), ("on_corrupt", ON_CORRUPT)):
            if getattr(self, name) not in choices:
                raise OptionError(f"`{name}` must be one of {', '.join(map(repr, choices))}; "
                                  f"received {name}={getattr(self, name)!r}.")
        if self.channels not in (1, 3):
            raise OptionError(f"`channels` must be 1 (greyscale) or 3 (RGB); "
                              f"received channels={self.channels!r}.")
        if not isinstance(self.repeat, bool) and (not isinstance(self.repeat, int) or self.repeat < 1):
            raise OptionError(f"`repeat` must be True, False or a positive number of epochs; "
                              f"received repeat={self.repeat!r}.")
        if self.seed is not None and (not isinstance(self.seed, int) or self.seed < 0):
            raise OptionError(f"`seed` must be a non-negative integer or None; received seed={self.seed!r}.")
        if self.shuffle_buffer is not None and (not isinstance(self.shuffle_buffer, int)
                                                or self.shuffle_buffer < 1):
            raise OptionError(f"`shuffle_buffer` must be a positive integer or None; "
                              f"received shuffle_buffer={self.shuffle_buffer!r}.")
        self._check_workers()
        self._check_service()
        self._check_crop()
        self._check_position()

    @property
    def random_augment(self) -> bool:
        """Whether images get random draws (a random crop or flip), which need a seed and
        each record's (epoch, index) key."""
        return self.crop == "random" or self.flip

    def _check_crop(self) -> None:
        if self.crop is not None and self.crop not in CROPS:
            raise OptionError(f'`crop` must be one of None, "random", "center"; received crop={self.crop!r}.')
        object.__setattr__(self, "crop_area", _range("crop_area", self.crop_area, "fractions of "
                                                     "the image's area", upper=1.0))
        object.__setattr__(self, "crop_aspect", _range("crop_aspect", self.crop_aspect,
                                                       "width/height ratios"))
        f = self.crop_fraction
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f <= 1:
            raise _fail("crop_fraction", "a number in (0, 1], the central part kept by "
                        'crop="center"', f)
        object.__setattr__(self, "crop_fraction", float(f))
        if not isinstance(self.flip, bool):
            raise _fail("flip", "True or False", self.flip)

    def _check_position(self) -> None:
        start, resume = self.start, self.resume
        if start is not None:
            if (not isinstance(start, Sequence) or isinstance(start, str) or len(start) != 2
                    or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                               for v in start)):
                raise OptionError("`start` must be (epoch, batch), two non-negative integers; "
                                  f"received start={start!r}.")
            object.__setattr__(self, "start", (int(start[0]), int(start[1])))
        if resume is not None and not (isinstance(resume, (str, os.PathLike))
                                       or hasattr(resume, "backup_dir")):
            raise OptionError("`resume` must be a Keras BackupAndRestore backup directory (or the "
                              f"callback itself); received resume={resume!r}.")
        if start is not None and resume is not None:
            raise OptionError("Pass `start` or `resume`, not both; received "
                              f"start={start!r}, resume={resume!r}.")
        if start is None and resume is None:
            return
        name = "start" if start is not None else "resume"
        value = start if start is not None else resume
        if self.shuffle and self.seed is None:
            raise OptionError(f"`{name}` seeks into a shuffled order, which needs a `seed` to be "
                              f"the same order as before; pass seed=..., the one the run used; "
                              f"received {name}={value!r}, seed=None.")
        if self.service is not None:
            raise OptionError(f"`{name}` cannot seek through tf.data service, whose workers are "
                              f"handed files in no fixed order; read without `service`; "
                              f"received {name}={value!r}, service={self.service!r}.")

    def _check_workers(self) -> None:
        n, i = self.num_workers, self.worker_index
        if (n is None) != (i is None):
            raise OptionError(f"`num_workers` and `worker_index` go together: pass both or neither; "
                              f"received num_workers={n!r}, worker_index={i!r}.")
        if n is None:
            return
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise OptionError(f"`num_workers` must be a positive integer; received num_workers={n!r}.")
        if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < n:
            raise OptionError(f"`worker_index` must be an integer from 0 to {n - 1} for "
                              f"num_workers={n}; received worker_index={i!r}.")

    def _check_service(self) -> None:
        service = self.service
        if service is None:
            if self.service_job_name is not None:
                raise OptionError(f"`service_job_name` names a tf.data service job, so it needs "
                                  f"`service`; received service_job_name={self.service_job_name!r} "
                                  "and service=None.")
            return
        if not isinstance(service, str) or not (
                (service.startswith("grpc://") and len(service) > len("grpc://")
                 and not any(c.isspace() for c in service)) or _HOST_PORT.match(service)):
            raise OptionError(f"`service` must be a tf.data service dispatcher address, "
                              f"\"grpc://host:port\" or \"host:port\"; received service={service!r}.")
        if self.service_job_name is not None and (not isinstance(self.service_job_name, str)
                                                  or not self.service_job_name):
            raise OptionError(f"`service_job_name` must be a non-empty string or None; "
                              f"received service_job_name={self.service_job_name!r}.")
        if self.on_corrupt == "skip":
            raise OptionError("`on_corrupt=\"skip\"` cannot run on tf.data service workers (it "
                              "counts damage with tf.py_function, which only the reading process "
                              "can run); pass on_corrupt=\"raise\" with `service`, or read "
                              f"without `service`; received service={service!r}.")
        if self.cache:
            raise OptionError("`cache` would cache on the tf.data service workers, which are "
                              "handed different shard files each epoch; leave cache=False with "
                              f"`service`; received cache={self.cache!r}.")
        if self.service_job_name is not None and self.num_workers not in (None, 1):
            raise OptionError("A shared `service_job_name` already splits the records among the "
                              "trainers that read it; pass num_workers/worker_index (or "
                              "input_context) or service_job_name, not both; received "
                              f"num_workers={self.num_workers!r}, "
                              f"service_job_name={self.service_job_name!r}.")
