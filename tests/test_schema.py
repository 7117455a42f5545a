import numpy as np
import pandas as pd
import pytest

from tfrecordkit.errors import OptionError
from tfrecordkit.schema import (CLASS, INT, MULTI_LABEL, TARGET, Schema, build_schema,
                                class_vocabulary, encode_row, multi_label_vocabulary)


def frame():
    return pd.DataFrame({
        "id": ["a", "b", "c"], "animal": ["dog", "cat", "dog"], "digit": [3, 1, 3],
        "tags": ["haze primary", "clear", "primary  water"], "weight": [1.5, 2.25, 0.0],
        "count": [1, 2, 3], "flag": [True, False, True], "note": ["x", None, "z"],
        "gappy": [1.0, np.nan, 2.0]})


def test_kinds_and_vocabularies():
    s = build_schema(frame(), id_column="id", image_column="id",
                     label=("animal", "digit", "weight", "gappy"), multi_label=("tags",))
    kinds = {f.name: (f.kind, f.dtype, f.vocabulary) for f in s.features}
    assert kinds["animal"] == (CLASS, "int64", ("cat", "dog"))
    assert kinds["digit"] == (CLASS, "int64", (0, 1, 2, 3))   # the label is the integer itself
    assert kinds["weight"] == (TARGET, "float", ())
    assert kinds["gappy"] == (CLASS, "int64", (0, 1, 2))  # integers with a gap, read as floats
    assert kinds["tags"] == (MULTI_LABEL, "int64", ("clear", "haze", "primary", "water"))
    assert kinds["count"][:2] == (INT, "int64") and kinds["flag"][:2] == (INT, "int64")
    assert kinds["note"][:2] == ("bytes", "bytes")
    assert s.labels == ("animal", "digit", "weight", "gappy", "tags")


def test_encode_every_kind():
    f = frame()
    s = build_schema(f, id_column="id", image_column="id", label=("animal", "digit", "weight"),
                     multi_label=("tags",))
    row = encode_row(f.iloc[2].to_dict(), s)
    assert row["id"] == ("bytes", [b"c"])
    assert row["animal"] == ("int64", [1])
    assert row["digit"] == ("int64", [3])
    assert row["weight"] == ("float", [0.0])
    assert row["tags"] == ("int64", [2, 3])
    assert row["count"] == ("int64", [3]) and row["flag"] == ("int64", [1])
    assert row["note"] == ("bytes", [b"z"])
    assert encode_row(f.iloc[1].to_dict(), s)["note"] == ("bytes", [])   # missing: no value


def test_missing_label_is_an_error_not_a_class_called_nan():
    f = pd.DataFrame({"id": ["a", "b"], "animal": ["dog", None]})
    s = build_schema(f, id_column="id", image_column="id", label=("animal",))
    assert s["animal"].vocabulary == ("dog",)
    with pytest.raises(ValueError, match="label `animal` is missing"):
        encode_row(f.iloc[1].to_dict(), s)


def test_unknown_column_lists_existing():
    with pytest.raises(OptionError, match=r"`label` names column 'colour', which is not in the "
                                          r"table; the columns are: id, animal, digit"):
        build_schema(frame(), id_column="id", image_column="id", label=("colour",))
    with pytest.raises(OptionError, match="`id_column` names column 'name'"):
        build_schema(frame(), id_column="name", image_column="name")


def test_columns_selection_and_json_round_trip():
    s = build_schema(frame(), id_column="id", image_column="id", label=("animal",),
                     columns=("count",))
    assert [f.name for f in s.features] == ["id", "animal", "count"]
    back = Schema.from_json(s.to_json())
    assert back == s and back.index["animal"] == {"cat": 0, "dog": 1}
    assert s.to_json()["features"]["image/encoded"]["dtype"] == "bytes"


def test_vocabulary_helpers():
    assert class_vocabulary(pd.Series([10, 2, 2])) == tuple(range(11))
    assert class_vocabulary(pd.Series([10, 2, 2]), 500) == tuple(range(500))
    assert class_vocabulary(pd.Series(["b", " a", None, ""])) == ("a", "b")
    assert multi_label_vocabulary(pd.Series(["x,y", "y", None]), ",") == ("x", "y")


def test_prepare_labels_canonical_cells_and_bad_rows():
    from tfrecordkit.schema import prepare_labels

    f = pd.DataFrame({"id": list("abcde"), "y": ["1", 2.0, "cat", "01", None],
                      "n": [0, 4, 3, 7, 1], "tags": ["['x', 'y']", '["y"]', "x, y", None, ("z",)],
                      "hot_a": [1, 0, True, "1", 0], "hot_b": [0, 1, 1, "x", 0]})
    out, bad, text = prepare_labels(f, label=("y", "n"), multi_label=("tags",), num_classes={"n": 5},
                              one_hot={"hot": ("hot_a", "hot_b")})
    assert out["y"].tolist() == ["1", "2", "cat", "1", None]
    assert out["n"].tolist() == [0, 4, 3, 7, 1]
    assert out["tags"].tolist() == [("x", "y"), ("y",), (), (), ("z",)]
    assert out["hot"].tolist() == [("hot_a",), ("hot_b",), ("hot_a", "hot_b"), ("hot_a",), ()]
    assert [row for row, _ in bad] == [2, 3] and text == ("y",)
    assert "multi-label `tags` token 'x,' still holds list syntax" in bad[0][1]
    assert bad[1][1] == "label `n` value 7 is not a class in 0..4 (num_classes n=5)"
    assert f["tags"][0] == "['x', 'y']"                       # the caller's frame is untouched
    s = build_schema(out.drop(index=[2, 3]), id_column="id", image_column="id",
                     label=("y", "n"), multi_label=("tags",), num_classes={"n": 5},
                     one_hot={"hot": ("hot_a", "hot_b")}, text_labels=text)
    assert s["y"].vocabulary == ("1", "2") and s["n"].vocabulary == (0, 1, 2, 3, 4)
    assert s["hot"].vocabulary == ("hot_a", "hot_b") and s.labels == ("y", "n", "tags", "hot")
    assert [f.name for f in s.features] == ["id", "y", "n", "tags", "hot"]   # hot_a/hot_b consumed
    assert encode_row({"id": "a", "y": 1, "n": 4, "tags": "['y']", "hot": ("hot_b",)}, s) == {
        "id": ("bytes", [b"a"]), "y": ("int64", [0]), "n": ("int64", [4]),
        "tags": ("int64", [1]), "hot": ("int64", [1])}
    with pytest.raises(ValueError, match=r"label `n` value 5 is not a class in 0..4"):
        encode_row({"id": "a", "y": 1, "n": 5, "tags": "", "hot": ()}, s)


def test_integer_class_column_too_wide_is_refused():
    f = pd.DataFrame({"id": ["a", "b"], "user": [12, 3_000_000]})
    with pytest.raises(OptionError, match=r"Class column `user` holds integers up to 3000000"):
        build_schema(f, id_column="id", image_column="id", label=("user",))
