"""tfrecordkit: image folders and label tables into sharded TFRecords, and back into
fast tf.data pipelines for Keras.

Example:
    >>> import tfrecordkit as tfk
    >>> tfk.convert("labels.csv", "out", images="images", ext=".jpg", label="label",
    ...             split="train=0.9,val=0.1")
    >>> model.fit(tfk.read("out", split="train"), validation_data=tfk.read("out", split="val"))
    >>> table = tfk.predict(model, "out", split="val")

Names load on first use (PEP 562), so ``import tfrecordkit`` and ``tfrecordkit --help``
stay fast; TensorFlow itself is imported only by the functions that need it.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "DatasetError": "errors", "OptionError": "errors", "SourceError": "errors",
    "TfrecordkitError": "errors",
    "Manifest": "manifest", "load_manifest": "manifest",
    "convert": "write", "write_folder": "write", "write_frame": "write",
    "read": "read",
    "predict": "keras",
    "verify": "verify",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tfrecordkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)


if TYPE_CHECKING:  # static analysers and IDEs see the real names
    from .errors import DatasetError, OptionError, SourceError, TfrecordkitError
    from .keras import predict
    from .manifest import Manifest, load_manifest
    from .read import read
    from .verify import verify
    from .write import convert, write_folder, write_frame
