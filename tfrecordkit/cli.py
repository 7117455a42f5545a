"""The `tfrecordkit` command line: a thin layer over the public functions.

Exit codes: 0 success, 1 failed work (bad rows, corrupt files), 2 bad arguments.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Sequence

from . import __version__, storage
from .errors import OptionError, explain
from .options import BACKENDS, COMPRESSIONS, IMAGE_FORMATS, ON_ERROR, RESIZE_MODES, VALIDATE

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """Prints argument errors as one sentence and exits with code 2."""

    def error(self, message: str):  # noqa: D401 (argparse API)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _convert_parser(sub) -> None:
    p = sub.add_parser("convert", help="convert a label table or class folders into TFRecords",
                       description="Convert a CSV/Parquet label table (with --images DIR) or a "
                                   "folder of class subfolders into sharded TFRecord files.")
    p.add_argument("source", help="CSV, TSV or Parquet file of labels, or a folder of class subfolders")
    p.add_argument("out_dir", help="a new or empty output directory")
    g = p.add_argument_group("source")
    g.add_argument("--images", metavar="DIR", help="directory the table's image paths are relative to")
    g.add_argument("--id-column", metavar="COL", help="unique id of each row (default: first column)")
    g.add_argument("--image-column", metavar="COL", help="image path column (default: the id column)")
    g.add_argument("--ext", metavar=".jpg", help="extension appended to image paths that lack it")
    g.add_argument("--sep", metavar="CHAR",
                   help="the table's column separator, e.g. ';' or '\\t' (default: sniffed among "
                        ", ; TAB |)")
    g.add_argument("--encoding", metavar="NAME",
                   help="the table's text encoding (default: UTF-8, else cp1252, with a log line)")
    g = p.add_argument_group("labels and columns")
    g.add_argument("--label", metavar="COL", action="append", default=[],
                   help="a class column (integers keep their numbers, text gets a sorted "
                        "vocabulary) or a float target; repeatable")
    g.add_argument("--multi-label", metavar="COL", action="append", default=[],
                   help="a multi-label column split on --multi-label-sep; repeatable")
    g.add_argument("--multi-label-sep", metavar="SEP", default=" ",
                   help="default: a space; cells written as Python or JSON lists are read as lists")
    g.add_argument("--one-hot", metavar="NAME=COL,COL,...", action="append", default=[],
                   help="0/1 (or True/False) columns, one per class, into one multi-label NAME "
                        "whose vocabulary is the columns in that order; repeatable")
    g.add_argument("--num-classes", metavar="COL=N", action="append", default=[],
                   help="integer class labels of --label COL are 0..N-1 (absent classes "
                        "included); repeatable")
    g.add_argument("--columns", metavar="COL,...", help="other columns to keep (default: all)")
    g = p.add_argument_group("images")
    g.add_argument("--image-size", metavar="128|128x96", help="resize to HEIGHTxWIDTH")
    g.add_argument("--resize-mode", choices=RESIZE_MODES, default="stretch")
    g.add_argument("--image-format", choices=IMAGE_FORMATS, default="keep",
                   help="keep: the source bytes as they are (default)")
    g.add_argument("--jpeg-quality", type=int, default=90, metavar="Q")
    g.add_argument("--max-size", type=int, metavar="N",
                   help="shrink (never enlarge) so the longer side is at most N, aspect kept")
    g.add_argument("--crop-box", metavar="L,T,R,B",
                   help="store only this region of every image (pixels; right, bottom exclusive)")
    g.add_argument("--bbox-columns", metavar="X,Y,W,H",
                   help="store only each row's box, read from these columns (left, top, width, height)")
    g.add_argument("--validate", choices=VALIDATE, default="full",
                   help="full: decode every image while converting (default); header: read headers only")
    g.add_argument("--max-image-pixels", type=int, default=None, metavar="N",
                   help="refuse images with more pixels (decompression bombs)")
    g = p.add_argument_group("shards")
    size = g.add_mutually_exclusive_group()
    size.add_argument("--shard-size", metavar="128MB", help="target bytes per shard")
    size.add_argument("--num-shards", type=int, metavar="N", help="shards per split")
    g.add_argument("--compression", choices=COMPRESSIONS, default="none")
    g.add_argument("--split", metavar="train=0.9,val=0.1", help="stratified splits into subdirectories")
    g.add_argument("--seed", type=int, help="seed of the split and of the write order")
    g.add_argument("--shuffle", action=argparse.BooleanOptionalAction, default=True,
                   help="shuffle the write order (default: yes)")
    g = p.add_argument_group("execution")
    g.add_argument("--jobs", type=int, metavar="N", help="parallel workers (default: every core)")
    g.add_argument("--backend", choices=BACKENDS, help="joblib backend (default: loky)")
    g.add_argument("--scheduler", metavar="ADDRESS", help="dask scheduler, with --backend dask")
    g.add_argument("--on-error", choices=ON_ERROR, default="raise",
                   help="raise: stop at the first bad row; skip: skip it and list it in errors.csv")
    g.add_argument("--resume", action="store_true", help="finish an interrupted conversion")
    g.add_argument("--quiet", action="store_true", help="no progress bar or log lines")
    p.set_defaults(run=_run_convert)


def _run_convert(args) -> int:
    from .write import convert

    options = dict(
        images=args.images, id_column=args.id_column, image_column=args.image_column,
        ext=args.ext, label=tuple(args.label), multi_label=tuple(args.multi_label),
        multi_label_sep=args.multi_label_sep, one_hot=tuple(args.one_hot),
        num_classes=tuple(args.num_classes), sep=args.sep, encoding=args.encoding,
        columns=args.columns, image_size=args.image_size,
        resize_mode=args.resize_mode, image_format=args.image_format,
        jpeg_quality=args.jpeg_quality, validate=args.validate, shard_size=args.shard_size,
        num_shards=args.num_shards, compression=args.compression, split=args.split,
        seed=args.seed, shuffle=args.shuffle, jobs=args.jobs, backend=args.backend,
        scheduler=args.scheduler, on_error=args.on_error, resume=args.resume,
        progress=not args.quiet,
        max_size=args.max_size, crop_box=args.crop_box, bbox_columns=args.bbox_columns)
    if args.max_image_pixels is not None:
        options["max_image_pixels"] = args.max_image_pixels
    if storage.isdir(args.source):
        for name in ("images", "id_column", "image_column", "sep", "encoding"):
            options.pop(name)
        if not args.label:
            options.pop("label")
    manifest = convert(args.source, args.out_dir, **options)
    parts = ", ".join(f"{k}: {v}" for k, v in manifest.splits.items())
    print(f"wrote {manifest.records} records in {len(manifest.shards)} shards to "
          f"{manifest.directory}" + (f" ({parts})" if parts else ""))
    if manifest.skipped:
        print(f"skipped {manifest.skipped} of {manifest.source_rows} rows "
              f"(see {storage.join(manifest.directory, 'errors.csv')})")
    return EXIT_OK


def _index_parser(sub) -> None:
    p = sub.add_parser("index", help="write .idx files (DALI / tfrecord format), and a "
                                     "dataset.json for any writer's files",
                       description="Write a .idx file beside each TFRecord file that has none: "
                                   "one line per record, '<byte offset> <record length>'. With "
                                   "--manifest, also a dataset.json for other writers' files "
                                   "(schema inferred; image, label and id features recorded; "
                                   "counts, bytes and sha256 of every file), after which they "
                                   "read exactly as tfrecordkit's own datasets do.")
    p.add_argument("path", help="a TFRecord file, a directory (any file names) or a glob")
    p.add_argument("--force", action="store_true",
                   help="rewrite existing .idx files (and with --manifest, dataset.json)")
    p.add_argument("--manifest", action="store_true", help="also write a dataset.json")
    p.add_argument("--label", metavar="FEATURE", action="append", default=None,
                   help="with --manifest: an int64 or float feature to record as a label, such "
                        "as image/class/label (repeatable; default image/class/label or label)")
    p.add_argument("--image-key", metavar="FEATURE",
                   help="with --manifest: the bytes feature holding the images "
                        "(default: the one whose bytes are images)")
    p.add_argument("--id-key", metavar="FEATURE",
                   help="with --manifest: the id feature (default: image/filename, filename, id...)")
    p.set_defaults(run=_run_index)


def _run_index(args) -> int:
    from .locate import index, index_manifest

    if not args.manifest:
        for name in ("label", "image_key", "id_key"):
            if getattr(args, name):
                raise OptionError(f"`--{name.replace('_', '-')}` goes with --manifest; add it, or "
                                  "leave the option out to write .idx files only.")
        written = index(args.path, force=args.force)
        for path in written:
            print(path)
        print(f"wrote {len(written)} index file(s)", file=sys.stderr)
        return EXIT_OK
    manifest = index_manifest(args.path, label=args.label, image_key=args.image_key,
                              id_key=args.id_key, force=args.force)
    labels = ", ".join(f"{name} ({len(manifest.vocabularies.get(name, ())) or 'numeric'}"
                       f"{' classes' if manifest.vocabularies.get(name) else ''})"
                       for name in manifest.schema.labels) or "none"
    print(f"wrote {storage.join(manifest.directory, 'dataset.json')}: {manifest.records} records "
          f"in {len(manifest.shards)} files; image {manifest.image_key or 'none'}, id "
          f"{manifest.schema.id_column or 'record number'}, labels {labels}")
    return EXIT_OK


def _inspect_parser(sub) -> None:
    p = sub.add_parser("inspect", help="show the schema, counts and first records of any TFRecord",
                       description="Show the schema (inferred when there is no dataset.json), the "
                                   "record count and the first records of TFRecord files of "
                                   "tf.train.Example or SequenceExample from any writer.")
    p.add_argument("path", help="a dataset directory, a .tfrecord file or a glob")
    p.add_argument("-n", type=int, default=5, metavar="N", help="records to show (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--scan", type=int, default=None, metavar="N",
                   help="records decoded to infer the schema (default 10000; 0 for all)")
    p.set_defaults(run=_run_inspect)


def _run_inspect(args) -> int:
    from .inspect import describe, format_description
    from .locate import DEFAULT_SCAN_RECORDS

    if args.n < 0:
        raise OptionError(f"`-n` must be a non-negative number of records; received -n {args.n}.")
    limit = DEFAULT_SCAN_RECORDS if args.scan is None else (args.scan or None)
    info = describe(args.path, args.n, limit=limit)
    print(json.dumps(info, default=str) if args.json else format_description(info))
    return EXIT_OK


def _verify_parser(sub) -> None:
    p = sub.add_parser("verify", help="check every record's CRCs (and decode images)",
                       description="Check both CRCs of every record; exit 1 when any is corrupt.")
    p.add_argument("path", help="a dataset directory, a TFRecord file or a glob")
    p.add_argument("--decode-images", action="store_true", help="also decode every image")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=_run_verify)


def _run_verify(args) -> int:
    from .verify import verify

    report = verify(args.path, decode_images=args.decode_images)
    if args.json:
        print(json.dumps(report.to_json()))
    else:
        print(report.summary())
    return EXIT_OK if report.ok else EXIT_FAILED


def _bench_parser(sub) -> None:
    p = sub.add_parser("bench", help="measure read throughput beside the plain alternatives",
                       description="Measure tfk.read on a dataset in images/s, side by side with "
                                   "a PyDataset + PIL loader, image_dataset_from_directory (class "
                                   "folders) and tf.data over the source image files.")
    p.add_argument("path", help="a dataset directory, or any TFRecord files of images")
    p.add_argument("--batch-size", type=int, default=32, metavar="N")
    p.add_argument("--image-size", type=int, default=128, metavar="N")
    p.add_argument("--images", type=int, default=3000, metavar="N", help="images timed per loader")
    p.add_argument("--model", metavar="MODEL", help="measure prediction instead: PATH is a folder "
                   "of images, MODEL a saved Keras model, or 'small-cnn' for the benchmarks' own")
    p.add_argument("--crop", action="store_true",
                   help='also time random crops and flips to 224 px: decode-then-crop tf.data '
                        'against tfk.read(crop="random", flip=True) (JPEG shards)')
    p.set_defaults(run=_run_bench)


def _run_bench(args) -> int:
    import warnings

    from .bench import bench

    for name in ("batch_size", "image_size", "images"):
        if getattr(args, name) < 1:
            raise OptionError(f"`--{name.replace('_', '-')}` must be a positive integer; "
                              f"received {getattr(args, name)}.")
    warnings.filterwarnings("ignore", message=".*PyDataset.*")
    if args.model:
        return _run_predict_bench(args)
    table = bench(args.path, batch_size=args.batch_size, image_size=args.image_size,
                  images=args.images)
    print(table.to_string(index=False))
    if args.crop:
        from .bench import crop_bench

        print(crop_bench(args.path, batch_size=args.batch_size, images=args.images)
              .to_string(index=False))
    return EXIT_OK


def _predict_parser(sub) -> None:
    p = sub.add_parser("predict", help="predict images with a saved Keras model into a table",
                       description="Predict every image of SOURCE (a dataset directory, a folder "
                                   "of images, a CSV/Parquet table of image paths, an image file "
                                   "or a glob) with a saved model; write one row per image.")
    p.add_argument("model", help="a saved Keras model (.keras, .h5) or SavedModel directory")
    p.add_argument("source", help="a dataset directory, a folder of images, a CSV/Parquet "
                                  "table of image paths, an image file or a glob")
    p.add_argument("-o", "--output", required=True, metavar="OUT.csv",
                   help="the table to write: .csv, or .parquet")
    p.add_argument("--images", metavar="DIR", help="folder a table's image paths are relative to")
    p.add_argument("--image-column", metavar="COL",
                   help="a table's image path column (default: the first)")
    p.add_argument("--split", metavar="NAME", help="the split of a dataset directory to predict")
    p.add_argument("--batch-size", type=int, default=32, metavar="N")
    p.add_argument("--image-size", metavar="128|128x96", help="default: the model's input size")
    p.add_argument("--resize-mode", choices=RESIZE_MODES, default="stretch")
    p.add_argument("--crop", choices=("center",),
                   help="predict the central part, as read(crop=...) gives for evaluation")
    p.add_argument("--quiet", action="store_true", help="no progress bar or log lines")
    p.set_defaults(run=_run_predict)


def _run_predict(args) -> int:
    from .predict import predict

    suffix = os.path.splitext(args.output)[1].lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise OptionError(f"`--output` must end in .csv or .parquet; received {args.output!r}.")
    table = predict(args.model, args.source, images=args.images, image_column=args.image_column,
                    split=args.split, batch_size=args.batch_size, image_size=args.image_size,
                    resize_mode=args.resize_mode, crop=args.crop, verbose=0 if args.quiet else 1)
    if suffix == ".csv":
        table.to_csv(args.output, index=False)
    else:
        table.to_parquet(args.output, index=False)
    print(args.output)
    return EXIT_OK


def _run_predict_bench(args) -> int:
    from .bench import folder_images, predict_folder_compare, predictor_latency, small_cnn
    from .predict import _load_model

    if not storage.isdir(args.path) or not folder_images(args.path):
        raise OptionError(f"`bench --model` predicts a folder of images; {args.path!r} holds none.")
    model = small_cnn(args.image_size) if args.model == "small-cnn" else _load_model(args.model)
    print(predict_folder_compare(model, args.path, batch_size=args.batch_size,
                                 image_size=args.image_size).to_string(index=False))
    print(predictor_latency(model, folder_images(args.path)[0],
                            image_size=args.image_size).to_string(index=False))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tfrecordkit", description="Image folders and label tables into "
                     "sharded TFRecords, and back into fast tf.data pipelines for Keras.")
    parser.add_argument("--version", action="version", version=f"tfrecordkit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _convert_parser(sub)
    _inspect_parser(sub)
    _verify_parser(sub)
    _index_parser(sub)
    _bench_parser(sub)
    _predict_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit code.

    Example:
        >>> main(["convert", "labels.csv", "out", "--images", "images", "--label", "label"])
        0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    quiet = getattr(args, "quiet", False)
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                        format="%(levelname)s: %(message)s", stream=sys.stderr)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        hint = ("; complete shards are kept: run the same command with --resume to finish"
                if args.command == "convert" else "")
        print(f"tfrecordkit: interrupted{hint}", file=sys.stderr)
        return 130
    except Exception as e:
        # The one error edge: whatever escapes becomes one sentence and an exit code.
        if args.debug:
            raise
        message, code = explain(e)
        print(f"tfrecordkit: error: {message}", file=sys.stderr)
        return code

if __name__ == "__main__":
    sys.exit(main())
