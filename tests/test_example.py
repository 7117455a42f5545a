"""Tests for tfrecordkit.example: tf.train.Example encode/decode without TensorFlow.

TensorFlow's own proto classes are the reference; the library never imports them.
"""
from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from tfrecordkit.example import decode_example, encode_example

tf = pytest.importorskip("tensorflow")

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

FEATURES = {
    "image": ("bytes", [b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40]),
    "names": ("bytes", [b"", b"a", "héllo".encode(), b"x" * 200]),
    "label": ("int64", [3]),
    "ints": ("int64", [0, 1, -1, 127, 128, 300, 2**31, -(2**31), 2**40, INT64_MIN, INT64_MAX]),
    "score": ("float", [0.0, -0.0, 0.5, -2.25, 1e-30, 3.4e38, math.inf, -math.inf]),
    "pi": ("float", [math.pi]),
    "no_ints": ("int64", []),
    "no_floats": ("float", []),
    "no_bytes": ("bytes", []),
    "ключ": ("int64", [7]),  # unicode key
    "e": ("int64", [1]),  # "e" is a prefix of "eb": ordering matters for byte-identity
    "eb": ("int64", [2]),
}


def f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


def expected_values(kind, values):
    if kind == "float":
        return [f32(v) for v in values]
    return list(values)


def tf_feature(kind, values):
    if kind == "bytes":
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
    if kind == "float":
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))
    if kind == "int64":
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    return tf.train.Feature()


def tf_example(features) -> "tf.train.Example":
    return tf.train.Example(
        features=tf.train.Features(feature={k: tf_feature(*v) for k, v in features.items()})
    )


def tf_values(feature) -> tuple:
    kind = feature.WhichOneof("kind")
    if kind is None:
        return None, []
    return {"bytes_list": "bytes", "float_list": "float", "int64_list": "int64"}[kind], list(
        getattr(feature, kind).value
    )


# --------------------------------------------------------------------------- round trip


def test_round_trip_every_kind():
    decoded = decode_example(encode_example(FEATURES))
    assert set(decoded) == set(FEATURES)
    for key, (kind, values) in FEATURES.items():
        got_kind, got = decoded[key]
        assert got_kind == kind, key
        assert got == expected_values(kind, values), key
        if kind == "int64":
            assert all(type(v) is int for v in got)
        if kind == "float":
            assert all(type(v) is float for v in got)


def test_round_trip_nan():
    (kind, values), = decode_example(encode_example({"x": ("float", [math.nan])})).values()
    assert kind == "float" and math.isnan(values[0])


def test_float32_precision():
    decoded = decode_example(encode_example({"x": ("float", [0.1, 1 / 3])}))
    assert decoded["x"] == ("float", [f32(0.1), f32(1 / 3)])
    assert decoded["x"][1][0] != 0.1  # stored as float32, not float64


def test_empty_example():
    data = encode_example({})
    assert data == tf_example({}).SerializeToString()
    assert decode_example(data) == {}
    assert decode_example(b"") == {}


def test_numpy_and_tuple_values():
    features = {
        "i": ("int64", np.array([1, -2, 3], dtype=np.int64)),
        "u": ("int64", np.array([4, 5], dtype=np.uint8)),
        "f": ("float", np.array([[0.5, 1.5], [2.5, 3.5]], dtype=np.float64)),  # flattened
        "b": ("bytes", np.array([b"ab", b"c"])),
        "t": ("int64", (1, 2)),
        "s": ("int64", [np.int64(9), np.int32(-9)]),
    }
    decoded = decode_example(encode_example(features))
    assert decoded == {
        "i": ("int64", [1, -2, 3]),
        "u": ("int64", [4, 5]),
        "f": ("float", [0.5, 1.5, 2.5, 3.5]),
        "b": ("bytes", [b"ab", b"c"]),
        "t": ("int64", [1, 2]),
        "s": ("int64", [9, -9]),
    }


def test_negative_int64_is_a_ten_byte_varint():
    data = encode_example({"x": ("int64", [-1])})
    assert b"\x0a\x0a" + b"\xff" * 9 + b"\x01" in data


def test_empty_list_is_a_present_empty_feature():
    data = encode_example({"x": ("int64", [])})
    # Example{Features{entry{key "x", value Feature{int64_list{}}}}}
    assert data == b"\x0a\x09\x0a\x07\x0a\x01x\x12\x02\x1a\x00"
    parsed = tf.train.Example.FromString(data)
    assert parsed.features.feature["x"].WhichOneof("kind") == "int64_list"


def test_feature_without_kind_round_trips():
    data = tf_example({"x": (None, [])}).SerializeToString()
    assert decode_example(data) == {"x": (None, [])}
    assert encode_example({"x": (None, [])}) == data


# --------------------------------------------------------------------------- TensorFlow agreement


def test_tf_parses_our_bytes_to_the_same_values():
    parsed = tf.train.Example.FromString(encode_example(FEATURES))
    feature_map = parsed.features.feature
    assert set(feature_map.keys()) == set(FEATURES)
    for key, (kind, values) in FEATURES.items():
        assert tf_values(feature_map[key]) == (kind, expected_values(kind, values)), key


def test_we_decode_tf_bytes_to_the_same_values():
    decoded = decode_example(tf_example(FEATURES).SerializeToString())
    for key, (kind, values) in FEATURES.items():
        assert decoded[key] == (kind, expected_values(kind, values)), key


def test_byte_identical_to_tf_deterministic_serialization():
    assert encode_example(FEATURES) == tf_example(FEATURES).SerializeToString(deterministic=True)


@pytest.mark.parametrize(
    "keys",
    [
        ["b", "a", "c"],
        ["e", "eb", "ea", "e\x00", "a", "E"],  # prefixes sort after their extensions in upb
        ["ä", "z", "\U0001f600", "\uffff", "aa", "a"],  # UTF-8 byte order, not UTF-16
        [f"k{i}" for i in range(30)],
    ],
)
def test_key_order_matches_tf(keys):
    features = {k: ("int64", [i]) for i, k in enumerate(keys)}
    assert encode_example(features) == tf_example(features).SerializeToString(deterministic=True)


def test_tf_parse_example_reads_our_bytes():
    data = encode_example({"image": ("bytes", [b"abc"]), "label": ("int64", [5]), "box": ("float", [0.25, 0.75])})
    parsed = tf.io.parse_single_example(
        data,
        {
            "image": tf.io.FixedLenFeature([], tf.string),
            "label": tf.io.FixedLenFeature([], tf.int64),
            "box": tf.io.FixedLenFeature([2], tf.float32),
        },
    )
    assert parsed["image"].numpy() == b"abc"
    assert parsed["label"].numpy() == 5
    assert parsed["box"].numpy().tolist() == [0.25, 0.75]


# --------------------------------------------------------------------------- other writers' encodings


def test_unpacked_repeated_fields_decode():
    int64_list = b"".join(b"\x08" + v for v in (b"\x05", b"\xff" * 9 + b"\x01", b"\xac\x02"))  # 5, -1, 300
    float_list = b"".join(b"\x0d" + struct.pack("<f", v) for v in (1.5, -2.0))
    feature_i = b"\x1a" + bytes([len(int64_list)]) + int64_list
    feature_f = b"\x12" + bytes([len(float_list)]) + float_list

    def entry(key: bytes, feature: bytes) -> bytes:
        body = b"\x0a" + bytes([len(key)]) + key + b"\x12" + bytes([len(feature)]) + feature
        return b"\x0a" + bytes([len(body)]) + body

    features = entry(b"i", feature_i) + entry(b"f", feature_f)
    data = b"\x0a" + bytes([len(features)]) + features
    expected = {"i": ("int64", [5, -1, 300]), "f": ("float", [1.5, -2.0])}
    assert decode_example(data) == expected
    parsed = tf.train.Example.FromString(data)  # protobuf agrees
    assert tf_values(parsed.features.feature["i"]) == expected["i"]
    assert tf_values(parsed.features.feature["f"]) == expected["f"]


def varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def msg(tag: int, body: bytes) -> bytes:
    """A length-delimited field with a one-byte tag."""
    return bytes([tag]) + varint(len(body)) + body


UNKNOWN = (
    b"\x78\x96\x01"  # field 15 varint
    + b"\x81\x01" + b"\x00" * 8  # field 16 fixed64
    + b"\x8a\x01\x03abc"  # field 17 length-delimited
    + b"\x95\x01" + b"\x00" * 4  # field 18 fixed32
    + b"\x9b\x01" + b"\x08\x01" + b"\x9c\x01"  # field 19 group holding a varint
)


def test_unknown_fields_are_skipped():
    int64_list = UNKNOWN + b"\x0a\x01\x07" + UNKNOWN
    feature = UNKNOWN + msg(0x1A, int64_list) + UNKNOWN
    entry = msg(0x0A, b"k") + msg(0x12, feature)
    data = UNKNOWN + msg(0x0A, UNKNOWN + msg(0x0A, entry) + UNKNOWN) + UNKNOWN
    assert decode_example(data) == {"k": ("int64", [7])}
    assert tf_values(tf.train.Example.FromString(data).features.feature["k"]) == ("int64", [7])


def test_unknown_fields_inside_a_map_entry_are_skipped():
    # upb (Python protobuf) moves a map entry with unknown fields into the parent's
    # unknown fields, so TF's Python proto shows no feature here; C++ protobuf and we
    # keep the entry and skip the unknown field.
    entry = msg(0x0A, b"k") + UNKNOWN + msg(0x12, b"\x1a\x03\x0a\x01\x07")
    data = msg(0x0A, msg(0x0A, entry))
    assert decode_example(data) == {"k": ("int64", [7])}


def test_repeated_key_and_merged_lists_follow_protobuf():
    one = encode_example({"k": ("int64", [1])})
    two = encode_example({"k": ("int64", [2])})
    # Concatenated messages merge; a repeated map key keeps the last value.
    assert decode_example(one + two) == {"k": ("int64", [2])}
    assert tf_values(tf.train.Example.FromString(one + two).features.feature["k"]) == ("int64", [2])


# --------------------------------------------------------------------------- errors


def test_bad_kind():
    with pytest.raises(ValueError, match=r"feature `x`: unknown kind 'string'"):
        encode_example({"x": ("string", [b"a"])})


@pytest.mark.parametrize("value", [2**63, 2**70, -(2**63) - 1])
def test_int64_overflow(value):
    with pytest.raises(ValueError, match=rf"feature `label`: value {value} does not fit in int64"):
        encode_example({"label": ("int64", [value])})


@pytest.mark.parametrize(
    "spec, message",
    [
        (("int64", [1.5]), r"feature `x`: int64 values must be integers, got float"),
        (("int64", [True]), r"feature `x`: int64 values must be integers, got bool"),
        (("int64", 5), r"feature `x`: values must be a list, got a single int"),
        (("bytes", b"abc"), r"feature `x`: values must be a list, got a single bytes"),
        (("bytes", ["abc"]), r"feature `x`: bytes values must be bytes, got str .*encode it first"),
        (("float", ["a"]), r"feature `x`: float values must be real numbers"),
        (("float", [10**400]), r"feature `x`: float values must be real numbers"),
        (("int64",), r"feature `x`: expected a \(kind, values\) pair"),
        ((None, [1]), r"feature `x`: kind None cannot hold values"),
    ],
)
def test_bad_values(spec, message):
    with pytest.raises(ValueError, match=message):
        encode_example({"x": spec})


def test_bad_key():
    with pytest.raises(ValueError, match=r"feature key 1 must be a str"):
        encode_example({1: ("int64", [1])})


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x0a", r"truncated varint"),
        (b"\x0a\x05\x0a\x03", r"length 5 runs past the end"),
        (b"\x08\x01", r"Example.features has wire type 0"),
        (b"\x0a\x02\x08\x01", r"Features.feature has wire type 0"),
        (b"\x0a\x04\x0a\x02\x12\x05", r"length 5 runs past the end"),
        (b"\x0a\x06\x0a\x04\x12\x02\x1a\x05", r"length 5 runs past the end"),
        (b"\x0a\x06\x0a\x04\x12\x02\x18\x01", r"Feature field 3 has wire type 0"),
        (msg(0x0A, msg(0x0A, msg(0x12, msg(0x12, msg(0x0A, b"abc"))))), r"not a multiple of 4"),
        (msg(0x0A, msg(0x0A, msg(0x12, msg(0x12, b"\x0d\x00\x00")))), r"truncated float"),
        (msg(0x0A, msg(0x0A, msg(0x12, msg(0x12, b"\x08\x01")))), r"FloatList.value has wire type 0"),
        (msg(0x0A, msg(0x0A, msg(0x12, msg(0x1A, b"\x0d\x00\x00\x00\x00")))), r"Int64List.value has wire type 5"),
        (msg(0x0A, msg(0x0A, b"\x08\x01")), r"map entry field 1 has wire type 0"),
        (msg(0x0A, b"\x00"), r"field number 0"),
        (b"\x1b\x08\x01\x24", r"mismatched end-group tag"),
        (b"\x0a\x08\x0a\x06\x12\x04\x0a\x02\x08\x01", r"BytesList.value has wire type 0"),
        (b"\x0a\x0b\x0a\x09\x12\x07\x1a\x05\x0a\x03\x80\x80\x80", r"truncated varint"),
        (b"\x0a\x05\x0a\x03\x0a\x01\xff", r"key is not valid UTF-8"),
        (b"\x0a\x0b" + b"\xff" * 11, r"varint longer than 10 bytes"),
        (b"\x17", r"invalid wire type 7"),
    ],
)
def test_malformed_bytes(data, message):
    with pytest.raises(ValueError, match=r"^not a tf.train.Example: .*" + message):
        decode_example(data)


def test_random_garbage_never_raises_anything_but_value_error():
    rng = np.random.default_rng(0)
    good = encode_example(FEATURES)
    for i in range(2000):
        data = bytearray(good)
        for pos in rng.integers(0, len(data), size=3):
            data[pos] = rng.integers(0, 256)
        cut = bytes(data[: rng.integers(0, len(data) + 1)])
        try:
            decode_example(cut)
        except ValueError as e:
            assert str(e).startswith("not a tf.train.Example: ")
