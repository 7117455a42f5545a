"""model.fit throughput of a ResNet-50-sized model fed by tfk.read, against the same model
fed from tensors already in memory (the input pipeline's upper bound). Needs a GPU to mean
anything; on a CPU it runs but the model, not the input, is the bottleneck.

    KERAS_BACKEND=jax python benchmarks/gpu_fit.py SHARDS [--image-size 224] [--batch-size 128]
        [--steps 60] [--precision float32|mixed_bfloat16]

SHARDS is a dataset directory (e.g. the photos from benchmarks/photos.py converted with
`tfrecordkit convert photos shards --image-size 256 --image-format jpeg`). The ratio
"tfk.read / in memory" is the result: 1.0 means the input never held the model back. The row
"input alone" is what `tfk.read` delivers with no model, the head-room over the GPU.
Any Keras backend: tf.data feeds JAX and PyTorch too, so TensorFlow's CPU build is enough.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class Throughput:
    """A Keras callback timing images/s over the batches after `warmup`."""

    def __init__(self, batch_size: int, warmup: int):
        import keras

        outer = self

        class Callback(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                outer.step += 1
                if outer.step == warmup:
                    outer.start = time.perf_counter()

        self.callback, self.batch_size, self.warmup = Callback(), batch_size, warmup
        self.step, self.start = 0, None

    def rate(self) -> float:
        return (self.step - self.warmup) * self.batch_size / (time.perf_counter() - self.start)


def backend_devices() -> str:
    """The accelerators the Keras backend computes on (TensorFlow's own list says nothing of
    JAX's or PyTorch's)."""
    import keras

    name = keras.backend.backend()
    if name == "jax":
        import jax

        return ", ".join(str(d) for d in jax.devices())
    if name == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    import tensorflow as tf

    return ", ".join(d.name for d in tf.config.list_physical_devices()) or "cpu"


def model_for(image_size: int, classes: int):
    import keras

    inputs = keras.Input((image_size, image_size, 3), dtype="uint8")
    x = keras.layers.Rescaling(1 / 255.0)(keras.ops.cast(inputs, "float32"))
    base = keras.applications.ResNet50(weights=None, include_top=False, input_tensor=None,
                                       input_shape=(image_size, image_size, 3))
    x = keras.layers.GlobalAveragePooling2D()(base(x))
    model = keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(x))
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", jit_compile=True)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shards")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=15)
    parser.add_argument("--precision", default="float32",
                        help="Keras dtype policy, e.g. mixed_bfloat16 (default float32)")
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    import tfrecordkit as tfk

    keras.mixed_precision.set_global_policy(args.precision)
    classes = len(next(iter(tfk.load_manifest(args.shards).vocabularies.values()), [0]) or [0]) or 1
    print(f"Keras {keras.__version__} on {keras.backend.backend()} ({backend_devices()}), "
          f"{args.precision}; TF {tf.__version__}; {len(os.sched_getaffinity(0))} cores")
    results = {}
    feeds = {
        "in memory": lambda: tf.data.Dataset.from_tensors((
            tf.random.uniform([args.batch_size, args.image_size, args.image_size, 3], 0, 255,
                              dtype=tf.int32).numpy().astype("uint8"),
            tf.zeros([args.batch_size], tf.int32))).repeat(),
        "tfk.read": lambda: tfk.read(args.shards, batch_size=args.batch_size,
                                     image_size=args.image_size, dtype="uint8", repeat=True,
                                     drop_remainder=True),
    }
    batches = iter(feeds["tfk.read"]())
    for _ in range(args.warmup):
        next(batches)
    start = time.perf_counter()
    for _ in range(args.steps):
        next(batches)
    del batches
    print(f"{'input alone':10s} {args.steps * args.batch_size / (time.perf_counter() - start):8.1f} "
          f"images/s", flush=True)
    for name, make in feeds.items():
        keras.utils.set_random_seed(0)
        model = model_for(args.image_size, classes)
        meter = Throughput(args.batch_size, args.warmup)
        model.fit(make(), steps_per_epoch=args.steps + args.warmup, epochs=1, verbose=0,
                  callbacks=[meter.callback])
        results[name] = meter.rate()
        print(f"{name:10s} {results[name]:8.1f} images/s", flush=True)
    print(f"tfk.read / in memory = {results['tfk.read'] / results['in memory']:.3f}")


if __name__ == "__main__":
    main()
