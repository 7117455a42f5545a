"""The notebooks in notebooks/ run top to bottom, so they never rot.

Each is executed with nbclient in a scratch copy of notebooks/ beside a link to
data_samples/ (the notebooks read ``../data_samples`` and write ``_out/``), by a kernel
running this interpreter and importing this checkout's tfrecordkit. The committed files
are never touched; the assertions read values from the fresh outputs.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

import tfrecordkit  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SAMPLES = ROOT / "data_samples"
CONVERT = "01_convert_and_inspect.ipynb"
TRAIN = "02_train_and_predict.ipynb"
FOREIGN = "03_foreign_tfrecord.ipynb"
KERNEL = "tfrecordkit-test"
CELL_TIMEOUT_S = 600
INLINE_IMAGE = '<img src="data:image/png;base64,'
WHOAMI = "import sys; print('kernel executable:', sys.executable)"


def _text(nb) -> str:
    """Every text output of the notebook (streams and text/plain results), joined."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                parts.append(out.text)
            elif "data" in out and "text/plain" in out.data:
                parts.append(out.data["text/plain"])
    return "\n".join(parts)


def _rich(nb, mime: str) -> list[str]:
    return [out.data[mime] for cell in nb.cells for out in cell.get("outputs", [])
            if "data" in out and mime in out.data]


def _number(pattern: str, text: str) -> float:
    found = re.findall(pattern, text)
    assert found, f"no output matches {pattern!r}; outputs were:\n{text[-3000:]}"
    return float(found[-1])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Executes a notebook once per module and returns it with its outputs."""
    base = tmp_path_factory.mktemp("notebooks")
    work = base / "notebooks"
    work.mkdir()
    try:
        os.symlink(SAMPLES, base / "data_samples", target_is_directory=True)
    except OSError:   # no symlinks (Windows without developer mode): copy instead
        shutil.copytree(SAMPLES, base / "data_samples")
    # A kernelspec of our own, first on JUPYTER_PATH, so the kernel is this interpreter
    # whatever "python3" kernels the user has installed elsewhere.
    spec = base / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "tfrecordkit tests", "language": "python"}))
    package_root = str(Path(tfrecordkit.__file__).resolve().parent.parent)
    done = {}

    def execute(name: str):
        if name not in done:
            shutil.copy(NOTEBOOKS / name, work / name)
            nb = nbformat.read(work / name, as_version=4)
            nb.cells.append(nbformat.v4.new_code_cell(WHOAMI))
            with pytest.MonkeyPatch.context() as env:
                env.setenv("JUPYTER_PATH", str(base / "jupyter"))
                env.setenv("PYTHONPATH", os.pathsep.join(
                    p for p in (package_root, os.environ.get("PYTHONPATH")) if p))
                client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name=KERNEL,
                                                 resources={"metadata": {"path": str(work)}})
                client.execute()   # raises CellExecutionError naming the cell that failed
            done[name] = nb
        return done[name]

    return execute


@pytest.mark.parametrize("name", [CONVERT, TRAIN, FOREIGN])
def test_notebook_runs_in_this_interpreter_without_errors(run, name):
    nb = run(name)
    errors = [out for cell in nb.cells for out in cell.get("outputs", [])
              if out.output_type == "error"]
    assert not errors, f"{name}: {errors[0].ename}: {errors[0].evalue}"
    assert f"kernel executable: {sys.executable}" in _text(nb)


def test_convert_notebook_converts_and_inspects(run):
    nb = run(CONVERT)
    text = _text(nb)
    assert "1797 rows -> 1797 records" in text
    assert "'train': 1438, 'val': 359" in text
    assert "{'all': 1797, 'train': 1438, 'val shards (glob)': 359}" in text
    # inspect's thumbnails: one inline picture per record shown, in a single table
    assert max(html.count(INLINE_IMAGE) for html in _rich(nb, "text/html")) >= 8
    # show_batch (three grids) and the class-balance chart, as embedded PNGs
    assert len(_rich(nb, "image/png")) >= 4
    # the stratified split keeps every digit near a tenth of the training split
    fractions = [float(f) for f in re.findall(r"^digit\s+\d\s+\d+\s+(0\.\d+)$", text, re.M)]
    assert len(fractions) == 10 and all(0.09 < f < 0.11 for f in fractions)


def test_convert_notebook_infers_a_foreign_files_schema(run):
    text = _text(run(CONVERT))
    assert "6 records (counted from the record framing)" in text
    assert re.search(r"^boxes\s+VarLenFeature\(dtype=tf\.float32\)", text, re.M)
    assert re.search(r"^caption\s+VarLenFeature\(dtype=tf\.string\)", text, re.M)
    assert re.search(r"^class_id\s+FixedLenFeature\(shape=\[\], dtype=tf\.int64", text, re.M)
    assert "boxes per record: [0, 1, 2, 0, 1, 2]" in text


def test_train_notebook_learns_the_digits(run):
    nb = run(TRAIN)
    text = _text(nb)
    assert _number(r"validation accuracy: (\d\.\d+)", text) > 0.8
    joined = _number(r"accuracy on the 359 held-out images, joined to labels.csv on id: (\d\.\d+)", text)
    assert joined > 0.8
    assert re.search(r"^All(\s+\d+){10}\s+359$", text, re.M), "the confusion table covers 359 images"
    assert len(_rich(nb, "image/png")) >= 5   # the learning curve, the mistakes, augmentation
    assert _number(r"validation accuracy with crops and flips: (\d\.\d+)", text) > 0.5


@pytest.mark.parametrize("name", [CONVERT, TRAIN, FOREIGN])
def test_committed_notebook_has_its_outputs(name):
    """The committed files carry their outputs, so the pictures show when browsing."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code and all(cell.execution_count is not None for cell in code), \
        f"{name} is committed without outputs; execute it and save it (see notebooks/README.md)"
    assert _rich(nb, "image/png"), f"{name} has no pictures in its outputs"
    assert not [out for cell in code for out in cell.outputs if out.output_type == "error"]


def test_foreign_notebook_inspects_trains_and_predicts_from_shards_without_a_spec(run):
    nb = run(FOREIGN)
    text = _text(nb)
    assert "3 files, 1797 records (counted from framing scan)" in text
    assert "no dataset.json: image image/encoded, id image/filename, labels image/class/label" in text
    assert "records per split: {'train': 1400, 'validation': 397}" in text
    assert _number(r"accuracy on the 397 validation images, joined on image/filename: (\d\.\d+)",
                   text) > 0.8
    assert "397 records in 1 files; image image/encoded, id image/filename, labels " \
           "image/class/label (11 classes)" in text
    assert "same predictions as from the raw shards: True" in text
    assert len(_rich(nb, "image/png")) >= 1   # the class balance
