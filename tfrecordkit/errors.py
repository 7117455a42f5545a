"""Exceptions that carry enough context to act on without a traceback.

The command line maps `OptionError` to exit code 2 (bad arguments) and every
other `TfrecordkitError` to exit code 1 (failed work), printing only the message.
`explain` is that one mapping for any exception (OS, pandas, pyarrow, TensorFlow and
joblib errors too); `translated` gives library callers the same sentence as a toolkit
exception, with the original chained.
"""
from __future__ import annotations


class TfrecordkitError(Exception):
    """Base class of every error tfrecordkit raises on purpose."""


class OptionError(TfrecordkitError, ValueError):
    """An argument or option is invalid; raised before any work starts."""


class SourceError(TfrecordkitError):
    """A source row or file cannot be converted.

    Attributes:
        row: 0-based row number in the source frame (or folder listing).
        id: the row's id value.
        source: the image path the row points to, if any.
        reason: why the row cannot be converted, in a few words.
    """

    def __init__(self, row: int, id: object, source: str | None, reason: str):
        self.row, self.id, self.source, self.reason = row, id, source, reason
        where = f"row {row} (id {id!r}"
        where += f", file {source})" if source else ")"
        super().__init__(
            f"{where}: {reason}; fix or remove the row, or pass on_error='skip' "
            "(--on-error skip) to skip bad rows and list them in errors.csv."
        )

    def __reduce__(self):
        # Keeps the attributes when the error crosses a process boundary (joblib/loky).
        return (type(self), (self.row, self.id, self.source, self.reason))


class DatasetError(TfrecordkitError):
    """A dataset directory or TFRecord file is missing, incomplete or unreadable."""


class StorageError(TfrecordkitError, OSError):
    """A file or directory cannot be read or written (disk full, permissions, missing).

    Also an `OSError`, with the original's ``errno``, so code that catches OS errors
    keeps working; the original (with its file name) is chained as ``__cause__``.
    """


class TableError(OptionError):
    """The label table given as the source cannot be parsed (empty, ragged, wrong encoding,
    or not the format its extension names)."""


class WorkerError(TfrecordkitError):
    """A worker process died (killed, or out of memory) while writing shards."""


_EXIT_FAILED, _EXIT_USAGE = 1, 2


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _name(exc: BaseException) -> tuple[str, str]:
    kind = type(exc)
    return kind.__module__ or "", kind.__name__


def _classify(exc: BaseException, path: str | None = None) -> tuple[type, str] | None:
    """The toolkit type and sentence for a foreign exception, or None when it is unknown."""
    import errno as _errno

    module, name = _name(exc)
    if isinstance(exc, OSError) and not isinstance(exc, TfrecordkitError):
        where = exc.filename or path or "a file"
        code = exc.errno
        what = {
            _errno.ENOSPC: "no space is left on the device: free some space or write "
                           "elsewhere, then run the command again (a conversion goes on "
                           "from its complete shards with --resume)",
            _errno.EDQUOT: "the disk quota is used up: free some space or write elsewhere, "
                           "then run the command again (a conversion goes on with --resume)",
            _errno.ENOTDIR: "a part of this path is a regular file, not a directory; choose "
                            "a path whose parent folders are directories",
            _errno.EISDIR: "is a directory where a file was expected; pass the file itself",
            _errno.EACCES: "permission denied; check the file's permissions or choose a "
                           "path you may read and write",
            _errno.EPERM: "operation not permitted; check the file's permissions or choose "
                          "another path",
            _errno.EROFS: "the file system is read-only; write somewhere else",
            _errno.ENOENT: "does not exist (moved or deleted?); check the path, or write "
                           "the dataset again if one of its files is gone",
        }.get(code)
        if what is None and code == _errno.EINVAL and (exc.strerror or "").startswith("is "):
            what = f"{exc.strerror}; pass a regular file"   # storage.require_regular_file
        if what is None:
            detail = exc.strerror or _one_line(exc) or type(exc).__name__
            what = f"cannot be read or written ({detail}); check the file and the device"
        return StorageError, f"{where}: {what}."
    if isinstance(exc, UnicodeDecodeError):
        where = f"{path} " if path else "a text file "
        byte = exc.object[exc.start:exc.start + 1]
        return TableError, (f"{where}is not {exc.encoding} text (byte 0x{byte.hex()} at "
                            f"position {exc.start}); pass its encoding, e.g. --encoding "
                            "latin-1 (encoding='latin-1').")
    if module.startswith("pandas"):
        where = path or "the table"
        if name == "EmptyDataError":
            return TableError, (f"{where} is empty (no header row and no data); pass a "
                                "table whose first line names its columns.")
        if name == "ParserError":
            return TableError, (f"{where} cannot be parsed as a table ({_one_line(exc)}); "
                                "check that every row has as many fields as the header and "
                                "that quotes are balanced, or pass --sep.")
    if module.startswith("pyarrow") and name in ("ArrowInvalid", "ArrowException", "ArrowIOError"):
        where = path or "the file"
        return TableError, (f"{where} is not a valid Parquet file ({_one_line(exc)}); if it is "
                            "a CSV, give it a .csv name.")
    if module.startswith("tensorflow") and hasattr(exc, "message"):
        message = _one_line(exc.message)
        if name == "DataLossError":
            where = _corrupt_file(message)
            where = f"{where}: " if where else ""
            return DatasetError, (f"{where}corrupt TFRecord data ({message}); run `tfrecordkit "
                                  "verify PATH` to find every damaged record, write the shard "
                                  "again, or read with on_corrupt='skip'.")
        if name == "NotFoundError":
            return DatasetError, f"a file is missing ({message}); check the path."
        return DatasetError, f"TensorFlow failed ({name}: {message})."
    if name in ("TerminatedWorkerError", "BrokenProcessPool"):   # loky's, or concurrent.futures
        return WorkerError, ("a worker process died while writing (killed, or out of memory); "
                             "run again with fewer --jobs or more memory (a conversion goes on "
                             "from its complete shards with --resume).")
    return None


_recent_files: list[str] = []   # shard files of the datasets `read` opened lately
_RECENT_LIMIT = 4096


def remember_files(files: list[str]) -> None:
    """Notes the files a reader opens, so that TensorFlow's "corrupted record at N" (which
    names no file) can be traced to one when it arrives: work done only on failure, never
    while reading."""
    for file in files:
        if file in _recent_files:
            _recent_files.remove(file)
        _recent_files.append(file)
    del _recent_files[:-_RECENT_LIMIT]


def _corrupt_file(message: str) -> str | None:
    """The remembered plain TFRecord file whose record at the offset TensorFlow names is
    damaged (its framing checked there: header CRC, length within the file, data CRC)."""
    import re

    found = re.search(r"corrupted record at (\d+)", message)
    if not found:
        return None
    offset = int(found.group(1))
    from . import records

    hits = []
    for file in reversed(_recent_files):
        try:
            if records.damaged_at(file, offset):
                hits.append(file)
        except Exception:   # unreadable now: not the file TensorFlow was reading, as far as we know
            continue
    if not hits:
        return None
    return hits[0] if len(hits) == 1 else "one of " + ", ".join(hits[:3])


def explain(exc: BaseException, path: str | None = None) -> tuple[str, int]:
    """The one-sentence message for any exception, and the command line's exit code.

    2 for bad arguments (`OptionError`, an unreadable label table), 1 for failed work.
    `path` names the file the caller was working on, for errors that do not name one.

    Example:
        >>> import errno
        >>> explain(OSError(errno.ENOSPC, "No space left on device", "out/x.tfrecord"))[1]
        1
    """
    if isinstance(exc, TfrecordkitError):
        return _one_line(exc), _EXIT_USAGE if isinstance(exc, OptionError) else _EXIT_FAILED
    found = _classify(exc, path)
    if found is not None:
        kind, message = found
        return message, _EXIT_USAGE if issubclass(kind, OptionError) else _EXIT_FAILED
    return (f"unexpected {type(exc).__name__}: {_one_line(exc)}; run again with --debug for "
            "the traceback and report it."), _EXIT_FAILED


def translate(exc: BaseException, path: str | None = None) -> BaseException:
    """A toolkit exception for a foreign one (OS, pandas, pyarrow, TensorFlow, joblib),
    with the sentence `explain` gives; any other exception comes back as it is.

    Example:
        >>> type(translate(FileNotFoundError(2, "No such file", "x.csv"))).__name__
        'StorageError'
    """
    if isinstance(exc, TfrecordkitError):
        return exc
    found = _classify(exc, path)
    if found is None:
        return exc
    kind, message = found
    new = kind(message)
    if isinstance(new, OSError) and isinstance(exc, OSError):
        new.errno = exc.errno   # not filename: OSError would print "[Errno n] ..." then
    return new


def translated(path_argument: str | None = None, output_argument: str | None = None):
    """Decorator for public functions: foreign errors leave as toolkit errors with one
    sentence (the original chained as ``__cause__``), so a notebook reads what the
    command line prints. `path_argument` names the parameter holding the file read;
    `output_argument` the one written to, named by OS errors that name no file (a full
    disk fails a write, not an open).

    Example:
        >>> @translated("source")
        ... def load(source): open(source)
    """
    import functools
    import inspect

    def wrap(function):
        signature = inspect.signature(function)

        @functools.wraps(function)
        def call(*args, **kwargs):
            try:
                return function(*args, **kwargs)
            except TfrecordkitError:
                raise
            except Exception as e:
                name = path_argument
                if isinstance(e, OSError) and output_argument:
                    name = output_argument
                path = None
                if name is not None:
                    try:
                        value = signature.bind_partial(*args, **kwargs).arguments.get(name)
                        path = None if value is None else str(value)
                    except TypeError:
                        path = None
                new = translate(e, path)
                if new is e:
                    raise
                raise new from e

        return call

    return wrap
