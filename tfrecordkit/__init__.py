"""tfrecordkit: image folders and label tables into sharded TFRecords, and back into
fast tf.data pipelines for Keras.

Example:
    >>> import tfrecordkit as tfk
    >>> tfk.convert("labels.csv", "out", images="images", ext=".jpg", label="label",
    ...             split="train=0.9,val=0.1")
    >>> model.fit(tfk.read("out", split="train"), validation_data=tfk.read("out", split="val"))
    >>> table = tfk.predict(model, "out", split="val")

TensorFlow and pandas are imported only by the functions that need them, so importing
the package (``tfrecordkit --help``, and each writer process) takes a fraction of a second.
"""
__version__ = "0.1.0"

# Imported eagerly on purpose: several public functions share their module's name
# (read, inspect, verify, schema), and binding them here keeps `tfk.read` the function
# whichever submodule is imported first.
from .errors import DatasetError, OptionError, SourceError, TfrecordkitError
from .inspect import describe, inspect, show_batch, stats
from .locate import count, infer, schema
from .predict import Predictor, predict
from .manifest import Manifest, load_manifest
from .read import read
from .verify import verify
from .write import convert, write_folder, write_frame

__all__ = [
    "DatasetError", "Manifest", "OptionError", "Predictor", "SourceError", "TfrecordkitError",
    "convert", "count", "describe", "infer", "inspect", "load_manifest", "predict", "read", "schema",
    "show_batch", "stats", "verify", "write_folder", "write_frame",
]
