"""From a label frame to a schema: which column becomes which feature, and the vocabularies.

Pure functions on pandas objects; no I/O. The schema is stored in dataset.json and is
all the reader needs to build a feature spec.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

from .errors import OptionError

# Feature kinds. A label kind is one the reader can return as a training target.
CLASS = "class"            # int64 index into a vocabulary
MULTI_LABEL = "multi_label"  # int64 list of indices into a vocabulary
TARGET = "target"          # float numeric target
INT = "int64"
FLOAT = "float"
BYTES = "bytes"
ID = "id"
LABEL_KINDS = (CLASS, MULTI_LABEL, TARGET)

IMAGE_KEYS = {
    "image/encoded": "bytes",
    "image/format": "bytes",
    "image/height": "int64",
    "image/width": "int64",
    "image/channels": "int64",
    "image/filename": "bytes",
}


@dataclass(frozen=True)
class Feature:
    """One stored feature: its kind, its wire dtype, its shape and vocabulary."""

    name: str
    kind: str
    dtype: str
    shape: tuple = ()
    vocabulary: tuple = ()

    def to_json(self) -> dict[str, Any]:
        out = {"kind": self.kind, "dtype": self.dtype, "shape": list(self.shape)}
        if self.kind in (CLASS, MULTI_LABEL):
            out["vocabulary"] = list(self.vocabulary)
        return out

    @classmethod
    def from_json(cls, name: str, data: Mapping[str, Any]) -> "Feature":
        return cls(name, data["kind"], data["dtype"], tuple(data.get("shape", ())),
                   tuple(data.get("vocabulary", ())))


@dataclass(frozen=True)
class Schema:
    """The frame columns a dataset stores, in order, and which of them are id and labels."""

    features: tuple[Feature, ...]
    id_column: str
    image_column: str
    labels: tuple[str, ...] = ()
    index: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Vocabulary lookups, built once: value -> index per class/multi-label column.
        for f in self.features:
            if f.kind in (CLASS, MULTI_LABEL):
                self.index[f.name] = {_vocab_key(v): i for i, v in enumerate(f.vocabulary)}

    def __getitem__(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def label_features(self) -> list[Feature]:
        return [self[name] for name in self.labels]

    def to_json(self, image_keys: Mapping[str, str] | None = None) -> dict[str, Any]:
        """`image_keys`: the image features (name -> dtype) of another writer's records;
        default ours (IMAGE_KEYS)."""
        feats = {name: {"kind": "image", "dtype": dtype, "shape": []}
                 for name, dtype in (IMAGE_KEYS if image_keys is None else image_keys).items()}
        feats.update({f.name: f.to_json() for f in self.features})
        return {"features": feats, "id": self.id_column, "image": self.image_column,
                "labels": list(self.labels)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Schema":
        feats = tuple(Feature.from_json(name, spec) for name, spec in data["features"].items()
                      if spec["kind"] != "image")
        return cls(feats, data["id"], data["image"], tuple(data.get("labels", ())))


def _vocab_key(value: Any) -> Any:
    # numpy scalars and Python ints compare equal but hash alike only once normalised.
    if isinstance(value, (np.integer, bool, np.bool_)):
        return int(value)
    return value


def is_missing(value: Any) -> bool:
    """True for None, NaN, pandas NA and strings that are empty or only spaces."""
    if value is None:
        return True
    # pandas only when already imported: a shard writer never imports it (a pd.NA that
    # reaches one was unpickled, which imported pandas).
    pd = sys.modules.get("pandas")
    if pd is not None and (value is pd.NA or value is pd.NaT):
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str) and not value.strip():
        return True
    return False


def check_columns(frame: pd.DataFrame, names: Iterable[str], argument: str) -> None:
    """Raises an `OptionError` naming the first missing column and listing those that exist."""
    existing = [str(c) for c in frame.columns]
    for name in names:
        if name not in frame.columns:
            raise OptionError(
                f"`{argument}` names column {name!r}, which is not in the table; "
                f"the columns are: {', '.join(existing)}.")


def _integral_floats(series: pd.Series) -> bool:
    values = series.dropna().to_numpy(dtype=float)
    return values.size > 0 and bool(np.all(np.isfinite(values) & (values == np.round(values))))


def class_vocabulary(series: pd.Series) -> tuple:
    """Sorted distinct non-missing values: numbers numerically, anything else as strings.

    Example:
        >>> class_vocabulary(pd.Series(["cat", "dog", "cat", None]))
        ('cat', 'dog')
    """
    from pandas.api import types

    values = [v for v in series.unique() if not is_missing(v)]
    if types.is_numeric_dtype(series.dtype) and not types.is_bool_dtype(series.dtype):
        return tuple(sorted(int(v) for v in values))
    if types.is_bool_dtype(series.dtype):
        return tuple(sorted(bool(v) for v in values))
    return tuple(sorted({str(v).strip() for v in values}))


def multi_label_vocabulary(series: pd.Series, sep: str) -> tuple[str, ...]:
    """Sorted distinct tokens of a separated multi-label column.

    Example:
        >>> multi_label_vocabulary(pd.Series(["haze primary", "clear primary"]), " ")
        ('clear', 'haze', 'primary')
    """
    tokens: set[str] = set()
    for value in series.unique():
        if not is_missing(value):
            tokens.update(split_tokens(value, sep))
    return tuple(sorted(tokens))


def split_tokens(value: Any, sep: str) -> list[str]:
    """Splits a multi-label cell on `sep`, dropping empty tokens."""
    return [t.strip() for t in str(value).split(sep) if t.strip()]


def column_kind(series: pd.Series) -> tuple[str, str]:
    """The (kind, dtype) a non-label frame column is stored as."""
    from pandas.api import types

    dtype = series.dtype
    if types.is_bool_dtype(dtype) or types.is_integer_dtype(dtype):
        return INT, "int64"
    if types.is_float_dtype(dtype):
        return FLOAT, "float"
    return BYTES, "bytes"


def build_schema(frame: pd.DataFrame, *, id_column: str, image_column: str,
                 label: tuple[str, ...] = (), multi_label: tuple[str, ...] = (),
                 multi_label_sep: str = " ", columns: tuple[str, ...] | None = None) -> Schema:
    """Decides how each kept column is stored and builds the label vocabularies.

    A `label` column of strings or integers becomes a class (int64 index into its sorted
    vocabulary); a float column whose values are not all whole numbers is a numeric target.
    A float column of whole numbers with gaps (how pandas reads an integer column with
    missing cells) is a class column.

    Example:
        >>> frame = pd.DataFrame({"id": ["a", "b"], "label": ["cat", "dog"]})
        >>> build_schema(frame, id_column="id", image_column="id", label=("label",)).labels
        ('label',)
    """
    from pandas.api import types

    check_columns(frame, [id_column], "id_column")
    check_columns(frame, [image_column], "image_column")
    check_columns(frame, label, "label")
    check_columns(frame, multi_label, "multi_label")
    if columns is not None:
        check_columns(frame, columns, "columns")
    for name in frame.columns:
        if not isinstance(name, str) or not name or name.startswith("image/"):
            raise OptionError(f"Column names must be non-empty strings not starting with "
                              f"'image/' (reserved for the image features); received {name!r}.")

    feats = [Feature(id_column, ID, "bytes")]
    for name in label:
        series = frame[name]
        if types.is_float_dtype(series.dtype) and not (
                series.isna().any() and _integral_floats(series)):
            feats.append(Feature(name, TARGET, "float"))
        else:
            feats.append(Feature(name, CLASS, "int64", (), class_vocabulary(series)))
    for name in multi_label:
        feats.append(Feature(name, MULTI_LABEL, "int64", (None,),
                             multi_label_vocabulary(frame[name], multi_label_sep)))
    taken = {id_column, *label, *multi_label}
    rest = list(frame.columns) if columns is None else list(columns)
    for name in rest:
        if name in taken or (name == image_column and columns is None):
            continue
        kind, dtype = column_kind(frame[name])
        feats.append(Feature(name, kind, dtype))
        taken.add(name)
    return Schema(tuple(feats), id_column, image_column, tuple(label) + tuple(multi_label))


def encode_row(row: Mapping[str, Any], schema: Schema, sep: str = " ") -> dict[str, tuple[str, list]]:
    """Turns one frame row into Example features ``name -> (dtype, values)``.

    Raises:
        ValueError: a label is missing or not in its vocabulary; the message names the column.

    Example:
        >>> frame = pd.DataFrame({"id": ["a"], "label": ["dog"]})
        >>> s = build_schema(frame, id_column="id", image_column="id", label=("label",))
        >>> encode_row({"id": "a", "label": "dog"}, s)["label"]
        ('int64', [0])
    """
    out: dict[str, tuple[str, list]] = {}
    for f in schema.features:
        value = row[f.name]
        missing = is_missing(value)
        if f.kind == ID:
            if missing:
                raise ValueError(f"id column `{f.name}` is empty")
            out[f.name] = ("bytes", [str(value).encode("utf-8")])
        elif f.kind == CLASS:
            if missing:
                raise ValueError(f"label `{f.name}` is missing")
            key = _vocab_key(value)
            if isinstance(key, float):
                key = int(key)
            elif isinstance(key, str):
                key = key.strip()
            try:
                out[f.name] = ("int64", [schema.index[f.name][key]])
            except KeyError:
                raise ValueError(f"label `{f.name}` value {value!r} is not in its vocabulary") from None
        elif f.kind == MULTI_LABEL:
            tokens = [] if missing else split_tokens(value, sep)
            lookup = schema.index[f.name]
            try:
                out[f.name] = ("int64", sorted({lookup[t] for t in tokens}))
            except KeyError as e:
                raise ValueError(f"multi-label `{f.name}` token {e.args[0]!r} is not in its "
                                 "vocabulary") from None
        elif f.kind in (TARGET, FLOAT):
            if missing and f.kind == TARGET:
                raise ValueError(f"numeric target `{f.name}` is missing")
            out[f.name] = ("float", [] if missing else [float(value)])
        elif f.kind == INT:
            out[f.name] = ("int64", [] if missing else [int(value)])
        else:
            out[f.name] = ("bytes", [] if missing else [_to_bytes(value)])
    return out


def _to_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")
