"""Sources: a label table (CSV/Parquet) with an image folder, or a folder of class subfolders.

Turns either into one pandas frame plus the image root, and resolves each row's image
path safely inside that root.
"""
from __future__ import annotations

import csv
import functools
import io
import logging
import os
import posixpath
import re
import unicodedata
from pathlib import PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING

from . import storage
from .errors import OptionError

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")
_GUESSES = IMAGE_EXTENSIONS + tuple(e.upper() for e in IMAGE_EXTENSIONS)
FOLDER_ID = "id"
FOLDER_LABEL = "label"
TABLE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".txt": "csv", ".parquet": "parquet",
                  ".pq": "parquet"}


# Separators a .csv is sniffed for, in the order ties are broken.
SNIFFED_SEPARATORS = (",", ";", "\t", "|")
_SNIFF_LINES = 20
_SNIFF_CHARS = 1 << 16
# Tried in turn when no --encoding is given: UTF-8 (with or without a BOM), then the
# Windows code page Excel writes in Western Europe, then Latin-1 (which decodes any byte).
_FALLBACK_ENCODINGS = ("cp1252", "latin-1")
_PANDAS_WHERE = re.compile(r"\b(line|row) (\d+)")


def read_table(path: str | os.PathLike, *, string_columns: tuple[str, ...] = (),
               sep: str | None = None, encoding: str | None = None) -> pd.DataFrame:
    """Reads a CSV, TSV or Parquet label table; `string_columns` (and the first column)
    are read as text so ids like ``00123`` keep their zeros.

    A .csv's separator is sniffed among ``, ; TAB |`` unless `sep` is given. Without an
    `encoding`, the file is read as UTF-8, else as cp1252, else as Latin-1, with a log line.

    Raises:
        OptionError: one sentence naming the file (and the line, where pandas says it)
            when the table is empty, not valid text in its encoding, or does not parse.

    Example:
        >>> read_table("labels.csv").columns.tolist()
        ['image_name', 'tags']
    """
    import pandas as pd

    path = os.fspath(path)
    kind = TABLE_SUFFIXES.get(os.path.splitext(path)[1].lower())
    if kind is None:
        raise OptionError(f"`source` {path!r} is not a table tfrecordkit reads; pass a "
                          ".csv, .tsv or .parquet file, or a folder of class subfolders.")
    if not storage.isfile(path):
        raise OptionError(f"`source` {path!r} does not exist or is not a file.")
    # A label table fits in memory; read whole, its text is decoded and sniffed once.
    with (storage.open(path, "rb") if storage.is_remote(path) else open(path, "rb")) as f:
        data = f.read()
    if kind == "parquet":
        if sep is not None or encoding is not None:
            raise OptionError(f"`sep` and `encoding` apply to CSV tables; {path!r} is Parquet, "
                              "which records its own types; leave them out.")
        try:
            return pd.read_parquet(io.BytesIO(data))
        except ImportError as e:
            raise OptionError(f"Reading {path!r} needs pyarrow; install it with "
                              f"`pip install tfrecordkit[parquet]` ({e}).") from None
        except Exception as e:   # pyarrow's ArrowInvalid and kin: not a Parquet file
            raise OptionError(f"`source` {path!r} is not a Parquet file pandas can read "
                              f"({_first_line(e)}); check the file, or give a CSV a .csv "
                              "name.") from e
    text = _decode(path, data, encoding)
    if not text.strip():
        raise OptionError(f"`source` {path!r} is empty; a label table needs a header row "
                          "and one row per image.")
    if sep is None:
        sep = "\t" if kind == "tsv" else sniff_separator(text)
        if sep != ",":
            log.info("%s: columns separated by %r (sniffed; pass --sep to choose)", path, sep)
    try:
        header = pd.read_csv(io.StringIO(text), sep=sep, nrows=0).columns.tolist()
        if not header:
            raise OptionError(f"`source` {path!r} has no header row.")
        strings = {c: str for c in (header[0], *string_columns) if c in header}
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=strings, keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as e:
        if isinstance(e, OptionError):
            raise
        where = _PANDAS_WHERE.search(str(e))
        at = f" at {where.group(1)} {where.group(2)}" if where else ""
        raise OptionError(f"`source` {path!r} does not parse as a table separated by {sep!r}"
                          f"{at} ({_first_line(e)}); check for ragged rows or an unbalanced "
                          "quote there, or pass --sep.") from e
    return _decimal_commas(path, frame, set(strings)) if sep != "," else frame


_DECIMAL_COMMA = r"[+-]?(?:\d+(?:,\d*)?|,\d+)"


def _decimal_commas(path: str, frame: pd.DataFrame, text: set) -> pd.DataFrame:
    """The text columns (other than `text`) of a table not separated by commas whose every
    value is a number written with a decimal comma, as a spreadsheet in a European locale
    saves them (``0,75``), turned into numbers; left as text, a float target would
    become a class label."""
    import pandas as pd

    converted = []
    for name in frame.columns:
        column = frame[name]
        if name in text or pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            continue
        values = column.dropna()
        if values.empty or not all(isinstance(v, str) for v in values):
            continue
        values = values.str.strip()
        if values.str.fullmatch(_DECIMAL_COMMA).all() and values.str.contains(",").any():
            frame[name] = pd.to_numeric(column.str.strip().str.replace(",", ".", regex=False))
            converted.append(str(name))
    if converted:
        log.info("%s: columns %s read as numbers with a decimal comma (every value is one)",
                 path, ", ".join(converted))
    return frame


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0].rstrip(".")


def _decode(path: str, data: bytes, encoding: str | None) -> str:
    if encoding is not None:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as e:
            raise OptionError(f"`source` {path!r} is not valid {encoding} text (byte "
                              f"{data[e.start]:#04x} at offset {e.start}); pass its encoding "
                              "with --encoding (encoding=), e.g. cp1252 or latin-1.") from e
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        first = e
    for fallback in _FALLBACK_ENCODINGS:
        try:
            text = data.decode(fallback)
        except UnicodeDecodeError:
            continue
        log.info("%s is not UTF-8 (byte %#04x at offset %d); read it as %s: pass --encoding "
                 "to choose another", path, data[first.start], first.start, fallback)
        return text
    raise AssertionError("latin-1 decodes any byte")  # pragma: no cover


def sniff_separator(text: str) -> str:
    """The separator among ``, ; TAB |`` that cuts the first lines into the most columns,
    the same number on every line; ',' when none does.

    Example:
        >>> sniff_separator("image_id;digit\na;1\n")
        ';'
    """
    head = text[:_SNIFF_CHARS]
    lines = head.splitlines()
    if len(head) < len(text) and len(lines) > 1:
        lines = lines[:-1]   # cut short
    lines = lines[:_SNIFF_LINES]
    best, best_score = ",", (False, 1)
    for candidate in SNIFFED_SEPARATORS:
        try:
            counts = [len(r) for r in csv.reader(lines, delimiter=candidate) if r]
        except csv.Error:
            continue
        if not counts:
            continue
        score = (all(c == counts[0] for c in counts), counts[0])
        if counts[0] > 1 and score > best_score:
            best, best_score = candidate, score
    return best


def _inside(root: str, name: str) -> bool:
    """Whether the class folder `name` stays inside `root` (a symbolic link may lead out:
    its images would be refused one by one, so it must not become an empty class)."""
    if storage.is_remote(root):
        return True
    real_root = os.path.realpath(root)
    target = os.path.realpath(os.path.join(root, name))
    if os.path.commonpath([real_root, target]) == real_root:
        return True
    log.warning("%s: left out the class folder %r: it is a link to %s, outside the source",
                root, name, target)
    return False


def list_folder(root: str | os.PathLike) -> pd.DataFrame:
    """A frame ``id, label`` of the images in class subfolders (folder name = class).

    `id` is the path relative to `root` with '/' separators (``Coat/19.png``). Files with
    other extensions and files directly in `root` are left out and counted in the log.

    Example:
        >>> list_folder("flowers").head(1).to_dict("records")
        [{'id': 'daisy/1.jpg', 'label': 'daisy'}]
    """
    root = os.fspath(root)
    if not storage.isdir(root):
        raise OptionError(f"`source` {root!r} is not a directory of class subfolders.")
    _, subdirs, top_files = next(storage.walk(root))
    classes = sorted(d for d in subdirs if not d.startswith(".") and _inside(root, d))
    if not classes:
        raise OptionError(f"`source` {root!r} has no class subfolders; put each class's "
                          "images in a folder named after the class.")
    rows, ignored = [], len(top_files)
    for name in classes:
        base = storage.join(root, name)
        for dirpath, dirnames, filenames in storage.walk(base):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            inner = dirpath[len(base):].strip("/" + os.sep).replace(os.sep, "/")
            for filename in sorted(filenames):
                if filename.startswith("."):
                    continue
                if os.path.splitext(filename)[1].lower() not in IMAGE_EXTENSIONS:
                    ignored += 1
                    continue
                rows.append((posixpath.join(name, inner, filename), name))
    if ignored:
        log.info("%s: left out %d files that are not images in a class subfolder", root, ignored)
    if not rows:
        raise OptionError(f"`source` {root!r} has class subfolders but no images with "
                          f"extensions {', '.join(IMAGE_EXTENSIONS)}.")
    import pandas as pd

    return pd.DataFrame(rows, columns=[FOLDER_ID, FOLDER_LABEL])


@functools.lru_cache(maxsize=4096)
def _realpath(root: str) -> str:
    """A directory's real path, resolved once per directory rather than once per row."""
    return os.path.realpath(root)


def _real_file(path: str) -> str:
    """`os.path.realpath(path)`, with the directory's part cached: one lstat per image
    instead of one per path component (a worker resolves every row's image)."""
    if os.path.islink(path):
        return os.path.realpath(path)
    head, tail = os.path.split(path)
    return os.path.join(_realpath(head), tail)


def resolve_image(root: str, value: object, ext: str | None) -> tuple[str, str]:
    """The absolute path of a row's image and its path relative to `root`.

    The value is used as written: spaces at either end are part of the file name; ``./a.jpg``
    and ``a.jpg`` name one file. `ext` is appended when the value does not already end with
    it. With no `ext`, a value without an existing file is tried with the common image
    extensions. A name written in the other Unicode normal form than the file's (NFC in the
    table, NFD on disk, as macOS writes them) still finds it. Paths that are absolute or lead outside `root` (through
    ``..`` or a symbolic link) are refused.

    Raises:
        ValueError: with the reason, for the caller to report with the row.

    Example:
        >>> resolve_image("/data/images", "train_1", ".jpg")
        ('/data/images/train_1.jpg', 'train_1.jpg')
    """
    text = "" if value is None else str(value)
    if not text.strip() or text.lower() == "nan":
        raise ValueError("image path is empty")
    if "\x00" in text:
        raise ValueError(f"image path {text!r} contains a NUL character")
    if PurePosixPath(text).is_absolute() or PureWindowsPath(text).is_absolute():
        raise ValueError(f"image path {text!r} is absolute; give paths relative to the image root")
    if ext and not text.lower().endswith(ext.lower()):
        text += ext
    rel = PurePosixPath(text.replace("\\", "/"))
    if ".." in rel.parts:
        raise ValueError(f"image path {text!r} leads outside the image root")
    if storage.is_remote(root):
        return _find_remote(root, rel, ext)
    path, rel = _find(root, rel, ext)
    real_root = _realpath(root)
    real = _real_file(path)
    if os.path.commonpath([real_root, real]) != real_root:
        raise ValueError(f"image path {text!r} resolves outside the image root (symbolic link?)")
    return path, rel.as_posix()


def _find(root: str, rel: PurePosixPath, ext: str | None) -> tuple[str, PurePosixPath]:
    """The first existing file among `rel`, its extension guesses and its other Unicode
    normal forms; `rel` itself when none exists (the read then reports it missing)."""
    first = os.path.join(root, *rel.parts)
    if os.path.lexists(first):   # the common case, without building the alternatives
        return first, rel
    forms = [rel] + [PurePosixPath(unicodedata.normalize(f, str(rel))) for f in ("NFC", "NFD")]
    guesses = () if ext or rel.suffix.lower() in IMAGE_EXTENSIONS else _GUESSES
    for form in dict.fromkeys(forms):
        path = os.path.join(root, *form.parts)
        if os.path.lexists(path):
            return path, form
        for candidate in guesses:
            if os.path.lexists(path + candidate):
                return path + candidate, PurePosixPath(str(form) + candidate)
    return os.path.join(root, *rel.parts), rel


def _find_remote(root: str, rel: PurePosixPath, ext: str | None) -> tuple[str, str]:
    """`_find` on an object store, where each lookup is a request and no link can lead out:
    a path that names an image file is taken as it is (a missing one fails when read);
    one without an extension gets the first guess that exists."""
    path = posixpath.join(root, *rel.parts)
    if not (ext or rel.suffix.lower() in IMAGE_EXTENSIONS):
        for candidate in _GUESSES:
            if storage.exists(path + candidate):
                return path + candidate, rel.as_posix() + candidate
    return path, rel.as_posix()
