import numpy as np

import tfrecordkit as tfk
from tfrecordkit.bench import bench, crop_bench, predict_compare, source_files
from tfrecordkit.cli import main


def test_bench_runs_every_loader_on_the_same_images(tmp_path, folder, capsys):
    out = tmp_path / "out"
    tfk.write_folder(folder, out, seed=0, progress=False)
    files, labels, root = source_files(out)
    assert sorted(files) == sorted(str(p) for p in folder.glob("*/*.png")) and root == str(folder)
    names = tfk.load_manifest(out).vocabularies["label"]
    assert all(names[label] in path for path, label in zip(files, labels))
    raw = tmp_path / "raw"
    tfk.write_folder(folder, raw, image_size=8, image_format="raw", progress=False)
    table = bench(out, batch_size=4, image_size=8, images=8, more={"(e) raw": raw})
    assert table["loader"].tolist() == ["(a) PyDataset + PIL", "(b) image_dataset_from_directory",
                                        "(c) tf.data over files",
                                        "(c2) hand-tuned tf.data over the shards",
                                        "(d) tfk.read, png shards",
                                        "(e) raw"]
    assert (table["images"] == 8).all() and (table["images/s"] > 0).all()
    assert table["vs first"].iloc[0] == 1.0
    assert main(["bench", str(out), "--batch-size", "4", "--image-size", "8", "--images", "8"]) == 0
    assert "(d) tfk.read, png shards" in capsys.readouterr().out
    assert main(["bench", str(out), "--images", "0"]) == 2


def test_predict_compare_counts_every_image(tmp_path, folder):
    import keras

    out = tmp_path / "out"
    tfk.write_folder(folder, out, progress=False)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(3, activation="softmax")])
    table = predict_compare(model, out, batch_size=5, image_size=8)
    assert table["images"].tolist() == [24, 24]
    assert np.isfinite(table["images/s"]).all()


def test_predict_folder_compare_and_latency(tmp_path, folder):
    from tfrecordkit.bench import predict_folder_compare, predictor_latency, small_cnn
    from tfrecordkit.cli import main

    model = small_cnn(8, classes=3)
    table = predict_folder_compare(model, folder, batch_size=5, image_size=8, rounds=1)
    assert table["images"].tolist() == [24, 24, 24]
    assert table["predict"].str.startswith(("(a)", "(b)", "(c)")).all()
    assert np.isfinite(table["images/s"]).all()
    latency = predictor_latency(model, folder / "Red" / "0.png", image_size=8, calls=2, rounds=1)
    assert latency["one image"].tolist()[-2:] == ["tfk.Predictor(model)(x)",
                                                 "tfk.Predictor(model)(path to the JPEG)"]
    assert (latency["ms/call"] > 0).all()
    (tmp_path / "empty").mkdir()
    assert main(["bench", str(tmp_path / "empty"), "--model", "small-cnn"]) == 2


def test_crop_bench_times_both_crop_pipelines(tmp_path):
    import io

    from PIL import Image

    root = tmp_path / "jpegs"
    for i in range(6):
        (root / "a").mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        Image.fromarray(np.full((40, 48, 3), i * 40, np.uint8)).save(buffer, "JPEG")
        (root / "a" / f"{i}.jpg").write_bytes(buffer.getvalue())
    out = tmp_path / "out"
    tfk.write_folder(root, out, progress=False)
    table = crop_bench(out, batch_size=2, image_size=16, images=4, rounds=1)
    assert table["loader"].tolist() == ["decode, then random crop + flip (tf.data)",
                                        'tfk.read(crop="random", flip=True)']
    assert (table["images"] == 4).all() and (table["images/s"] > 0).all()
