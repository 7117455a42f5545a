"""Writers: a label frame or a folder of class subfolders into sharded TFRecord files.

The client plans (schema, splits, order, shards); workers each write whole shards from
plain data (a frame slice and paths) with `shard.write_shard`, which never imports
TensorFlow, run in parallel by pool.py.
A shard goes to a temporary name and is renamed when complete; dataset.json comes last.
"""
from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import json
import logging
import os
import posixpath
import re
import secrets
import socket
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from . import __version__, storage
from .errors import DatasetError, OptionError, SourceError, TfrecordkitError, translated
from .images import ImageOptions
from .manifest import (DONE_SUFFIX, ERRORS_NAME, LOCK_NAME, MANIFEST_NAME, RUN_NAME, Manifest,
                       ShardInfo, find_manifest, load_manifest, write_manifest)
from .options import MIN_ROWS_PER_SHARD, WriteOptions, option_names
from .plan import assign_splits, order_rows, plan_split, split_counts
from .schema import CLASS, Schema, build_schema, check_columns, is_missing, prepare_labels
from .pool import parallel_backend, run_shards, start_workers
from .shard import ShardResult, ShardRows, ShardTask, _done_path
from .source import FOLDER_ID, FOLDER_LABEL, list_folder, read_table, resolve_image

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

try:   # POSIX; elsewhere the lock falls back to exclusive creation of the lock file
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

DEFAULT_SPLIT = "train"
# RUN_NAME holds this run's id and seed. A resumed run reuses the seed; a worker that outlives
# its run (a thread after a failure) sees another id, or none, and moves nothing into place.
_SHARD_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*-\d{5}-of-\d{5}\.tfrecord(\.gz)?(\.idx)?$")
_RECORD_OVERHEAD = 128        # bytes of Example framing and small features per record
_JPEG_BYTES_PER_PIXEL = 0.4   # estimates for planning shard sizes before anything is encoded
_PNG_BYTES_PER_PIXEL = 1.5
_REMOTE_SIZE_SAMPLE = 512     # images whose sizes are asked for when they are on an object store
_ROOT_SAMPLE = 50             # rows whose images are looked for before anything is written
# Options that change what is written; a resumed run must match them to keep shards.
_OUTPUT_OPTIONS = ("images", "id_column", "image_column", "ext", "label", "multi_label",
                   "multi_label_sep", "one_hot", "num_classes", "columns", "image_size",
                   "resize_mode", "image_format", "jpeg_quality", "shard_size", "num_shards",
                   "compression", "split", "seed", "shuffle", "on_error", "validate",
                   "max_image_pixels",
                   "max_size", "crop_box", "bbox_columns")


def _estimate_sizes(frame: pd.DataFrame, opts: WriteOptions, image_column: str) -> np.ndarray:
    """Estimated bytes per row, for planning shards by size before anything is encoded."""
    n = len(frame)
    if opts.image_size is not None and opts.image_format != "keep":
        pixels = opts.image_size[0] * opts.image_size[1]
        per_pixel = {"raw": 3, "jpeg": _JPEG_BYTES_PER_PIXEL, "png": _PNG_BYTES_PER_PIXEL}
        return np.full(n, pixels * per_pixel[opts.image_format] + _RECORD_OVERHEAD)
    values = frame[image_column].tolist()
    rows = range(n)
    if storage.is_remote(opts.images) and n > _REMOTE_SIZE_SAMPLE:
        # One request per object is too slow on an object store: a seeded sample stands in.
        rows = np.sort(np.random.default_rng(0).choice(n, _REMOTE_SIZE_SAMPLE, replace=False))
    sizes = np.zeros(n, dtype=np.float64)
    if storage.is_remote(opts.images):
        size_of = lambda value: storage.getsize(resolve_image(opts.images, value, opts.ext)[0])  # noqa: E731
    else:
        size_of = functools.partial(_local_size, opts.images, opts.ext)
    for i in rows:
        with contextlib.suppress(OSError, ValueError):   # else 0: the worker reports the row
            sizes[i] = size_of(values[i])
    if len(rows) < n:
        sizes[:] = sizes[rows].mean()
    if opts.image_size is not None:   # keep format with a resize: shrinks by the pixel ratio
        sizes = np.minimum(sizes, opts.image_size[0] * opts.image_size[1] * 3)
    if opts.max_size is not None:     # at most a square of max_size a side
        per_pixel = {"raw": 3, "jpeg": _JPEG_BYTES_PER_PIXEL}.get(opts.image_format, _PNG_BYTES_PER_PIXEL)
        sizes = np.minimum(sizes, opts.max_size ** 2 * per_pixel)
    return sizes + _RECORD_OVERHEAD


def _local_size(root: str, ext: str | None, value: Any) -> int:
    """A local image's size in bytes, for the estimate only: the plain path first (a stat,
    about 50 times cheaper than resolving it with its checks, which the client would
    otherwise do for every row before any worker starts), else the full resolution."""
    text = str(value)
    if ext and not text.lower().endswith(ext.lower()):
        text += ext
    try:
        return os.stat(os.path.join(root, text)).st_size
    except (OSError, ValueError):
        return storage.getsize(resolve_image(root, value, ext)[0])


def _check_out_dir(out_dir: str, resume: bool) -> None:
    if not storage.exists(out_dir):
        return
    if not storage.isdir(out_dir):
        raise OptionError(f"`out_dir` {out_dir!r} exists and is not a directory.")
    if resume:
        return
    entries = [e for e in storage.listdir(out_dir) if e != LOCK_NAME]
    if MANIFEST_NAME in entries:
        raise OptionError(f"`out_dir` {out_dir!r} already holds a complete dataset; delete it "
                          "or choose another directory.")
    if entries:
        raise OptionError(f"`out_dir` {out_dir!r} is not empty; choose a new or empty directory, "
                          "or pass resume=True (--resume) to finish an interrupted conversion.")


@contextlib.contextmanager
def _lock(out_dir: str) -> Iterator[None]:
    """Refuses a second conversion into the same directory while one is running.

    An advisory `flock` on LOCK_NAME: the kernel releases it when the holder exits, however
    it exits (kill -9 included), so a stale lock file never blocks a later run. Object
    stores (a URL) offer no lock: there the run file alone tells a run it was overtaken.
    """
    if storage.is_remote(out_dir):
        log.debug("%s: no lock on a remote file system", out_dir)
        yield
        return
    path = os.path.join(out_dir, LOCK_NAME)
    if fcntl is None:  # pragma: no cover
        yield from _exclusive_file(path, out_dir)
        return
    while True:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise TfrecordkitError(
                f"Another conversion ({holder}) is writing to {out_dir!r}; wait for it to "
                "finish, or write to another directory.") from None
        try:   # the previous holder may have removed the file between our open and flock
            current = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"process {os.getpid()} on {socket.gethostname()}".encode())
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)   # while still locked, so nobody locks the unlinked file
        os.close(fd)


def _exclusive_file(path: str, out_dir: str) -> Iterator[None]:  # pragma: no cover
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        raise TfrecordkitError(
            f"Another conversion is writing to {out_dir!r} ({path} exists); wait for it to "
            f"finish, or delete {path} if no conversion is running.") from None
    os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def _fingerprint(frame: pd.DataFrame, schema: Schema, opts: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps({k: opts[k] for k in _OUTPUT_OPTIONS}, sort_keys=True,
                             default=str).encode())
    digest.update(json.dumps(schema.to_json(), sort_keys=True, default=str).encode())
    import pandas as pd

    digest.update(pd.util.hash_pandas_object(frame.astype(str), index=True).to_numpy().tobytes())
    return digest.hexdigest()


def _image_facts(results: list[ShardResult], opts: WriteOptions) -> dict[str, Any]:
    shapes = {tuple(s) for r in results for s in r.shapes}
    formats = {f for r in results for f in r.formats}
    sizes = {s[:2] for s in shapes}
    channels = {s[2] for s in shapes}
    return {"format": formats.pop() if len(formats) == 1 else ("mixed" if formats else None),
            "size": list(sizes.pop()) if len(sizes) == 1 else None,
            "channels": channels.pop() if len(channels) == 1 else None,
            "kept_bytes": sum(r.kept for r in results),
            **_region_facts(results, opts)}


def _region_facts(results: list[ShardResult], opts: WriteOptions) -> dict[str, Any]:
    """How the stored images were cut and capped, for dataset.json and `inspect`."""
    facts: dict[str, Any] = {}
    if opts.max_size is not None:   # the cap, and the longest side actually stored
        facts["max_size"] = opts.max_size
        facts["max_side"] = max((r.max_side for r in results), default=0)
    if opts.crop_box is not None:
        facts["crop"] = {"box": list(opts.crop_box)}
    elif opts.bbox_columns is not None:
        facts["crop"] = {"bbox_columns": list(opts.bbox_columns)}
    return facts


def _write_errors(path: str, skipped: list[tuple]) -> None:
    with storage.open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["row", "id", "source", "reason"])
        out.writerows(sorted(skipped, key=lambda s: s[0]))


def _cleanup_temporaries(directories: list[str]) -> None:
    for directory in directories:
        with contextlib.suppress(FileNotFoundError):
            for name in storage.listdir(directory):
                if ".tmp-" in name and (name.startswith(".") or name.startswith(MANIFEST_NAME)):
                    with contextlib.suppress(OSError):
                        storage.remove(storage.join(directory, name))


def _remove_leftovers(directories: list[str], tasks: list[ShardTask]) -> None:
    """Before a resumed run: temporaries, shards of another plan and per-split dataset.json
    files of an interrupted run (it never finished, so they are stale)."""
    _cleanup_temporaries(directories)
    planned = {t.spec.file for t in tasks}
    for directory in directories:
        with contextlib.suppress(FileNotFoundError):
            for name in storage.listdir(directory):
                shard = name[1:-len(DONE_SUFFIX)] if name.endswith(DONE_SUFFIX) else \
                    name[:-len(".idx")] if name.endswith(".idx") else name
                stale = ((_SHARD_NAME.match(name) or name.endswith(DONE_SUFFIX))
                         and shard not in planned)
                if stale or (name == MANIFEST_NAME and len(directories) > 1):
                    with contextlib.suppress(OSError):
                        storage.remove(storage.join(directory, name))


def _abandon(out_dir: str, directories: list[str], tasks: list[ShardTask]) -> None:
    """After a bad row under on_error='raise': removes what this run wrote, so the directory
    is as it was and the corrected conversion can run into it straight away."""
    with contextlib.suppress(FileNotFoundError):
        storage.remove(storage.join(out_dir, RUN_NAME))   # first: stops workers still running
    for task in tasks:
        final = storage.join(task.directory, task.spec.file)
        for path in (final, final + ".idx", _done_path(task.directory, task.spec.file)):
            with contextlib.suppress(FileNotFoundError):
                storage.remove(path)
    _cleanup_temporaries(directories)
    for directory in directories:
        if directory != out_dir:
            with contextlib.suppress(OSError):
                storage.rmdir(directory)   # only when empty


def _previous_seed(run_file: str) -> int | None:
    try:
        with storage.open(run_file, "r", encoding="utf-8") as f:
            seed = json.loads(f.read()).get("seed")
    except (OSError, ValueError, AttributeError):
        return None
    return seed if isinstance(seed, int) and seed >= 0 else None


def _duplicates(frame: pd.DataFrame, schema: Schema, opts: WriteOptions) -> list[tuple]:
    """(row, id, source, reason) for each row whose id an earlier row already has.

    Ids must be unique: predictions are joined back to the table by id, and two copies of
    one image could land in different splits. The first row with an id is kept; each later
    one is a bad row (raised, or skipped into errors.csv).
    """
    ids = frame[schema.id_column]
    present = ids[~ids.map(is_missing).astype(bool)]
    if schema.id_column == schema.image_column:   # ./a.jpg and a.jpg are one image
        present = present.map(lambda v: _path_key(v, opts.ext))
    repeated = present.duplicated(keep="first")
    if not repeated.any():
        return []
    values = set(present[repeated])
    first = {v: row for row, v in present[~repeated & present.isin(values)].items()}
    # A table of boxes has a row per box, several per image: each box is its own record
    # once a column numbering the rows is the id.
    boxes = (" (a row per box: name a column unique to each row with --id-column, the "
             "images with --image-column)") if (opts.bbox_columns and schema.id_column ==
                                                schema.image_column) else ""
    out = []
    for row, value in present[repeated].items():
        try:
            source = resolve_image(opts.images, frame.at[row, schema.image_column], opts.ext)[0]
        except ValueError:
            source = ""
        out.append((int(row), ids[row], source,
                    f"the same id as row {first[value]}; ids must be unique so that each "
                    f"prediction maps back to one row{boxes}"))
    return out


def _path_key(value: object, ext: str | None) -> str:
    """An image path as the file it names: ``./a``, ``a.jpg`` and ``a//b`` as ``a.jpg``, ``a/b``."""
    text = str(value).replace("\\", "/")
    if ext and not text.lower().endswith(ext.lower()):
        text += ext
    return posixpath.normpath(text) if text.strip() else text


def _check_image_root(frame: pd.DataFrame, image_column: str, opts: WriteOptions) -> None:
    """Stops before anything is written when none of the first rows' images is under
    `images`: a wrong --images or --ext, not a few bad rows (so whatever on_error)."""
    tried, reason = None, None
    values = frame[image_column].head(_ROOT_SAMPLE).tolist()
    for value in values:
        try:
            path = resolve_image(opts.images, value, opts.ext)[0]
        except ValueError as e:
            reason = reason or str(e)
            continue
        if storage.isfile(path):
            return
        tried = tried or path
    example = f"tried {tried!r}" if tried else f"the first says: {reason}"
    raise OptionError(
        f"None of the first {len(values)} rows' images is in `images` (--images) "
        f"{opts.images!r} ({example}, with `ext` (--ext) {opts.ext!r}); point --images at the "
        f"directory the paths in column {image_column!r} are relative to, and set --ext to "
        "the extension the files have that the table leaves out.")


@translated(output_argument="out_dir")
def write_frame(frame: pd.DataFrame, out_dir: str | os.PathLike, *,
                images: str | os.PathLike | None = None, **options: Any) -> Manifest:
    """Writes a label frame and its images into sharded TFRecord files.

    Args:
        frame: one row per image; the id column names the image (relative to `images`).
        out_dir: a new or empty directory; dataset.json is written there last.
        images: the image root directory.
        **options: the fields of `WriteOptions`, e.g. ``label="label"``,
            ``multi_label="tags"``, ``image_size=128``, ``split="train=0.9,val=0.1"``.

    Returns:
        The `Manifest` of the written dataset (top level when split).

    Example:
        >>> frame = pd.read_csv("labels.csv")   # image_name,tags
        >>> m = tfk.write_frame(frame, "out", images="train-jpg", ext=".jpg",
        ...                     multi_label="tags", split="train=0.9,val=0.1")
        >>> m.splits
        {'train': 36431, 'val': 4048}
    """
    return _write_frame(frame, out_dir, images, options)


def _write_frame(frame: pd.DataFrame, out_dir: str | os.PathLike,
                 images: str | os.PathLike | None, options: dict[str, Any],
                 text_labels: tuple[str, ...] = ()) -> Manifest:
    """`write_frame`; `text_labels` are class columns taken as text whatever they hold
    (a folder source's class names: "01" stays "01")."""
    unknown = sorted(set(options) - set(option_names()))
    if unknown:
        raise OptionError(f"Unknown option `{unknown[0]}`; the options are: "
                          f"{', '.join(n for n in option_names() if n != 'images')}.")
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise OptionError(f"`frame` must be a pandas DataFrame; received {type(frame).__name__}.")
    if images is None:
        raise OptionError("`images` must name the directory the image paths are relative to; "
                          "received images=None.")
    opts = WriteOptions(images=images, **options)
    if len(frame) > MIN_ROWS_PER_SHARD:   # several shards: workers will be wanted
        start_workers(opts.jobs, opts.backend)
    if not storage.isdir(opts.images):
        raise OptionError(f"`images` {opts.images!r} is not a directory.")
    if len(frame) == 0:
        raise OptionError("`frame` has no rows; there is nothing to convert.")
    if len(frame.columns) == 0:
        raise OptionError("`frame` has no columns.")
    absent = [c for c in opts.bbox_columns or () if c not in frame.columns]
    if absent:
        raise OptionError(f"`bbox_columns` names {absent[0]!r}, which is not a column of the "
                          f"table; its columns are: {', '.join(map(str, frame.columns))}.")
    id_column = opts.id_column or str(frame.columns[0])
    image_column = opts.image_column or id_column
    opts = replace(opts, id_column=id_column, image_column=image_column)
    frame = frame.reset_index(drop=True)
    check_columns(frame, [id_column], "id_column")
    check_columns(frame, [image_column], "image_column")
    frame, bad, text_labels = prepare_labels(
        frame, label=opts.label, multi_label=opts.multi_label,
        multi_label_sep=opts.multi_label_sep, one_hot=opts.one_hot,
        num_classes=opts.num_classes, text_labels=text_labels)
    _check_image_root(frame, image_column, opts)
    bad = [(int(row), frame.at[row, id_column] if id_column in frame.columns else None, "",
            reason) for row, reason in bad]
    if bad and opts.on_error == "raise":
        row, value, _, reason = bad[0]
        raise SourceError(row, value, None, reason)
    good = frame.drop(index=[b[0] for b in bad]) if bad else frame
    if bad:
        log.warning("%d rows have labels that cannot be read (e.g. row %d: %s); skipped them "
                    "and listed them in %s", len(bad), bad[0][0], bad[0][3], ERRORS_NAME)
    if len(good) == 0:
        raise OptionError(f"Every one of the {len(frame)} rows has a label that cannot be "
                          f"read (e.g. row {bad[0][0]}: {bad[0][3]}); there is nothing to convert.")
    schema = build_schema(good, id_column=id_column, image_column=image_column,
                          label=opts.label, multi_label=opts.multi_label,
                          multi_label_sep=opts.multi_label_sep, columns=opts.columns,
                          one_hot=opts.one_hot, num_classes=opts.num_classes,
                          text_labels=text_labels)
    if opts.split:
        split_counts(len(good) - len(_duplicates(good, schema, opts)), opts.split)
    return _write(frame, storage.absolute(out_dir), schema, opts, bad)


def _write(frame: pd.DataFrame, out_dir: str, schema: Schema, opts: WriteOptions,
           bad: list[tuple] = ()) -> Manifest:
    """Takes the directory's lock, writes, and on a bad row leaves the directory as it was."""
    created = not storage.exists(out_dir)
    if not created and not storage.isdir(out_dir):
        raise OptionError(f"`out_dir` {out_dir!r} exists and is not a directory.")
    # The backend first: a scheduler that cannot be reached fails before anything is written.
    with parallel_backend(opts):
        try:
            storage.makedirs(out_dir)
        except OSError as e:
            raise OptionError(f"`out_dir` {out_dir!r} cannot be created ({e.strerror or e}); "
                              "choose a path whose parent folders are directories you may "
                              "write to.") from e
        try:
            with _lock(out_dir):
                return _write_locked(frame, out_dir, schema, opts, bad)
        except SourceError:
            if created:
                with contextlib.suppress(OSError):
                    storage.rmdir(out_dir)   # only when empty
            raise


def _write_locked(frame: pd.DataFrame, out_dir: str, schema: Schema,
                  opts: WriteOptions, bad: list[tuple] = ()) -> Manifest:
    _check_out_dir(out_dir, opts.resume)
    run_file = storage.join(out_dir, RUN_NAME)
    seed = opts.seed
    if seed is None and opts.resume:
        seed = _previous_seed(run_file)
    done = find_manifest(out_dir)
    damaged: dict[str, ShardInfo] = {}
    if opts.resume and done:
        manifest = load_manifest(out_dir)
        wanted = {**opts.to_json(), "seed": manifest.options.get("seed") if seed is None else seed}
        if not all(manifest.options.get(k) == v for k, v in wanted.items() if k in _OUTPUT_OPTIONS):
            raise OptionError(f"`out_dir` {out_dir!r} already holds a complete dataset written "
                              "with other options; delete it or choose another directory.")
        # Complete is not the same as intact: a shard may have been damaged since.
        damaged = _damaged_shards(manifest)
        if not damaged:
            log.info("%s is already complete and every shard matches its checksum; nothing "
                     "to resume", out_dir)
            _finish(out_dir, [manifest.directory] + [storage.join(out_dir, n) for n in manifest.splits])
            return manifest
        log.warning("%s: %d shard(s) fail their checksum (%s); writing them again",
                    out_dir, len(damaged), ", ".join(sorted(damaged))[:300])
        seed = wanted["seed"]
    opts = replace(opts, seed=secrets.randbelow(2**31) if seed is None else seed)
    run_id = secrets.token_hex(8)
    storage.write_text(run_file, json.dumps({"run": run_id, "seed": opts.seed, "pid": os.getpid()}))

    source_rows = len(frame)
    if bad:   # rows whose labels could not be read (on_error="skip"): listed in errors.csv
        frame = frame.drop(index=[b[0] for b in bad])
    skipped = _duplicates(frame, schema, opts)
    if skipped:
        row, value, source, reason = skipped[0]
        if opts.on_error == "raise":
            storage.remove(run_file)
            raise SourceError(row, value, source or None, reason)
        log.warning("%d rows repeat the id of an earlier row (e.g. %s); skipped them and listed "
                    "them in %s", len(skipped), ", ".join(repr(s[1]) for s in skipped[:3]),
                    ERRORS_NAME)
        frame = frame.drop(index=[s[0] for s in skipped])
    duplicates = len(skipped)
    skipped = list(bad) + skipped

    splits = opts.split or {DEFAULT_SPLIT: 1.0}
    split_names = list(splits)
    strata = None
    first_class = next((f.name for f in schema.label_features if f.kind == CLASS), None)
    if opts.split and first_class:
        strata = frame[first_class].astype(str).to_numpy()
    assignment = assign_splits(len(frame), list(splits.values()), strata, opts.seed)
    sizes = _estimate_sizes(frame, opts, schema.image_column)
    options_json = opts.to_json()
    fingerprint = _fingerprint(frame, schema, options_json)
    image_options = ImageOptions(opts.image_size, opts.resize_mode, opts.image_format,
                                 opts.jpeg_quality, opts.validate, opts.max_image_pixels,
                                 max_size=opts.max_size, crop_box=opts.crop_box)
    # The box columns travel to the workers even when --columns leaves them out of the records.
    needed = [schema.image_column] + [f.name for f in schema.features] + list(opts.bbox_columns or ())
    columns = list(dict.fromkeys(needed))

    # Absolute: a dask worker's working directory is not the client's.
    image_root = storage.absolute(opts.images)
    tasks, directories = [], {}
    for k, name in enumerate(split_names):
        directory = storage.join(out_dir, name) if opts.split else out_dir
        directories[name] = directory
        # Positions in `frame`; its index keeps the source row numbers for error reports.
        rows = order_rows(np.flatnonzero(assignment == k), opts.shuffle, opts.seed + k)
        for spec in plan_split(name, rows, sizes[rows], shard_size=opts.shard_size,
                               num_shards=opts.num_shards, compression=opts.compression):
            tasks.append(ShardTask(directory, spec, None, schema, image_root, opts.ext, image_options, opts.compression,
                                   opts.on_error, opts.multi_label_sep, fingerprint,
                                   run_file, run_id, os.getpid(),
                                   bbox_columns=opts.bbox_columns))
    for directory in directories.values():
        storage.makedirs(directory)
    all_dirs = list(dict.fromkeys([out_dir, *directories.values()]))
    cut = lambda t: replace(t, rows=ShardRows.cut(frame, t.spec.rows, columns))  # noqa: E731
    if damaged:
        _repair(out_dir, all_dirs, tasks, damaged, opts, cut)
        return manifest
    if opts.resume:
        _remove_leftovers(all_dirs, tasks)
    log.info("converting %d rows into %d shards (%s)", len(frame), len(tasks),
             ", ".join(f"{n}: {int(np.sum(assignment == k))} rows" for k, n in enumerate(split_names)))

    try:
        # Each task gets its slice of the frame only when it is dispatched, so the client
        # holds a few slices at a time rather than a second copy of the whole frame.
        results = run_shards(tasks, opts, len(frame), cut)
    except SourceError:
        _abandon(out_dir, all_dirs, tasks)
        raise
    except BaseException:
        # Interrupted or failed for another reason: complete shards stay for --resume.
        _cleanup_temporaries(all_dirs)
        raise
    by_file = {(r.split, r.file): r for r in results}
    skipped += [s for r in results for s in r.skipped]
    error_path = storage.join(out_dir, ERRORS_NAME)
    if skipped:
        _write_errors(error_path, skipped)
    elif storage.exists(error_path):
        storage.remove(error_path)
    for directory in all_dirs:
        storage.sync_directory(directory)   # the renames durable before dataset.json
    manifests = {}
    for k, name in enumerate(split_names):
        ordered = [by_file[(t.spec.split, t.spec.file)] for t in tasks if t.spec.split == name]
        manifests[name] = Manifest(
            directory=directories[name], schema=schema,
            shards=tuple(r.info() for r in ordered),
            records=sum(r.records for r in ordered),
            source_rows=int(np.sum(assignment == k)),
            skipped=sum(len(r.skipped) for r in ordered),
            compression=opts.compression, split=name, image=_image_facts(ordered, opts),
            options=options_json, version=__version__)
    if opts.split:
        for manifest in manifests.values():
            write_manifest(manifest)
        top = Manifest(
            directory=out_dir, schema=schema,
            shards=tuple(replace(s, file=f"{m.split}/{s.file}")
                         for m in manifests.values() for s in m.shards),
            records=sum(m.records for m in manifests.values()), source_rows=source_rows,
            skipped=len(skipped), compression=opts.compression, split=None,
            splits={n: m.records for n, m in manifests.items()},
            image=_image_facts(results, opts), options=options_json, version=__version__,
            duplicates=duplicates)
    else:
        top = replace(manifests[DEFAULT_SPLIT], split=None, source_rows=source_rows,
                      skipped=len(skipped), duplicates=duplicates)
    write_manifest(top)
    _finish(out_dir, all_dirs)
    if skipped:
        log.warning("skipped %d of %d rows (see %s)", len(skipped), source_rows, error_path)
    return top


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with storage.open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _damaged_shards(manifest: Manifest) -> dict[str, ShardInfo]:
    """Shards of a complete dataset that are missing or fail the checksum in dataset.json."""
    damaged = {}
    for path, info in zip(manifest.files, manifest.shards):
        try:
            ok = storage.getsize(path) == info.bytes and _sha256(path) == info.sha256
        except OSError:
            ok = False
        if not ok:
            damaged[os.path.normpath(path) if not storage.is_remote(path) else path] = info
    return damaged


def _repair(out_dir: str, directories: list[str], tasks: list[ShardTask],
            damaged: dict[str, ShardInfo], opts: WriteOptions,
            with_rows: Callable[[ShardTask], ShardTask]) -> None:
    """Writes the damaged shards of a complete dataset again, from the same plan, beside it
    (a hidden scratch directory), and moves each into place only when its checksum is the
    one dataset.json lists: the writer is deterministic, so anything else means the source
    changed, and then nothing is replaced."""
    def key(task: ShardTask) -> str:
        path = storage.join(task.directory, task.spec.file)
        return path if storage.is_remote(path) else os.path.normpath(path)

    by_path = {key(t): t for t in tasks}
    unplanned = sorted(set(damaged) - set(by_path))
    if unplanned:
        raise DatasetError(f"{unplanned[0]} fails its checksum and the source no longer plans "
                           "it (the source changed since the dataset was written); convert "
                           "again into a new directory.")
    scratch = storage.join(out_dir, f".repair-{secrets.token_hex(4)}")
    storage.makedirs(scratch)
    try:
        todo = [replace(by_path[path], directory=scratch) for path in sorted(damaged)]
        results = {r.file: r for r in run_shards(todo, replace(opts, resume=False),
                                           sum(len(t.spec.rows) for t in todo), with_rows)}
        for path in sorted(damaged):
            task = by_path[path]
            if results[task.spec.file].sha256 != damaged[path].sha256:
                raise DatasetError(
                    f"{path} fails its checksum, and writing it again from the source gives "
                    "other bytes (the source changed since the dataset was written); convert "
                    "again into a new directory.")
        for path in sorted(damaged):
            name = by_path[path].spec.file
            storage.replace(storage.join(scratch, name + ".idx"), path + ".idx")
            storage.replace(storage.join(scratch, name), path)
            log.info("rewrote %s; it matches its checksum again", path)
    finally:   # success or not, the complete dataset keeps no journal or scratch
        with contextlib.suppress(OSError):
            for name in storage.listdir(scratch):
                storage.remove(storage.join(scratch, name))
            storage.rmdir(scratch)
        with contextlib.suppress(OSError):
            storage.remove(storage.join(out_dir, RUN_NAME))
    for directory in directories:
        storage.sync_directory(directory)
    _finish(out_dir, directories)


def _finish(out_dir: str, directories: list[str]) -> None:
    """Removes the journal of a complete run: .done.json marks and the run file."""
    for directory in directories:
        with contextlib.suppress(FileNotFoundError):
            for name in storage.listdir(directory):
                if name.startswith(".") and name.endswith(DONE_SUFFIX):
                    with contextlib.suppress(OSError):
                        storage.remove(storage.join(directory, name))
    with contextlib.suppress(FileNotFoundError):
        storage.remove(storage.join(out_dir, RUN_NAME))


@translated("root", "out_dir")
def write_folder(root: str | os.PathLike, out_dir: str | os.PathLike, **options: Any) -> Manifest:
    """Writes a folder of class subfolders (folder name = class) into sharded TFRecords.

    Each record's id (column ``id``) is its path relative to `root`, e.g. ``Coat/19.png``;
    its class is the column ``label``. Options are those of `write_frame`.

    Example:
        >>> m = tfk.write_folder("flower_photos", "flowers", image_size=160,
        ...                      image_format="jpeg", split="train=0.8,val=0.2")
        >>> m.vocabularies["label"]
        ['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips']
    """
    for name in ("images", "id_column", "image_column"):
        if options.get(name) is not None:
            raise OptionError(f"`{name}` does not apply to a folder source: ids are paths "
                              f"relative to the folder; received {name}={options[name]!r}.")
        options.pop(name, None)
    frame = list_folder(root)
    options.setdefault("label", FOLDER_LABEL)
    return _write_frame(frame, out_dir, os.fspath(root), {**options, "id_column": FOLDER_ID},
                        text_labels=(FOLDER_LABEL,))


@translated("source", "out_dir")
def convert(source: str | os.PathLike, out_dir: str | os.PathLike, **options: Any) -> Manifest:
    """Converts a CSV/TSV/Parquet label table (with ``images=DIR``) or a class folder.

    Example:
        >>> tfk.convert("labels.csv", "out", images="images", ext=".jpg", label="digit")
    """
    source = os.fspath(source)
    unknown = sorted(set(options) - set(option_names()))
    if not unknown:
        opts = WriteOptions(**options)   # every argument checked before any I/O
        start_workers(opts.jobs, opts.backend)
    if storage.isdir(source):
        return write_folder(source, out_dir, **options)
    table = WriteOptions(sep=options.get("sep"), encoding=options.get("encoding"),
                         multi_label=options.get("multi_label", ()))
    # Ids keep their zeros; a multi-label cell ("1,4") is a list, never a decimal number.
    strings = tuple(options[k] for k in ("id_column", "image_column") if options.get(k)) \
        + table.multi_label
    frame = read_table(source, string_columns=strings, sep=table.sep, encoding=table.encoding)
    if options.get("images") is None:
        raise OptionError(f"`images` (--images DIR) is required with the table {source!r}: "
                          "it names the directory its image paths are relative to.")
    return write_frame(frame, out_dir, **options)
