import pytest

from tfrecordkit.errors import OptionError
from tfrecordkit.options import (ReadOptions, WriteOptions, parse_byte_size, parse_image_size,
                                 parse_split)


def test_image_size_forms():
    assert parse_image_size(128) == (128, 128)
    assert parse_image_size("128") == (128, 128)
    assert parse_image_size("128x96") == (128, 96)
    assert parse_image_size((64, 32)) == (64, 32)
    assert parse_image_size(None) is None


@pytest.mark.parametrize("bad", ["12x", "axb", "0", (1, 2, 3), 1.5, "1x2x3"])
def test_image_size_rejects(bad):
    with pytest.raises(OptionError, match=r"`image_size` must be .*received image_size="):
        parse_image_size(bad)


def test_byte_sizes():
    assert parse_byte_size("128MB") == 128 << 20
    assert parse_byte_size("1.5KB") == 1536
    assert parse_byte_size("64MiB") == 64 << 20
    assert parse_byte_size(1000) == 1000
    with pytest.raises(OptionError, match="shard_size"):
        parse_byte_size("12 parsecs")


def test_split_parsing_and_sum():
    assert parse_split("train=0.9,val=0.1") == {"train": 0.9, "val": 0.1}
    assert parse_split({"a": 0.5, "b": 0.5}) == {"a": 0.5, "b": 0.5}
    with pytest.raises(OptionError, match="sum to 1"):
        parse_split("train=0.9,val=0.2")
    with pytest.raises(OptionError, match="letters"):
        parse_split("tr/ain=0.5,val=0.5")


def test_write_options_normalise_and_validate():
    opts = WriteOptions(label="a", multi_label=["t"], ext="jpg", image_size="32x16",
                        shard_size="1MB", columns="x, y")
    assert opts.label == ("a",) and opts.multi_label == ("t",)
    assert opts.ext == ".jpg" and opts.image_size == (32, 16) and opts.shard_size == 1 << 20
    assert opts.columns == ("x", "y")
    with pytest.raises(OptionError, match='`resize_mode` must be one of "stretch", "crop", "pad"; '
                                          "received resize_mode='squash'"):
        WriteOptions(resize_mode="squash")
    with pytest.raises(OptionError, match="either `shard_size` or `num_shards`"):
        WriteOptions(shard_size="1MB", num_shards=3)
    with pytest.raises(OptionError, match="needs a fixed `image_size`"):
        WriteOptions(image_format="raw")
    with pytest.raises(OptionError, match="`jobs` must be"):
        WriteOptions(jobs=0)
    with pytest.raises(OptionError, match="`multi_label` must be columns not also given as `label`"):
        WriteOptions(label="a", multi_label="a")


def test_numpy_values_are_taken_as_their_python_values():
    # What a config read with numpy (or a sweep over np.linspace) hands over.
    import numpy as np

    opts = ReadOptions(batch_size=np.int64(16), image_size=np.array([64, 48]),
                       crop="random", crop_area=np.array([0.08, 1.0]),
                       crop_aspect=(np.float32(0.75), np.float32(4 / 3)),
                       crop_fraction=np.float32(0.875), flip=np.True_, seed=np.int32(3))
    assert (opts.batch_size, opts.image_size, opts.crop_area, opts.flip, opts.seed) == (
        16, (64, 48), (0.08, 1.0), True, 3)
    assert opts.crop_fraction == pytest.approx(0.875) and type(opts.crop_fraction) is float
    assert WriteOptions(jobs=np.int64(2), jpeg_quality=np.int64(80), max_size=np.int32(256)).jobs == 2
    with pytest.raises(OptionError, match=r"`crop_fraction` must be a number in \(0, 1\]"):
        ReadOptions(crop_fraction=np.float64(1.5))
