"""From a label frame to a schema: which column becomes which feature, and the vocabularies.

Pure functions on pandas objects; no I/O. The schema is stored in dataset.json and is
all the reader needs to build a feature spec.
"""
from __future__ import annotations

import ast
import json
import logging
import math
import re
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

from .errors import OptionError

log = logging.getLogger(__name__)

# Feature kinds. A label kind is one the reader can return as a training target.
CLASS = "class"            # int64 index into a vocabulary
MULTI_LABEL = "multi_label"  # int64 list of indices into a vocabulary
TARGET = "target"          # float numeric target
INT = "int64"
FLOAT = "float"
BYTES = "bytes"
ID = "id"
LABEL_KINDS = (CLASS, MULTI_LABEL, TARGET)

# An integer class column's vocabulary is 0..max; beyond this many classes the column is
# more likely an id or a measurement than a class, and a one-hot of it would not fit.
MAX_INT_CLASSES = 1 << 20
# What is left of list syntax in a token split out of a cell like "['haze', 'primary']".
_LIST_SYNTAX = re.compile(r"[\[\]'\",]")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)$")
_MAX_LIST_CELL = 100_000   # characters; a longer "list" cell is not parsed (literal_eval cost)
_ONE_HOT_VALUES = {"0": False, "1": True, "0.0": False, "1.0": True, "false": False,
                   "true": True}

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
    text_classes: set = field(default_factory=set, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Vocabulary lookups, built once: value -> index per class/multi-label column.
        for f in self.features:
            if f.kind in (CLASS, MULTI_LABEL):
                self.index[f.name] = {_vocab_key(v): i for i, v in enumerate(f.vocabulary)}
                if any(isinstance(v, str) for v in f.vocabulary):
                    self.text_classes.add(f.name)   # else 0..N-1: looked up by number

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


def class_value(value: Any) -> int | str | bool | None:
    """The canonical form of a class cell, the same from a CSV and from a DataFrame.

    Numbers and numeric-looking text become one value: ``1``, ``"1"``, ``"01"``, ``1.0`` and
    ``"1.0"`` are all ``1``; ``"2.5"`` is ``"2.5"``. Other text is stripped; booleans stay
    booleans; a missing cell is None.

    Example:
        >>> [class_value(v) for v in (1, "01", "2.0", " cat ", None)]
        [1, 1, 2, 'cat', None]
    """
    if is_missing(value):
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return int(number) if number.is_integer() else repr(number)
    text = str(value).strip()
    if _NUMBER.match(text):
        number = float(text)
        if number.is_integer() and "." not in text:
            return int(text)   # exact, also beyond float precision
        return int(number) if number.is_integer() else repr(number)
    return text


def class_vocabulary(series: pd.Series, num_classes: int | None = None,
                     text: bool = False) -> tuple:
    """The vocabulary of a class column.

    Integer classes keep their numbers: the vocabulary is ``0..max`` (``0..num_classes-1``
    when given), so a stored label is the table's own integer. Any other column (or one
    with ``text=True``, like a folder's class names) has the sorted distinct values as text,
    numbers among them written canonically (see `class_value`). Booleans: (False, True).

    Example:
        >>> class_vocabulary(pd.Series(["cat", "dog", "cat", None]))
        ('cat', 'dog')
        >>> class_vocabulary(pd.Series([3, 1, 3]))
        (0, 1, 2, 3)
    """
    from pandas.api import types

    if num_classes is not None:
        return tuple(range(num_classes))
    if types.is_bool_dtype(series.dtype):
        return tuple(sorted({bool(v) for v in series.unique() if not is_missing(v)}))
    if text:
        return tuple(sorted({str(v).strip() for v in series.unique() if not is_missing(v)}))
    values = {class_value(v) for v in _distinct(series)} - {None}
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        top = max(values)
        if top < 0:
            return ()
        if top >= MAX_INT_CLASSES:
            raise OptionError(
                f"Class column `{series.name}` holds integers up to {top}, too many classes "
                f"for a vocabulary of 0..{top}; pass it as a column to keep (--columns) "
                "rather than --label, or renumber its classes.")
        return tuple(range(top + 1))
    return tuple(sorted({str(v) for v in values}))


def _distinct(series: pd.Series) -> list:
    """Distinct cells, also of columns holding lists (which pandas cannot hash)."""
    try:
        return list(series.unique())
    except TypeError:
        seen: dict = {}
        for v in series:
            key = tuple(v) if isinstance(v, (list, np.ndarray)) else v
            seen.setdefault(repr(key), v)
        return list(seen.values())


def multi_label_vocabulary(series: pd.Series, sep: str) -> tuple[str, ...]:
    """Sorted distinct tokens of a multi-label column (cells as in `parse_multi_label`;
    cells that cannot be parsed are left out: they are bad rows).

    Example:
        >>> multi_label_vocabulary(pd.Series(["haze primary", "['clear', 'primary']"]), " ")
        ('clear', 'haze', 'primary')
    """
    tokens: set[str] = set()
    for value in _distinct(series):
        try:
            tokens.update(parse_multi_label(value, sep))
        except ValueError:
            pass
    return tuple(sorted(tokens))


def split_tokens(value: Any, sep: str) -> list[str]:
    """Splits a multi-label cell on `sep`, dropping empty tokens."""
    return [t.strip() for t in str(value).split(sep) if t.strip()]


def _token(value: Any) -> str | None:
    if isinstance(value, (list, tuple, set, dict, np.ndarray)):
        raise ValueError(f"holds a nested {type(value).__name__} {value!r}")
    if is_missing(value):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return str(class_value(value))
    return str(value).strip() or None


def parse_multi_label(value: Any, sep: str = " ") -> tuple[str, ...]:
    """The tokens of one multi-label cell, in their order, each once.

    A cell may be separated tokens (``"haze primary"``), a Python list literal
    (``"['haze', 'primary']"``), a JSON list (``'["haze", "primary"]'``), or a real list,
    tuple, set or numpy array. ``[]`` and a missing cell have no tokens.

    Raises:
        ValueError: a list that does not parse, or a token that still holds list syntax
            (``[``, ``]``, a quote or a comma) after splitting on `sep`.

    Example:
        >>> parse_multi_label("['haze', 'primary']")
        ('haze', 'primary')
    """
    if isinstance(value, (list, tuple, set, np.ndarray)):
        items = sorted(value, key=str) if isinstance(value, set) else list(value)
        return tuple(dict.fromkeys(t for t in map(_token, items) if t is not None))
    if is_missing(value):
        return ()
    if not isinstance(value, str):
        token = _token(value)
        return () if token is None else (token,)
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        return parse_multi_label(_parse_list(text), sep)
    tokens = split_tokens(text, sep)
    for token in tokens:
        if _LIST_SYNTAX.search(token):
            raise ValueError(
                f"token {token!r} still holds list syntax ([ ] quotes or commas) after "
                f"splitting on {sep!r}; write the cell as separated tokens, a Python or "
                "JSON list, or pass the separator it uses (--multi-label-sep)")
    return tuple(dict.fromkeys(tokens))


def _parse_list(text: str) -> list:
    if len(text) > _MAX_LIST_CELL:
        raise ValueError(f"a list cell of {len(text)} characters is longer than "
                         f"{_MAX_LIST_CELL}")
    try:
        parsed = json.loads(text)
    except ValueError:
        try:   # literal_eval evaluates literals only, never code
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise ValueError(f"cell {text[:80]!r} looks like a list but is neither a Python "
                             "nor a JSON list") from None
    if not isinstance(parsed, (list, tuple)):
        raise ValueError(f"cell {text[:80]!r} is not a list")
    return list(parsed)


def one_hot_flag(value: Any) -> bool:
    """A one-hot cell as a bool: 0/1, 0.0/1.0, True/False (or their text).

    Raises:
        ValueError: anything else, a missing cell included.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)) and value in (0, 1):
        return bool(value)
    flag = _ONE_HOT_VALUES.get(str(value).strip().lower()) if isinstance(value, str) else None
    if flag is None:
        raise ValueError(f"value {value!r} is not 0/1 or True/False")
    return flag


def prepare_labels(frame: pd.DataFrame, *, label: tuple[str, ...] = (),
                   multi_label: tuple[str, ...] = (), multi_label_sep: str = " ",
                   one_hot: Mapping[str, tuple[str, ...]] | None = None,
                   num_classes: Mapping[str, int] | None = None,
                   text_labels: tuple[str, ...] = ()
                   ) -> tuple[pd.DataFrame, list[tuple[int, str]], tuple[str, ...]]:
    """Puts the label columns of a table into one canonical form, cell by cell.

    Class columns get `class_value`s (integers, or text when the column mixes in text);
    multi-label cells become tuples of tokens (`parse_multi_label`); each `one_hot` feature
    becomes a new column of tuples of the names of its columns that hold 1. The frame's
    index is kept.

    Returns:
        The new frame; the bad rows as ``(index, reason)``, in frame order: a cell that
        does not parse, a one-hot cell other than 0/1, an integer class outside
        ``0..num_classes-1`` or below 0; and the class columns that are text (`text_labels`
        and the mixed ones), for `build_schema`, so that dropping bad rows cannot turn a
        mixed column into an integer one.

    Example:
        >>> f = pd.DataFrame({"id": ["a"], "tags": ["['haze', 'primary']"]})
        >>> prepare_labels(f, multi_label=("tags",))[0]["tags"].tolist()
        [('haze', 'primary')]
    """
    from pandas.api import types

    one_hot = dict(one_hot or {})
    num_classes = dict(num_classes or {})
    check_columns(frame, [c for cols in one_hot.values() for c in cols], "one_hot")
    for name in one_hot:
        if name in frame.columns:
            raise OptionError(f"`one_hot` feature {name!r} is already a column of the table; "
                              "give the one-hot feature another name.")
    check_columns(frame, label, "label")
    check_columns(frame, multi_label, "multi_label")
    bad: dict[int, str] = {}   # position -> reason
    text = list(text_labels)
    out = frame.copy()
    for name in label:
        series = frame[name]
        limit = num_classes.get(name)
        if name in text_labels or types.is_bool_dtype(series.dtype) or (
                types.is_float_dtype(series.dtype) and not (
                    series.isna().any() and _integral_floats(series))):
            if limit is not None:
                what = ("class names (text)" if name in text_labels else "booleans"
                        if types.is_bool_dtype(series.dtype) else "a numeric target (floats "
                        "that are not all whole numbers)")
                raise OptionError(f"`num_classes` names {name!r}, which holds {what}; it "
                                  f"applies to integer class columns; received "
                                  f"num_classes={{{name!r}: {limit}}}.")
            continue   # folder class names, booleans, numeric targets: as they are
        if isinstance(series.dtype, np.dtype) and series.dtype.kind in "iu":   # no cell loop
            numbers = series.to_numpy()
            outside = numbers < 0 if limit is None else (numbers < 0) | (numbers >= limit)
            for k in np.flatnonzero(outside):
                bad.setdefault(int(k), _class_reason(name, int(numbers[k]), limit))
            continue
        distinct, codes = _map_distinct(series, class_value)
        present = {v for v in distinct.tolist() if v is not None}
        if limit is not None or (present and all(
                isinstance(v, int) and not isinstance(v, bool) for v in present)):
            for k, reason in _bad_rows(distinct, codes, lambda v: v is not None and (
                    not isinstance(v, int) or v < 0 or (limit is not None and v >= limit)),
                    lambda v: _class_reason(name, v, limit)):
                bad.setdefault(k, reason)
        else:
            distinct = _objects([None if v is None else str(v) for v in distinct])
            text.append(name)
        out[name] = _object_series(distinct[codes], frame.index)
    for name in multi_label:
        distinct, codes = _map_distinct(frame[name], lambda cell: _or_reason(
            parse_multi_label, cell, multi_label_sep))
        for k, reason in _bad_rows(distinct, codes, lambda v: isinstance(v, _Reason),
                                   lambda v: f"multi-label `{name}` {v}"):
            bad.setdefault(k, reason)
        distinct = _objects([() if isinstance(v, _Reason) else v for v in distinct])
        out[name] = _object_series(distinct[codes], frame.index)
    for name, columns in one_hot.items():
        flags = np.zeros((len(frame), len(columns)), dtype=bool)
        for j, column in enumerate(columns):
            distinct, codes = _map_distinct(frame[column],
                                            lambda cell: _or_reason(one_hot_flag, cell))
            for k, reason in _bad_rows(
                    distinct, codes, lambda v: isinstance(v, _Reason),
                    lambda v: f"one-hot column `{column}` (of `{name}`): {v}"):
                bad.setdefault(k, reason)
            flags[:, j] = np.array([v is True for v in distinct], dtype=bool)[codes]
        if len(columns) < 63:   # one number per row: factorized far faster than rows
            rows, inverse = np.unique(flags @ (1 << np.arange(len(columns), dtype=np.int64)),
                                      return_inverse=True)
            rows = (rows[:, None] >> np.arange(len(columns))) & 1
        else:
            rows, inverse = np.unique(flags, axis=0, return_inverse=True)
        names = [tuple(c for c, on in zip(columns, row) if on) for row in rows]
        out[name] = _object_series(_objects(names)[inverse.reshape(-1)], frame.index)
    return (out, [(frame.index[k], bad[k]) for k in sorted(bad)],
            tuple(dict.fromkeys(n for n in text if n in label)))


class _Reason(str):
    """Why a cell cannot be read (a bad row), as opposed to its value."""


def _or_reason(parse, *args):
    try:
        return parse(*args)
    except ValueError as e:
        return _Reason(e)


def _class_reason(name: str, value: Any, limit: int | None) -> str:
    if limit is not None:
        return (f"label `{name}` value {value!r} is not a class in 0..{limit - 1} "
                f"(num_classes {name}={limit})")
    return (f"label `{name}` value {value} is negative; integer classes are 0..N-1 "
            "(give text classes, or renumber them)")


def _objects(values: list) -> np.ndarray:
    """A 1-D object array of `values` (tuples stay elements, never a second axis)."""
    data = np.empty(len(values), dtype=object)
    for k, v in enumerate(values):
        data[k] = v
    return data


def _map_distinct(series: pd.Series, fn) -> tuple[np.ndarray, np.ndarray]:
    """`fn` of each distinct cell (an object array) and each row's code into it: `fn` runs
    once per distinct value, so a million rows of a few hundred label sets parse fast."""
    import pandas as pd

    try:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
    except TypeError:   # unhashable cells (lists in a DataFrame): one call per cell
        return _objects([fn(v) for v in series.tolist()]), np.arange(len(series))
    # Code -1 (a missing cell) indexes the last entry.
    return _objects([fn(v) for v in uniques] + [fn(None)]), codes


def _bad_rows(distinct: np.ndarray, codes: np.ndarray, is_bad, reason) -> list[tuple[int, str]]:
    """(position, reason) of the rows whose distinct value `is_bad`."""
    wrong = {k: reason(v) for k, v in enumerate(distinct) if is_bad(v)}
    if not wrong:
        return []
    codes = np.where(codes < 0, len(distinct) - 1, codes)   # missing: the last entry
    positions = np.flatnonzero(np.isin(codes, np.array(sorted(wrong))))
    return [(int(k), wrong[int(codes[k])]) for k in positions]


def _object_series(values, index) -> pd.Series:
    """An object Series (tuples stay tuples: pandas would otherwise expand them)."""
    import pandas as pd

    if not (isinstance(values, np.ndarray) and values.dtype == object):
        values = _objects(list(values))
    return pd.Series(values, index=index, dtype=object)


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
                 multi_label_sep: str = " ", columns: tuple[str, ...] | None = None,
                 one_hot: Mapping[str, tuple[str, ...]] | None = None,
                 num_classes: Mapping[str, int] | None = None,
                 text_labels: tuple[str, ...] = ()) -> Schema:
    """Decides how each kept column is stored and builds the label vocabularies.

    A `label` column of integers is a class whose stored label is the integer itself
    (vocabulary ``0..max``, or ``0..num_classes[col]-1``); one of strings (or mixed) a class
    indexing its sorted vocabulary (see `class_vocabulary`); a float column whose values
    are not all whole numbers is a numeric target. A float column of whole numbers with
    gaps (how pandas reads an integer column with missing cells) is a class column. Each
    `one_hot` feature is a multi-label whose vocabulary is its columns, in order; those
    columns are not stored on their own unless `columns` names them.

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
            limit = (num_classes or {}).get(name)
            vocabulary = class_vocabulary(series, limit, text=name in text_labels)
            if vocabulary and type(vocabulary[0]) is int:   # integer classes, not booleans
                present = len({class_value(v) for v in _distinct(series)} - {None})
                if limit is None and present < len(vocabulary) // 2:
                    log.info("label `%s`: integer classes 0..%d, %d of them present; the stored "
                             "label is the table's own number", name, len(vocabulary) - 1, present)
            feats.append(Feature(name, CLASS, "int64", (), vocabulary))
    for name in multi_label:
        feats.append(Feature(name, MULTI_LABEL, "int64", (None,),
                             multi_label_vocabulary(frame[name], multi_label_sep)))
    one_hot = dict(one_hot or {})
    for name, hot in one_hot.items():
        feats.append(Feature(name, MULTI_LABEL, "int64", (None,), tuple(hot)))
    consumed = {c for hot in one_hot.values() for c in hot}
    taken = {id_column, *label, *multi_label, *one_hot}
    if columns is None:
        taken |= consumed
    rest = list(frame.columns) if columns is None else list(columns)
    for name in rest:
        if name in taken or (name == image_column and columns is None):
            continue
        kind, dtype = column_kind(frame[name])
        feats.append(Feature(name, kind, dtype))
        taken.add(name)
    return Schema(tuple(feats), id_column, image_column,
                  tuple(label) + tuple(multi_label) + tuple(one_hot))


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
            lookup = schema.index[f.name]
            text = f.name in schema.text_classes
            key = _vocab_key(value)
            if not isinstance(key, bool):
                key = class_value(key)
                if text and not isinstance(key, str):
                    key = str(key)
            if key not in lookup and text and isinstance(value, str):
                key = value.strip()   # a class name kept as written (a folder's)
            try:
                out[f.name] = ("int64", [lookup[key]])
            except (KeyError, TypeError):
                if not text and isinstance(key, int):
                    raise ValueError(f"label `{f.name}` value {value!r} is not a class in "
                                     f"0..{len(f.vocabulary) - 1}") from None
                raise ValueError(f"label `{f.name}` value {value!r} is not in its vocabulary") from None
        elif f.kind == MULTI_LABEL:
            try:
                tokens = parse_multi_label(value, sep)
            except ValueError as e:
                raise ValueError(f"multi-label `{f.name}` {e}") from None
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
