"""PyTorch tensors as metric values: CPU tensors convert, device tensors never sync.

No GPU here: a "CUDA" tensor is a real CPU tensor whose type says ``cuda:0`` and counts every
read (``.item()``, ``.cpu()``, ``float()``...) with the thread that made it, and
``torch.cuda``'s streams and events are fakes whose ``query()`` the test controls and whose
``synchronize`` is counted. Everything else (the run, its flusher, the SQLite store) is real.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from _support import wait_until
from runstream import FlushTimeoutError, Run
from runstream._core._tensors import capture

torch = pytest.importorskip("torch")
Tensor: Any = torch.Tensor

STEPS = 40


# -- CPU tensors: converted at the call ---------------------------------------------------


def test_cpu_tensors_are_logged_exactly(tmp_path: Path) -> None:
    weight = torch.nn.Parameter(torch.tensor([0.25]))
    with Run("tensors", "cpu", store=tmp_path) as run:
        for step in range(STEPS):
            loss = torch.tensor(step / 4, requires_grad=True) * 2
            run.log_metric("loss", loss, step=step)
            run.log_metrics(
                {
                    "bf16": torch.tensor(step, dtype=torch.bfloat16),
                    "count": torch.tensor([step], dtype=torch.int64),
                    "weight": weight,
                },
                step=step,
            )
    steps = np.arange(STEPS)
    assert run.series("loss").step.tolist() == steps.tolist()
    assert run.series("loss").last.tolist() == (steps / 2).tolist()
    assert run.series("bf16").last.tolist() == steps.astype(float).tolist()
    assert run.series("count").last.tolist() == steps.astype(float).tolist()
    assert run.series("weight").mean.tolist() == [0.25] * STEPS
    assert run.stats.points_written == 4 * STEPS


def test_a_tensor_with_several_elements_is_refused_at_the_call(tmp_path: Path) -> None:
    with Run("tensors", "shape", store=tmp_path) as run:
        with pytest.raises(TypeError, match="not a scalar"):
            run.log_metric("loss", torch.ones(3), step=0)
        with pytest.raises(TypeError, match="is not a number"):
            run.log_metric("loss", torch.Size([3]), step=0)  # torch's, but not a tensor
        with pytest.raises(ValueError, match="step must be"):
            run.log_metric("loss", torch.ones(()), step=-5)


def test_cpu_tensors_are_not_deferred() -> None:
    assert capture(torch.ones(())) is None  # .item() on the CPU waits for nothing


# -- "CUDA" tensors: deferred, copied in blocks, never synced -----------------------------


class FakeCuda(Tensor):  # type: ignore[misc]
    """A CPU tensor that claims ``cuda:0``; every read of its value is recorded."""

    reads: ClassVar[list[str]] = []

    @property
    def device(self) -> Any:
        return torch.device("cuda", 0)

    @property
    def is_cuda(self) -> bool:
        return True

    def _read(self) -> None:
        FakeCuda.reads.append(threading.current_thread().name)

    def item(self) -> Any:
        self._read()
        return super().item()

    def cpu(self, *args: Any, **kwargs: Any) -> Any:
        self._read()
        return super().cpu(*args, **kwargs)

    def tolist(self) -> Any:
        self._read()
        return super().tolist()

    def numpy(self, *args: Any, **kwargs: Any) -> Any:
        self._read()
        return super().numpy(*args, **kwargs)

    def __float__(self) -> float:
        self._read()
        return float(super().item())


def on_gpu(value: float, dtype: Any = torch.float32) -> Any:
    return torch.Tensor._make_subclass(FakeCuda, torch.tensor(value, dtype=dtype))


class FakeCudaModule:
    """What runstream uses of ``torch.cuda``: streams, events, and the forbidden sync."""

    def __init__(self) -> None:
        self.landed = threading.Event()  # what every event's query() answers
        self.queries = 0
        self.syncs = 0
        self.waits: list[tuple[object, object]] = []
        self.training_stream = object()

    def current_stream(self, device: Any = None) -> object:
        return self.training_stream

    def Stream(self, device: Any = None) -> Any:
        module = self

        class Stream:
            def wait_stream(self, other: object) -> None:
                module.waits.append((self, other))

            def synchronize(self) -> None:
                module.syncs += 1

        return Stream()

    def stream(self, stream: object) -> Any:
        return nullcontext()

    def Event(self) -> Any:
        module = self

        class Event:
            def record(self, stream: object) -> None:
                pass

            def query(self) -> bool:
                module.queries += 1
                return module.landed.is_set()

            def synchronize(self) -> None:
                module.syncs += 1

        return Event()

    def synchronize(self, device: Any = None) -> None:
        self.syncs += 1


@pytest.fixture
def cuda(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCudaModule]:
    from runstream._core import _tensors

    fake = FakeCudaModule()
    for name in ("current_stream", "Stream", "stream", "Event", "synchronize"):
        monkeypatch.setattr(torch.cuda, name, getattr(fake, name))
    # Pinned memory needs a CUDA build; plain host memory behaves the same for the test.
    monkeypatch.setattr(
        _tensors, "pinned_empty", lambda torch, n: torch.empty(n, dtype=torch.float64)
    )
    FakeCuda.reads.clear()
    yield fake
    FakeCuda.reads.clear()


def test_device_tensors_reach_the_store_only_when_their_copy_has_landed(
    tmp_path: Path, cuda: FakeCudaModule
) -> None:
    with Run("tensors", "gpu", store=tmp_path, tick=0.01, close_timeout=10) as run:
        for step in range(STEPS):
            run.log_metric("loss", on_gpu(step / 2), step=step)
            run.log_metrics({"acc": on_gpu(step, torch.bfloat16), "lr": 0.1}, step=step)
        wait_until(lambda: cuda.queries > 0, "the flusher to launch the copy")
        # The copy is in flight: the floats are written, the tensors are not.
        with pytest.raises(FlushTimeoutError):
            run.flush(timeout=0.2)
        assert run.stats.points_pending == 2 * STEPS
        assert run.stats.points_written == STEPS
        cuda.landed.set()
        run.flush(timeout=10)
        assert run.stats.points_pending == 0
    assert FakeCuda.reads == []  # not on the training thread, nor anywhere else
    assert cuda.syncs == 0
    # Every copy waited for the stream that produced the values.
    assert cuda.waits
    assert {other for _, other in cuda.waits} == {cuda.training_stream}
    loss, acc = run.series("loss"), run.series("acc")
    assert loss.step.tolist() == list(range(STEPS))
    assert loss.last.tolist() == [step / 2 for step in range(STEPS)]
    assert acc.last.tolist() == [float(step) for step in range(STEPS)]
    assert run.stats.points_written == 3 * STEPS
    assert run.record().status == "Completed"


def test_closing_waits_for_the_copies(tmp_path: Path, cuda: FakeCudaModule) -> None:
    def land_later() -> None:
        wait_until(lambda: cuda.queries >= 3, "the flusher to poll the copy")
        cuda.landed.set()

    with Run("tensors", "close", store=tmp_path, tick=0.01, close_timeout=10) as run:
        for step in range(STEPS):
            run.log_metric("loss", on_gpu(step), step=step)
        lander = threading.Thread(target=land_later)
        lander.start()
    lander.join()
    assert run.series("loss").count.sum() == STEPS
    assert run.stats.points_written == STEPS
    assert FakeCuda.reads == []
    assert cuda.syncs == 0


def test_closing_gives_up_on_a_copy_that_never_lands_and_says_so(
    tmp_path: Path, cuda: FakeCudaModule
) -> None:
    run = Run("tensors", "stuck", store=tmp_path, tick=0.01, close_timeout=0.3)
    run.__enter__()
    for step in range(STEPS):
        run.log_metric("loss", on_gpu(step), step=step)
    with pytest.warns(RuntimeWarning, match=f"{STEPS} points and 0 files not written"):
        run.__exit__(None, None, None)
    assert run.stats.points_pending == STEPS
    assert FakeCuda.reads == []
    assert cuda.syncs == 0


def test_a_failed_copy_falls_back_to_reading_on_the_flusher_thread(
    tmp_path: Path, cuda: FakeCudaModule, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runstream._core import _tensors

    def no_pinned_memory(torch: Any, n: int) -> Any:
        raise RuntimeError("out of pinned memory")

    monkeypatch.setattr(_tensors, "pinned_empty", no_pinned_memory)
    with Run("tensors", "fallback", store=tmp_path, tick=0.01, close_timeout=10) as run:
        for step in range(STEPS):
            run.log_metric("loss", on_gpu(step), step=step)
        training_thread = threading.current_thread().name
    assert run.series("loss").last.tolist() == [float(step) for step in range(STEPS)]
    assert len(FakeCuda.reads) == STEPS
    assert training_thread not in FakeCuda.reads
    assert run.stats.points_dropped == 0


def test_a_tensor_changed_in_place_after_logging_is_reported(
    tmp_path: Path, cuda: FakeCudaModule, caplog: pytest.LogCaptureFixture
) -> None:
    total = on_gpu(0.0)
    run = Run("tensors", "inplace", store=tmp_path, tick=0.05, close_timeout=10)
    with caplog.at_level(logging.WARNING, logger="runstream"), run:
        for step in range(3):
            total.add_(1.0)  # an accumulator: the logged value changes afterwards
            run.log_metric("total", total, step=step)
        cuda.landed.set()
    assert "'total': a logged tensor was changed in place" in caplog.text
    assert FakeCuda.reads == []


def test_log_metric_with_a_device_tensor_is_cheap_and_never_reads(
    tmp_path: Path, cuda: FakeCudaModule
) -> None:
    """The call itself only captures: no read, no sync, whatever the flusher does."""
    values = [on_gpu(float(i)) for i in range(1000)]
    with Run("tensors", "hot", store=tmp_path, tick=0.01, close_timeout=10) as run:
        for step, value in enumerate(values):
            run.log_metric("loss", value, step=step)
        cuda.landed.set()
    assert FakeCuda.reads == []
    assert cuda.syncs == 0
    assert run.series("loss").mean.tolist() == [float(i) for i in range(1000)]
