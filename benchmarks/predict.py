"""The prediction benchmark of issue 11, in one run.

    .venv/bin/python benchmarks/predict.py [--photos 3000] [--work /tmp/tfk-bench] [--rounds 3]

Makes `--photos` real photographs of a few hundred pixels (benchmarks/photos.py), then
- folder: images/s predicting all of them at 128x128 with a small CNN: `model.predict` on
  a PIL PyDataset (workers=2), `model.predict` on a hand-written tf.data pipeline over the
  files, and `tfk.predict(model, folder)`;
- one image: milliseconds per call of `model.predict`, `model(x)`, `predict_on_batch` and
  `tfk.Predictor` (on the array, and on the JPEG file with its decoding).
The contenders take turns, `--rounds` times over, and each keeps its best round. Ratios
within one run are the result; absolute numbers on shared machines are noise.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=3000)
    parser.add_argument("--work", default=os.path.join("/tmp", "tfk-bench"))
    parser.add_argument("--rounds", type=int, default=3,
                        help="each measurement this many times, taking turns; the best counts")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--folder", help="predict this folder of images instead of making photos")
    args = parser.parse_args()

    folder = args.folder or os.path.join(args.work, f"photos-{args.photos}")
    if not os.path.isdir(folder):
        import photos as photo_maker

        photo_maker.make(folder, args.photos)

    import tensorflow as tf

    from tfrecordkit.bench import (folder_images, predict_folder_compare, predictor_latency,
                                   small_cnn)

    warnings.filterwarnings("ignore", message=".*PyDataset.*")
    print(f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, TensorFlow {tf.__version__}")
    count = len(folder_images(folder))
    print(f"data: {count} images in {folder}\n")
    model = small_cnn(args.image_size)
    print(f"predict a folder of {count} images, a small CNN at {args.image_size}x"
          f"{args.image_size}, batches of {args.batch_size}, best of {args.rounds}:")
    print(predict_folder_compare(model, folder, batch_size=args.batch_size,
                                 image_size=args.image_size, rounds=args.rounds)
          .to_string(index=False), "\n", flush=True)
    print(f"predict one image, best of {args.rounds}:")
    print(predictor_latency(model, folder_images(folder)[0], image_size=args.image_size,
                            rounds=args.rounds).to_string(index=False))


if __name__ == "__main__":
    main()
