"""Store page size and checkpoint policy, by measurement: WAL bytes per flush, store size
per million points, for each page size, on real SQLite files.

Two workloads, each through ``LocalStore.write`` exactly as the flusher writes:

- *small flushes*: 600 points over 38 flushes (the issue's case), 4 metrics and 2 parameters;
- *1M points*: 1,000,000 points in 40 flushes of 25,000 (4 metrics).

For each, the WAL is measured with automatic checkpoints off (every byte a flush appends
stays in the file, so bytes per flush = WAL size / flushes), then the run is repeated with
the store's own policy to report the WAL file left behind and the database's size after a
checkpoint.

    python benchmarks/bench_store_pages.py [--page-sizes 4096,65536]
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

# Run as a script (python benchmarks/x.py): make the repository root importable.
_sys.path.insert(0, str(_Path(__file__).resolve().parent.parent))

import argparse
import os
import tempfile
import time

import numpy as np

from benchmarks._machine import describe
from runstream._core import _aggregate
from runstream._core._batch import Batch, ParameterWrite
from runstream._store import _local
from runstream._store._local import LocalStore

_METRICS = ("loss", "accuracy", "lr", "grad_norm")


def batches(points: int, flushes: int) -> list[Batch]:
    per_metric = points // flushes // len(_METRICS)
    out, step = [], 0
    rng = np.random.default_rng(0)
    for flush in range(flushes):
        steps = np.arange(step, step + per_metric, dtype=np.int64)
        ts = np.full(per_metric, time.time())
        metrics = {m: _aggregate.from_points(steps, rng.random(per_metric), ts) for m in _METRICS}
        params = [ParameterWrite("epoch", flush, time.time())] if flush % 10 == 0 else []
        out.append(Batch(run_id=0, worker="w0", metrics=metrics, parameters=params))
        step += per_metric
    return out


def measure(page_size: int, points: int, flushes: int, *, checkpoints: bool) -> dict[str, float]:
    _local.PAGE_SIZE = page_size
    with tempfile.TemporaryDirectory() as folder:
        store = LocalStore(folder)
        if not checkpoints:
            store._db.execute("PRAGMA wal_autocheckpoint = 0")
        key = store.ensure_run("bench", "pages")
        store.set_worker_status(key.run_id, "w0", "InProgress")
        wal = os.path.join(folder, "runstream.db-wal")
        before = os.path.getsize(wal) if os.path.exists(wal) else 0
        work = batches(points, flushes)
        for batch in work:
            batch.run_id = key.run_id
            store.write(batch)
        wal_after = os.path.getsize(wal) if os.path.exists(wal) else 0
        store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db_size = os.path.getsize(os.path.join(folder, "runstream.db"))
        store.close()
        empty = tempfile.mkdtemp(dir=folder)
        opened = LocalStore(empty)  # measured while open: closing removes the WAL
        empty_wal = os.path.join(empty, "runstream.db-wal")
        empty_size = os.path.getsize(empty_wal) if os.path.exists(empty_wal) else 0
        opened.close()
        return {
            "wal_per_flush": (wal_after - before) / flushes,
            "wal_left": wal_after,
            "db": db_size,
            "empty_wal": empty_size,
            "points": sum(b.points for b in work),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--page-sizes", default="4096,8192,16384,65536")
    args = parser.parse_args()
    print(describe())
    chosen = _local.PAGE_SIZE
    print(
        f"store policy: wal_autocheckpoint {_local.WAL_AUTOCHECKPOINT_PAGES} pages, "
        f"journal_size_limit {_local.WAL_SIZE_LIMIT >> 20} MiB; default page size {chosen}"
    )
    print()
    header = (
        f"{'page':>6} | {'600 pts/38 flushes':>20} {'WAL left':>10} | "
        f"{'1M pts: WAL/flush':>18} {'WAL left':>10} {'store/1M pts':>13} | {'empty WAL':>10}"
    )
    print(header)
    print("-" * len(header))
    for page in (int(p) for p in args.page_sizes.split(",")):
        small = measure(page, 600, 38, checkpoints=False)
        small_policy = measure(page, 600, 38, checkpoints=True)
        big = measure(page, 1_000_000, 40, checkpoints=False)
        big_policy = measure(page, 1_000_000, 40, checkpoints=True)
        per_million = big_policy["db"] / big_policy["points"] * 1e6
        print(
            f"{page:>6} | {small['wal_per_flush'] / 1024:>15.1f} KiB "
            f"{small_policy['wal_left'] / 1024:>6.0f} KiB | "
            f"{big['wal_per_flush'] / 1024:>14.1f} KiB {big_policy['wal_left'] / 2**20:>6.1f} MiB "
            f"{per_million / 2**20:>9.2f} MiB | {big_policy['empty_wal'] / 1024:>6.0f} KiB"
        )
    _local.PAGE_SIZE = chosen


if __name__ == "__main__":
    main()
