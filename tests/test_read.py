import numpy as np
import pytest
from PIL import Image

import tfrecordkit as tfk
from tfrecordkit.errors import DatasetError, OptionError


@pytest.fixture
def dataset(tmp_path, table):
    frame, images = table
    tfk.write_frame(frame, tmp_path / "out", images=images, label=("colour", "score"),
                    multi_label="tags", num_shards=3, split="train=0.6,val=0.4", seed=0,
                    progress=False)
    return tmp_path / "out", frame, images


def test_shapes_dtypes_and_cardinality(dataset):
    out, _, _ = dataset
    ds = tfk.read(out, split="train", batch_size=4, image_size=(8, 6), label="colour")
    assert int(ds.cardinality()) == 5            # 18 records in batches of 4
    assert ds.element_spec[0].shape.as_list() == [None, 8, 6, 3]   # static, for Keras
    images, labels = next(iter(ds))
    assert images.shape == (4, 8, 6, 3) and images.dtype.name == "float32"
    assert 0.0 <= float(images.numpy().min()) and float(images.numpy().max()) <= 1.0
    assert labels.dtype.name == "int32" and labels.shape == (4,)
    ds = tfk.read(out / "val", batch_size=5, image_size=8, label="colour", dtype="uint8",
                  label_mode="categorical", drop_remainder=True)
    images, labels = next(iter(ds))
    assert images.dtype.name == "uint8" and labels.shape == (5, 3) and int(ds.cardinality()) == 2
    assert labels.numpy().sum(axis=1).tolist() == [1.0] * 5


def test_every_label_matches_source_in_record_order(dataset):
    out, frame, images = dataset
    manifest = tfk.load_manifest(out, "val")
    from tfrecordkit.options import ReadOptions
    from tfrecordkit.read import build

    ds = build(manifest, ReadOptions(batch_size=7, image_size=(16, 28), shuffle=False,
                                     dtype="uint8"),
               labels=["colour", "score", "tags"], ids=True)
    by_name = frame.set_index("image_name")
    vocab_c, vocab_t = manifest.vocabularies["colour"], manifest.vocabularies["tags"]
    count = exact = 0
    for ids, pixels, labels in ds:
        for i, name in enumerate(ids.numpy()):
            row = by_name.loc[name.decode()]
            assert vocab_c[int(labels["colour"][i])] == row["colour"]
            assert float(labels["score"][i]) == pytest.approx(row["score"])
            hot = labels["tags"][i].numpy()
            assert sorted(vocab_t[j] for j in np.flatnonzero(hot)) == sorted(row["tags"].split())
            source = Image.open(images / name.decode())
            if source.format == "PNG" and source.size == (28, 16):   # lossless, not resized
                assert (pixels[i].numpy() == np.asarray(source.convert("RGB"))).all()
                exact += 1
            count += 1
    assert count == manifest.records == 12 and exact >= 1


def test_label_dict_for_multi_output_and_images_only(dataset):
    out, _, _ = dataset
    images, labels = next(iter(tfk.read(out, split="train", batch_size=2, image_size=8)))
    assert sorted(labels) == ["colour", "score", "tags"]
    assert labels["tags"].shape == (2, 3) and labels["score"].dtype.name == "float32"
    only = next(iter(tfk.read(out, split="train", batch_size=2, image_size=8, label=False)))
    assert only.shape == (2, 8, 8, 3)
    single = next(iter(tfk.read(out, split="train", batch_size=None, image_size=8, label="tags")))
    assert single[0].shape == (8, 8, 3) and single[1].shape == (3,)


def test_seeded_order_reproduces_and_shuffles(dataset):
    out, _, _ = dataset

    def order(seed):
        ds = tfk.read(out, split="train", batch_size=None, image_size=4, label="score", seed=seed)
        return [round(float(y), 3) for _, y in ds]

    a, b, c = order(1), order(1), order(2)
    assert a == b and sorted(a) == sorted(c) and a != c
    assert len(a) == 18


def test_repeat_and_greyscale_and_modes(dataset):
    out, _, _ = dataset
    ds = tfk.read(out, split="val", batch_size=4, image_size=(10, 10), repeat=True, channels=1,
                  resize_mode="crop", label="colour")
    batches = list(ds.take(7))        # more than one epoch of 3 batches
    assert len(batches) == 7 and batches[0][0].shape == (4, 10, 10, 1)
    padded = next(iter(tfk.read(out, split="val", batch_size=2, image_size=40, resize_mode="pad",
                                label=False)))
    assert padded.shape == (2, 40, 40, 3)


def test_errors(dataset, tmp_path):
    out, _, _ = dataset
    with pytest.raises(OptionError, match="holds the splits train, val; pass split='train'"):
        tfk.read(out)
    with pytest.raises(DatasetError, match="has no split 'test'; its splits are: train, val"):
        tfk.read(out, split="test")
    with pytest.raises(OptionError, match="differ in size, so a batch needs `image_size`"):
        tfk.read(out, split="train")
    with pytest.raises(OptionError, match="`label` names 'shape', which is not a label stored"):
        tfk.read(out, split="train", image_size=8, label="shape")
    with pytest.raises(OptionError, match="`batch_size` must be a positive integer"):
        tfk.read(out, split="train", batch_size=0)
    with pytest.raises(DatasetError, match=r"'.*nowhere' does not exist \(no such file or directory\)"):
        tfk.read(tmp_path / "nowhere")


def test_random_crops_and_flips_repeat_with_the_seed_and_change_each_epoch(dataset):
    out, _, _ = dataset      # JPEGs and PNGs of two sizes

    def epochs(**kwargs):
        ds = tfk.read(out, split="val", batch_size=6, image_size=(10, 12), repeat=2, seed=3,
                      crop="random", flip=True, label="colour", **kwargs)
        assert ds.element_spec[0].shape.as_list() == [None, 10, 12, 3]
        return [(x.numpy(), y.numpy()) for x, y in ds]

    first, again = epochs(), epochs()
    assert len(first) == 4        # 12 records, two epochs of two batches
    for (x1, y1), (x2, y2) in zip(first, again):
        assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    # in record order, the same records come round again in epoch 2, cropped anew
    ordered = epochs(shuffle=False)
    for (x1, y1), (x2, y2) in zip(ordered[:2], ordered[2:]):
        assert np.array_equal(y1, y2)
        assert not any(np.array_equal(a, b) for a, b in zip(x1, x2))
    other = tfk.read(out, split="val", batch_size=6, image_size=(10, 12), seed=3, crop="random",
                     flip=True, label=False, shuffle=False)
    assert np.array_equal(next(iter(other)).numpy(), ordered[0][0])
    other = tfk.read(out, split="val", batch_size=6, image_size=(10, 12), seed=4, crop="random",
                     flip=True, label=False, shuffle=False)
    assert not np.array_equal(next(iter(other)).numpy(), ordered[0][0])
    uint8 = epochs(dtype="uint8", on_corrupt="skip")
    assert uint8[0][0].dtype == np.uint8 and len(uint8) == 4


def test_crops_on_raw_shards(tmp_path, folder):
    raw = tmp_path / "raw"
    tfk.write_folder(folder, raw, image_size=16, image_format="raw", seed=0, progress=False)
    plain = next(iter(tfk.read(raw, batch_size=24, shuffle=False, label=False))).numpy()
    ds = tfk.read(raw, batch_size=24, shuffle=False, crop="random", flip=True, seed=0,
                  image_size=8, label=False)
    assert ds.element_spec.shape.as_list() == [None, 8, 8, 3]
    crops = next(iter(ds)).numpy()
    assert crops.shape == (24, 8, 8, 3) and not np.array_equal(crops, plain[:, ::2, ::2])
    again = next(iter(tfk.read(raw, batch_size=24, shuffle=False, crop="random", flip=True,
                               seed=0, image_size=8, label=False))).numpy()
    assert np.array_equal(crops, again)
    center = next(iter(tfk.read(raw, batch_size=24, shuffle=False, crop="center",
                                crop_fraction=0.5, dtype="uint8", label=False))).numpy()
    assert center.shape == (24, 16, 16, 3)    # the central 8 x 8, resized to the stored size


def test_raw_shards_read_unbatched(tmp_path, folder):
    raw = tmp_path / "raw"
    tfk.write_folder(folder, raw, image_size=16, image_format="raw", seed=0, progress=False)
    batched = next(iter(tfk.read(raw, batch_size=24, shuffle=False, label=False))).numpy()
    for options in ({}, {"crop": "center"}):
        single = [x.numpy() for x in tfk.read(raw, batch_size=None, shuffle=False, label=False,
                                                  **options)]
        assert len(single) == len(batched) and single[0].shape == (16, 16, 3)
        if not options:
            assert np.array_equal(np.stack(single), batched)
    crops = list(tfk.read(raw, batch_size=None, crop="random", flip=True, seed=1, image_size=8))
    assert [tuple(x.shape) for x, _ in crops] == [(8, 8, 3)] * len(batched)
