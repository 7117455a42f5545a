"""Prediction: a Keras model over a dataset, its outputs joined to their ids."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .errors import DatasetError, OptionError
from .options import DEFAULT_BATCH_SIZE, ReadOptions
from .read import _label_names, _load, build
from .schema import CLASS, MULTI_LABEL

if TYPE_CHECKING:
    import pandas as pd

ID_COLUMN = "id"


def _model_image_shape(model: Any) -> tuple[tuple[int, int] | None, int | None]:
    """(height, width) and channels a single-input model expects, where it says."""
    try:
        shape = tuple(model.input_shape)
    except (AttributeError, ValueError, TypeError):
        return None, None
    if len(shape) != 4:
        return None, None
    height, width, channels = shape[1:]
    size = (int(height), int(width)) if height and width else None
    return size, (int(channels) if channels in (1, 3) else None)


def _columns_for(name: str, width: int, manifest, prefix: bool) -> list[str]:
    """Column names for one model output of `width` values predicting label `name`."""
    f = manifest.schema[name] if name else None
    head = f"{name}/" if prefix else ""
    if f is not None and f.kind in (CLASS, MULTI_LABEL):
        vocab = [str(v) for v in f.vocabulary]
        if width == len(vocab):
            return [head + v for v in vocab]
        if width == 1 and len(vocab) == 2 and f.kind == CLASS:
            return [head + vocab[1]]   # one sigmoid unit: the probability of the second class
        raise OptionError(f"The model's output for `{name}` has {width} values but the label has "
                          f"{len(vocab)} classes ({', '.join(vocab[:5])}...); pass the label the "
                          "model predicts with `label=`.")
    if width == 1:
        return [name or "prediction"]
    return [f"{head or (name + '/' if name else '')}{i}" for i in range(width)]


def predict(model: Any, path: str | os.PathLike, *, split: str | None = None,
            batch_size: int = DEFAULT_BATCH_SIZE, image_size: Any = None,
            label: str | Sequence[str] | None = None, dtype: str = "float32",
            channels: int | None = None, resize_mode: str = "stretch",
            verbose: Any = 0) -> pd.DataFrame:
    """Runs `model.predict` over a dataset directory and returns a table joined to ids.

    Records are read in record order, streamed in batches; the table has column `id`
    (the dataset's id column), then one column per class named by the vocabulary (for a
    multi-output model, ``label/class``; for a numeric target, the label's name).

    Args:
        model: a Keras model taking images (NHWC).
        path: a dataset directory, or the top directory with `split`.
        label: which label(s) the model's outputs predict, in output order; default the
            dataset's labels.
        image_size, channels: default what the model's input expects, else the stored size.

    Example:
        >>> table = tfk.predict(model, "out/val")
        >>> table.head(2)
                   id     cat     dog
        0  img_0001.jpg  0.93  0.07
    """
    manifest = _load(path, split)
    labels = _label_names(manifest, label)
    model_size, model_channels = _model_image_shape(model)
    opts = ReadOptions(batch_size=batch_size, image_size=image_size or model_size, shuffle=False,
                       dtype=dtype, channels=channels or model_channels or 3,
                       resize_mode=resize_mode)
    ids = np.concatenate([batch.numpy() for batch in
                          build(manifest, opts, labels=[], ids=True, images=False)] or
                         [np.array([], dtype=object)])
    outputs = model.predict(build(manifest, opts, labels=[]), verbose=verbose)
    if isinstance(outputs, dict):
        names = [n for n in labels if n in outputs] or list(outputs)
        arrays = [np.asarray(outputs[n]) for n in names]
    elif isinstance(outputs, (list, tuple)):
        arrays = [np.asarray(o) for o in outputs]
        names = labels if len(labels) == len(arrays) else [f"output_{i}" for i in range(len(arrays))]
    else:
        arrays, names = [np.asarray(outputs)], labels[:1] or [""]
    table = {ID_COLUMN: [i.decode("utf-8") for i in ids]}
    for name, array in zip(names, arrays):
        if len(array) != len(ids):
            raise DatasetError(f"The model returned {len(array)} predictions for {len(ids)} records "
                               f"in {manifest.directory}; the shards may have changed while reading.")
        array = array.reshape(len(array), -1)
        known = name if name in {f.name for f in manifest.schema.features} else ""
        columns = _columns_for(known, array.shape[1], manifest, prefix=len(arrays) > 1)
        if not known and name and len(arrays) > 1:
            columns = [f"{name}/{c}" for c in columns]
        for column, values in zip(columns, array.T):
            table[column] = values
    import pandas as pd

    return pd.DataFrame(table)
