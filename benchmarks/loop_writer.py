"""The baseline writer: a single-threaded loop, PIL resize -> tf.train.Example -> TFRecordWriter.

This is the one-off script people write; `benchmarks/run.py` times it as a whole process
(TensorFlow import included) against `tfrecordkit convert`.

    python benchmarks/loop_writer.py PHOTO_FOLDER OUT.tfrecord [--size 128]
"""
import argparse
import io
import os

import tensorflow as tf
from PIL import Image


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("out")
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args()
    classes = sorted(d for d in os.listdir(args.root) if os.path.isdir(os.path.join(args.root, d)))
    count = 0
    with tf.io.TFRecordWriter(args.out) as writer:
        for label, name in enumerate(classes):
            folder = os.path.join(args.root, name)
            for file in sorted(os.listdir(folder)):
                image = Image.open(os.path.join(folder, file)).convert("RGB")
                image = image.resize((args.size, args.size), Image.BILINEAR)
                buffer = io.BytesIO()
                image.save(buffer, "JPEG", quality=90)
                feature = {
                    "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[buffer.getvalue()])),
                    "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                }
                writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
                count += 1
    print(f"wrote {count} records")


if __name__ == "__main__":
    main()
