"""Exceptions that carry enough context to act on without a traceback.

The command line maps `OptionError` to exit code 2 (bad arguments) and every
other `TfrecordkitError` to exit code 1 (failed work), printing only the message.
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
