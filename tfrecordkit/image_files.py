"""Image files to predict, from whatever names them: a folder (recursive, id = the path
relative to it), a CSV or Parquet table of paths (its other columns carried along), a list
of paths, a glob or one file; or, for anything else, the dataset the reader resolves. Then
their stream: read, decoded by the reader's own code (preprocess.py) in parallel, each with
its row number, unreadable files dropped from the stream and explained afterwards.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import storage
from .errors import OptionError
from .images import ImageOptions, image_file_header, load_image
from .manifest import MANIFEST_NAME, Manifest
from .options import ReadOptions
from .preprocess import dct_ratio, image_decoder
from .read import _load
from .source import IMAGE_EXTENSIONS, TABLE_SUFFIXES, read_table, resolve_image

ID_COLUMN = "id"
ROOT_CHECK_ROWS = 50        # table rows checked against the image root before reading


@dataclass
class Files:
    """Image files to predict, one row each: what to read and what the row is called."""

    paths: list[str]                 # "" where the row names no readable path
    ids: list[str]
    problems: dict[int, str] = field(default_factory=dict)   # row -> known reason, before reading
    carried: Any = None              # the table's other columns (a DataFrame), or None
    id_column: str = ID_COLUMN


def is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def folder_images(root: str) -> list[str]:
    """Relative posix paths of the images below `root`, sorted; hidden entries left out."""
    found = []
    for directory, subdirs, files in storage.walk(root):
        subdirs[:] = [d for d in subdirs if not d.startswith(".")]
        inner = os.path.relpath(directory, root) if directory != root else ""
        for name in files:
            if not name.startswith(".") and is_image(name):
                found.append(os.path.join(inner, name).replace(os.sep, "/"))
    return sorted(found)


def table_files(path: str, images: str | None, image_column: str | None) -> Files:
    frame = read_table(path, string_columns=(image_column,) if image_column else ())
    column = image_column or frame.columns[0]
    if column not in frame.columns:
        raise OptionError(f"`image_column` {column!r} is not a column of {path}; its columns "
                          f"are: {', '.join(map(str, frame.columns))}.")
    root = os.fspath(images) if images is not None else (os.path.dirname(path) or ".")
    if not storage.isdir(root):
        raise OptionError(f"`images` {root!r} is not a directory; pass the folder the paths in "
                          f"{path}'s column {column!r} are relative to.")
    paths, problems = [], {}
    for row, value in enumerate(frame[column].tolist()):
        try:
            paths.append(resolve_image(root, value, None)[0])
        except ValueError as e:
            paths.append("")
            problems[row] = str(e)
    sample = [p for p in paths[:ROOT_CHECK_ROWS] if p]
    if sample and not any(storage.exists(p) for p in sample):
        raise OptionError(f"None of the first {len(sample)} images of {path} is in `images` "
                          f"{root!r} (tried {sample[0]!r}); pass the folder its paths are "
                          "relative to with images= (--images).")
    id_column = ID_COLUMN if ID_COLUMN not in frame.columns or column == ID_COLUMN else str(column)
    ids = ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
           for v in frame[column].tolist()]
    return Files(paths, ids, problems, frame.drop(columns=[column]), id_column)


def resolve_source(source: Any, images: str | None, image_column: str | None,
                   split: str | None) -> Manifest | Files:
    """What `source` names: a dataset (its manifest) or image files with their ids."""
    def under_root(p: str) -> str:
        return p if images is None or os.path.isabs(p) else os.path.join(os.fspath(images), p)

    if isinstance(source, (list, tuple)):
        ids = [os.fspath(p) for p in source]
        if not ids:
            raise OptionError("`source` is an empty list; pass at least one image path.")
        return Files([under_root(p) for p in ids], ids)
    if not isinstance(source, (str, os.PathLike)):
        raise OptionError(f"`source` must be a dataset directory, a folder of images, a CSV or "
                          f"Parquet table of image paths, an image file, a glob, or a list of "
                          f"paths; received source={source!r}.")
    path = os.fspath(source)
    if image_column is not None and os.path.splitext(path)[1].lower() not in TABLE_SUFFIXES:
        raise OptionError(f"`image_column` names a column of a table of image paths, but "
                          f"source {path!r} is not a .csv or .parquet file; leave it out.")
    if storage.isdir(path):
        if storage.isfile(storage.join(path, MANIFEST_NAME)):
            return _load(path, split)
        found = folder_images(path)
        if not found:   # split subdirectories, or TFRecord files: the reader's to resolve
            return _load(path, split)
        return Files([os.path.join(path, *rel.split("/")) for rel in found], found)
    if storage.isfile(path):
        if os.path.splitext(path)[1].lower() in TABLE_SUFFIXES:
            return table_files(path, images, image_column)
        if is_image(path):
            return Files([path], [path])
        return _load(path, split)
    if any(c in path for c in "*?["):
        matched = sorted(storage.glob(path))
        if matched and all(is_image(m) for m in matched):
            return Files(matched, matched)
        if not matched:
            raise OptionError(f"`source` glob {path!r} matches no file.")
        return _load(path, split)
    raise OptionError(f"`source` {path!r} does not exist; pass a dataset directory, a folder "
                      "of images, a CSV or Parquet table of image paths, an image file, a glob "
                      "or a list of paths.")


# ----------------------------------------------------------------------------- reading

# The traced file loader per (options, size): tracing the decoder's branches (one per DCT
# scale and format) takes about 0.1 s, paid once per process instead of once per call.
_LOADERS: dict = {}


# EXIF orientation -> how the stored pixels turn upright, as Pillow's exif_transpose (and
# so `convert`) turns them: (transpose first, then reverse these axes).
_UPRIGHT = {1: (False, []), 2: (False, [1]), 3: (False, [0, 1]), 4: (False, [0]),
            5: (True, []), 6: (True, [1]), 7: (True, [0, 1]), 8: (True, [0])}


# The group of files TensorFlow cannot decode (TIFF): Pillow reads them as `convert` does.
PILLOW = "pillow"


def _as_png(path: bytes) -> bytes:
    """A file `convert` stores anew (a TIFF), as `convert` stores it: upright, RGB, PNG."""
    return load_image(path.decode(), ImageOptions(image_format="png")).data


def _file_loader(opts: ReadOptions, size: tuple[int, int],
                 group: tuple[int, int] | str | None = None):
    """(row, path) -> (row, image), the reader's decoding of one file; with `group` =
    (DCT ratio, EXIF orientation), of a JPEG at that ratio (no branch per image), turned
    upright as `convert` stores it (a quarter turn decodes at the transposed size); with
    `PILLOW`, of the PNG `convert` would have stored."""
    import tensorflow as tf

    key = (opts, tuple(size), group)
    if key not in _LOADERS:
        if group == PILLOW:   # the PNG `convert` would store, decoded as `read` decodes it
            read = lambda path: tf.reshape(  # noqa: E731
                tf.numpy_function(_as_png, [path], tf.string, stateful=False), [])
            ratio, orientation = None, 1
        else:
            read = tf.io.read_file
            ratio, orientation = group or (None, 1)
        transpose, axes = _UPRIGHT[orientation]
        decode = image_decoder(opts, size[::-1] if transpose else size, jpeg_ratio=ratio)

        def upright(image):
            image = tf.transpose(image, [1, 0, 2]) if transpose else image
            return tf.reverse(image, axes) if axes else image

        @tf.function(input_signature=[tf.TensorSpec([], tf.int64), tf.TensorSpec([], tf.string)],
                     autograph=False)   # explicit tf.conds only: nothing to convert
        def load(row, path):
            return row, upright(decode(read(path)))

        _LOADERS[key] = load
    return _LOADERS[key]


def file_dataset(files: Files, opts: ReadOptions, size: tuple[int, int]):
    """Batches of (row numbers, images) over the files, decoded in parallel; a file that
    cannot be read or decoded is dropped from the stream (its row number with it) instead
    of ending it, and reported afterwards."""
    import tensorflow as tf

    for i, path in enumerate(files.paths):
        if path and i not in files.problems:
            try:   # a FIFO or device would block tf.io.read_file forever: a stat refuses it
                storage.require_regular_file(path, "image file")
            except OSError as e:
                files.problems[i] = f"cannot be read: {e.strerror}"
    rows = [i for i, p in enumerate(files.paths) if p and i not in files.problems]
    groups = _decode_groups(files.paths, rows, opts, size)

    def decoded(group, members):
        # Each image carries its row, which places its predictions: the parallel decoders
        # may hand images over in any order, a slow one holding up none behind it.
        ds = tf.data.Dataset.from_tensor_slices(
            (tf.constant(members, tf.int64), tf.constant([files.paths[i] for i in members], tf.string)))
        return ds.map(_file_loader(opts, size, group), num_parallel_calls=tf.data.AUTOTUNE,
                      deterministic=False).ignore_errors()

    if len(groups) <= 1:
        ds = decoded(*next(iter(groups.items()), (None, [])))
    else:   # the groups' decoders run side by side, taken from in the files' order
        choice = np.empty(len(rows), np.int64)
        position = {row: i for i, row in enumerate(rows)}
        for g, members in enumerate(groups.values()):
            choice[[position[row] for row in members]] = g
        # A group that dropped an unreadable file runs out before its last choice: the
        # choices left for it are passed over rather than ending the stream.
        ds = tf.data.Dataset.choose_from_datasets(
            [decoded(g, m) for g, m in groups.items()], tf.data.Dataset.from_tensor_slices(choice),
            stop_on_empty_dataset=False)
    ds = ds.batch(opts.batch_size)
    return ds.prefetch(tf.data.AUTOTUNE), math.ceil(len(rows) / opts.batch_size)


def _decode_groups(paths: list[str], rows: list[int], opts: ReadOptions,
                   size: tuple[int, int]) -> dict[tuple[int, int] | None, list[int]]:
    """The rows by (DCT ratio, EXIF orientation) of their JPEG (read from each file's
    header), TIFFs under `PILLOW`, and under None the rest (other formats, unreadable
    headers, random crops, remote files), which the reader's decoder takes with its
    per-image branches. Those branches (is it a JPEG, which ratio) cost about 0.05 ms each
    per image in a parallel map; a decoder per ratio has none, and the header costs about 8 us a local file (a
    remote one would cost a request). The orientation turns a phone's photo upright, as
    `convert` stores it, so a model sees the pictures it was trained on the same way up.
    `file_dataset` has refused FIFOs and devices before any header is opened."""
    groups: dict[tuple[int, int] | None, list[int]] = {}
    for row in rows:
        kind, header = None, None
        if opts.crop != "random" and not storage.is_remote(paths[row]):
            try:
                kind, header = image_file_header(paths[row])
            except OSError:   # the decoder's own read reports it
                pass
        group = PILLOW if kind == "tiff" else None
        if header:
            height, width, orientation = header
            if _UPRIGHT[orientation][0]:   # a quarter turn: the upright picture is w x h
                height, width = width, height
            group = (dct_ratio(opts, height, width, size), orientation)
        groups.setdefault(group, []).append(row)
    return groups


def tf_reason(error: Exception) -> str:
    """The one line of a TensorFlow error that says what went wrong, without the graph
    execution preamble, the call stack and the node names."""
    lines = str(getattr(error, "message", error)).splitlines()
    for line in lines:
        line = line.strip()
        if not line or line.startswith(("Graph execution error", "Detected at node", "File ")):
            continue
        line = re.sub(r"\{\{function_node [^}]*\}\}\s*|\s*\[\[\{\{node .*$|\s*\[Op:.*$", "", line)
        if line:
            return line
    return str(error).strip()


def why_unreadable(path: str, opts: ReadOptions, size: tuple[int, int]) -> str:
    """The reason a file dropped out of the stream: the read or decode error, found again
    for this one file only."""
    import tensorflow as tf

    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return f"cannot be read: {e.strerror or e}"
    try:
        image_decoder(opts, size)(tf.constant(data))
    except (tf.errors.OpError, ValueError) as e:
        return f"cannot be decoded as an image: {tf_reason(e)}"
    return "cannot be read or decoded as an image"
