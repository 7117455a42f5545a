import json
import os
import subprocess
import sys

import pandas as pd
import pytest

import tfrecordkit as tfk
from tfrecordkit.cli import main


@pytest.fixture
def csv(tmp_path, table):
    frame, images = table
    frame = frame.assign(image_name=frame["image_name"].str.replace(r"\.(jpg|png)$", "", regex=True))
    frame.to_csv(tmp_path / "labels.csv", index=False)
    return tmp_path / "labels.csv", images


def test_convert_csv(tmp_path, csv, capsys):
    path, images = csv
    code = main(["convert", str(path), str(tmp_path / "out"), "--images", str(images),
                 "--label", "colour", "--multi-label", "tags", "--split", "train=0.8,val=0.2",
                 "--seed", "3", "--num-shards", "2", "--quiet", "--jobs", "2"])
    assert code == 0
    out = capsys.readouterr().out
    assert f"wrote 30 records in 4 shards to {tmp_path / 'out'} (train: 24, val: 6)" in out
    m = tfk.load_manifest(tmp_path / "out", "train")
    assert m.options["seed"] == 3 and m.schema.labels == ("colour", "tags")


def test_convert_folder_with_resize_and_gzip(tmp_path, folder, capsys):
    code = main(["convert", str(folder), str(tmp_path / "out"), "--image-size", "8x12",
                 "--image-format", "jpeg", "--compression", "gzip", "--quiet"])
    assert code == 0
    m = tfk.load_manifest(tmp_path / "out")
    assert m.records == 24 and m.image["size"] == [8, 12] and m.compression == "gzip"
    assert m.vocabularies == {"label": ["Blue", "Green", "Red"]}


def test_bad_arguments_exit_2_with_one_sentence(tmp_path, csv, capsys):
    path, images = csv
    code = main(["convert", str(path), str(tmp_path / "out"), "--images", str(images),
                 "--label", "colr"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err == ("tfrecordkit: error: `label` names column 'colr', which is not in the table; "
                   "the columns are: image_name, colour, tags, score, count, note.")
    with pytest.raises(SystemExit) as exit_info:
        main(["convert", str(path), "out", "--resize-mode", "squash"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "invalid choice: 'squash'" in err
    assert main(["convert", str(path), str(tmp_path / "o2")]) == 2
    assert "`images` (--images DIR) is required" in capsys.readouterr().err


def test_bad_row_exits_1_and_skip_reports(tmp_path, csv, capsys):
    path, images = csv
    os.remove(images / "img_004.png")
    args = ["convert", str(path), str(tmp_path / "out"), "--images", str(images), "--quiet"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "row 4 (id 'img_004'" in err and "file not found" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "dataset.json").exists()
    assert main(["convert", str(path), str(tmp_path / "out2"), "--images", str(images), "--quiet",
                 "--on-error", "skip"]) == 0
    assert "skipped 1 of 30 rows (see " in capsys.readouterr().out
    assert pd.read_csv(tmp_path / "out2" / "errors.csv")["row"].tolist() == [4]


def test_verify_and_index(tmp_path, csv, capsys):
    path, images = csv
    main(["convert", str(path), str(tmp_path / "out"), "--images", str(images), "--quiet",
          "--num-shards", "1", "--no-shuffle"])
    shard = tfk.load_manifest(tmp_path / "out").files[0]
    assert main(["verify", str(tmp_path / "out"), "--decode-images"]) == 0
    assert "30 records ok in 1 files; clean" in capsys.readouterr().out
    lines = open(shard + ".idx").read().splitlines()
    offset = int(lines[3].split()[0])
    data = bytearray(open(shard, "rb").read())
    data[offset + 40] ^= 0xFF
    open(shard, "wb").write(bytes(data))
    assert main(["verify", shard, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["records_ok"] == 29
    assert report["corrupt"] == [{"file": shard, "record": 3, "offset": offset,
                                  "reason": "data CRC mismatch"}]
    os.remove(shard + ".idx")
    assert main(["index", str(tmp_path / "out")]) == 0
    assert open(shard + ".idx").read().splitlines() == lines


def test_module_entry_point_help_is_fast_and_clean():
    result = subprocess.run([sys.executable, "-m", "tfrecordkit", "--help"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and "convert" in result.stdout and "verify" in result.stdout
    check = subprocess.run([sys.executable, "-c", "import sys, tfrecordkit; "
                            "print('tensorflow' in sys.modules, 'pandas' in sys.modules)"],
                           capture_output=True, text=True)
    assert check.stdout.split() == ["False", "False"]
