"""Framework values recognised without importing the frameworks: JAX (real, when installed)
and CuPy (a stand-in module with CuPy's names; CuPy needs a GPU). The run, its flusher and
the SQLite store are real. PyTorch: ``test_tensors_torch.py``.
"""

from __future__ import annotations

import sys
import types
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runstream import Run
from runstream._core._tensors import capture

STEPS = 40


def test_values_that_are_not_framework_tensors_are_not_captured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for value in (1, True, 2.5, np.float32(2.0), np.ones(1), np.ones(3), "3", None):
        assert capture(value) is None
    # A framework's other types (torch.Size, a dtype...) come from its module too.
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy())
    not_an_array = type("Device", (), {"__module__": "cupy.cuda.device"})()
    assert capture(not_an_array) is None
    assert capture(np.ones(()).view(FakeCupyArray)) is not None


# -- JAX: every array is deferred (dispatch is asynchronous even on the CPU) ---------------


def test_jax_arrays_are_deferred_and_logged(tmp_path: Path) -> None:
    jax = pytest.importorskip("jax")
    jnp = jax.numpy

    loss_of = jax.jit(lambda x: jnp.mean((x - 1.0) ** 2))

    assert capture(loss_of(jnp.zeros(4))) is not None
    with Run("tensors", "jax", store=tmp_path, tick=0.01, close_timeout=10) as run:
        for step in range(STEPS):
            run.log_metric("loss", loss_of(jnp.full(4, step / 10)), step=step)
            run.log_metrics({"one": jnp.ones(1)}, step=step)
        with pytest.raises(TypeError, match="not a scalar"):
            run.log_metric("loss", jnp.ones(2))
    expected = [(step / 10 - 1.0) ** 2 for step in range(STEPS)]
    np.testing.assert_allclose(run.series("loss").last, expected, rtol=1e-6)
    assert run.series("one").count.sum() == STEPS


# -- CuPy: recognised by type without importing cupy --------------------------------------


class FakeCupyArray(np.ndarray):
    """Stands for ``cupy.ndarray``: its type's module is CuPy's."""

    device = types.SimpleNamespace(id=0)  # type: ignore[assignment]


FakeCupyArray.__module__ = "cupy._core.core"


def fake_cupy() -> types.ModuleType:
    """The part of CuPy's API runstream calls, on numpy, recording the async copy."""
    cupy = types.ModuleType("cupy")
    cupy.ndarray = FakeCupyArray  # type: ignore[attr-defined]
    cupy.float64 = np.float64  # type: ignore[attr-defined]
    cupy.stack = np.stack  # type: ignore[attr-defined]
    calls: list[str] = []

    class Event:
        done = True

    class Stream:
        def __init__(self, non_blocking: bool = False) -> None:
            calls.append(f"Stream(non_blocking={non_blocking})")

        def record(self) -> Event:
            return Event()

        def wait_event(self, event: Event) -> None:
            calls.append("wait_event")

        def __enter__(self) -> Stream:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

    def asnumpy(a: Any, stream: Any, out: Any, blocking: bool) -> Any:
        calls.append(f"asnumpy(blocking={blocking})")
        out[:] = a
        return out

    cupy.asnumpy = asnumpy  # type: ignore[attr-defined]
    cupy.cuda = types.SimpleNamespace(  # type: ignore[attr-defined]
        Device=lambda i: nullcontext(),
        Stream=Stream,
        get_current_stream=lambda: Stream(),
        alloc_pinned_memory=lambda n: bytearray(n),
    )
    cupy.calls = calls  # type: ignore[attr-defined]
    return cupy


def test_cupy_arrays_are_copied_asynchronously(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cupy = fake_cupy()
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    with Run("tensors", "cupy", store=tmp_path, tick=0.01, close_timeout=10) as run:
        for step in range(STEPS):
            run.log_metric("loss", np.asarray(step / 2).view(FakeCupyArray), step=step)
        with pytest.raises(TypeError, match="not a scalar"):
            run.log_metric("loss", np.ones(2).view(FakeCupyArray))
    assert run.series("loss").last.tolist() == [step / 2 for step in range(STEPS)]
    assert "asnumpy(blocking=False)" in cupy.calls
    assert "Stream(non_blocking=True)" in cupy.calls
