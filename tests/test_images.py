import io

import numpy as np
import pytest
from PIL import Image

from conftest import make_image
from tfrecordkit.images import ImageOptions, image_file_header, load_image, resize, sniff_format


def test_keep_is_byte_for_byte(tmp_path):
    path = make_image(tmp_path / "a.jpg", (200, 10, 10), (24, 20))
    image = load_image(path, ImageOptions())
    assert image.data == open(path, "rb").read() and image.kept
    assert (image.format, image.height, image.width, image.channels) == ("jpeg", 24, 20, 3)
    png = load_image(make_image(tmp_path / "g.png", (9, 9, 9), mode="L"), ImageOptions())
    assert (png.format, png.channels, png.kept) == ("png", 1, True)


@pytest.mark.parametrize("fmt", ["jpeg", "png", "raw"])
def test_resize_and_reencode(tmp_path, fmt):
    path = make_image(tmp_path / "a.png", (10, 200, 10), (30, 60))
    image = load_image(path, ImageOptions(image_size=(16, 8), image_format=fmt))
    assert (image.format, image.height, image.width, image.channels, image.kept) == (fmt, 16, 8, 3, False)
    if fmt == "raw":
        pixels = np.frombuffer(image.data, np.uint8).reshape(16, 8, 3)
    else:
        pixels = np.asarray(Image.open(io.BytesIO(image.data)))
    assert pixels.shape == (16, 8, 3) and abs(int(pixels[..., 1].mean()) - 200) < 20


def test_resize_modes_shape():
    image = Image.new("RGB", (60, 30), (255, 255, 255))
    for mode in ("stretch", "crop", "pad"):
        assert resize(image, (20, 20), mode).size == (20, 20)
    padded = np.asarray(resize(image, (20, 20), "pad"))
    assert padded[0, 0].tolist() == [0, 0, 0] and padded[10, 10].tolist() == [255, 255, 255]


def test_bad_files_give_reasons(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_bytes(b"hello, not an image")
    good = open(make_image(tmp_path / "g.jpg", (1, 2, 3), (64, 64)), "rb").read()
    (tmp_path / "cut.jpg").write_bytes(good[: len(good) // 2])
    opts = ImageOptions()
    with pytest.raises(ValueError, match="file not found"):
        load_image(tmp_path / "missing.jpg", opts)
    with pytest.raises(ValueError, match=r"file is empty \(0 bytes\)"):
        load_image(tmp_path / "empty.jpg", opts)
    with pytest.raises(ValueError, match="is not an image"):
        load_image(tmp_path / "text.jpg", opts)
    with pytest.raises(ValueError, match="corrupt or truncated"):
        load_image(tmp_path / "cut.jpg", opts)
    with pytest.raises(ValueError, match="decompression bomb"):
        load_image(tmp_path / "g.jpg", ImageOptions(max_image_pixels=100))


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    array = np.full((8, 8), 40000, dtype=np.uint16)
    Image.fromarray(array).save(tmp_path / "deep.png")
    image = load_image(tmp_path / "deep.png", ImageOptions(image_size=(8, 8), image_format="raw"))
    assert set(np.frombuffer(image.data, np.uint8).tolist()) == {round(40000 * 255 / 65535)}


def test_exif_rotation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = image.getexif()
    exif[0x0112] = 6   # rotate 90 degrees clockwise to display
    image.save(tmp_path / "phone.jpg", exif=exif)
    out = load_image(tmp_path / "phone.jpg", ImageOptions())
    assert (out.height, out.width, out.kept, out.format) == (40, 20, False, "jpeg")


def test_sniff():
    assert sniff_format(b"\xff\xd8\xff\xe0") == "jpeg"
    assert sniff_format(b"GIF89a....") == "gif"
    assert sniff_format(b"RIFF\0\0\0\0WEBPVP8 ") == "webp"
    assert sniff_format(b"nope") is None


def test_check_png_finds_what_tensorflow_would_refuse(tmp_path):
    from tfrecordkit.images import check_png

    buffer = io.BytesIO()
    Image.fromarray(np.arange(48, dtype=np.uint8).reshape(6, 8)).save(buffer, "PNG")
    good = buffer.getvalue()
    assert check_png(good) is None
    idat = good.index(b"IDAT") - 4
    damaged = bytearray(good)
    damaged[idat + 10] ^= 1
    assert check_png(bytes(damaged)) == f"PNG chunk IDAT at byte {idat} fails its CRC check (the data is damaged)"
    assert check_png(good[:-12]) == "PNG has no IEND chunk (the file is truncated)"
    assert check_png(good[:idat + 12]) == f"PNG chunk IDAT at byte {idat} runs past the end of the file (truncated)"
    (tmp_path / "d.png").write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match="fails its CRC check"):
        load_image(tmp_path / "d.png", ImageOptions())
    assert load_image(tmp_path / "d.png", ImageOptions(validate="header")).kept


def test_dark_sixteen_bit_png_keeps_its_range(tmp_path):
    Image.fromarray(np.full((4, 4), 200, dtype=np.uint16)).save(tmp_path / "dark.png")
    image = load_image(tmp_path / "dark.png", ImageOptions(image_size=(4, 4), image_format="raw"))
    assert set(np.frombuffer(image.data, np.uint8).tolist()) == {1}   # 200 / 257, not 200


def test_image_file_header_reads_the_jpeg_frame_header(tmp_path):
    path = make_image(tmp_path / "a.jpg", (200, 10, 10), (37, 53))
    assert image_file_header(str(path)) == ("jpeg", (37, 53, 1))
    image = Image.open(path)
    # A 20 KB ICC profile (APP2 segments) before the frame header: read past, not loaded.
    image.save(tmp_path / "icc.jpg", icc_profile=bytes(20_000))
    image.save(tmp_path / "progressive.jpg", progressive=True)
    assert image_file_header(str(tmp_path / "icc.jpg")) == ("jpeg", (37, 53, 1))
    assert image_file_header(str(tmp_path / "progressive.jpg")) == ("jpeg", (37, 53, 1))
    assert (tmp_path / "icc.jpg").stat().st_size > 20_000
    image.save(tmp_path / "a.png")
    (tmp_path / "named.jpg").write_bytes((tmp_path / "a.png").read_bytes())
    assert image_file_header(str(tmp_path / "named.jpg")) == ("png", None)   # a PNG named .jpg
    data = (tmp_path / "icc.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[:5000])                # ends inside the profile
    assert image_file_header(str(tmp_path / "cut.jpg"))[1] is None
    (tmp_path / "soi.jpg").write_bytes(b"\xff\xd8\xff")
    assert image_file_header(str(tmp_path / "soi.jpg"))[1] is None


def test_image_file_header_reads_the_exif_orientation(tmp_path):
    import struct

    from tfrecordkit.images import _exif_orientation

    image = Image.new("RGB", (53, 37))
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(tmp_path / "turned.jpg", exif=exif.tobytes())
    assert image_file_header(str(tmp_path / "turned.jpg")) == ("jpeg", (37, 53, 6))
    image.save(tmp_path / "plain.jpg")
    assert image_file_header(str(tmp_path / "plain.jpg")) == ("jpeg", (37, 53, 1))
    # Big-endian TIFF ("MM"), one IFD entry: orientation 8; cut or odd blocks read as upright.
    entry = struct.pack(">HHIHH", 0x0112, 3, 1, 8, 0)
    tiff = b"MM" + struct.pack(">HI", 42, 8) + struct.pack(">H", 1) + entry
    assert _exif_orientation(b"Exif\0\0" + tiff) == 8
    assert _exif_orientation(b"Exif\0\0" + tiff[:14]) == 1
    assert _exif_orientation(b"Exif\0\0XX" + tiff[2:]) == 1
    assert _exif_orientation(b"Exif\0\0" + tiff.replace(struct.pack(">H", 8), struct.pack(">H", 9), 1)) == 1
