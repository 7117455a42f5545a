"""Prediction: Keras models over images from any source, their outputs joined to the ids.

Two entry points share one preprocessing (the reader's decode, resize and crop code in
`preprocess.py`) and one way of naming output columns:

- `predict`: a whole source (a dataset directory, a folder of images, a CSV/Parquet of
  image paths, a list of paths, a glob, one image) streamed through tf.data, decoded in
  parallel and prefetched, ids read in the same pass, into a pandas table.
- `Predictor`: a model loaded once with a compiled inference function per input shape,
  for single requests from many threads.
"""
from __future__ import annotations

import logging
import math
import os
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from .errors import DatasetError, OptionError
from .manifest import Manifest
from .options import DEFAULT_BATCH_SIZE, ReadOptions, parse_image_size
from .preprocess import finisher, image_decoder, resizer, set_channels
from .image_files import ID_COLUMN, file_dataset, resolve_source, tf_reason, why_unreadable
from .read import _label_names, build
from .schema import CLASS, MULTI_LABEL

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

ERROR_COLUMN = "error"
PREDICTION_COLUMN = "prediction"   # a one-value output with no name of its own
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
CROPS = ("center",)
LOGGED_ERRORS = 20          # unreadable images logged one by one; the rest are counted


# ----------------------------------------------------------------------------- models

class _SavedModel:
    """A TensorFlow SavedModel directory called like a Keras model: its serving signature
    takes the image batch and returns a dict of outputs."""

    def __init__(self, path: str):
        import tensorflow as tf

        self._loaded = tf.saved_model.load(path)
        signatures = dict(self._loaded.signatures)
        if not signatures:
            raise OptionError(f"The SavedModel {path!r} has no serving signature to call; "
                              "export it with `model.export(path)` (Keras) or a signature.")
        self._fn = signatures.get("serving_default") or next(iter(signatures.values()))
        inputs = self._fn.structured_input_signature[1]
        if len(inputs) != 1:
            raise OptionError(f"The SavedModel {path!r} takes {len(inputs)} inputs "
                              f"({', '.join(inputs)}); predict feeds it one image batch.")
        (self._input, spec), = inputs.items()
        self._dtype = spec.dtype
        self.input_shape = tuple(spec.shape.as_list())
        self.name = os.path.basename(os.path.normpath(path)) or "saved_model"

    def __call__(self, images, training: bool = False):
        import tensorflow as tf

        return self._fn(**{self._input: tf.cast(images, self._dtype)})


def _load_model(model: Any) -> Any:
    """A Keras model (or anything callable on an image batch) from a model or a path."""
    if not isinstance(model, (str, os.PathLike)):
        if not callable(model):
            raise OptionError(f"`model` must be a Keras model, a path to a saved one (.keras, "
                              f".h5, SavedModel directory), or a list or dict of them; received "
                              f"model={model!r}.")
        return model
    path = os.fspath(model)
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise OptionError(f"`model` {path!r} is a directory without saved_model.pb; pass a "
                              ".keras or .h5 file or a SavedModel directory.")
        return _SavedModel(path)
    if not path.lower().endswith(MODEL_SUFFIXES):
        raise OptionError(f"`model` {path!r} is not a saved model tfrecordkit loads; pass a "
                          ".keras or .h5 file or a SavedModel directory.")
    if not os.path.isfile(path):
        raise OptionError(f"`model` {path!r} does not exist.")
    import keras

    return keras.models.load_model(path, compile=False)


def _models(model: Any) -> list[tuple[str, Any]]:
    """(unique name, loaded model) pairs: a dict's keys, else each model's own name."""
    if isinstance(model, Mapping):
        named = [(str(k), _load_model(m)) for k, m in model.items()]
    elif isinstance(model, (list, tuple)):
        loaded = [_load_model(m) for m in model]
        named = [(str(getattr(m, "name", "") or f"model_{i}"), m) for i, m in enumerate(loaded)]
    else:
        m = _load_model(model)
        named = [(str(getattr(m, "name", "") or "model"), m)]
    if not named:
        raise OptionError("`model` is an empty list or dict; pass at least one model.")
    seen: dict[str, int] = {}
    unique = []
    for name, m in named:
        base, n = name.strip("/") or "model", 0
        while (name := base if n == 0 else f"{base}_{n}") in seen:
            n += 1
        seen[name] = 1
        unique.append((name, m))
    return unique


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


def _input_shape(models: list[tuple[str, Any]], image_size: Any, channels: int | None
                 ) -> tuple[tuple[int, int] | None, int]:
    """The image size and channels every model is fed: the arguments, else the models'."""
    shapes = {name: _model_image_shape(m) for name, m in models}
    sizes = {name: s for name, (s, _) in shapes.items() if s}
    if image_size is None and len(set(sizes.values())) > 1:
        raise OptionError("The models take different input sizes (" + ", ".join(
            f"{n}: {h}x{w}" for n, (h, w) in sizes.items()) + "), and each image is decoded "
            "once for all of them; pass `image_size`, or predict with each model apart.")
    size = parse_image_size(image_size) or next(iter(sizes.values()), None)
    found = {c for _, c in shapes.values() if c}
    return size, channels or (found.pop() if len(found) == 1 else 3)


def _read_options(batch_size: int, size, resize_mode: str, crop: str | None, dtype: str,
                  channels: int) -> ReadOptions:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise OptionError(f"`batch_size` must be a positive integer; "
                          f"received batch_size={batch_size!r}.")
    if crop is not None and crop not in CROPS:
        raise OptionError(f"`crop` must be None or \"center\" (the central part, as `read` "
                          f"gives for evaluation); received crop={crop!r}.")
    return ReadOptions(batch_size=batch_size, image_size=size, shuffle=False, dtype=dtype,
                       channels=channels, resize_mode=resize_mode, crop=crop)


def _inference(models: list[tuple[str, Any]]):
    """images -> a tuple with each model's raw outputs (tensor, list or dict)."""
    def run(images):
        return tuple(m(images, training=False) for _, m in models)

    return run


# ----------------------------------------------------------------------------- output columns

@dataclass
class _Output:
    """One array of predictions and its column names."""

    columns: list[str]
    values: np.ndarray      # [rows, len(columns)]


def _class_names(name: str, width: int, manifest: Manifest | None) -> list[str | None]:
    """The last part of each column of an output of `width` values predicting `name`."""
    f = manifest.schema[name] if manifest is not None and name else None
    if f is not None and f.kind in (CLASS, MULTI_LABEL):
        vocab = [str(v) for v in f.vocabulary]
        if width == len(vocab):
            return vocab
        if width == 1 and len(vocab) == 2 and f.kind == CLASS:
            return [vocab[1]]   # one sigmoid unit: the probability of the second class
        raise OptionError(f"The model's output for `{name}` has {width} values but the label has "
                          f"{len(vocab)} classes ({', '.join(vocab[:5])}...); pass the label the "
                          "model predicts with `label=`.")
    return [None] if width == 1 else [str(i) for i in range(width)]


def _named_outputs(outputs: Any, labels: list[str]) -> list[tuple[str, np.ndarray]]:
    """A model's outputs as (output name, array) pairs, named by the labels they predict."""
    if isinstance(outputs, Mapping):
        names = [n for n in labels if n in outputs] or list(outputs)
        return [(str(n), np.asarray(outputs[n])) for n in names]
    if isinstance(outputs, (list, tuple)):
        names = (labels if len(labels) == len(outputs)
                 else [f"output_{i}" for i in range(len(outputs))])
        return [(n, np.asarray(o)) for n, o in zip(names, outputs)]
    return [(labels[0] if labels else "", np.asarray(outputs))]


def _outputs(model_names: list[str], per_model: Sequence[Any], labels: list[str],
             manifest: Manifest | None) -> list[_Output]:
    """Column names ``[model/][output/]class`` for every model's outputs: empty parts are
    left out (never ``a//b``), a lone unnamed value is `prediction`."""
    known = {f.name for f in manifest.schema.features} if manifest is not None else set()
    result = []
    for model_name, outputs in zip(model_names, per_model):
        named = _named_outputs(outputs, labels)
        for name, array in named:
            array = array.reshape(len(array), -1)
            classes = _class_names(name if name in known else "", array.shape[1], manifest)
            columns = []
            for cls in classes:
                parts = [model_name if len(model_names) > 1 else "",
                         name if (len(named) > 1 or cls is None) else "", cls or ""]
                parts = [p for p in parts if p]
                if cls is None and (not parts or parts == [model_name]):
                    parts.append(PREDICTION_COLUMN)
                columns.append("/".join(parts))
            result.append(_Output(columns, array))
    return result


# ----------------------------------------------------------------------------- predict

def _progress(total: int, verbose: Any):
    if verbose in (0, False, None):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="batch", desc="predict", leave=False)


# A model's compiled inference function per input spec, kept while the model lives: calling
# predict again on the same model (one file at a time, say) does not trace it again.
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _compiled(models: list[tuple[str, Any]], spec):
    import tensorflow as tf

    signature = tf.TensorSpec([None, *spec.shape[1:]], spec.dtype)
    if len(models) != 1:
        return tf.function(_inference(models), input_signature=[signature])
    model = models[0][1]
    try:
        cache = _COMPILED.setdefault(model, {})
    except TypeError:   # not weakly referenceable
        cache = {}
    key = (tuple(signature.shape), signature.dtype.name)
    if key not in cache:
        cache[key] = tf.function(_inference(models), input_signature=[signature])
    return cache[key]


def _one_pass(batches):
    """The pipeline of one finite pass, without tf.data's autotuning: its background
    thread held the iterator's deletion at the end of the pass for 0.2 to 2.6 s (seen on
    two cores in 13 of 42 passes over 3000 photos, as long as the whole pass at worst),
    and `model.predict` over a tf.data pipeline waits the same. Without it, parallel
    calls run one per core and prefetch sizes its own buffer; the images/s of a whole
    pass were the same (benchmarks/predict.py)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return batches.with_options(options)


def _run(models, batches, total: int, verbose: Any):
    """Feeds every batch of (keys, images) to every model with one compiled function;
    returns the keys and each model's outputs, concatenated."""
    import tensorflow as tf

    infer = _compiled(models, batches.element_spec[1])
    keys, outputs = [], []
    bar = _progress(total, verbose)
    try:
        for key, images in batches:
            keys.append(key.numpy())
            outputs.append(tf.nest.map_structure(lambda t: t.numpy(), infer(images)))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if not outputs:
        return np.zeros([0], np.int64), None
    merged = tf.nest.map_structure(lambda *parts: np.concatenate(parts), *outputs)
    return np.concatenate(keys), merged


def _empty_outputs(models, size, channels: int, dtype: str):
    """Each model's outputs for no images, for the column names of an empty table."""
    import tensorflow as tf

    images = tf.zeros([1, size[0], size[1], channels], tf.uint8 if dtype == "uint8" else tf.float32)
    return tf.nest.map_structure(lambda t: t.numpy()[:0], _inference(models)(images))


def predict(model: Any, source: Any, *, images: str | os.PathLike | None = None,
            image_column: str | None = None, split: str | None = None,
            batch_size: int = DEFAULT_BATCH_SIZE, image_size: Any = None,
            resize_mode: str = "stretch", crop: str | None = None, dtype: str = "float32",
            channels: int | None = None, label: str | Sequence[str] | None = None,
            verbose: Any = 0) -> pd.DataFrame:
    """Predicts every image of `source` with one or several models; returns a table.

    The images stream through tf.data (read, decoded and resized in parallel by the
    reader's own code, prefetched); each is decoded once and fed to every model.

    Args:
        model: a Keras model, a path to a saved one (.keras, .h5, SavedModel directory),
            or a list or dict of them. Several models give columns ``name/...`` (the dict
            key, else the model's name, made unique).
        source: a dataset directory (or `split` of one); a folder of images (searched
            recursively, id = the path relative to it, rows sorted by id); a CSV/Parquet
            table of image paths (`image_column`, default its first column, relative to
            `images`, default the table's folder; its other columns are carried into the
            result); a list of image paths, a glob, or one image file (id = the path).
        image_size, channels: default what the model's input expects (for a dataset, else
            its stored size).
        resize_mode: "stretch", "crop" or "pad", as in `read`.
        crop: None, or "center" for the central part, as `read(crop="center")` gives.
        dtype: "float32" images in [0, 1], or "uint8" for a model that rescales itself.
        label: for a dataset, the label(s) the outputs predict, in output order (default
            its labels): columns are named by their vocabularies, else ``0..k-1``.
        verbose: 1 for a progress bar.

    Returns:
        One row per image, in source order: `id` (for a table, named after its image column
        when the table has its own `id`), the table's other columns, then one column per
        class or output value. When an image cannot be read or decoded, its predictions
        are NaN, an `error` column says why, and a warning is logged; the rest are predicted.

    Example:
        >>> table = tfk.predict(model, "new_photos/", image_size=128)
        >>> table.head(1)
                 id     0     1
        0  a/01.jpg  0.93  0.07
        >>> tfk.predict(model, "out", split="val").head(1)     # a dataset: its vocabulary
                     id   cat   dog
        0  img_0001.jpg  0.93  0.07
        >>> tfk.predict({"small": m1, "big": "big.keras"}, "photos.csv", images="photos/")
    """
    # Every option checked before a model or an image is loaded.
    _read_options(batch_size, image_size, resize_mode, crop, dtype, channels or 3)
    models = _models(model)
    names = [n for n, _ in models]
    size, channels = _input_shape(models, image_size, channels)
    found = resolve_source(source, images, image_column, split)
    import pandas as pd

    if isinstance(found, Manifest):
        manifest = found
        labels = _label_names(manifest, label)
        opts = _read_options(batch_size, size, resize_mode, crop, dtype, channels)
        ds = build(manifest, opts, labels=[], ids=True)
        total = math.ceil(manifest.records / batch_size)
        ids, outputs = _run(models, _one_pass(ds), total, verbose)
        if outputs is None:
            size = size or tuple(manifest.image.get("size") or (1, 1))
            outputs = _empty_outputs(models, size, channels, dtype)
        table = {ID_COLUMN: [i.decode("utf-8") for i in ids]}
        for out in _outputs(names, outputs, labels, manifest):
            if len(out.values) != len(ids):
                raise DatasetError(f"The model returned {len(out.values)} predictions for "
                                   f"{len(ids)} records in {manifest.directory}.")
            table.update(zip(out.columns, out.values.T))
        return pd.DataFrame(table)

    if label is not None:
        raise OptionError(f"`label` names labels of a dataset directory, whose vocabularies name "
                          f"the columns; {source!r} is not one, so leave label out; received "
                          f"label={label!r}.")
    if split is not None:
        raise OptionError(f"`split` names a split of a dataset directory; {source!r} is not one, "
                          f"so leave split out; received split={split!r}.")
    if size is None:
        raise OptionError("The model does not say its input size, and images of different "
                          "sizes need one to be batched; pass `image_size` (--image-size).")
    opts = _read_options(batch_size, size, resize_mode, crop, dtype, channels)
    ds, total = file_dataset(found, opts, size)
    rows, outputs = _run(models, _one_pass(ds), total, verbose)
    if outputs is None:
        outputs = _empty_outputs(models, size, channels, dtype)
    n = len(found.ids)
    table: dict[str, Any] = {found.id_column: found.ids}
    if found.carried is not None:
        for column in found.carried.columns:
            table[column] = found.carried[column].to_numpy()
    for out in _outputs(names, outputs, [], None):
        full = np.full((n, out.values.shape[1]), np.nan, np.float32)
        full[rows] = out.values
        table.update(zip(out.columns, full.T))
    failed = np.setdiff1d(np.arange(n), rows)
    if len(failed):
        errors: list[str | None] = [None] * n
        for count, row in enumerate(failed):
            reason = found.problems.get(int(row)) or why_unreadable(found.paths[row], opts, size)
            errors[row] = reason
            if count < LOGGED_ERRORS:
                log.warning("image %s (row %d): %s; its predictions are left empty",
                            found.ids[row], row, reason)
        if len(failed) > LOGGED_ERRORS:
            log.warning("... and %d more unreadable images (see the `error` column)",
                        len(failed) - LOGGED_ERRORS)
        log.warning("%d of %d images could not be read or decoded; the other %d are predicted",
                    len(failed), n, n - len(failed))
        table[ERROR_COLUMN] = errors
    return pd.DataFrame(table)


# ----------------------------------------------------------------------------- Predictor

def _blank_png(size: tuple[int, int], channels: int) -> bytes:
    import tensorflow as tf

    return tf.io.encode_png(tf.zeros([size[0], size[1], channels], tf.uint8)).numpy()


class Predictor:
    """A model loaded once, warm, for single requests: thread-safe, one compiled inference
    function per input shape.

    Inputs, one image or a batch:
    - a numpy array HWC (one image) or NHWC (a batch), HW for one greyscale image;
      uint8 in [0, 255], or float in [0, 1] (what `read` yields). Arrays of another size
      are resized like the reader does;
    - encoded image bytes (JPEG, PNG, ...), or a file path, or a list of them: decoded by
      the reader's own code.

    Returns a numpy array with one row per image (no batch axis for one image), or a dict
    of them keyed ``[model/]output`` when there are several models or outputs.

    Example:
        >>> predictor = tfk.Predictor("model.keras")
        >>> predictor("cat.jpg")            # -> array([0.93, 0.07])
        >>> predictor(batch_uint8_nhwc)    # -> array of shape (n, 2)
    """

    def __init__(self, model: Any, *, image_size: Any = None, resize_mode: str = "stretch",
                 crop: str | None = None, dtype: str = "float32", channels: int | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE):
        _read_options(batch_size, image_size, resize_mode, crop, dtype, channels or 3)
        self._models = _models(model)
        size, channels = _input_shape(self._models, image_size, channels)
        if size is None:
            raise OptionError("The model does not say its input size; pass `image_size` so "
                              "every request is resized to it.")
        self.image_size, self.channels, self.batch_size = size, channels, batch_size
        self._opts = _read_options(batch_size, size, resize_mode, crop, dtype, channels)
        self._lock = threading.Lock()
        self._functions: dict[tuple, Any] = {}
        # Warm-up: both compiled paths traced and run once, so the first request is fast.
        warm = np.zeros([1, size[0], size[1], channels],
                        np.uint8 if dtype == "uint8" else np.float32)
        self.predict(warm)
        self.predict(_blank_png(size, channels))

    # -- compiled functions, one per input kind and shape
    def _function(self, key: tuple):
        fn = self._functions.get(key)
        if fn is not None:
            return fn
        with self._lock:   # tracing is not re-entrant-safe: one thread compiles, the rest wait
            fn = self._functions.get(key)
            if fn is None:
                fn = self._compile(key)
                self._functions[key] = fn
        return fn

    def _compile(self, key: tuple):
        import tensorflow as tf

        opts, size, channels = self._opts, self.image_size, self.channels
        infer = _inference(self._models)
        if key[0] == "encoded":
            decode = image_decoder(opts, size)
            out = tf.TensorSpec([size[0], size[1], channels],
                                tf.uint8 if opts.dtype == "uint8" else tf.float32)

            def run(encoded):
                images = tf.map_fn(decode, encoded,
                                   fn_output_signature=out)
                return infer(images)

            signature = [tf.TensorSpec([None], tf.string)]
        else:
            _, height, width, depth, kind = key
            fit, finish = resizer(opts, size), finisher(opts)
            same = (height, width) == tuple(size)
            crop = getattr(opts, "crop", None) == "center"

            def run(images):
                if kind == "float32" and opts.dtype == "float32" and same and depth == channels \
                        and not crop:
                    return infer(images)   # already what the model takes
                if kind == "uint8" and opts.dtype == "uint8" and same and depth == channels \
                        and not crop:
                    return infer(images)
                x = images if kind == "uint8" else images * 255.0
                x = set_channels(x, channels)
                if crop:
                    x = tf.image.central_crop(tf.cast(x, tf.float32), opts.crop_fraction)
                if not same or crop:
                    x = tf.map_fn(lambda im: fit(tf.cast(im, tf.float32), True), x,
                                  fn_output_signature=tf.float32)
                return infer(finish(x))

            signature = [tf.TensorSpec([None, height, width, depth], tf.as_dtype(kind))]
        return tf.function(run, input_signature=signature).get_concrete_function()

    # -- inputs
    @staticmethod
    def _batch(x: Any) -> tuple[tuple, Any, bool]:
        """(function key, batch, whether x was one image)."""
        def encoded(item) -> bytes:
            if isinstance(item, (bytes, bytearray, memoryview)):
                return bytes(item)
            try:
                with open(os.fspath(item), "rb") as f:
                    return f.read()
            except OSError as e:
                raise OptionError(f"Cannot read the image file {os.fspath(item)!r} ({e.strerror}); "
                                  "pass an existing path, encoded bytes or an array.") from None

        if isinstance(x, (bytes, bytearray, memoryview, str, os.PathLike)):
            return ("encoded",), np.array([encoded(x)], dtype=object), True
        if isinstance(x, (list, tuple)) and x and all(
                isinstance(i, (bytes, bytearray, memoryview, str, os.PathLike)) for i in x):
            return ("encoded",), np.array([encoded(i) for i in x], dtype=object), False
        array = np.asarray(x)
        if array.dtype == np.uint8:
            kind = "uint8"
        elif np.issubdtype(array.dtype, np.floating):
            kind, array = "float32", array.astype(np.float32, copy=False)
        else:
            raise OptionError(f"`x` must be images as uint8 in [0, 255] or float in [0, 1], "
                              f"encoded bytes or file paths; received an array of {array.dtype}.")
        single = array.ndim in (2, 3)
        if array.ndim == 2:
            array = array[:, :, None]
        if array.ndim == 3:
            array = array[None]
        if array.ndim != 4 or array.shape[-1] not in (1, 3, 4):
            raise OptionError(f"`x` must be one image HWC or a batch NHWC with 1 or 3 channels; "
                              f"received an array of shape {np.shape(x)}.")
        if array.shape[-1] == 4:
            array = array[..., :3]   # RGBA: the reader keeps RGB too
        return ("array", *array.shape[1:], kind), array, single

    def _results(self, outputs) -> Any:
        """Each model's raw outputs -> one array, or a dict of arrays."""
        flat = {}
        for (name, _), out in zip(self._models, outputs):
            for output, array in _named_outputs(out, []):
                parts = [p for p in (name if len(self._models) > 1 else "", output) if p]
                flat["/".join(parts) or PREDICTION_COLUMN] = array
        return next(iter(flat.values())) if len(flat) == 1 else flat

    def predict(self, x: Any) -> Any:
        """Predictions for one image or a batch (see the class for the inputs)."""
        import tensorflow as tf

        key, batch, single = self._batch(x)
        fn = self._function(key)
        if len(batch) == 0:
            raise OptionError("`x` is an empty batch; pass at least one image.")
        parts = []
        for start in range(0, len(batch), self.batch_size):
            chunk = batch[start:start + self.batch_size]
            tensor = tf.constant(chunk.tolist() if key[0] == "encoded" else chunk)
            try:
                parts.append(tf.nest.map_structure(lambda t: t.numpy(), fn(tensor)))
            except tf.errors.InvalidArgumentError as e:
                if key[0] != "encoded":
                    raise
                message = tf_reason(e)
                raise OptionError(f"An image in `x` (images {start} to {start + len(chunk) - 1}) "
                                  f"cannot be decoded: {message}; pass JPEG, PNG, GIF, BMP or "
                                  "WebP bytes or files.") from None
        outputs = parts[0] if len(parts) == 1 else tf.nest.map_structure(
            lambda *p: np.concatenate(p), *parts)
        result = self._results(outputs)
        if single:
            return {k: v[0] for k, v in result.items()} if isinstance(result, dict) else result[0]
        return result

    __call__ = predict
