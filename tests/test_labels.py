"""Label tables as Kaggle ships them: every label right record by record, or one sentence."""
import ast
import json
import logging

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import tfrecordkit as tfk
from tfrecordkit.cli import main
from tfrecordkit.errors import OptionError, SourceError
from tfrecordkit.example import decode_example
from tfrecordkit.options import WriteOptions
from tfrecordkit.records import iter_records
from tfrecordkit.schema import class_value, parse_multi_label

WEATHER = ["clear", "haze", "partly cloudy"]
GROUND = ["primary", "water", "road"]


def _images(root, names, size=(6, 5)):
    root.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        pixels = np.full((*size, 3), (k * 37) % 256, np.uint8)
        Image.fromarray(pixels).save(root / name, "PNG")
    return root


def _labels(out, name):
    """id -> the stored labels of `name` as vocabulary values, read without TensorFlow."""
    manifest = tfk.load_manifest(out)
    vocab = manifest.vocabularies.get(name)
    got = {}
    for file in manifest.files:
        for record in iter_records(file):
            example = decode_example(record.data)
            ids = example[manifest.schema.id_column][1][0].decode()
            values = example[name][1]
            got[ids] = [vocab[i] for i in values] if vocab is not None else values
    return got


def _planet(tmp_path, encode):
    rng = np.random.default_rng(0)
    cells = []
    for i in range(12):
        weather = [str(w) for w in rng.choice(WEATHER, i % 2, replace=False)]   # [] included
        ground = [str(g) for g in rng.choice(GROUND, 1 + i % 3, replace=False)]
        cells.append((f"train_{i}", encode(weather), encode(ground)))
    frame = pd.DataFrame(cells, columns=["image_name", "weather_labels", "ground_labels"])
    frame.to_csv(tmp_path / "planet.csv", index=False)
    _images(tmp_path / "jpg", [f"train_{i}.png" for i in range(12)])
    return frame


@pytest.mark.parametrize("encode, parse", [(repr, ast.literal_eval), (json.dumps, json.loads)],
                         ids=["python-list", "json-list"])
def test_list_cells_convert_to_their_own_labels(tmp_path, capsys, encode, parse):
    frame = _planet(tmp_path, encode)
    out = tmp_path / "planet"
    code = main(["convert", str(tmp_path / "planet.csv"), str(out), "--images", str(tmp_path / "jpg"),
                 "--ext", ".png", "--multi-label", "weather_labels", "--multi-label",
                 "ground_labels", "--jobs", "1", "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert tfk.load_manifest(out).vocabularies["weather_labels"] == sorted(WEATHER)
    for column in ("weather_labels", "ground_labels"):
        got = _labels(out, column)
        assert len(got) == len(frame)
        for name, cell in zip(frame["image_name"], frame[column]):
            assert sorted(got[name]) == sorted(parse(cell)), (name, cell)


def test_real_lists_tuples_and_arrays_in_frame_cells(tmp_path):
    root = _images(tmp_path / "img", ["a.png", "b.png", "c.png", "d.png"])
    frame = pd.DataFrame({"id": ["a.png", "b.png", "c.png", "d.png"],
                          "tags": [["haze", "primary"], ("clear",), np.array(["water", "haze"]), []]})
    tfk.write_frame(frame, tmp_path / "out", images=root, multi_label="tags", jobs=1, progress=False)
    got = _labels(tmp_path / "out", "tags")
    assert {k: sorted(v) for k, v in got.items()} == {
        "a.png": ["haze", "primary"], "b.png": ["clear"], "c.png": ["haze", "water"], "d.png": []}


def test_token_with_list_syntax_is_a_bad_row(tmp_path, capsys):
    root = _images(tmp_path / "img", [f"{i}.png" for i in range(4)])
    (tmp_path / "t.csv").write_text('id,tags\n0.png,haze primary\n1.png,"haze, primary"\n'
                                    "2.png,['clear'\n3.png,clear\n")
    argv = ["convert", str(tmp_path / "t.csv"), str(tmp_path / "out"), "--images", str(root),
            "--multi-label", "tags", "--jobs", "1", "--quiet"]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "row 1 (id '1.png')" in err and "token 'haze,' still holds list syntax" in err
    assert not (tmp_path / "out").exists()
    assert main(argv + ["--on-error", "skip"]) == 0
    errors = pd.read_csv(tmp_path / "out" / "errors.csv")
    assert errors["row"].tolist() == [1, 2]
    assert "token \"['clear'\" still holds list syntax" in errors["reason"][1]
    assert _labels(tmp_path / "out", "tags") == {"0.png": ["haze", "primary"], "3.png": ["clear"]}
    assert tfk.load_manifest(tmp_path / "out").vocabularies["tags"] == ["clear", "haze", "primary"]


def test_parse_multi_label_cells():
    assert parse_multi_label("['haze', 'primary']") == ("haze", "primary")
    assert parse_multi_label('["haze","primary"]') == ("haze", "primary")
    assert parse_multi_label("[]") == () and parse_multi_label(None) == () and parse_multi_label("") == ()
    assert parse_multi_label("haze, primary", ", ") == ("haze", "primary")
    assert parse_multi_label("[1, 2.0]") == ("1", "2")
    assert parse_multi_label("haze haze primary") == ("haze", "primary")
    with pytest.raises(ValueError, match="neither a Python nor a JSON list"):
        parse_multi_label("[__import__('os').system('true')]")
    with pytest.raises(ValueError, match="nested list"):
        parse_multi_label("[['a']]")


def test_one_hot_columns_become_one_multi_label(tmp_path, capsys):
    root = _images(tmp_path / "img", [f"{i}.png" for i in range(4)])
    frame = pd.DataFrame({"id": [f"{i}.png" for i in range(4)], "haze": [1, 0, 1, 0],
                          "clear": [True, False, False, True], "road": ["0", "1", "1", "0"],
                          "note": list("wxyz")})
    frame.to_csv(tmp_path / "wide.csv", index=False)
    out = tmp_path / "out"
    assert main(["convert", str(tmp_path / "wide.csv"), str(out), "--images", str(root),
                 "--one-hot", "sky=haze,clear,road", "--jobs", "1", "--quiet"]) == 0
    manifest = tfk.load_manifest(out)
    assert manifest.vocabularies["sky"] == ["haze", "clear", "road"]     # the columns, in order
    assert manifest.schema.labels == ("sky",)
    assert {f.name for f in manifest.schema.features} == {"id", "sky", "note"}
    assert {k: sorted(v) for k, v in _labels(out, "sky").items()} == {
        "0.png": ["clear", "haze"], "1.png": ["road"], "2.png": ["haze", "road"], "3.png": ["clear"]}

    frame.loc[2, "haze"] = 2
    with pytest.raises(SourceError, match=r"row 2 \(id '2.png'\).*one-hot column `haze` \(of "
                                          r"`sky`\): value 2 is not 0/1 or True/False"):
        tfk.write_frame(frame, tmp_path / "bad", images=root, one_hot={"sky": ["haze", "clear"]},
                        jobs=1, progress=False)
    assert not (tmp_path / "bad").exists()
    m = tfk.write_frame(frame, tmp_path / "skip", images=root, one_hot={"sky": ["haze", "clear"]},
                        on_error="skip", jobs=1, progress=False)
    assert (m.records, m.skipped) == (3, 1)


def test_integer_classes_keep_their_numbers(tmp_path):
    import tensorflow as tf

    names = [f"{i}.png" for i in range(8)]
    root = _images(tmp_path / "img", names)
    y0 = [186, 3, 499, 17, 186, 3, 0, 42]
    pd.DataFrame({"name": names, "y0": y0}).to_csv(tmp_path / "y.csv", index=False)
    out = tmp_path / "out"
    m = tfk.convert(tmp_path / "y.csv", out, images=root, label="y0", jobs=1, progress=False)
    assert m.vocabularies["y0"] == list(range(500))
    assert _labels(out, "y0") == {n: [y] for n, y in zip(names, y0)}
    ds = tfk.read(out, batch_size=None, shuffle=False, label="y0")
    read_back = [int(y) for _, y in ds.as_numpy_iterator()]
    by_name = dict(zip(names, y0))
    order = list(_labels(out, "y0"))
    assert read_back == [by_name[n] for n in order]

    out500 = tmp_path / "out500"
    main(["convert", str(tmp_path / "y.csv"), str(out500), "--images", str(root), "--label", "y0",
          "--num-classes", "y0=500", "--jobs", "1", "--quiet"])
    images, labels = next(iter(tfk.read(out500, batch_size=8, shuffle=False, label_mode="categorical")))
    assert labels.shape == (8, 500) and labels.dtype == tf.float32
    order = list(_labels(out500, "y0"))   # this dataset's own write order
    assert np.argmax(labels.numpy(), axis=1).tolist() == [by_name[n] for n in order]
    assert float(tf.reduce_sum(labels)) == 8.0


def test_integer_classes_out_of_range_are_bad_rows(tmp_path):
    names = [f"{i}.png" for i in range(4)]
    root = _images(tmp_path / "img", names)
    frame = pd.DataFrame({"name": names, "y0": [1, 9, 2, -1]})
    with pytest.raises(SourceError, match=r"row 1 \(id '1.png'\): label `y0` value 9 is not a "
                                          r"class in 0..4 \(num_classes y0=5\)"):
        tfk.write_frame(frame, tmp_path / "o", images=root, label="y0", num_classes={"y0": 5},
                        jobs=1, progress=False)
    m = tfk.write_frame(frame, tmp_path / "o", images=root, label="y0", num_classes="y0=5",
                        on_error="skip", jobs=1, progress=False)
    assert (m.records, m.skipped, m.vocabularies["y0"]) == (2, 2, [0, 1, 2, 3, 4])
    reasons = pd.read_csv(tmp_path / "o" / "errors.csv")["reason"].tolist()
    assert "value -1 is not a class in 0..4" in reasons[1]
    m = tfk.write_frame(frame, tmp_path / "o2", images=root, label="y0", on_error="skip",
                        jobs=1, progress=False)
    assert (m.records, m.vocabularies["y0"]) == (3, list(range(10)))
    assert "value -1 is negative" in pd.read_csv(tmp_path / "o2" / "errors.csv")["reason"][0]


def test_categorical_is_honoured_or_refused(tmp_path, table):
    frame, root = table
    out = tmp_path / "out"
    tfk.write_frame(frame, out, images=root, label="colour", jobs=1, progress=False)
    _, labels = next(iter(tfk.read(out, batch_size=4, image_size=8, label_mode="categorical")))
    assert labels.shape == (4, 3)
    with pytest.raises(OptionError, match=r"`label_mode=\"categorical\"` one-hots a class label "
                                          r"over its vocabulary, and 'count' .* has none"):
        tfk.read(out, batch_size=4, image_size=8, label="count", label_mode="categorical")
    with pytest.raises(OptionError, match="'score'"):
        tfk.read(out, batch_size=4, image_size=8, label="score", label_mode="categorical")


def test_mixed_class_column_reads_alike_from_csv_and_frame(tmp_path):
    values = [1, "cat", 2, "dog", "01", "2.0", "1", " cat"]
    names = [f"{i}.png" for i in range(len(values))]
    root = _images(tmp_path / "img", names)
    frame = pd.DataFrame({"name": names, "y": values})
    frame.to_csv(tmp_path / "m.csv", index=False)
    a = tfk.convert(tmp_path / "m.csv", tmp_path / "a", images=root, label="y", jobs=1, progress=False)
    b = tfk.write_frame(frame, tmp_path / "b", images=root, label="y", jobs=1, progress=False)
    expect = dict(zip(names, [["1"], ["cat"], ["2"], ["dog"], ["1"], ["2"], ["1"], ["cat"]]))
    for m in (a, b):
        assert (m.records, m.skipped) == (len(values), 0)
        assert m.vocabularies["y"] == ["1", "2", "cat", "dog"]
        assert _labels(m.directory, "y") == expect
    assert [class_value(v) for v in (1, "01", "2.0", 2.0, "2.5", " cat ", None, True)] == \
        [1, 1, 2, 2, "2.5", "cat", None, True]


def test_folder_class_names_stay_text(tmp_path):
    root = tmp_path / "classes"
    _images(root / "01", ["a.png"])
    _images(root / "1", ["b.png"])
    m = tfk.write_folder(root, tmp_path / "out", jobs=1, progress=False)
    assert m.vocabularies["label"] == ["01", "1"]
    with pytest.raises(OptionError, match=r"`num_classes` names 'label', which holds class names"):
        tfk.write_folder(root, tmp_path / "o2", num_classes={"label": 2}, progress=False)


@pytest.mark.parametrize("sep", [";", "\t", "|"], ids=["semicolon", "tab", "pipe"])
def test_separator_is_sniffed(tmp_path, capsys, sep):
    names = [f"{i}.png" for i in range(4)]
    root = _images(tmp_path / "img", names)
    frame = pd.DataFrame({"image_id": names, "digit": [3, 1, 3, 0], "tags": ["a b", "b", "", "a"]})
    frame.to_csv(tmp_path / "labels.csv", index=False, sep=sep)
    out = tmp_path / "out"
    assert main(["convert", str(tmp_path / "labels.csv"), str(out), "--images", str(root),
                 "--label", "digit", "--multi-label", "tags", "--jobs", "1", "--quiet"]) == 0
    assert _labels(out, "digit") == {n: [d] for n, d in zip(names, frame["digit"])}
    assert sorted(_labels(out, "tags")["0.png"]) == ["a", "b"]
    # Told explicitly, the same; told wrong, one sentence about the missing column.
    assert main(["convert", str(tmp_path / "labels.csv"), str(tmp_path / "o2"), "--images",
                 str(root), "--label", "digit", "--sep", sep, "--jobs", "1", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["convert", str(tmp_path / "labels.csv"), str(tmp_path / "o3"), "--images",
                 str(root), "--label", "digit", "--sep", ",", "--quiet"]) == 2
    assert "`label` names column 'digit', which is not in the table" in capsys.readouterr().err


def test_decimal_comma_table(tmp_path):
    # Saved by a spreadsheet in a European locale: ';' between columns, ',' before decimals.
    # The score is a numeric target (not a class per spelling), the tags stay a list.
    names = [f"{i}.png" for i in range(3)]
    root = _images(tmp_path / "img", names)
    (tmp_path / "labels.csv").write_text("image_id;score;tags\n0.png;0,75;1,2\n"
                                         "1.png;1,5;2\n2.png;-2;1,3\n")
    out = tmp_path / "out"
    assert main(["convert", str(tmp_path / "labels.csv"), str(out), "--images", str(root),
                 "--label", "score", "--multi-label", "tags", "--multi-label-sep", ",",
                 "--jobs", "1", "--quiet"]) == 0
    assert tfk.load_manifest(out).schema["score"].kind == "target"
    assert {k: list(v) for k, v in _labels(out, "score").items()} == {
        "0.png": [0.75], "1.png": [1.5], "2.png": [-2.0]}
    assert sorted(_labels(out, "tags")["0.png"]) == ["1", "2"]


def test_latin1_table(tmp_path, capsys, caplog):
    caplog.set_level(logging.INFO, logger="tfrecordkit")
    root = _images(tmp_path / "img", ["a.png", "b.png"])
    (tmp_path / "l.csv").write_bytes("id,label\na.png,café\nb.png,naïve\n".encode("cp1252"))
    m = tfk.convert(tmp_path / "l.csv", tmp_path / "out", images=root, label="label", jobs=1,
                    progress=False)
    assert m.vocabularies["label"] == ["café", "naïve"]
    assert "is not UTF-8 (byte 0xe9 at offset 18); read it as cp1252" in caplog.text
    code = main(["convert", str(tmp_path / "l.csv"), str(tmp_path / "o2"), "--images", str(root),
                 "--label", "label", "--encoding", "utf-8", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "is not valid utf-8 text (byte 0xe9 at offset 18); pass its encoding with --encoding" in err
    m = tfk.convert(tmp_path / "l.csv", tmp_path / "o3", images=root, label="label",
                    encoding="latin-1", jobs=1, progress=False)
    assert m.vocabularies["label"] == ["café", "naïve"]


@pytest.mark.parametrize("name, content, expect", [
    ("empty.csv", b"", r"'.*empty.csv' is empty"),
    ("ragged.csv", b"id,label\na,1\nb,2,3\n", r"'.*ragged.csv' does not parse as a table separated by "
                                              r"',' at line 3 \(Error tokenizing data"),
    ("quote.csv", b'id,label\na,"1\nb,2\n', r"'.*quote.csv' does not parse .* at row 1 \(.*EOF inside string"),
    ("table.parquet", b"id,label\na,1\n", r"'.*table.parquet' is not a Parquet file pandas can read"),
])
def test_unparseable_tables_get_one_sentence(tmp_path, capsys, name, content, expect):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(OptionError, match=expect) as info:
        tfk.convert(tmp_path / name, tmp_path / "out", images=tmp_path, progress=False)
    assert info.value.__cause__ is not None or name == "empty.csv"
    assert main(["convert", str(tmp_path / name), str(tmp_path / "out"), "--images", str(tmp_path)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_wrong_image_root_stops_before_any_work(tmp_path, capsys):
    names = [f"{i}.png" for i in range(60)]
    root = _images(tmp_path / "img", names[:1])
    pd.DataFrame({"image_id": [n[:-4] for n in names], "y": [1] * 60}).to_csv(tmp_path / "l.csv", index=False)
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    code = main(["convert", str(tmp_path / "l.csv"), str(out), "--images", str(tmp_path / "empty"),
                 "--ext", ".png", "--label", "y", "--on-error", "skip", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert ("None of the first 50 rows' images is in `images` (--images) "
            f"'{tmp_path / 'empty'}' (tried '{tmp_path / 'empty' / '0.png'}', with `ext` (--ext) "
            "'.png')") in err
    assert not out.exists()
    # The right root with one image present: the others are bad rows, as before.
    m = tfk.convert(tmp_path / "l.csv", out, images=root, ext=".png", label="y", on_error="skip",
                    jobs=1, progress=False)
    assert (m.records, m.skipped) == (1, 59)


def test_names_as_written_and_dot_slash_is_the_same_image(tmp_path):
    root = _images(tmp_path / "img", [" lead.png", "trail.png ", "a.png"])
    frame = pd.DataFrame({"id": [" lead.png", "trail.png ", "a.png", "./a.png"], "y": [0, 1, 0, 1]})
    m = tfk.write_frame(frame, tmp_path / "out", images=root, label="y", on_error="skip", jobs=1,
                        progress=False)
    assert (m.records, m.duplicates) == (3, 1)
    assert sorted(_labels(tmp_path / "out", "y")) == [" lead.png", "a.png", "trail.png "]
    errors = pd.read_csv(tmp_path / "out" / "errors.csv")
    assert errors["row"].tolist() == [3] and "the same id as row 2" in errors["reason"][0]
    with pytest.raises(SourceError, match=r"row 3 \(id './a.png'.*the same id as row 2"):
        tfk.write_frame(frame, tmp_path / "o2", images=root, label="y", jobs=1, progress=False)


def test_split_with_no_rows_is_refused_up_front(tmp_path):
    names = [f"{i}.png" for i in range(5)]
    root = _images(tmp_path / "img", names)
    frame = pd.DataFrame({"id": names, "y": [0, 1, 0, 1, 0]})
    with pytest.raises(OptionError, match=r"`split` gives 'test' no rows: 0.05 of 5 rows rounds "
                                          r"to 0; raise its fraction or leave it out"):
        tfk.write_frame(frame, tmp_path / "out", images=root, label="y",
                        split="train=0.85,val=0.1,test=0.05", progress=False)
    assert not (tmp_path / "out").exists()


def test_label_table_options_are_validated():
    opts = WriteOptions(label="y0", one_hot=["sky=haze,clear", "ground=road"],
                        num_classes=["y0=500"], sep="\\t", encoding="latin-1")
    assert opts.one_hot == {"sky": ("haze", "clear"), "ground": ("road",)}
    assert opts.num_classes == {"y0": 500} and opts.sep == "\t"
    assert opts.to_json()["one_hot"] == {"sky": ["haze", "clear"], "ground": ["road"]}
    with pytest.raises(OptionError, match="`num_classes` must be COL=N with N a positive integer"):
        WriteOptions(label="y0", num_classes="y0=0")
    with pytest.raises(OptionError, match=r"class columns also given as `label` \(--label y1\)"):
        WriteOptions(label="y0", num_classes={"y1": 3})
    with pytest.raises(OptionError, match="`encoding` must be a text encoding Python knows"):
        WriteOptions(encoding="klingon")
    with pytest.raises(OptionError, match="`one_hot` must be NAME=COL,COL"):
        WriteOptions(one_hot="sky")
