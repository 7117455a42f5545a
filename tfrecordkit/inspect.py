"""Looking inside any TFRecord file: counts, an inferred schema, the first records, stats.

Works on our dataset directories and on files from any writer (tf.train.Example or
SequenceExample, plain, GZIP or ZLIB) without a feature spec and without TensorFlow;
only `schema` (which returns TensorFlow feature specs) and `show_batch` import more.
"""
from __future__ import annotations

import base64
import html
import io
import logging
import os
from collections import Counter
from dataclasses import dataclass
import functools
from typing import TYPE_CHECKING, Any, Sequence

from . import storage
from .errors import TfrecordkitError, translated
from .images import sniff_format
from .inference import decode_record, infer_files
from .locate import (DEFAULT_SCAN_RECORDS, FeatureInfo, InferredSchema, Location, count, infer,
                     locate, schema)
from .manifest import Manifest
from .records import iter_records
from .schema import CLASS, MULTI_LABEL

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

THUMBNAIL_PIXELS = 96
SHOWN_SIZES = 10   # image sizes a Stats repr lists (the most common); the frame has them all
_KIND_NAMES = {"Example": "tf.train.Example", "SequenceExample": "tf.train.SequenceExample"}
# count, infer, schema, FeatureInfo and InferredSchema come through locate.py; re-exported here
# because they are part of looking inside a file.
__all__ = ["FeatureInfo", "InferredSchema", "Stats", "count", "describe", "format_description",
           "infer", "inspect", "schema", "show_batch", "stats"]


# ----------------------------------------------------------------------------- records as a table

class Thumbnail:
    """An image cell: shown as a picture in notebooks and as ``<jpeg 40x40>`` in text."""

    def __init__(self, image, fmt: str, size: tuple[int, int]):
        self.image, self.format, self.size = image, fmt, size

    def __repr__(self) -> str:
        return f"<{self.format} {self.size[0]}x{self.size[1]}>"

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.image.save(buffer, "PNG")
        return buffer.getvalue()

    def _repr_html_(self) -> str:
        data = base64.b64encode(self._repr_png_()).decode("ascii")
        return f'<img src="data:image/png;base64,{data}" title="{html.escape(repr(self))}"/>'


def _thumbnail(data: bytes, fmt: str | None, height=None, width=None, channels=None) -> Thumbnail | None:
    from PIL import Image

    try:
        if fmt == "raw" and height and width and channels in (1, 3, 4):
            mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
            image = Image.frombytes(mode, (width, height), data)
        else:
            image = Image.open(io.BytesIO(data))
            image.draft("RGB", (THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
            image.load()
            fmt = sniff_format(data[:16]) or fmt
    except Exception:
        return None
    size = (height or image.height, width or image.width)
    image = image.convert("RGBA" if "A" in image.mode or "transparency" in image.info else "RGB")
    image.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
    return Thumbnail(image, fmt or "image", (size[1], size[0]))


def _text(value: bytes) -> Any:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return value
    return text if text.isprintable() else value


@functools.cache
def _inspect_frame_class() -> type:
    """InspectFrame, made on first use: pandas is imported only by what needs it."""
    import pandas as pd

    class InspectFrame(pd.DataFrame):
        """A DataFrame whose image cells render as thumbnails in Jupyter."""

        _metadata: list[str] = []

        @property
        def _constructor(self):
            return InspectFrame

        def _repr_html_(self) -> str:
            def cell(value: Any) -> str:
                if isinstance(value, Thumbnail):
                    return value._repr_html_()
                return html.escape(str(value))

            return self.to_html(formatters={c: cell for c in self.columns}, escape=False,
                                max_rows=60)

    # Found again by name (pickling): the module's __getattr__ below returns this class.
    InspectFrame.__module__, InspectFrame.__qualname__ = __name__, "InspectFrame"
    return InspectFrame


def __getattr__(name: str) -> Any:
    if name == "InspectFrame":
        return _inspect_frame_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _row(context: dict, lists: dict, manifest: Manifest | None) -> dict[str, Any]:
    vocab = {}
    if manifest is not None:
        vocab = {f.name: (f.kind, f.vocabulary) for f in manifest.schema.features
                 if f.kind in (CLASS, MULTI_LABEL)}
    get = lambda key: (context.get(key, (None, [None]))[1] or [None])[0]  # noqa: E731
    image_format = get("image/format")
    image_format = image_format.decode("ascii", "replace") if isinstance(image_format, bytes) else None
    image_key = (manifest.image_key if manifest is not None else None) or "image/encoded"
    row: dict[str, Any] = {}
    for name, (kind, values) in context.items():
        if kind == "bytes":
            shown = []
            for v in values:
                fmt = sniff_format(v[:16])
                if fmt or (name == image_key and image_format == "raw"):
                    thumb = _thumbnail(v, fmt or image_format, get("image/height"),
                                       get("image/width"), get("image/channels"))
                    shown.append(thumb if thumb is not None else f"<{len(v)} bytes>")
                else:
                    shown.append(_text(v))
            values = shown
        if name in vocab:
            label_kind, words = vocab[name]
            values = [words[v] if 0 <= v < len(words) else v for v in values]
            if label_kind == MULTI_LABEL:
                row[name] = values
                continue
        row[name] = values[0] if len(values) == 1 else values
    for name, steps in lists.items():
        row[name] = [values for _, values in steps]
    return row


@translated("path")
def inspect(path: str | os.PathLike, n: int = 5) -> InspectFrame:
    """The first `n` records of any TFRecord file(s) or dataset directory, decoded.

    Scalars come as values, lists as lists, text as str, our labels through their
    vocabularies, and images as thumbnails (inline pictures in Jupyter). No feature spec
    is needed; GZIP and ZLIB files are detected.

    Example:
        >>> tfk.inspect("out/train", n=3)[["image/encoded", "digit", "tags"]]
          image/encoded  digit           tags
        0    <jpeg 40x40>      4          [even]
    """
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"`n` must be a non-negative integer; received n={n!r}.")
    where = locate(path, allow_incomplete=True)
    if where.incomplete:
        log.warning("%s", where.incomplete)
    return _inspect(where.files, _manifest_of(where), n)


def _manifest_of(where: Location) -> Manifest | None:
    """dataset.json's manifest, or the inferred one; None for records that are not
    Examples of images (the rows still show, the error says why where it matters)."""
    try:
        return where.manifest
    except TfrecordkitError:
        return None


def _inspect(files: Sequence[str], manifest: Manifest | None, n: int) -> InspectFrame:
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"`n` must be a non-negative integer; received n={n!r}.")
    rows = []
    for file in files:
        if len(rows) >= n:
            break
        for number, record in enumerate(iter_records(file)):
            if len(rows) >= n:
                break
            rows.append(_row(*decode_record(file, number, record.data), manifest))
    frame = _inspect_frame_class()(rows)
    return frame[_column_order(list(frame.columns), manifest)]


def _column_order(columns: list[str], manifest: Manifest | None) -> list[str]:
    """The id first, then the image, the labels, and the rest as stored."""
    first = ["image/encoded"]
    if manifest is not None:
        first = [manifest.schema.id_column, manifest.image_key, *manifest.schema.labels]
    head = [c for c in first if c in columns]
    return head + [c for c in columns if c not in head]


# ----------------------------------------------------------------------------- summaries

def _notes(info: FeatureInfo, manifest: Manifest | None) -> str:
    notes = []
    if info.image:
        notes.append(" / ".join(f"{fmt} images" for fmt in info.image))
    if manifest is not None:
        try:
            f = manifest.schema[info.name]
        except KeyError:
            f = None
        if f is not None and f.kind in (CLASS, MULTI_LABEL):
            words = ", ".join(map(str, f.vocabulary[:6])) + (", ..." if len(f.vocabulary) > 6 else "")
            kind = "class" if f.kind == CLASS else "multi-label"
            notes.append(f"{kind}, {len(f.vocabulary)} values: {words}")
        elif f is not None and f.kind == "id":
            notes.append("id")
    if len(info.dtypes) > 1:
        notes.append("TYPES DIFFER: " + ", ".join(f"{k} x{n}" for k, n in info.dtypes.most_common()))
    return "; ".join(notes)


@translated("path")
def describe(path: str | os.PathLike, n: int = 5, *, limit: int | None = DEFAULT_SCAN_RECORDS) -> dict[str, Any]:
    """Everything ``tfrecordkit inspect`` shows, as plain JSON-ready data.

    Keys: ``records``, ``files``, ``counted_from``, ``kind``, ``scanned``, ``features``
    (name -> dtype, min_len, max_len, present, empty, image, notes), ``conflicts``,
    ``rows`` (the first `n` records with images and binary values summarised),
    ``dataset`` (where the manifest comes from, "dataset.json" or "inferred", and its
    image, id and label features) and ``incomplete`` (a sentence for a directory holding
    an unfinished conversion, else None).
    """
    where = locate(path, allow_incomplete=True)   # once: on a URL each lookup is a request
    files = list(where.files)
    records, per_file, counted_from = where.records, list(where.counts), where.counted_from
    inferred = infer_files(files, limit)
    manifest = _manifest_of(where)
    roles = _roles_of(where)

    def entry(info: FeatureInfo) -> dict[str, Any]:
        scanned = max(1, inferred.scanned)
        return {"dtype": info.dtype, "min_len": info.min_len, "max_len": info.max_len,
                "present": round(info.present / scanned, 4), "empty": round(info.empty / scanned, 4),
                "sequence": info.sequence, "image": dict(info.image) or None,
                "dtypes": dict(info.dtypes), "notes": _notes(info, manifest)}

    features = {name: entry(info) for name, info in inferred.features.items()}
    features.update({name: entry(info) for name, info in inferred.sequence_features.items()})
    rows = [{k: _jsonable(v) for k, v in row.items()}
            for row in _inspect(files, manifest, n).to_dict("records")]
    return {"records": records, "files": files, "records_per_file": per_file,
            "counted_from": counted_from, "kind": inferred.kind, "scanned": inferred.scanned,
            "features": features, "conflicts": inferred.conflicts(), "rows": rows,
            "dataset": roles, "incomplete": where.incomplete,
            "stored_images": stored_images(manifest.image) if manifest else None}


def _roles_of(where: Location) -> dict[str, Any]:
    """Which features are the image, id and labels, and whether dataset.json says so."""
    try:
        manifest = where.manifest
    except TfrecordkitError as e:   # records that are not Examples of images: say why
        return {"from": "inferred", "image": None, "id": None, "labels": [],
                "note": str(e)}
    return {"from": "inferred" if where.inferred else "dataset.json",
            "image": manifest.image_key, "id": manifest.schema.id_column or None,
            "labels": list(manifest.schema.labels)}


def stored_images(image: dict[str, Any]) -> str | None:
    """How convert capped and cut the images (dataset.json's ``image`` facts), in words.

    Example:
        >>> stored_images({"max_size": 256, "max_side": 256, "crop": {"box": [186, 0, 300, 30]}})
        'max side 256 (largest stored 256), cropped to box (186, 0, 300, 30) (left, top, right, bottom)'
    """
    parts = []
    if image.get("max_size"):
        parts.append(f"max side {image['max_size']}"
                     + (f" (largest stored {image['max_side']})" if image.get("max_side") else ""))
    crop = image.get("crop") or {}
    if crop.get("box"):
        parts.append(f"cropped to box ({', '.join(map(str, crop['box']))}) (left, top, right, bottom)")
    elif crop.get("bbox_columns"):
        parts.append(f"cropped to each row's box from columns {', '.join(crop['bbox_columns'])} "
                     "(x, y, width, height)")
    return ", ".join(parts) or None


def _jsonable(value: Any) -> Any:
    if isinstance(value, Thumbnail):
        return repr(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    return value


def format_description(info: dict[str, Any], *, width: int = 100) -> str:
    """The terminal form of `describe`: counts, a schema table and the first records."""
    files = info["files"]
    head = (f"{len(files)} file{'s' if len(files) != 1 else ''}, {info['records']} records "
            f"(counted from {info['counted_from']}); {_KIND_NAMES[info['kind']]}, "
            f"schema from {info['scanned']} records")
    import pandas as pd

    table = pd.DataFrame([
        {"feature": name + (" (sequence)" if f["sequence"] else ""), "dtype": f["dtype"] or "-",
         "length": (f"{f['min_len']}" if f["min_len"] == f["max_len"] else f"{f['min_len']}-{f['max_len']}"),
         "present": f"{f['present']:.0%}" + (f", {f['empty']:.0%} empty" if f["empty"] else ""),
         "notes": f["notes"]}
        for name, f in info["features"].items()])
    if info.get("incomplete"):
        head = "INCOMPLETE: " + info["incomplete"] + "\n" + head
    roles = info.get("dataset")
    if roles and roles["from"] == "inferred":
        labels = ", ".join(roles["labels"]) or "none (pass label=)"
        head += (f"\nno dataset.json: image {roles['image'] or 'none found'}, id "
                 f"{roles['id'] or 'the record number'}, labels {labels} (inferred; "
                 "`tfrecordkit index PATH --manifest` records them)")
    lines = [head] + ([f"stored images: {info['stored_images']}"] if info.get("stored_images") else [])
    lines.append("")
    if len(table):
        widths = {c: max(len(c), *(len(str(v)) for v in table[c])) for c in table.columns}
        lines.append("  ".join(c.ljust(widths[c]) for c in table.columns).rstrip())
        for _, r in table.iterrows():
            lines.append("  ".join(str(r[c]).ljust(widths[c]) for c in table.columns).rstrip())
    else:
        lines.append("(no features)")
    for conflict in info["conflicts"]:
        lines.append("warning: " + conflict)
    if info["rows"]:
        lines += ["", f"first {len(info['rows'])} records:"]
        with pd.option_context("display.width", width, "display.max_columns", 12,
                               "display.max_colwidth", 30):
            lines += pd.DataFrame(info["rows"]).to_string().splitlines()
    return "\n".join(lines)


# ----------------------------------------------------------------------------- stats and pictures

@dataclass
class Stats:
    """Class balance, numeric label statistics, image sizes and shard sizes, as DataFrames.

    Attributes:
        classes: per class (int64 or bytes) label: count and fraction of each class.
        targets: per float label: count, mean, std, min and max.
        image_sizes: (height, width) -> count; `repr` shows the most common.
        shards: records and bytes per file.
    """

    records: int
    classes: pd.DataFrame
    image_sizes: pd.DataFrame
    shards: pd.DataFrame
    targets: pd.DataFrame | None = None

    def _parts(self):
        parts = [("classes", self.classes)]
        if self.targets is not None and len(self.targets):
            parts.append(("label statistics", self.targets))
        return parts + [("image sizes", self.image_sizes), ("shards", self.shards)]

    def __repr__(self) -> str:
        parts = [f"{self.records} records"]
        for title, frame in self._parts():
            shown = frame.head(SHOWN_SIZES) if title == "image sizes" else frame
            more = len(frame) - len(shown)
            parts += ["", f"{title}:", shown.to_string(index=False) if len(frame) else "(none)"]
            if more:
                parts.append(f"... and {more} more sizes")
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        parts = [f"<p>{self.records} records</p>"]
        for title, frame in self._parts():
            parts += [f"<h4>{title}</h4>", frame.to_html(index=False, max_rows=40)]
        return "\n".join(parts)


@translated("path")
def stats(path: str | os.PathLike, *, label: str | list[str] | None = None,
          split: str | None = None, image_key: str | None = None) -> Stats:
    """Counts per class of each label, label statistics, image sizes, and records and
    bytes per shard.

    Reads every record (no TensorFlow). At the top of a split dataset every table has a
    `split` column. `label` defaults to the dataset's labels, or for other writers'
    files to the label `read` would take (``image/class/label`` or ``label``); name any
    int64 or bytes features to count per class, float ones for mean, std, min and max.

    Example:
        >>> s = tfk.stats("out/train")
        >>> s.classes.head(2)
           label class  count  fraction
        0  digit     0    143    0.0994
        >>> tfk.stats("imagenet/", split="validation").classes.head(1)   # 1-based classes
                       label  class  count  fraction
        0  image/class/label      1     50     0.001
    """
    import pandas as pd

    where = locate(path, split, image_key=image_key)
    manifest = where.manifest
    if manifest.splits and manifest.split is None:
        parts = {name: stats(path, label=label, split=name, image_key=image_key)
                 for name in manifest.splits}

        def joined(attribute: str) -> pd.DataFrame:
            frames = [getattr(p, attribute).assign(split=name) for name, p in parts.items()]
            frame = pd.concat(frames, ignore_index=True)
            return frame[["split", *[c for c in frame.columns if c != "split"]]]

        return Stats(sum(p.records for p in parts.values()), joined("classes"),
                     joined("image_sizes"), joined("shards"), joined("targets"))
    if label is None:
        labels = list(manifest.schema.labels)
    else:
        labels = [label] if isinstance(label, str) else list(label)
    counters = {name: Counter() for name in labels}
    moments: dict[str, list[float]] = {}   # float labels: count, sum, sum of squares, min, max
    sizes: Counter = Counter()
    image_key, size_keys = manifest.image_key, manifest.size_keys
    shard_rows = []
    total = 0
    for file in where.files:
        n, nbytes = 0, storage.getsize(file)
        for number, record in enumerate(iter_records(file)):
            context, _ = decode_record(file, number, record.data)
            n += 1
            for name in labels:
                kind, values = context.get(name, (None, []))
                if kind == "float" and values:
                    m = moments.setdefault(name, [0, 0.0, 0.0, values[0], values[0]])
                    m[0] += len(values)
                    m[1] += sum(values)
                    m[2] += sum(v * v for v in values)
                    m[3], m[4] = min(m[3], *values), max(m[4], *values)
                else:
                    counters[name].update(values if values else ["<missing>"])
            height, width = ((context.get(k, (None, []))[1] for k in size_keys) if size_keys
                             else ([], []))
            if height and width:
                sizes[(height[0], width[0])] += 1
            elif image_key and image_key in context and context[image_key][1]:
                sizes[_image_size(context[image_key][1][0])] += 1
        shard_rows.append({"file": storage.basename(file), "records": n, "bytes": nbytes})
        total += n
    vocab = {f.name: f.vocabulary for f in manifest.schema.features}
    class_rows = []
    for name, counter in counters.items():
        if name in moments and set(counter) <= {"<missing>"}:
            continue
        words = vocab.get(name) or ()
        for value, k in sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0]))):
            shown = words[value] if isinstance(value, int) and 0 <= value < len(words) else value
            if isinstance(shown, bytes):
                shown = _text(shown)
            class_rows.append({"label": name, "class": shown, "count": k,
                               "fraction": round(k / max(1, total), 4)})
    target_rows = []
    for name, (k, total_sum, squares, low, high) in moments.items():
        mean = total_sum / k
        target_rows.append({"label": name, "count": k, "mean": mean,
                            "std": max(0.0, squares / k - mean * mean) ** 0.5,
                            "min": low, "max": high})
    size_rows = [{"height": h, "width": w, "count": k} for (h, w), k in sizes.most_common()]
    return Stats(total, pd.DataFrame(class_rows, columns=["label", "class", "count", "fraction"]),
                 pd.DataFrame(size_rows, columns=["height", "width", "count"]),
                 pd.DataFrame(shard_rows, columns=["file", "records", "bytes"]),
                 pd.DataFrame(target_rows, columns=["label", "count", "mean", "std", "min", "max"]))


def _image_size(data: bytes) -> tuple[Any, Any]:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.height, image.width
    except Exception:
        return None, None


def show_batch(data: Any, *, vocabulary: Any = None, label: str | None = None, n: int = 16,
               columns: int = 8, size: float = 1.6):
    """Draws a grid of the first `n` images of a batch with their decoded labels.

    Args:
        data: a `tf.data.Dataset` of ``(images, labels)`` or images batches (its first
            batch is drawn; of single images, its first `n`), or one such batch, or one
            image (with its label).
        vocabulary: class names: a list, a dict of label -> list (for dict labels), or a
            dataset path whose dataset.json vocabularies are used.
        label: with a dict or path `vocabulary` and one label tensor, the label it is;
            default the first label that has a vocabulary.
        n, columns, size: how many images, per row, and inches per image.

    Returns:
        The matplotlib Figure.

    Example:
        >>> tfk.show_batch(tfk.read("out", split="val"), vocabulary="out")
    """
    import matplotlib.pyplot as plt
    import numpy as np

    batch = data
    if hasattr(data, "take") and hasattr(data, "element_spec"):
        spec = data.element_spec
        spec = spec[0] if isinstance(spec, tuple) else spec
        if getattr(spec, "shape", None) is not None and spec.shape.rank == 3:
            data = data.batch(n)   # single images (batch_size=None): the first n of them
        batch = next(iter(data.take(1)))
    images, labels = (batch if isinstance(batch, tuple) and len(batch) == 2 else (batch, None))
    images = np.asarray(images)
    if images.ndim == 3:   # one image (and its label)
        images = images[None]
        labels = None if labels is None else (
            {k: np.asarray(v)[None] for k, v in labels.items()} if isinstance(labels, dict)
            else np.asarray(labels)[None])
    images = images[:n]
    if isinstance(vocabulary, (str, os.PathLike)):
        vocabulary = {k: list(v) for k, v in locate(vocabulary).manifest.vocabularies.items()}
    if isinstance(vocabulary, dict) and labels is not None and not isinstance(labels, dict):
        vocabulary = vocabulary.get(label) if label else next(iter(vocabulary.values()), None)
    count = len(images)
    rows = max(1, -(-count // columns))
    figure, axes = plt.subplots(rows, min(columns, max(1, count)), squeeze=False,
                                figsize=(size * min(columns, max(1, count)), size * rows + 0.3))
    for ax in axes.flat:
        ax.axis("off")
    for i in range(count):
        image = images[i]
        if image.dtype != np.uint8:
            image = np.clip(image, 0.0, 1.0)
        ax = axes.flat[i]
        ax.imshow(image.squeeze(-1) if image.shape[-1] == 1 else image,
                  cmap="gray" if image.shape[-1] == 1 else None)
        if labels is not None:
            ax.set_title(_label_text(labels, i, vocabulary), fontsize=8)
    figure.tight_layout()
    plt.close(figure)   # returned, not left open: Jupyter shows it once, scripts don't leak it
    return figure


def _label_text(labels: Any, i: int, vocabulary: Any) -> str:
    import numpy as np

    if isinstance(labels, dict):
        vocab = vocabulary if isinstance(vocabulary, dict) else {}
        return "\n".join(f"{k}: {_label_text(v, i, vocab.get(k))}" for k, v in labels.items())
    words = vocabulary
    value = np.asarray(labels)[i]
    name = lambda k: str(words[k]) if words is not None and 0 <= k < len(words) else str(k)  # noqa: E731
    if value.ndim == 0:
        if np.issubdtype(value.dtype, np.integer):
            return name(int(value))
        return f"{float(value):.3g}"
    if np.isclose(value.sum(), 1.0) and value.max() == 1.0:   # one-hot
        return name(int(value.argmax()))
    return " ".join(name(int(k)) for k in np.flatnonzero(value > 0.5)) or "-"
