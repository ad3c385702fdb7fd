"""Issue 13, one test per failure mode, on real stores: nothing lost, nothing injected.

A full disk is a real 2 MiB tmpfs, a read-only disk a read-only remount of it (mounting
needs root: without it those tests skip and say so); the database is really deleted; bits
are really flipped in the stored blobs; the dashboard is a real server on a real socket.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sqlite3
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import urlopen

import msgspec
import numpy as np
import pytest

import runstream
from _support import read_only
from runstream import Run, load_run
from runstream._backends import _journal
from runstream._cli import main
from runstream._core import _aggregate
from runstream._core._exceptions import StoreError
from runstream._store import SCHEMA_VERSION, LocalStore, _schema
from runstream._ui._server import Dashboard


def _chunks(store: Path) -> list[tuple[int, bytes]]:
    db = sqlite3.connect(store / "runstream.db")
    try:
        return db.execute("SELECT id, data FROM chunks ORDER BY id").fetchall()
    finally:
        db.close()


# -- 1. one unwritable value loses the run ---------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "pattern"),
    [
        (lambda r: r.log_metric("l\ud800ss", 1.0, step=0), ValueError, "lone surrogate"),
        (lambda r: r.log_parameter("p", "v\ud800"), ValueError, "lone surrogate"),
        (lambda r: r.log_parameter("p\udfff", 1), ValueError, "lone surrogate"),
        (lambda r: r.log_parameter("p", 2**70), ValueError, "64-bit integer range"),
        (lambda r: r.log_parameter("p", np.uint64(2**64 - 1)), ValueError, "64-bit integer"),
        (lambda r: r.log_artifact("a\ud800", "s3://b/k"), ValueError, "lone surrogate"),
        (lambda r: r.log_artifact("a", "s3://\ud800"), ValueError, "lone surrogate"),
        (lambda r: r.log_metric("m", 10**400, step=0), OverflowError, "too large for a 64-bit"),
    ],
)
def test_what_the_store_cannot_hold_is_refused_at_the_call_and_later_points_land(
    store: str, call: Any, error: type[Exception], pattern: str
) -> None:
    with Run("exp", "run", store=store) as run:
        run.log_metric("loss", 1.0, step=0)
        with pytest.raises(error, match=pattern):
            call(run)
        run.log_metric("loss", 2.0, step=1)
        stats = run.flush(timeout=30).stats
    assert (stats.points_written, stats.write_errors, stats.points_rejected) == (2, 0, 0)
    assert run.series("loss").last.tolist() == [1.0, 2.0]


def test_an_item_the_store_refuses_is_isolated_and_every_other_point_lands(
    store: str, caplog: pytest.LogCaptureFixture
) -> None:
    run = Run("exp", "run", store=store)
    # A real SQLite trigger refuses one metric's chunks: no retry can ever fix that.
    db = sqlite3.connect(Path(store) / "runstream.db")
    db.execute(
        "CREATE TRIGGER poison BEFORE INSERT ON chunks WHEN NEW.metric_id IN "
        "(SELECT id FROM metrics WHERE name = 'poison') "
        "BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END"
    )
    db.commit()
    db.close()
    with run:
        for flush in range(3):
            for step in range(flush * 10, flush * 10 + 10):
                run.log_metrics({"loss": float(step), "poison": 1.0}, step=step)
            run.log_parameter(f"p{flush}", flush)
            stats = run.flush(timeout=30).stats  # never times out behind the poison
    assert stats.points_written == 30
    assert stats.points_rejected == 30
    assert stats.points_pending == 0
    assert run.series("loss").step.tolist() == list(range(30))
    assert run.record().parameters == {"p0": 0, "p1": 1, "p2": 2}
    assert "the store refused metric 'poison' (10 points)" in caplog.text
    assert len(list((Path(store) / "spill").glob("*.rejected"))) == 3


# -- 2. one value blocks the whole store -----------------------------------------------------


def test_an_unreplayable_spill_is_quarantined_and_never_stops_a_run_from_opening(
    store: str, caplog: pytest.LogCaptureFixture
) -> None:
    with Run("exp", "first", store=store) as first:
        first.log_metric("loss", 0.0, step=0)
    run_id = LocalStore(store).find_run("exp", "first").run_id
    spill = Path(store) / "spill"
    spill.mkdir()
    (spill / f"{uuid.uuid4().hex}.batch").write_bytes(b"\x93 not a spill file")
    # A batch an older runstream spilled with a value the store cannot bind (uint64 max).
    stats = _aggregate.from_points(
        np.arange(1, 4, dtype=np.int64), np.array([1.0, 2.0, 3.0]), np.full(3, 1e9)
    )
    record = {
        "run_id": run_id,
        "worker": "old",
        "metrics": {"loss": _aggregate.encode(stats)},
        "parameters": [["huge", 2**64 - 1, 1e9]],
        "artifacts": [],
    }
    (spill / f"{uuid.uuid4().hex}.batch").write_bytes(msgspec.msgpack.encode(record))
    with Run("other", "second", store=store) as second:  # any experiment: it opens
        second.log_metric("x", 1.0, step=0)
    assert second.stats.spills_quarantined == 1
    assert len(list(spill.glob("*.quarantined"))) == 1
    assert len(list(spill.glob("*.rejected"))) == 1  # the parameter, alone
    assert not list(spill.glob("*.batch"))
    assert first.series("loss").step.tolist() == [0, 1, 2, 3]  # the rest of it landed
    assert "cannot be read" in caplog.text
    with Run("exp", "third", store=store) as third:  # and nothing is left to trip on
        third.log_metric("x", 1.0, step=0)
    assert third.stats.spills_quarantined == 0


# -- 3 and 9. media types --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("media_type", "error"),
    [
        ("text/html\r\nX-Evil: 1", ValueError),
        ("text/html\n\n<script>", ValueError),
        ("text", ValueError),
        ("text/csv; charset", ValueError),
        ("a" * 200 + "/b", ValueError),
        (123, TypeError),
        (b"text/csv", TypeError),
    ],
)
def test_a_media_type_is_checked_at_the_call_and_the_rest_of_the_flush_lands(
    store: str, tmp_path: Path, media_type: object, error: type[Exception]
) -> None:
    source = tmp_path / "f.csv"
    source.write_text("a,b\n")
    with Run("exp", "run", store=store) as run:
        run.log_metric("loss", 1.0, step=0)
        with pytest.raises(error, match="media_type"):
            run.log_artifact("a", "s3://b/k", media_type=media_type)  # type: ignore[arg-type]
        with pytest.raises(error, match="media_type"):
            run.log_file(str(source), media_type=media_type)  # type: ignore[arg-type]
        run.log_artifact("ok", "s3://b/k", media_type="text/csv; charset=utf-8")
    record = run.record()
    assert record.metrics["loss"].count == 1
    assert list(record.artifacts.output) == ["ok"]
    assert record.artifacts.output["ok"].media_type == "text/csv; charset=utf-8"
    assert not (Path(store) / "spill").exists()


def _raw_get(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks):
                break
        return b"".join(chunks)


def test_the_server_never_writes_a_stored_media_type_it_did_not_check(
    store: str, tmp_path: Path
) -> None:
    source = tmp_path / "page.html"
    source.write_text("<script>alert(1)</script>")
    with Run("exp", "run", store=store) as run:
        run.log_file(str(source), name="page.html")
    db = sqlite3.connect(Path(store) / "runstream.db")
    db.execute("UPDATE artifacts SET media_type = 'text/html\r\nX-Evil: 1\r\n\r\n<b>'")
    db.commit()
    db.close()
    with LocalStore(store) as opened, Dashboard(opened, port=0).start() as dashboard:
        head = _raw_get(
            dashboard.port,
            b"GET /api/file?experiment=exp&run=run&name=page.html HTTP/1.1\r\n"
            b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n",
        )
    headers = head.split(b"\r\n\r\n")[0].decode().lower().split("\r\n")
    assert "x-evil: 1" not in headers
    assert "content-type: application/octet-stream" in headers
    assert "content-security-policy: sandbox" in headers


# -- 4. the database deleted mid-run ---------------------------------------------------------


def test_a_deleted_database_is_noticed_written_anew_and_the_loss_counted(
    store: str, caplog: pytest.LogCaptureFixture
) -> None:
    def delete_mid_run(run: Run) -> runstream.RunStats:
        with run:
            run.log_parameter("lr", 0.1)
            run.log_artifact("data", "s3://bucket/data")
            for step in range(100):
                run.log_metric("loss", float(step), step=step)
            assert run.flush(timeout=30).stats.points_written == 100
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(Path(store) / f"runstream.db{suffix}")
            for step in range(100, 150):
                run.log_metric("loss", float(step), step=step)
            return run.flush(timeout=30).stats

    run = Run("exp", "run", store=store, flush_interval=60.0)
    with pytest.warns(RuntimeWarning, match="100 points lost"):
        stats = delete_mid_run(run)
    assert "deleted or replaced" in caplog.text
    assert stats.points_lost == 100
    assert stats.points_written == 50
    assert stats.points_logged == stats.points_written + stats.points_lost
    # The new database holds the run, its outcome, everything pending since, and this
    # worker's parameters and artifacts as they were before the deletion.
    fresh = runstream.list_runs("exp", store=store)[0]
    assert fresh.series("loss").step.tolist() == list(range(100, 150))
    assert fresh.record().status == "Completed"
    assert fresh.record().parameters == {"lr": 0.1}
    assert fresh.record().artifacts.output["data"].value == "s3://bucket/data"


# -- 5. a full or read-only disk -------------------------------------------------------------


@contextlib.contextmanager
def small_disk(path: Path, size: str = "2m") -> Iterator[Path]:
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb") as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 65536)
            f.flush()
    return filler


def test_a_full_disk_spills_to_the_fallback_and_a_later_run_opens_and_writes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fallback = tmp_path / "fallback"
    monkeypatch.setenv("RUNSTREAM_SPILL_DIR", str(fallback))
    with small_disk(tmp_path / "disk") as disk:
        store = disk / "store"
        run = Run("exp", "full", store=store, close_timeout=3.0)
        filler = _fill(disk)
        # It enters on a full disk: its start is written with the first batch.
        with pytest.warns(RuntimeWarning, match="20000 points spilled"):
            _log_loss(run, 20_000)
        stats = run.stats
        assert stats.points_logged == 20_000
        assert stats.points_written == 0
        assert (stats.points_spilled, stats.points_lost, stats.points_pending) == (20_000, 0, 0)
        assert list(fallback.rglob("*.batch"))  # the store's disk took no spill
        with Run("exp", "full", store=store) as again:  # still full: it opens all the same
            pass
        filler.unlink()
        with Run("exp", "later", store=store) as later:  # opens, and writes the spill in
            later.log_metric("x", 1.0, step=0)
        assert not list(fallback.rglob("*.batch"))
        assert again.series("loss").step.tolist() == list(range(20_000))


def _log_loss(run: Run, steps: int) -> None:
    with run:
        for step in range(steps):
            run.log_metric("loss", float(step), step=step)


@contextlib.contextmanager
def locked_store(store: Path) -> Iterator[None]:
    """Hold the store's write lock from another connection, as another process could."""
    blocker = sqlite3.connect(store / "runstream.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def test_a_read_only_spill_folder_spills_to_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fallback = tmp_path / "fallback"
    monkeypatch.setenv("RUNSTREAM_SPILL_DIR", str(fallback))
    monkeypatch.setattr("runstream._store._local._BUSY_TIMEOUT_MS", 50)
    store = tmp_path / "store"
    run = Run("exp", "run", store=store, close_timeout=1.0)
    with read_only(store / "spill"), locked_store(store):
        with pytest.warns(RuntimeWarning, match="1000 points spilled"):
            _log_loss(run, 1000)
        stats = run.stats
        assert (stats.points_spilled, stats.points_lost, stats.points_pending) == (1000, 0, 0)
        assert len(list(fallback.rglob("*.batch"))) == 1
    with Run("exp", "run", store=store) as again:
        pass
    assert again.series("loss").step.tolist() == list(range(1000))


def test_points_no_folder_can_keep_are_counted_as_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fallback = tmp_path / "fallback"
    monkeypatch.setenv("RUNSTREAM_SPILL_DIR", str(fallback))
    monkeypatch.setattr("runstream._store._local._BUSY_TIMEOUT_MS", 50)
    store = tmp_path / "store"
    run = Run("exp", "run", store=store, close_timeout=1.0)
    with (
        read_only(store / "spill"),
        read_only(fallback),
        locked_store(store),
        pytest.warns(RuntimeWarning, match="closing run"),
    ):
        _log_loss(run, 500)
    stats = run.stats
    assert (stats.points_written, stats.points_lost, stats.points_pending) == (0, 500, 0)
    assert stats.points_logged == 500
    assert "lost" in (stats.last_error or "")


# -- 6. a failed file copy -------------------------------------------------------------------


def test_a_failed_file_copy_is_retried_with_back_off_and_lands(store: str, tmp_path: Path) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(b"weights")
    artifacts = Path(store) / "artifacts"
    with Run("exp", "run", store=store, tick=0.05) as run:
        artifacts.mkdir(parents=True)
        (artifacts / "tmp").write_text("a file where the copy needs a folder")
        run.log_file(str(source))
        for _ in range(400):  # the first attempt fails for real (NotADirectoryError)
            if run.stats.last_error and "retrying" in run.stats.last_error:
                break
            threading.Event().wait(0.01)
        assert "retrying" in (run.stats.last_error or "")
        (artifacts / "tmp").unlink()
        stats = run.flush(timeout=30).stats
    assert (stats.files_written, stats.files_failed, stats.files_pending) == (1, 0, 0)
    assert run.record().artifacts.output["model.bin"].size == 7


def test_a_file_copy_that_keeps_failing_is_counted(store: str, tmp_path: Path) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(b"weights")
    artifacts = Path(store) / "artifacts"
    with Run("exp", "run", store=store, tick=0.02) as run:
        artifacts.mkdir(parents=True)
        (artifacts / "tmp").write_text("never a folder")
        run.log_file(str(source))
        stats = run.flush(timeout=30).stats
    assert (stats.files_written, stats.files_failed, stats.files_pending) == (0, 1, 0)
    assert "after 6 attempts" in (stats.last_error or "")


# -- 7. write amplification ------------------------------------------------------------------


def test_small_flushes_append_little_to_the_wal(store: str) -> None:
    with Run("exp", "run", store=store, flush_interval=60.0) as run:
        for flush in range(38):
            for step in range(flush * 16, flush * 16 + 16):
                run.log_metric("loss", float(step), step=step)
            run.flush(timeout=30)
        db = sqlite3.connect(Path(store) / "runstream.db")
        (page_size,) = db.execute("PRAGMA page_size").fetchone()
        db.close()
        wal = (Path(store) / "runstream.db-wal").stat().st_size
    assert page_size == 4096
    # 64 KiB pages appended ~330 KiB a flush (a 14 MB WAL here); 4 KiB pages, ~22 KiB.
    assert wal < 38 * 64 * 1024


# -- 8. silent corruption inside a chunk -----------------------------------------------------


def _two_chunk_store(store: str) -> None:
    with Run("exp", "run", store=store) as run:
        run.log_metric("loss", 500.0, step=0)
        run.flush(timeout=30)
        run.log_metric("loss", 400.0, step=1)


def _damage(store: str, chunk_id: int, offset: int, mask: int) -> None:
    db = sqlite3.connect(Path(store) / "runstream.db")
    (blob,) = db.execute("SELECT data FROM chunks WHERE id = ?", (chunk_id,)).fetchone()
    data = bytearray(blob)
    data[offset] ^= mask
    db.execute("UPDATE chunks SET data = ? WHERE id = ?", (bytes(data), chunk_id))
    db.commit()
    db.close()


@pytest.mark.parametrize(("offset", "mask"), [(-9, 0x01), (0, 0x04)], ids=["bit", "format"])
def test_a_damaged_chunk_is_named_and_skipped_never_read_as_data(
    store: str, caplog: pytest.LogCaptureFixture, offset: int, mask: int
) -> None:
    _two_chunk_store(store)
    first, _ = _chunks(Path(store))
    _damage(store, first[0], offset, mask)
    run = runstream.list_runs("exp", store=store)[0]
    series = run.series("loss")
    assert series.step.tolist() == [1]  # the damaged chunk is skipped, not misread
    assert series.last.tolist() == [400.0]
    assert "damaged data" in caplog.text
    assert "metric 'loss' in run 'run' of experiment 'exp'" in caplog.text


def test_the_sync_journal_skips_a_damaged_chunk_and_never_sends_it(
    store: str, caplog: pytest.LogCaptureFixture
) -> None:
    _two_chunk_store(store)
    first, _ = _chunks(Path(store))
    _damage(store, first[0], -9, 0x01)
    with LocalStore(store) as opened:
        (cursor,) = _journal.cursors(opened, 1)
        pending = _journal.pending_stats(opened, cursor, max_chunks=10)
    assert pending.step.tolist() == [1]  # what would be sent: the intact chunk alone
    assert pending.last.tolist() == [400.0]
    assert "metric 'loss' in run 'run' of experiment 'exp'" in caplog.text
    assert "not sent" in caplog.text


def test_a_metric_whose_chunks_are_all_damaged_is_a_store_error_in_cli_and_dashboard(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with Run("exp", "run", store=store) as run:
        run.log_metric("loss", 500.0, step=0)
    ((chunk_id, _),) = _chunks(Path(store))
    _damage(store, chunk_id, -9, 0x01)
    with pytest.raises(StoreError, match="every chunk of metric 'loss' in run 'run'"):
        run.series("loss")
    assert main(["series", "exp", "run", "loss", "--store", store]) != 0
    captured = capsys.readouterr()
    assert "damaged" in captured.err
    assert "Traceback" not in captured.err
    with LocalStore(store) as opened, Dashboard(opened, port=0).start() as dashboard:
        url = f"{dashboard.url}api/series?experiment=exp&run=run&metric=loss"
        with pytest.raises(HTTPError) as answer:
            urlopen(url, timeout=10)
        assert answer.value.code == 500
        assert "damaged" in json.loads(answer.value.read())["error"]


def test_a_version_2_store_migrates_and_its_chunks_without_checksum_still_read(
    store: str,
) -> None:
    _two_chunk_store(store)
    db = sqlite3.connect(Path(store) / "runstream.db")
    # Back to what version 2 wrote: no checksums (the column is left, NULL, as a migrated
    # store has it), version 2 in meta.
    db.execute("UPDATE chunks SET checksum = NULL")
    db.execute("UPDATE summaries SET checksum = NULL")
    db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with load_run("run", "exp", store=store) as run:  # continued on purpose
        run.log_metric("loss", 300.0, step=2)
    assert run.series("loss").last.tolist() == [500.0, 400.0, 300.0]
    assert run.record().metrics["loss"].count == 3
    with LocalStore(store) as opened:
        assert opened.query("SELECT value FROM meta WHERE key = 'schema_version'") == [
            (str(SCHEMA_VERSION),)
        ]


def test_a_version_2_database_gains_the_checksum_columns(tmp_path: Path) -> None:
    path = tmp_path / "v2"
    path.mkdir()
    db = sqlite3.connect(path / "runstream.db")
    db.executescript(str(_schema._DATA) + ";" + str(_schema._SYNC))
    db.execute("INSERT INTO meta VALUES ('schema_version', '2')")
    db.commit()
    db.close()
    with LocalStore(path) as opened:
        columns = {r[1] for r in opened.query("PRAGMA table_info(chunks)")}
        assert "checksum" in columns


# -- 10. calls that failed late, partly or unclearly -----------------------------------------


def test_log_metrics_and_log_parameters_log_nothing_when_one_item_is_bad(store: str) -> None:
    with Run("exp", "run", store=store) as run:
        run.log_metrics({"a": 1.0}, step=0)
        with pytest.raises(ValueError, match="is not a number"):
            run.log_metrics({"a": 2.0, "b": 3.0, "c": "x"}, step=1)  # type: ignore[dict-item]
        with pytest.raises(ValueError, match="lone surrogate"):
            run.log_metrics({"a": 2.0, "\ud800": 3.0}, step=1)
        with pytest.raises(ValueError, match="64-bit integer"):
            run.log_parameters({"x": 1, "y": 2**70})
        with pytest.raises(TypeError, match="log_parameters takes a mapping"):
            run.log_parameters(None)  # type: ignore[arg-type]
    assert run.series("a").step.tolist() == [0]
    assert run.record().parameters == {}
    assert set(run.record().metrics) == {"a"}


@pytest.mark.parametrize(
    ("arguments", "error", "pattern"),
    [
        ({"flush_interval": "1"}, TypeError, "flush_interval must be a positive number"),
        ({"tick": float("inf")}, ValueError, "tick must be a positive number"),
        ({"close_timeout": True}, TypeError, "close_timeout must be a positive number"),
        ({"tags": {"k": object()}}, TypeError, "tags must be a dict of strings"),
        ({"tags": [{"Key": "k"}]}, TypeError, "tags must be a dict of strings"),
        ({"worker": ["w"]}, ValueError, "worker"),
        ({"worker": "w\ud800"}, ValueError, "lone surrogate"),
        ({"capacity": True}, ValueError, "capacity must be an int"),
    ],
)
def test_bad_run_arguments_fail_at_construction_and_say_why(
    store: str, arguments: dict[str, Any], error: type[Exception], pattern: str
) -> None:
    with pytest.raises(error, match=pattern):
        Run("exp", "run", store=store, **arguments)


def test_an_overflowing_metric_names_the_value(store: str) -> None:
    with Run("exp", "run", store=store) as run, pytest.raises(OverflowError) as caught:
        run.log_metric("m", 10**400, step=0)
    assert "10000000000" in str(caught.value)
    assert "(401 digits)" in str(caught.value)


# -- 11. the dashboard ----------------------------------------------------------------------


@pytest.fixture
def dashboard(store: str) -> Iterator[Dashboard]:
    with Run("exp", "run", store=store) as run:
        run.log_metric("loss", 1.0, step=0)
    with LocalStore(store) as opened, Dashboard(opened, port=0).start() as server:
        yield server


@pytest.mark.parametrize("host", [b"[::1", b"127.0.0.1:notaport", b"127.0.0.1:99999", b"a/b"])
def test_a_malformed_host_is_a_400(dashboard: Dashboard, host: bytes) -> None:
    head = _raw_get(dashboard.port, b"GET /api/experiments HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")


def test_half_sent_requests_and_disconnects_are_quiet(
    dashboard: Dashboard, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    for partial in (b"GET /api/exper", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n", b""):
        with socket.create_connection(("127.0.0.1", dashboard.port)) as sock:
            sock.sendall(partial)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
    with socket.create_connection(("127.0.0.1", dashboard.port)) as sock:  # reset mid-answer
        sock.sendall(b"GET /app.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
    with urlopen(f"{dashboard.url}api/experiments", timeout=10) as answer:  # still serving
        assert answer.status == 200
    assert "Traceback" not in capfd.readouterr().err
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_fifty_concurrent_clients_are_all_answered(dashboard: Dashboard) -> None:
    barrier = threading.Barrier(64)
    statuses: list[int] = []

    def client() -> None:
        barrier.wait()
        with urlopen(f"{dashboard.url}api/experiments", timeout=30) as answer:
            statuses.append(answer.status)

    threads = [threading.Thread(target=client) for _ in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 64
