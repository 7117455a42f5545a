"""Conversion streams: peak memory of the whole process tree does not grow with the images."""
from __future__ import annotations

import io
import subprocess
import sys
import time

import numpy as np
import psutil
from PIL import Image

SMALL, LARGE = 4_000, 40_000
SHARD_SIZE = "512KB"      # fixed, so both runs write shards of the same size
POLL_S = 0.02
GROWTH = 1.3


def _make_dataset(root, n: int) -> tuple[str, str]:
    """n tiny PNG files (a handful of encodings reused) and a labels.csv naming them."""
    images = root / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    blobs = []
    for _ in range(8):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(buf, "PNG")
        blobs.append(buf.getvalue())
    lines = ["image_name,label"]
    for i in range(n):
        (images / f"{i:06d}.png").write_bytes(blobs[i % len(blobs)])
        lines.append(f"{i:06d}.png,c{i % 5}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return str(root / "labels.csv"), str(images)


def _peak_rss(cmd: list[str]) -> tuple[int, float]:
    """(peak summed RSS of the process and all its children in bytes, seconds it ran)."""
    start = time.perf_counter()
    proc = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        total = 0
        try:
            members = [proc, *proc.children(recursive=True)]
        except psutil.Error:
            members = [proc]
        for member in members:
            try:
                total += member.memory_info().rss
            except psutil.Error:   # exited between listing and reading
                pass
        peak = max(peak, total)
        time.sleep(POLL_S)
    stderr = proc.stderr.read().decode()
    assert proc.returncode == 0, stderr
    return peak, time.perf_counter() - start


def _convert_peak(root, n: int) -> tuple[int, float]:
    labels, images = _make_dataset(root, n)
    return _peak_rss([sys.executable, "-m", "tfrecordkit", "convert", labels, str(root / "out"),
                      "--images", images, "--label", "label", "--jobs", "2", "--quiet",
                      "--shard-size", SHARD_SIZE])


def test_peak_memory_flat_in_the_number_of_images(tmp_path):
    small, small_s = _convert_peak(tmp_path / "small", SMALL)
    large, large_s = _convert_peak(tmp_path / "large", LARGE)
    report = (f"peak RSS of the process tree: {SMALL} images {small / 2**20:.0f} MB "
              f"in {small_s:.1f} s, {LARGE} images {large / 2**20:.0f} MB in {large_s:.1f} s")
    print(report)
    assert large <= GROWTH * small, report
