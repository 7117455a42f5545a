"""The `make demo` job: data_samples/ -> TFRecords -> model.fit -> predictions CSV.

Run it as ``python -m tfrecordkit.demo [DATA_SAMPLES] [OUT_DIR]``.
"""
from __future__ import annotations

import os
import shutil
import sys
import time
import warnings

import numpy as np
import pandas as pd

DEFAULT_SAMPLES = "data_samples"
DEFAULT_OUT = "demo_out"
EPOCHS = 8
BATCH_SIZE = 32
SEED = 0


def small_cnn(input_shape: tuple[int, int, int], classes: int):
    """A few-layer CNN that learns the sample digits in a few epochs on a CPU."""
    import keras

    layers = keras.layers
    blocks = []
    for filters in (32, 64, 64):
        # Low BatchNorm momentum: on a small dataset the moving statistics catch up within
        # an epoch, so validation accuracy tracks training accuracy from the start.
        blocks += [layers.Conv2D(filters, 3, padding="same", use_bias=False),
                   layers.BatchNormalization(momentum=0.9), layers.ReLU(), layers.MaxPooling2D()]
    return keras.Sequential([keras.Input(input_shape), *blocks, layers.Flatten(),
                             layers.Dropout(0.3), layers.Dense(classes, activation="softmax")])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    samples = argv[0] if argv else DEFAULT_SAMPLES
    out = argv[1] if len(argv) > 1 else DEFAULT_OUT
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import PIL

    import tfrecordkit as tfk

    started = time.perf_counter()
    dataset = os.path.join(out, "digits")
    if os.path.exists(out):
        shutil.rmtree(out)
    manifest = tfk.convert(os.path.join(samples, "labels.csv"), dataset,
                           images=os.path.join(samples, "images"), ext=".jpg",
                           label="digit", multi_label="tags", split="train=0.8,val=0.2",
                           seed=SEED, progress=False)
    print(f"1. converted {manifest.source_rows} rows of {samples}/labels.csv into "
          f"{len(manifest.shards)} shards in {dataset}: "
          + ", ".join(f"{k} {v} records" for k, v in manifest.splits.items())
          + f" (Pillow {PIL.__version__}{' SIMD' if 'post' in PIL.__version__ else ''})")

    import keras

    # Keras warns that fit's shuffle= does not apply to a tf.data input; ours shuffles itself.
    warnings.filterwarnings("ignore", message="`shuffle=True` was passed")
    keras.utils.set_random_seed(SEED)
    train = tfk.read(dataset, split="train", label="digit", batch_size=BATCH_SIZE, seed=SEED)
    val = tfk.read(dataset, split="val", label="digit", batch_size=BATCH_SIZE, shuffle=False)
    height, width = manifest.image["size"]
    classes = len(manifest.vocabularies["digit"])
    model = small_cnn((height, width, 3), classes)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    print(f"2. training a small CNN on {height}x{width} images, {int(train.cardinality())} "
          f"batches per epoch, {EPOCHS} epochs")
    history = model.fit(train, validation_data=val, epochs=EPOCHS, verbose=2)
    accuracy = history.history["val_accuracy"][-1]
    print(f"   validation accuracy: {accuracy:.3f} (loss {history.history['loss'][0]:.3f} -> "
          f"{history.history['loss'][-1]:.3f})")

    table = tfk.predict(model, dataset, split="val", label="digit")
    path = os.path.join(out, "val_predictions.csv")
    vocabulary = manifest.vocabularies["digit"]
    scores = table[[str(c) for c in vocabulary]].to_numpy()
    table.insert(1, "predicted", np.asarray(vocabulary)[scores.argmax(axis=1)])
    table.to_csv(path, index=False, float_format="%.4f")
    truth = pd.read_csv(os.path.join(samples, "labels.csv"), dtype={"image_id": str})
    joined = table.merge(truth[["image_id", "digit"]], left_on="id", right_on="image_id",
                         validate="one_to_one")
    assert len(joined) == len(table), "every prediction's id must name one row of labels.csv"
    agree = float((joined["predicted"] == joined["digit"]).mean())
    print(f"3. predicted {len(table)} held-out images into {path} "
          f"(accuracy against labels.csv, joined on id: {agree:.3f})")
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
