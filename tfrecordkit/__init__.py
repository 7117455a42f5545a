"""tfrecordkit: image folders and label tables into sharded TFRecords, and back into
fast tf.data pipelines for Keras.

Example:
    >>> import tfrecordkit as tfk
    >>> tfk.convert("labels.csv", "out", images="images", ext=".jpg", label="label",
    ...             split="train=0.9,val=0.1")
    >>> model.fit(tfk.read("out/train", image_size=64), validation_data=tfk.read("out/val"))
    >>> table = tfk.predict(model, "out/val")

TensorFlow is imported lazily, by the functions that need it.
"""
__version__ = "0.1.0"

from .errors import DatasetError, OptionError, SourceError, TfrecordkitError
from .keras import predict
from .manifest import Manifest, load_manifest
from .read import read
from .verify import verify
from .write import convert, write_folder, write_frame

__all__ = [
    "DatasetError", "Manifest", "OptionError", "SourceError", "TfrecordkitError",
    "convert", "load_manifest", "predict", "read", "verify", "write_folder", "write_frame",
]
