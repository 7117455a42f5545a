"""tf.train.Example encode/decode in pure Python, without TensorFlow or protobuf.

Wire format (proto3, ``tensorflow/core/example/{example,feature}.proto``)::

    Example    { 1: Features features }
    Features   { 1: map<string, Feature> feature }   # entries: { 1: key, 2: value }
    Feature    { oneof kind { 1: BytesList, 2: FloatList, 3: Int64List } }
    BytesList  { 1: repeated bytes value }
    FloatList  { 1: repeated float value [packed] }
    Int64List  { 1: repeated int64 value [packed] }

A feature is represented as ``(kind, values)`` with kind "bytes", "float" or
"int64". `encode_example` orders the keys as Python protobuf's (upb's)
deterministic serialization does, so its output is byte-identical to
``tf.train.Example(...).SerializeToString(deterministic=True)``.
"""
from __future__ import annotations

import struct
import sys
from array import array
from operator import index as _as_int
from typing import Mapping, Sequence

__all__ = ["KINDS", "decode_example", "encode_example"]

KINDS = ("bytes", "float", "int64")

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_TWO64 = 1 << 64
_U64_MASK = _TWO64 - 1
_LITTLE = sys.byteorder == "little"
_F32 = struct.Struct("<f")

# Feature.kind field tags (field number << 3 | wire type 2).
_KIND_TAG = {"bytes": b"\x0a", "float": b"\x12", "int64": b"\x1a"}
_TAG_KIND = {1: "bytes", 2: "float", 3: "int64"}

# Varints below 2**14 (tags, lengths of values up to 16 KB, small labels) come from
# a table: encoding runs for millions of records and function calls dominate.
_NV = 1 << 14
_VARINTS = [bytes((i,)) for i in range(128)] + [
    bytes(((i & 0x7F) | 0x80, i >> 7)) for i in range(128, _NV)
]
# Whole Feature messages for the commonest value, a single small int64 (labels,
# sizes), filled on first use.
_INT_FEATURE_CACHE: dict[int, bytes] = {}
_INT_FEATURE_CACHE_MAX = 1 << 16  # values cached: 0 .. 65535
_EMPTY_FEATURE = {"bytes": b"\x0a\x00", "float": b"\x12\x00", "int64": b"\x1a\x00", None: b""}

# Per key set: the encoding order and each key's entry prefix (key tag, key, value tag).
_ORDER_CACHE: dict[tuple, list[tuple[str, bytes]]] = {}
_ORDER_CACHE_MAX = 1024


def _varint(value: int) -> bytes:
    """Encodes a non-negative int as a protobuf varint."""
    if value < _NV:
        return _VARINTS[value]
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _bad_int(key: str, v) -> int:
    """Slow path for a value that is not a plain int: numpy ints pass, the rest fail."""
    if isinstance(v, bool) or type(v).__name__ in ("bool", "bool_"):  # numpy bools too
        # protobuf refuses bools in int64 fields; so do we, to match TF.
        raise ValueError(f"feature `{key}`: int64 values must be integers, got bool {v!r}")
    try:
        v = _as_int(v)
    except TypeError:
        raise ValueError(
            f"feature `{key}`: int64 values must be integers, got {type(v).__name__} {v!r:.40}"
        ) from None
    if not _INT64_MIN <= v <= _INT64_MAX:
        raise ValueError(f"feature `{key}`: value {v} does not fit in int64")
    return v


def _pack_int64(key: str, values) -> bytes:
    buf = bytearray()
    append = buf.append
    for v in values:
        if type(v) is not int:
            v = _bad_int(key, v)
        if 0 <= v < 0x80:
            append(v)
            continue
        if v < 0:
            if v < _INT64_MIN:
                raise ValueError(f"feature `{key}`: value {v} does not fit in int64")
            v += _TWO64  # two's complement: negatives are always 10-byte varints
        elif v > _INT64_MAX:
            raise ValueError(f"feature `{key}`: value {v} does not fit in int64")
        while v > 0x7F:
            append((v & 0x7F) | 0x80)
            v >>= 7
        append(v)
    return bytes(buf)


def _pack_float(key: str, values) -> bytes:
    try:
        if hasattr(values, "dtype"):  # numpy: one vectorized cast, no per-value work
            return values.astype("<f4", copy=False).tobytes()
        arr = array("f", values)
    except (TypeError, ValueError, OverflowError) as e:
        raise ValueError(f"feature `{key}`: float values must be real numbers ({e})") from None
    if not _LITTLE:
        arr.byteswap()
    return arr.tobytes()


def _as_values(key: str, values):
    """Returns ``values`` as an iterable of scalars, rejecting a bare scalar."""
    if hasattr(values, "ndim"):  # numpy array (or scalar)
        if values.ndim == 0:
            raise ValueError(
                f"feature `{key}`: values must be a list, got a single "
                f"{type(values).__name__}; wrap it in a list"
            )
        return values.reshape(-1)  # arrays of any shape are stored flattened (C order)
    if isinstance(values, (bytes, bytearray, memoryview, str)) or not hasattr(values, "__iter__"):
        raise ValueError(
            f"feature `{key}`: values must be a list, got a single "
            f"{type(values).__name__}; wrap it in a list"
        )
    return values


def _numeric_feature(key: str, kind: str, values) -> bytes:
    """Returns the Feature message for an int64 or float list."""
    values = _as_values(key, values)
    if kind == "int64":
        if hasattr(values, "tolist"):
            values = values.tolist()  # numpy: C-speed conversion to Python ints
        packed = _pack_int64(key, values)
    else:
        packed = _pack_float(key, values)
    n = len(packed)
    if not n:
        # An empty packed field is omitted entirely, leaving a present-but-empty list.
        return _EMPTY_FEATURE[kind]
    head = _varint(n)
    return b"".join((_KIND_TAG[kind], _varint(1 + len(head) + n), b"\x0a", head, packed))


def _bytes_pieces(key: str, values) -> tuple[list, int]:
    """Returns the BytesList payload as pieces (each value kept as-is) and its size."""
    values = _as_values(key, values)
    if hasattr(values, "tolist"):
        values = values.tolist()  # numpy 'S'/object arrays: C-speed conversion
    pieces = []
    size = 0
    for v in values:
        if type(v) is not bytes:
            if isinstance(v, (bytes, bytearray, memoryview)):  # incl. numpy.bytes_
                v = bytes(v)
            else:
                hint = "; encode it first, e.g. s.encode('utf-8')" if isinstance(v, str) else ""
                raise ValueError(
                    f"feature `{key}`: bytes values must be bytes, got "
                    f"{type(v).__name__} {v!r:.40}{hint}"
                )
        n = len(v)
        head = b"\x0a" + (_VARINTS[n] if n < _NV else _varint(n))
        pieces.append(head)
        pieces.append(v)
        size += len(head) + n
    return pieces, size


def _key_order(features) -> list[tuple[str, bytes]]:
    """Returns ``[(key, entry prefix)]`` in the order TF's deterministic serialization uses."""
    keyed = []
    for key in features:
        if type(key) is not str:
            raise ValueError(f"feature key {key!r} must be a str, got {type(key).__name__}")
        try:
            k = key.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"feature key {key!r} is not encodable as UTF-8") from None
        # upb's (Python protobuf's) deterministic map order: bytewise ascending, except
        # that a key sorts after the keys it is a prefix of ("eb" before "e"). The 0xff
        # sentinel, which never occurs in UTF-8, gives exactly that order.
        keyed.append((k + b"\xff", key, b"\x0a" + _varint(len(k)) + k + b"\x12"))
    keyed.sort()
    return [(key, prefix) for _, key, prefix in keyed]


def encode_example(features: Mapping[str, tuple[str, Sequence]]) -> bytes:
    """Serializes features as a tf.train.Example.

    Keys are written in the order of ``SerializeToString(deterministic=True)``
    (sorted, with a key after the keys it is a prefix of), so the bytes match TF's.
    Values may be lists, tuples or numpy arrays (flattened); float values are
    stored as float32, and an empty list is stored as a present-but-empty feature.
    ``(None, [])``, which `decode_example` returns for a feature with no kind,
    is written back as such.

    Args:
        features: ``{key: (kind, values)}`` with kind "bytes", "float" or "int64".

    Raises:
        ValueError: an unknown kind, a value of the wrong type, or an int outside int64.

    Example:
        >>> data = encode_example({"label": ("int64", [3]), "image": ("bytes", [b"..."])})
        >>> decode_example(data)["label"]
        ('int64', [3])
    """
    keys = tuple(features)
    order = _ORDER_CACHE.get(keys)
    if order is None:
        order = _key_order(features)
        if len(_ORDER_CACHE) >= _ORDER_CACHE_MAX:
            _ORDER_CACHE.clear()
        _ORDER_CACHE[keys] = order
    parts: list[bytes] = [b""]  # slot 0: Example.features tag + length, filled in below
    append = parts.append
    total = 0
    for key, prefix in order:
        spec = features[key]
        if type(spec) is not tuple or len(spec) != 2:
            try:
                kind, values = spec
            except (TypeError, ValueError):
                raise ValueError(
                    f"feature `{key}`: expected a (kind, values) pair, got {spec!r:.60}"
                ) from None
        else:
            kind, values = spec
        if kind == "bytes":
            # Values are appended as they are and joined once at the very end, so
            # each (possibly large) value is copied exactly once.
            if type(values) is list and len(values) == 1 and type(values[0]) is bytes:
                value = values[0]  # fast path: one encoded image, one text, ...
                n = len(value)
                value_head = b"\x0a" + (_VARINTS[n] if n < _NV else _varint(n))
                pieces = None
                list_size = len(value_head) + n
            else:
                value_head = b""
                pieces, list_size = _bytes_pieces(key, values)
            list_head = _VARINTS[list_size] if list_size < _NV else _varint(list_size)
            feature_size = 1 + len(list_head) + list_size
            fsize = _VARINTS[feature_size] if feature_size < _NV else _varint(feature_size)
            entry_size = len(prefix) + len(fsize) + feature_size
            head = b"".join((
                b"\x0a", _VARINTS[entry_size] if entry_size < _NV else _varint(entry_size),
                prefix, fsize, b"\x0a", list_head, value_head,
            ))
            append(head)
            if pieces is None:
                append(value)
                total += len(head) + n
            else:
                parts.extend(pieces)
                total += len(head) + list_size
            continue
        if kind == "int64" and type(values) is list and len(values) == 1:
            v = values[0]
            feature = _INT_FEATURE_CACHE.get(v) if type(v) is int else None
            if feature is None:
                feature = _numeric_feature(key, kind, values)
                if type(v) is int and 0 <= v < _INT_FEATURE_CACHE_MAX:
                    _INT_FEATURE_CACHE[v] = feature
        elif kind == "int64" or kind == "float":
            feature = _numeric_feature(key, kind, values)
        elif kind is None:
            # (None, []) is what decode_example returns for an empty Feature.
            if len(_as_values(key, values)):
                raise ValueError(f"feature `{key}`: kind None cannot hold values, got {values!r:.40}")
            feature = b""
        else:
            raise ValueError(
                f"feature `{key}`: unknown kind {kind!r}; expected 'bytes', 'float' or 'int64'"
            )
        feature_size = len(feature)
        fsize = _VARINTS[feature_size] if feature_size < _NV else _varint(feature_size)
        entry_size = len(prefix) + len(fsize) + feature_size
        entry = b"".join((
            b"\x0a", _VARINTS[entry_size] if entry_size < _NV else _varint(entry_size),
            prefix, fsize, feature,
        ))
        append(entry)
        total += len(entry)
    parts[0] = b"\x0a" + _varint(total)
    return b"".join(parts)


# --------------------------------------------------------------------------- decode


def _fail(what: str, pos: int) -> ValueError:
    return ValueError(f"not a tf.train.Example: {what} at byte {pos}")


def _read_varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos >= end:
        raise _fail("truncated varint", pos)
    b = data[pos]
    if b < 0x80:
        return b, pos + 1
    start = pos
    result = b & 0x7F
    shift = 7
    pos += 1
    while True:
        if pos >= end:
            raise _fail("truncated varint", start)
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _fail("varint longer than 10 bytes", start)


def _read_len(data: bytes, pos: int, end: int) -> tuple[int, int]:
    n, p = _read_varint(data, pos, end)
    if p + n > end:
        raise _fail(f"length {n} runs past the end of its message", pos)
    return p + n, p


def _skip(data: bytes, pos: int, end: int, field: int, wire: int, depth: int = 0) -> int:
    """Skips one unknown field whose tag has been read; returns the position after it."""
    if wire == 0:
        return _read_varint(data, pos, end)[1]
    if wire == 2:
        return _read_len(data, pos, end)[0]
    if wire == 1 or wire == 5:
        nxt = pos + (8 if wire == 1 else 4)
        if nxt > end:
            raise _fail("truncated fixed-width field", pos)
        return nxt
    if wire == 3:  # deprecated group: skip up to its end-group tag
        if depth >= 64:
            raise _fail("groups nested too deeply", pos)
        while True:
            tag, pos = _read_varint(data, pos, end)
            if tag & 7 == 4:
                if tag >> 3 != field:
                    raise _fail("mismatched end-group tag", pos)
                return pos
            if tag >> 3 == 0:
                raise _fail("field number 0", pos)
            pos = _skip(data, pos, end, tag >> 3, tag & 7, depth + 1)
    raise _fail(f"invalid wire type {wire} for field {field}", pos)


def _decode_list(kind: str, data: bytes, pos: int, end: int, values: list) -> None:
    """Appends the values of a BytesList/FloatList/Int64List message to ``values``."""
    append = values.append
    while pos < end:
        tag = data[pos]
        if tag < 0x80:  # every tag this parser knows fits in one byte
            pos += 1
        else:
            tag, pos = _read_varint(data, pos, end)
        field, wire = tag >> 3, tag & 7
        if field != 1:
            if field == 0:
                raise _fail("field number 0", pos)
            pos = _skip(data, pos, end, field, wire)
            continue
        if wire == 2:  # bytes value, or a packed run of floats/ints
            n = data[pos] if pos < end else 0x80
            if n < 0x80:
                pos += 1
            else:
                n, pos = _read_varint(data, pos, end)
            nxt = pos + n
            if nxt > end:
                raise _fail(f"length {n} runs past the end of its message", pos)
            if kind == "bytes":
                append(data[pos:nxt])
            elif kind == "int64":
                while pos < nxt:
                    b = data[pos]
                    if b < 0x80:  # fast path: small non-negative ints
                        append(b)
                        pos += 1
                        continue
                    v, pos = _read_varint(data, pos, nxt)
                    v &= _U64_MASK
                    append(v - _TWO64 if v > _INT64_MAX else v)
            else:
                if n % 4:
                    raise _fail("packed FloatList length is not a multiple of 4", pos)
                arr = array("f")
                arr.frombytes(data[pos:nxt])
                if not _LITTLE:
                    arr.byteswap()
                values.extend(arr.tolist())
            pos = nxt
        elif wire == 0 and kind == "int64":  # unpacked: one varint per tag
            v, pos = _read_varint(data, pos, end)
            v &= _U64_MASK
            append(v - _TWO64 if v > _INT64_MAX else v)
        elif wire == 5 and kind == "float":  # unpacked: one float per tag
            if pos + 4 > end:
                raise _fail("truncated float", pos)
            append(_F32.unpack_from(data, pos)[0])
            pos += 4
        else:
            expected = {"bytes": "2", "float": "2 or 5", "int64": "0 or 2"}[kind]
            list_name = {"bytes": "BytesList", "float": "FloatList", "int64": "Int64List"}[kind]
            raise _fail(f"{list_name}.value has wire type {wire}, expected {expected}", pos)


def _decode_feature(data: bytes, pos: int, end: int, kind, values):
    """Parses a Feature message, merging into ``(kind, values)`` as protobuf does."""
    while pos < end:
        tag = data[pos]
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = _read_varint(data, pos, end)
        field, wire = tag >> 3, tag & 7
        new_kind = _TAG_KIND.get(field)
        if new_kind is None:
            if field == 0:
                raise _fail("field number 0", pos)
            pos = _skip(data, pos, end, field, wire)
            continue
        if wire != 2:
            raise _fail(f"Feature field {field} has wire type {wire}, expected 2", pos)
        n = data[pos] if pos < end else 0x80
        if n < 0x80:
            pos += 1
        else:
            n, pos = _read_varint(data, pos, end)
        nxt = pos + n
        if nxt > end:
            raise _fail(f"length {n} runs past the end of its message", pos)
        if new_kind != kind:
            # oneof: setting another member clears the previous one; the same member merges.
            kind, values = new_kind, []
        _decode_list(kind, data, pos, nxt, values)
        pos = nxt
    return kind, values


def _decode_features(data: bytes, pos: int, end: int, result: dict) -> None:
    while pos < end:
        tag = data[pos]
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = _read_varint(data, pos, end)
        if tag != 0x0A:  # anything but a map entry (field 1, wire type 2)
            field, wire = tag >> 3, tag & 7
            if field == 1:
                raise _fail(f"Features.feature has wire type {wire}, expected 2", pos)
            if field == 0:
                raise _fail("field number 0", pos)
            pos = _skip(data, pos, end, field, wire)
            continue
        n = data[pos] if pos < end else 0x80
        if n < 0x80:
            pos += 1
        else:
            n, pos = _read_varint(data, pos, end)
        entry_end = pos + n
        if entry_end > end:
            raise _fail(f"length {n} runs past the end of its message", pos)
        key = ""
        kind = None
        values: list = []
        while pos < entry_end:
            tag = data[pos]
            if tag < 0x80:
                pos += 1
            else:
                tag, pos = _read_varint(data, pos, entry_end)
            if tag == 0x0A or tag == 0x12:  # key or value
                n = data[pos] if pos < entry_end else 0x80
                if n < 0x80:
                    pos += 1
                else:
                    n, pos = _read_varint(data, pos, entry_end)
                nxt = pos + n
                if nxt > entry_end:
                    raise _fail(f"length {n} runs past the end of its message", pos)
                if tag == 0x0A:
                    try:
                        key = data[pos:nxt].decode("utf-8")
                    except UnicodeDecodeError:
                        raise _fail("feature key is not valid UTF-8", pos) from None
                else:
                    kind, values = _decode_feature(data, pos, nxt, kind, values)
                pos = nxt
                continue
            field, wire = tag >> 3, tag & 7
            if field == 1 or field == 2:
                raise _fail(f"map entry field {field} has wire type {wire}, expected 2", pos)
            if field == 0:
                raise _fail("field number 0", pos)
            pos = _skip(data, pos, entry_end, field, wire)
        result[key] = (kind, values)  # a repeated key replaces the earlier entry, as in protobuf


def decode_example(data: bytes) -> dict[str, tuple[str, list]]:
    """Parses a serialized tf.train.Example into ``{key: (kind, values)}``.

    Accepts packed and unpacked repeated fields and skips unknown fields. Floats
    come back as Python floats (float32 precision), ints as Python ints; a
    feature with no kind set decodes as ``(None, [])``. A known field with the
    wrong wire type is an error (TF's own parser, behind ``tf.io.parse_example``,
    rejects such records too).

    Raises:
        ValueError: the bytes are not a well-formed tf.train.Example.

    Example:
        >>> decode_example(encode_example({"score": ("float", [0.5])}))
        {'score': ('float', [0.5])}
    """
    if type(data) is not bytes:
        data = bytes(data)
    result: dict[str, tuple[str, list]] = {}
    pos, end = 0, len(data)
    while pos < end:
        tag, pos = _read_varint(data, pos, end)
        field, wire = tag >> 3, tag & 7
        if field == 1:
            if wire != 2:
                raise _fail(f"Example.features has wire type {wire}, expected 2", pos)
            nxt, pos = _read_len(data, pos, end)
            _decode_features(data, pos, nxt, result)  # repeated occurrences merge
            pos = nxt
        elif field == 0:
            raise _fail("field number 0", pos)
        else:
            pos = _skip(data, pos, end, field, wire)
    return result


def _decode_feature_list(data: bytes, pos: int, end: int) -> list[tuple[str | None, list]]:
    """Parses a FeatureList message: ``repeated Feature feature = 1``."""
    steps = []
    while pos < end:
        tag, pos = _read_varint(data, pos, end)
        field, wire = tag >> 3, tag & 7
        if field == 1 and wire == 2:
            nxt, pos = _read_len(data, pos, end)
            steps.append(_decode_feature(data, pos, nxt, None, []))
            pos = nxt
        elif field in (0, 1):
            raise _fail(f"FeatureList field {field} has wire type {wire}, expected 2", pos)
        else:
            pos = _skip(data, pos, end, field, wire)
    return steps


def _decode_feature_lists(data: bytes, pos: int, end: int, result: dict) -> None:
    """Parses FeatureLists: ``map<string, FeatureList> feature_list = 1``."""
    while pos < end:
        tag, pos = _read_varint(data, pos, end)
        field, wire = tag >> 3, tag & 7
        if field != 1 or wire != 2:
            if field in (0, 1):
                raise _fail(f"FeatureLists field {field} has wire type {wire}, expected 2", pos)
            pos = _skip(data, pos, end, field, wire)
            continue
        entry_end, pos = _read_len(data, pos, end)
        key, steps = "", []
        while pos < entry_end:
            tag, pos = _read_varint(data, pos, entry_end)
            field, wire = tag >> 3, tag & 7
            if field in (1, 2) and wire == 2:
                nxt, pos = _read_len(data, pos, entry_end)
                if field == 1:
                    try:
                        key = data[pos:nxt].decode("utf-8")
                    except UnicodeDecodeError:
                        raise _fail("feature list key is not valid UTF-8", pos) from None
                else:
                    steps = _decode_feature_list(data, pos, nxt)
                pos = nxt
            elif field in (0, 1, 2):
                raise _fail(f"feature list entry field {field} has wire type {wire}", pos)
            else:
                pos = _skip(data, pos, entry_end, field, wire)
        result[key] = steps


def decode_sequence_example(data: bytes) -> tuple[dict[str, tuple[str, list]],
                                                  dict[str, list[tuple[str, list]]]]:
    """Parses a serialized tf.train.SequenceExample into ``(context, feature_lists)``.

    `context` is shaped like `decode_example`'s result; `feature_lists` maps each key to
    its steps, one ``(kind, values)`` per step. An Example decodes as a SequenceExample
    with no feature lists (field 1 is ``Features`` in both messages).

    Example:
        >>> decode_sequence_example(encode_example({"id": ("bytes", [b"a"])}))
        ({'id': ('bytes', [b'a'])}, {})
    """
    if type(data) is not bytes:
        data = bytes(data)
    context: dict = {}
    lists: dict = {}
    pos, end = 0, len(data)
    while pos < end:
        tag, pos = _read_varint(data, pos, end)
        field, wire = tag >> 3, tag & 7
        if field in (1, 2):
            if wire != 2:
                raise _fail(f"SequenceExample field {field} has wire type {wire}, expected 2", pos)
            nxt, pos = _read_len(data, pos, end)
            (_decode_features if field == 1 else _decode_feature_lists)(data, pos, nxt,
                                                                         context if field == 1 else lists)
            pos = nxt
        elif field == 0:
            raise _fail("field number 0", pos)
        else:
            pos = _skip(data, pos, end, field, wire)
    return context, lists
