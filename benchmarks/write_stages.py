"""Where a conversion's time goes, stage by stage: a timeline of the client and each worker.

    .venv/bin/python benchmarks/write_stages.py PHOTOS OUT [convert options...]
    .venv/bin/python benchmarks/write_stages.py /tmp/tfk-bench/photos-20000 /tmp/out --jobs 2 \\
        --image-size 128 --image-format jpeg

Runs `tfrecordkit convert PHOTOS OUT ...` in this process with marks around the client's
stages (imports, size estimate, planning, the parallel run, exit) and around every shard a
worker writes, each with its process's CPU seconds. CPU seconds do not depend on other load
on the machine, so they show what bounds `--jobs N` even on a shared machine: the client's
serial CPU before the first shard, the workers' start (imports), the balance between
workers, and the gap between one shard's end and the next one's start (journal writes,
result transfer).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time

T0 = time.time()
LOG = os.environ.setdefault("TFK_STAGES_LOG", tempfile.mktemp(prefix="tfk-stages-", suffix=".jsonl"))
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def mark(what: str, **extra) -> None:
    """Appends one timestamped line (wall clock, pid, CPU seconds) to the log."""
    with open(LOG, "a") as f:
        f.write(json.dumps({"t": time.time(), "pid": os.getpid(), "what": what,
                            "cpu": time.process_time(), **extra}) + "\n")


def timed_shard(task):
    """`write_shard` with marks; runs in the workers (imported there by reference)."""
    from tfrecordkit import pool

    mark("shard start", file=task.spec.file)
    # In the client (--jobs 1) write_shard is this function; in a worker it is the original.
    result = getattr(pool, "_untimed_write_shard", pool.write_shard)(task)
    mark("shard end", file=task.spec.file)
    return result


def wrap(module, name: str) -> None:
    original = getattr(module, name)

    def timed(*args, **kwargs):
        mark(f"{name} start")
        try:
            return original(*args, **kwargs)
        finally:
            mark(f"{name} end")

    setattr(module, name, timed)


def report(log: str) -> None:
    rows = [json.loads(line) for line in open(log)]
    main = rows[0]["pid"]
    names = {main: "client"}
    for r in rows:
        names.setdefault(r["pid"], f"worker {len(names)}")
    for r in rows:
        print(f"{r['t'] - T0:8.2f} s  {names[r['pid']]:9s} CPU {r['cpu']:7.2f} s  {r['what']} "
              f"{r.get('file', '')}".rstrip())
    print()
    for pid, name in names.items():
        mine = [r for r in rows if r["pid"] == pid]
        shards = [r for r in mine if r["what"] == "shard end"]
        first = next((r for r in mine if r["what"] == "shard start"), None)
        line = f"{name}: CPU {mine[-1]['cpu']:.2f} s at its last mark"
        if first:
            line += (f", {first['cpu']:.2f} s of it before its first shard (start-up), "
                     f"{len(shards)} shards")
        print(line)


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    mark("process start")
    from tfrecordkit import pool, write
    from tfrecordkit.cli import main as cli

    mark("tfrecordkit imported")
    # The workers import this file by name to find `timed_shard`.
    sys.path.insert(0, HERE)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [HERE, os.path.dirname(HERE), *filter(None, [os.environ.get("PYTHONPATH")])])
    import write_stages

    pool._untimed_write_shard = pool.write_shard
    pool.write_shard = write_stages.timed_shard
    for name in ("_estimate_sizes", "_fingerprint", "_duplicates", "run_shards", "write_manifest"):
        wrap(write, name)
    shutil.rmtree(sys.argv[2], ignore_errors=True)
    code = cli(["convert", *sys.argv[1:], "--quiet"])
    mark("convert returned")
    report(LOG)
    sys.exit(code)


if __name__ == "__main__":
    main()
