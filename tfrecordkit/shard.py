"""One worker's job: write one whole shard from plain data.

A `ShardTask` carries plain rows, paths and options (never pandas or TensorFlow objects),
so a loky or dask worker that unpickles it imports neither; `write_shard` loads each image,
encodes the Example, writes the shard under a temporary name with its .idx, and renames it
when complete. The client side (planning, the pool, the manifest) is in write.py.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import secrets
import threading
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Sequence

from . import storage
from .errors import SourceError, TfrecordkitError
from .example import encode_example
from .images import ImageOptions, load_image
from .manifest import DONE_SUFFIX, ShardInfo
from .plan import ShardSpec
from .records import RecordWriter, format_index
from .schema import Schema, encode_row, is_missing
from .source import resolve_image

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

_CANCEL_CHECK_ROWS = 32       # rows between a worker's checks that its run is still current


@dataclass(frozen=True)
class ShardRows:
    """A shard's rows as plain data, so a worker needs no pandas (an import that costs
    each worker process about half a second): source row numbers, column names, and one
    tuple of values per row, in write order."""

    numbers: list[int]
    columns: list[str]
    values: list[tuple]

    @classmethod
    def cut(cls, frame: pd.DataFrame, positions: Sequence[int], columns: list[str]) -> "ShardRows":
        """The rows at `positions` of `frame`, whose index holds the source row numbers."""
        part = frame.iloc[list(positions)][columns]
        return cls([int(i) for i in part.index], list(columns),
                   list(part.itertuples(index=False, name=None)))


@dataclass(frozen=True)
class ShardTask:
    """Everything a worker needs to write one shard: plain, picklable data."""

    directory: str
    spec: ShardSpec
    rows: ShardRows | None      # None in the plan; filled just before the task is sent
    schema: Schema
    image_root: str
    ext: str | None
    image: ImageOptions
    compression: str
    on_error: str
    multi_label_sep: str
    fingerprint: str
    run_file: str = ""          # RUN_NAME of the run that planned this task
    run_id: str = ""
    parent: int = 0             # pid of the planning process; a worker exits when it is gone
    bbox_columns: tuple[str, ...] | None = None   # each row's box: x, y, width, height


@dataclass
class ShardResult:
    """What a worker reports back about a shard it wrote."""

    split: str
    file: str
    records: int
    bytes: int
    sha256: str
    skipped: list = field(default_factory=list)   # (row, id, source, reason)
    shapes: list = field(default_factory=list)    # [h, w, c]s, at most 4 (_tells_more)
    formats: list = field(default_factory=list)
    kept: int = 0
    max_side: int = 0                              # the longest side of any stored image

    def info(self) -> ShardInfo:
        return ShardInfo(self.file, self.records, self.bytes, self.sha256)


class _HashingFile:
    """A write-only file wrapper that hashes and counts what passes through it."""

    def __init__(self, raw):
        self.raw, self.sha256, self.size = raw, hashlib.sha256(), 0

    def write(self, data) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


def _features(row: dict, task: ShardTask, row_number: int) -> dict[str, tuple[str, list]]:
    """Encodes one row (labels first, then the image); raises SourceError with context."""
    source = None
    try:
        feats = encode_row(row, task.schema, task.multi_label_sep)
        path, rel = resolve_image(task.image_root, row[task.schema.image_column], task.ext)
        source = path
        options = task.image
        if task.bbox_columns:   # this row's own box
            options = replace(options, crop_box=_row_box(row, task.bbox_columns))
        image = load_image(path, options)
    except ValueError as e:
        raise SourceError(row_number, row.get(task.schema.id_column), source, str(e)) from None
    except Exception as e:  # Pillow raises SyntaxError, struct.error... on malformed files
        reason = f"unexpected error while reading the image ({type(e).__name__}: {e})"
        raise SourceError(row_number, row.get(task.schema.id_column), source, reason) from None
    feats.update({
        "image/encoded": ("bytes", [image.data]),
        "image/format": ("bytes", [image.format.encode()]),
        "image/height": ("int64", [image.height]),
        "image/width": ("int64", [image.width]),
        "image/channels": ("int64", [image.channels]),
        "image/filename": ("bytes", [rel.encode("utf-8")]),
    })
    return feats, image


def _row_box(row: dict, columns: Sequence[str]) -> tuple[int, int, int, int]:
    """A row's (left, top, right, bottom) from its x, y, width and height columns (pixels,
    rounded to whole ones); raises ValueError naming the column when the box is unusable.

    Example:
        >>> _row_box({"x": 10, "y": 5.4, "w": 20, "h": 8}, ("x", "y", "w", "h"))
        (10, 5, 30, 13)
    """
    numbers = []
    for name in columns:
        value = row[name]
        if is_missing(value):
            raise ValueError(f"bounding box column `{name}` is empty")
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number) or isinstance(value, bool):
            raise ValueError(f"bounding box column `{name}` holds {value!r}, not a number of pixels")
        numbers.append(number)
    x, y, w, h = numbers
    described = f"bounding box (x, y, width, height) = ({x:g}, {y:g}, {w:g}, {h:g})"
    if w <= 0 or h <= 0:
        raise ValueError(f"{described} has no area: width and height must be positive")
    if x < 0 or y < 0:
        raise ValueError(f"{described} starts outside the image: x and y must be at least 0")
    left, top, right, bottom = round(x), round(y), round(x + w), round(y + h)
    if right <= left or bottom <= top:
        raise ValueError(f"{described} is smaller than a pixel once rounded to whole pixels")
    return left, top, right, bottom


class _Cancelled(TfrecordkitError):
    """The run that planned a shard has ended; its worker stops without writing."""


def _check_current(task: ShardTask) -> None:
    if not task.run_file:
        return
    try:
        with storage.open(task.run_file, "r", encoding="utf-8") as f:
            current = json.loads(f.read()).get("run") == task.run_id
    except (OSError, ValueError):
        current = False
    if not current:
        raise _Cancelled(f"the conversion that planned {task.spec.file} has ended; "
                         "its shard was not written.")


_WATCH_INTERVAL_S = 0.5       # how often a worker process checks that its parent lives
_watched: int | None = None   # the parent pid this process watches, once started
_writing: set[str] = set()    # temporary shard files this process has open


def _watch_parent(parent: int) -> None:
    """In a worker process that `parent` started (joblib's loky pool), starts a thread that
    ends the process within a second of the parent's death, kill -9 included, removing the
    temporary file it was writing. Loky itself notices only at its idle timeout (300 s),
    so orphans of a killed conversion held their memory for minutes. Threads of the
    parent itself (threading backend) and dask workers (another parent) are left alone."""
    global _watched
    if not parent or parent == os.getpid() or _watched == parent or os.getppid() != parent:
        return
    _watched = parent

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_WATCH_INTERVAL_S)
        for path in list(_writing):
            with contextlib.suppress(OSError):
                os.remove(path)
        os._exit(1)

    threading.Thread(target=watch, name="tfrecordkit-parent-watch", daemon=True).start()


def _tells_more(shapes: set, shape: tuple[int, int, int]) -> bool:
    """Whether `shape` is worth keeping: dataset.json records one size and one channel
    count when all images share them, so two distinct sizes and two channel counts settle
    it; a shape with a size or channel count not seen while fewer than two are known."""
    sizes, channels = {s[:2] for s in shapes}, {s[2] for s in shapes}
    return ((shape[:2] not in sizes and len(sizes) < 2)
            or (shape[2] not in channels and len(channels) < 2))


def write_shard(task: ShardTask) -> ShardResult:
    """Writes one shard and its .idx under temporary names, then renames them into place.

    Top-level and free of TensorFlow so any joblib backend (loky, threading, dask) can run it.
    A kill at any moment leaves at most a hidden temporary file, never a partial file under
    the shard's name; the .done.json mark written last lets `resume` keep the shard.
    """
    _watch_parent(task.parent)
    spec = task.spec
    final = storage.join(task.directory, spec.file)
    tmp = storage.join(task.directory, f".{spec.file}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    _writing.add(tmp)
    result = ShardResult(spec.split, spec.file, 0, 0, "")
    shapes, formats = set(), set()
    columns = task.rows.columns
    try:
        with storage.open(tmp, "wb", buffering=1 << 20) as raw:
            hashed = _HashingFile(raw)
            with RecordWriter(hashed, None if task.compression == "none" else task.compression) as writer:
                for i, (row_number, values) in enumerate(zip(task.rows.numbers, task.rows.values)):
                    if i % _CANCEL_CHECK_ROWS == 0:
                        _check_current(task)
                    row = dict(zip(columns, values))
                    try:
                        feats, image = _features(row, task, int(row_number))
                    except SourceError as e:
                        if task.on_error == "raise":
                            raise
                        result.skipped.append((e.row, e.id, e.source or "", e.reason))
                        continue
                    writer.write(encode_example(feats))
                    result.kept += image.kept
                    result.max_side = max(result.max_side, image.height, image.width)
                    shape = (image.height, image.width, image.channels)
                    if _tells_more(shapes, shape):
                        shapes.add(shape)
                    formats.add(image.format)
                index = writer.index
                result.records = writer.count
            storage.sync(raw)
        result.bytes, result.sha256 = hashed.size, hashed.sha256.hexdigest()
        _check_current(task)
        storage.write_text(final + ".idx", format_index(index))
        storage.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            storage.remove(tmp)
        _writing.discard(tmp)
    result.shapes = sorted(list(s) for s in shapes)
    result.formats = sorted(formats)
    storage.write_text(_done_path(task.directory, spec.file),
                       json.dumps({"fingerprint": task.fingerprint, **result.__dict__}))
    return result


def _done_path(directory: str, file: str) -> str:
    return storage.join(directory, f".{file}{DONE_SUFFIX}")


def _reusable(task: ShardTask) -> ShardResult | None:
    """A shard a previous run completed with the same plan, when its checksum still holds."""
    final = storage.join(task.directory, task.spec.file)
    try:
        with storage.open(_done_path(task.directory, task.spec.file), "r", encoding="utf-8") as f:
            done = json.loads(f.read())
        if done.pop("fingerprint") != task.fingerprint or not storage.isfile(final + ".idx"):
            return None
        digest = hashlib.sha256()
        with storage.open(final, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except (OSError, ValueError, KeyError):
        return None
    result = ShardResult(**done)
    return result if digest.hexdigest() == result.sha256 else None


def _ready(parent: int = 0) -> None:
    """What each worker runs once to show it is up (and has imported tfrecordkit); from
    then on it watches `parent` and exits when that process is gone."""
    _watch_parent(parent)
