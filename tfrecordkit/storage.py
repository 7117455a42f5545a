"""Files on local disk, or on any file system TensorFlow knows (gs://, s3://, hdfs://, ram://).

A local path goes through `os` and `open`, with no TensorFlow, so writer processes stay
light. A path with a scheme (``gs://bucket/out``, or ``file:///data/out``) goes through
`tf.io.gfile`, imported on first use: which schemes work is whatever file systems the
installed TensorFlow has (gs:// is built in; s3:// and hdfs:// come with tensorflow-io).
Errors from TensorFlow's file systems come back as the usual `OSError` subclasses.
"""
from __future__ import annotations

import builtins
import contextlib
import errno
import glob as _glob
import os
import posixpath
import re
import secrets
import stat
from typing import IO, Any, Iterator

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_remote(path: str | os.PathLike) -> bool:
    """Whether `path` names a file through a URL scheme (``gs://b/x``) rather than the disk.

    Example:
        >>> is_remote("gs://bucket/out"), is_remote("/data/out")
        (True, False)
    """
    return bool(_SCHEME.match(os.fspath(path)))


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


@contextlib.contextmanager
def _translated(path: str) -> Iterator[None]:
    """TensorFlow's file-system errors as the OSError subclasses callers already handle."""
    try:
        yield
    except OSError:
        raise
    except Exception as e:
        from tensorflow import errors   # imported already: only gfile raises these

        if not isinstance(e, errors.OpError):
            raise
        message = e.message
        if isinstance(e, errors.NotFoundError):
            raise FileNotFoundError(errno.ENOENT, message, path) from None
        if isinstance(e, errors.PermissionDeniedError):
            raise PermissionError(errno.EACCES, message, path) from None
        if isinstance(e, errors.AlreadyExistsError):
            raise FileExistsError(errno.EEXIST, message, path) from None
        raise OSError(errno.EIO, message, path) from None


def absolute(path: str | os.PathLike) -> str:
    """An absolute local path, or a URL as it is."""
    path = os.fspath(path)
    return path if is_remote(path) else os.path.abspath(path)


def join(path: str, *parts: str) -> str:
    return posixpath.join(path, *parts) if is_remote(path) else os.path.join(path, *parts)


def dirname(path: str) -> str:
    return posixpath.dirname(path) if is_remote(path) else os.path.dirname(path)


def basename(path: str) -> str:
    return posixpath.basename(path) if is_remote(path) else os.path.basename(path)


class _RemoteFile:
    """A GFile whose read and write errors arrive as OSError."""

    def __init__(self, path: str, mode: str):
        self._path = path
        self._file = _gfile().GFile(path, mode)

    def read(self, n: int = -1) -> Any:
        with _translated(self._path):
            return self._file.read(n)

    def write(self, data: Any) -> int:
        with _translated(self._path):
            self._file.write(data)
        return len(data)

    def flush(self) -> None:
        with _translated(self._path):
            self._file.flush()

    def close(self) -> None:
        with _translated(self._path):
            self._file.close()

    def seek(self, offset: int, whence: int = 0) -> int:
        with _translated(self._path):
            self._file.seek(offset, whence)
            return self._file.tell()

    def tell(self) -> int:
        return self._file.tell()

    def readable(self) -> bool:
        return "r" in self._file.mode

    def writable(self) -> bool:
        return "r" not in self._file.mode

    def seekable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        return self._file.closed if hasattr(self._file, "closed") else False

    def __iter__(self):
        return iter(self._file)

    def __getattr__(self, name: str) -> Any:   # readline, size, mode...
        return getattr(self._file, name)

    def __enter__(self) -> "_RemoteFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open(path: str | os.PathLike, mode: str = "rb", **kwargs: Any) -> IO:  # noqa: A001
    """`open` for a local path (`kwargs` such as encoding pass through); a GFile for a URL,
    checked to exist when reading so a missing file is a FileNotFoundError at once."""
    path = os.fspath(path)
    if not is_remote(path):
        return builtins.open(path, mode, **kwargs)
    if "r" in mode:
        with _translated(path):
            if not _gfile().exists(path):
                raise FileNotFoundError(errno.ENOENT, "No such file", path)
            if _gfile().isdir(path):
                raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
    elif "x" in mode:
        if exists(path):
            raise FileExistsError(errno.EEXIST, "File exists", path)
        mode = mode.replace("x", "w")
    return _RemoteFile(path, mode)


def require_regular_file(path: str | os.PathLike, what: str = "file") -> None:
    """Refuses a FIFO, device, socket or directory before anything opens it for reading
    (opening a FIFO blocks until a writer comes; a device may never end). Only `stat` is
    called; a missing file passes, for the open that follows to report. URLs pass: object
    stores hold regular files only.

    Raises:
        OSError: ``EISDIR`` for a directory, ``EINVAL`` for another special file, with
            the kind of file named.

    Example:
        >>> require_regular_file("/dev/zero", "image")
        Traceback (most recent call last):
        OSError: [Errno 22] is a character device, not a regular image file: '/dev/zero'
    """
    path = os.fspath(path)
    if is_remote(path):
        return
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, f"is a directory, not a {what}", path)
    kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else
            "a character device" if stat.S_ISCHR(mode) else
            "a block device" if stat.S_ISBLK(mode) else
            "a socket" if stat.S_ISSOCK(mode) else "a special file")
    raise OSError(errno.EINVAL, f"is {kind}, not a regular {what}", path)


def exists(path: str) -> bool:
    if not is_remote(path):
        return os.path.exists(path)
    with _translated(path):
        return _gfile().exists(path)


def isdir(path: str) -> bool:
    if not is_remote(path):
        return os.path.isdir(path)
    with _translated(path):
        return _gfile().isdir(path)


def isfile(path: str) -> bool:
    if not is_remote(path):
        return os.path.isfile(path)
    with _translated(path):
        return _gfile().exists(path) and not _gfile().isdir(path)


def listdir(path: str) -> list[str]:
    if not is_remote(path):
        return os.listdir(path)
    with _translated(path):
        return [name.rstrip("/") for name in _gfile().listdir(path)]


def makedirs(path: str) -> None:
    if not is_remote(path):
        os.makedirs(path, exist_ok=True)
        return
    with _translated(path):
        _gfile().makedirs(path)


def remove(path: str) -> None:
    if not is_remote(path):
        os.remove(path)
        return
    with _translated(path):
        _gfile().remove(path)


def rmdir(path: str) -> None:
    """Removes an empty directory (OSError when it is not empty)."""
    if not is_remote(path):
        os.rmdir(path)
        return
    if listdir(path):
        raise OSError(errno.ENOTEMPTY, "Directory not empty", path)
    with _translated(path):
        _gfile().rmtree(path)


def replace(source: str, target: str) -> None:
    """Renames over `target`: atomic on a local disk; on object stores a copy, and the
    object under `target` appears whole or not at all."""
    if not is_remote(source):
        os.replace(source, target)
        return
    with _translated(source):
        _gfile().rename(source, target, overwrite=True)


def getsize(path: str) -> int:
    if not is_remote(path):
        return os.path.getsize(path)
    with _translated(path):
        return int(_gfile().stat(path).length)


def getmtime(path: str) -> float:
    """Modification time in seconds (0.0 where the file system keeps none)."""
    if not is_remote(path):
        return os.path.getmtime(path)
    with _translated(path):
        return _gfile().stat(path).mtime_nsec / 1e9


def glob(pattern: str) -> list[str]:
    if not is_remote(pattern):
        return _glob.glob(pattern)
    with _translated(pattern):
        return list(_gfile().glob(pattern))


def walk(top: str) -> Iterator[tuple[str, list[str], list[str]]]:
    """`os.walk` (not following links), top-down; subdirectory names may be pruned in place."""
    if not is_remote(top):
        yield from os.walk(top, followlinks=False)
        return
    with _translated(top):
        for directory, subdirs, files in _gfile().walk(top):
            yield directory.rstrip("/"), subdirs, files


def write_text(path: str, text: str) -> None:
    """Writes a small text file whole or not at all: under a hidden temporary name beside
    it (never taken for a shard, an index or dataset.json by a listing), synced, then
    renamed over `path`; the temporary file is removed when anything fails."""
    tmp = join(dirname(path), f".{basename(path)}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            sync(f)
        replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            remove(tmp)
        raise


def sync(f: IO) -> None:
    """Flushes a file written through `open` to stable storage (fsync on a local disk)."""
    f.flush()
    if not isinstance(f, _RemoteFile):
        os.fsync(f.fileno())


def sync_directory(path: str) -> None:
    """Makes renames inside a local directory durable; nothing to do for a URL."""
    if is_remote(path):
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:   # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:   # pragma: no cover
        pass
    finally:
        os.close(fd)
