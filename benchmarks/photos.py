"""Makes a folder of real photographs for the benchmarks: class subfolders of JPEGs of a
few hundred pixels, cut from the photographs bundled with scikit-learn and scikit-image
(no download). Deterministic for a given count and seed.

    python benchmarks/photos.py OUT_DIR [--count 6000] [--seed 0]

Needs numpy, pillow, scikit-learn and scikit-image.
"""
from __future__ import annotations

import argparse
import os

import numpy as np
from PIL import Image

SIZE_RANGE = (240, 480)   # shorter and longer side drawn from this range, in pixels
JPEG_QUALITY = 90


def sources() -> dict[str, np.ndarray]:
    """The bundled colour photographs, by name (class)."""
    from skimage import data
    from sklearn.datasets import load_sample_images

    photos = {name: getattr(data, name)() for name in
              ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
               "immunohistochemistry", "retina")}
    for name, image in zip(("china", "flower"), load_sample_images().images):
        photos[name] = image
    return photos


def make(out: str, count: int, seed: int = 0,
         size_range: tuple[int, int] = SIZE_RANGE) -> list[str]:
    """Writes `count` photos as OUT/<source>/<n>.jpg and returns their paths."""
    rng = np.random.default_rng(seed)
    photos = sources()
    names = sorted(photos)
    paths = []
    for i in range(count):
        name = names[i % len(names)]
        photo = photos[name]
        h, w = photo.shape[:2]
        crop_h = int(rng.integers(min(h, size_range[0]) // 2, h + 1))
        crop_w = int(rng.integers(min(w, size_range[0]) // 2, w + 1))
        top, left = int(rng.integers(0, h - crop_h + 1)), int(rng.integers(0, w - crop_w + 1))
        image = Image.fromarray(photo[top:top + crop_h, left:left + crop_w])
        out_h, out_w = (int(v) for v in rng.integers(*size_range, size=2))
        image = image.resize((out_w, out_h), Image.Resampling.BILINEAR)
        if rng.random() < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        folder = os.path.join(out, name)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"{i:05d}.jpg")
        image.save(path, "JPEG", quality=JPEG_QUALITY)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--count", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    paths = make(args.out, args.count, args.seed)
    print(f"wrote {len(paths)} photos to {args.out}")


if __name__ == "__main__":
    main()
