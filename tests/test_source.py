import os

import pandas as pd
import pytest

from tfrecordkit.errors import OptionError
from tfrecordkit.source import list_folder, read_table, resolve_image


def test_read_table_keeps_ids_as_text(tmp_path):
    (tmp_path / "l.csv").write_text("image_id,label\n00123,cat\n00007,dog\n")
    frame = read_table(tmp_path / "l.csv")
    assert frame["image_id"].tolist() == ["00123", "00007"]
    with pytest.raises(OptionError, match="is not a table tfrecordkit reads"):
        read_table(tmp_path / "l.json")


def test_read_parquet(tmp_path):
    pd.DataFrame({"id": ["a"], "y": [1]}).to_parquet(tmp_path / "l.parquet")
    assert read_table(tmp_path / "l.parquet").to_dict("records") == [{"id": "a", "y": 1}]


def test_list_folder(folder):
    frame = list_folder(folder)
    assert len(frame) == 24
    assert frame.iloc[0].to_dict() == {"id": "Blue/0.png", "label": "Blue"}
    assert sorted(frame["label"].unique()) == ["Blue", "Green", "Red"]


def test_resolve_image(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.png").write_bytes(b"x")
    root = str(tmp_path)
    assert resolve_image(root, "a", ".jpg") == (os.path.join(root, "a.jpg"), "a.jpg")
    assert resolve_image(root, "a.jpg", ".jpg")[1] == "a.jpg"     # id with or without extension
    assert resolve_image(root, "sub/b", None)[1] == "sub/b.png"   # extension found by trying
    with pytest.raises(ValueError, match="is absolute"):
        resolve_image(root, "/etc/passwd", None)
    with pytest.raises(ValueError, match="leads outside the image root"):
        resolve_image(root, "../x.jpg", None)
    with pytest.raises(ValueError, match="image path is empty"):
        resolve_image(root, float("nan"), None)
    os.symlink("/etc/hostname", tmp_path / "link.jpg")
    with pytest.raises(ValueError, match="resolves outside the image root"):
        resolve_image(root, "link.jpg", None)


def test_resolve_image_unicode_forms_and_nul(tmp_path):
    import unicodedata

    nfd = unicodedata.normalize("NFD", "café.png")
    (tmp_path / nfd).write_bytes(b"x")
    path, rel = resolve_image(str(tmp_path), unicodedata.normalize("NFC", "café"), None)
    assert rel == nfd
    assert path == os.path.join(str(tmp_path), nfd)
    with pytest.raises(ValueError, match="contains a NUL character"):
        resolve_image(str(tmp_path), "a\x00b.png", None)


def test_sniff_separator():
    from tfrecordkit.source import sniff_separator

    assert sniff_separator("image_id;digit;tags\na;1;x y\n") == ";"
    assert sniff_separator("image_id\tdigit\na\t1\n") == "\t"
    assert sniff_separator("a|b\n1|2\n") == "|"
    assert sniff_separator("id,tags\na,x;y\nb,z\n") == ","      # ; only inside cells: not a separator
    assert sniff_separator("id\na\n") == ","                      # one column


def test_read_table_sep_encoding_and_parquet_options(tmp_path):
    (tmp_path / "l.csv").write_bytes("id|label\n00123|é\n".encode("latin-1"))
    frame = read_table(tmp_path / "l.csv", sep="|", encoding="latin-1")
    assert frame.to_dict("records") == [{"id": "00123", "label": "é"}]
    pd.DataFrame({"id": ["a"]}).to_parquet(tmp_path / "l.parquet")
    with pytest.raises(OptionError, match="`sep` and `encoding` apply to CSV tables"):
        read_table(tmp_path / "l.parquet", sep=";")


def test_resolve_image_uses_names_as_written(tmp_path):
    (tmp_path / " a.jpg").write_bytes(b"x")
    (tmp_path / "b.jpg ").write_bytes(b"x")
    root = str(tmp_path)
    assert resolve_image(root, " a.jpg", None) == (os.path.join(root, " a.jpg"), " a.jpg")
    assert resolve_image(root, "b.jpg ", None)[1] == "b.jpg "
    assert resolve_image(root, "./ a", ".jpg")[1] == " a.jpg"
    with pytest.raises(ValueError, match="image path is empty"):
        resolve_image(root, "   ", None)


def test_read_table_decimal_commas_beside_semicolons(tmp_path, caplog):
    # A European spreadsheet's CSV: ';' between columns, ',' before decimals. Its numbers
    # must come back as numbers, not as text (a float target would become a class label).
    (tmp_path / "l.csv").write_text("id;score;x;tags;code\n"
                                    "001;0,75;1,5;1,2;7\n002;-1,25;2;3;8\n003;;,5;1,4;9\n")
    with caplog.at_level("INFO", logger="tfrecordkit"):
        frame = read_table(tmp_path / "l.csv", string_columns=("tags",))
    assert frame["id"].tolist() == ["001", "002", "003"]
    assert frame["score"].tolist()[:2] == [0.75, -1.25] and pd.isna(frame["score"][2])
    assert frame["x"].tolist() == [1.5, 2.0, 0.5]
    assert frame["tags"].tolist() == ["1,2", "3", "1,4"]       # declared text: left alone
    assert frame["code"].tolist() == [7, 8, 9]
    assert "decimal comma" in caplog.text and "score, x" in caplog.text


def test_read_table_keeps_commas_that_are_not_decimals(tmp_path):
    (tmp_path / "l.csv").write_text("id;label;pair\na;1,000,5;cat\nb;2,5;dog,1\n")
    frame = read_table(tmp_path / "l.csv")
    assert frame["label"].tolist() == ["1,000,5", "2,5"]          # not every value a number
    assert frame["pair"].tolist() == ["cat", "dog,1"]
    (tmp_path / "c.csv").write_text('id,score\na,"0,5"\n')        # ',' separator: no guessing
    assert read_table(tmp_path / "c.csv")["score"].tolist() == ["0,5"]
