"""Tiny fixtures built in tmp_path: real image files, a label table, a class folder."""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd
import pytest
from PIL import Image

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


def make_image(path, colour, size=(24, 20), seed=0, fmt=None, mode="RGB"):
    """A noisy image dominated by `colour` (learnable), saved at `path`."""
    rng = np.random.default_rng(seed)
    height, width = size
    base = np.array(colour, dtype=np.int16)
    pixels = np.clip(base + rng.integers(-30, 30, (height, width, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    if mode != "RGB":
        image = image.convert(mode)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image.save(path, fmt)
    return path


@pytest.fixture
def table(tmp_path):
    """(frame, image_dir): 30 rows, JPEG and PNG files of two sizes, every column kind."""
    images = tmp_path / "images"
    rows = []
    names = list(COLOURS)
    for i in range(30):
        label = names[i % 3]
        ext = ".png" if i % 4 == 0 else ".jpg"
        size = (24, 20) if i % 2 else (16, 28)
        make_image(images / f"img_{i:03d}{ext}", COLOURS[label], size, seed=i)
        tags = " ".join(t for t, on in (("warm", label == "red"), ("bright", i % 2 == 0),
                                        ("odd", i % 2 == 1)) if on)
        rows.append({"image_name": f"img_{i:03d}{ext}", "colour": label, "tags": tags,
                     "score": i / 10.0, "count": i, "note": f"n{i}"})
    return pd.DataFrame(rows), images


@pytest.fixture
def folder(tmp_path):
    """A class-subfolder tree: 3 classes x 8 PNG images, plus a stray text file."""
    root = tmp_path / "classes"
    for c, (name, colour) in enumerate(COLOURS.items()):
        for i in range(8):
            make_image(root / name.capitalize() / f"{i}.png", colour, (16, 16), seed=c * 10 + i)
    (root / "README.txt").write_text("not an image")
    return root
