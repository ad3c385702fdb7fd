"""Framework tensors as metric values, read without syncing the device.

Every tracker turns a logged GPU tensor into a float at the call (``.item()``), which makes
the training thread wait until the device has run everything queued before it: a sync per
step. Here a device value is only *captured* at the call (kept by reference, with the stream
that produced it); the flusher's tick gathers what was captured, per device, into one block,
copies it to pinned host memory asynchronously on a side stream, and records an event. A later
tick sees the event completed (``event.query()``, never a synchronize) and hands the values,
with their steps, to the run's ordinary buffers.

None of the frameworks is imported here: a value is recognised by its type only when its
framework is already in ``sys.modules`` (the program made the value, so it imported it).

- PyTorch: tensors on a device whose torch module has streams and events (CUDA, ROCm, XPU)
  are deferred; CPU tensors convert at the call (``.item()`` costs no sync there); other
  devices (MPS) convert at the call too.
- CuPy: arrays are deferred the same way, with CuPy's streams, events and pinned memory.
- JAX: every array is deferred, even on the CPU, because JAX dispatches asynchronously and
  reading a value waits for the computation: ``copy_to_host_async()`` starts the copy, and
  the value is read once ``is_ready()``.

A deferred value is read when its copy runs, one tick or so after the call: a tensor changed
in place after it was logged (an accumulator updated with ``add_``, a CUDA-graph output that
the next replay overwrites) would be read with its later value. For PyTorch, the tensor's
version counter tells, and a warning names the metric; log a fresh tensor or a ``.clone()``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = (
    "Captured",
    "DeviceEntry",
    "DeviceValues",
    "capture",
    "pinned_empty",
)

_log = logging.getLogger("runstream")


@dataclass(frozen=True, slots=True)
class Captured:
    """A device value as logged: what to copy, from which device, after which stream."""

    framework: _Framework
    value: Any  # a detached tensor or an array, kept alive until its copy has landed
    device: Any  # hashable: values of one device are copied in one block
    stream: Any  # the stream that produced the value (None for JAX)
    version: int | None  # torch's in-place version counter at the call


@dataclass(slots=True)
class DeviceEntry:
    name: str
    step: int
    timestamp: float | None
    captured: Captured


Deliver = Callable[[list[DeviceEntry], "NDArray[np.float64]"], None]


def capture(value: object) -> Captured | None:
    """A device tensor or array, captured for an asynchronous copy; ``None`` for a value
    that converts at the call (not a framework value, or a CPU tensor).

    :raises TypeError: a framework value with more than one element
    """
    # The type's module names the framework; its own base type confirms (torch.Size is not
    # a tensor). A subclass defined elsewhere is rare: then every imported framework is asked.
    framework = _FRAMEWORKS.get(type(value).__module__.partition(".")[0])
    if framework is not None and framework.owns(value):
        return framework.capture(value)
    for candidate in (_TORCH, _CUPY, _JAX):
        if candidate is not framework and candidate.owns(value):
            return candidate.capture(value)
    return None


def _not_scalar(value: object, size: int) -> TypeError:
    return TypeError(
        f"metric value {type(value).__name__} with {size} elements is not a scalar: only "
        "0-d or one-element tensors can be logged"
    )


# -- one adapter per framework ------------------------------------------------------------


class _Framework:
    """How one framework's values are recognised, captured, copied in a block, and read."""

    root = ""
    type_name = ""

    def owns(self, value: object) -> bool:
        module = sys.modules.get(self.root)
        cls = getattr(module, self.type_name, None) if module is not None else None
        return isinstance(cls, type) and isinstance(value, cls)

    def capture(self, value: Any) -> Captured | None:
        raise NotImplementedError

    def launch(self, values: list[Captured], side: dict[Hashable, Any]) -> _Copy:
        """Start the device-to-host copy of ``values`` (one device) without waiting."""
        raise NotImplementedError

    def read(self, value: Any) -> float:
        """Read one value, waiting for it: the fallback when a block copy fails."""
        return float(np.asarray(value.item() if hasattr(value, "item") else value))


@dataclass(slots=True)
class _Copy:
    """A block copy in flight: its entries, a completion test, and where the values land."""

    entries: list[DeviceEntry]
    done: Callable[[], bool]
    values: Callable[[], NDArray[np.float64]]
    keep: tuple[Any, ...] = field(default=())  # device buffers alive until the copy lands


class _Torch(_Framework):
    root = "torch"
    type_name = "Tensor"

    def __init__(self) -> None:
        self._modules: dict[str, Any] = {}

    def device_module(self, torch: Any, device_type: str) -> Any:
        """``torch.cuda`` (or ``torch.xpu``...) if it has streams and events, else None."""
        if device_type not in self._modules:
            module = getattr(torch, device_type, None)
            needed = ("Stream", "Event", "stream", "current_stream")
            ok = module is not None and all(hasattr(module, name) for name in needed)
            self._modules[device_type] = module if ok else None
        return self._modules[device_type]

    def capture(self, value: Any) -> Captured | None:
        device = value.device
        if device.type == "cpu":
            return None  # .item() on the CPU waits for nothing
        module = self.device_module(sys.modules["torch"], device.type)
        if module is None:
            return None
        size = value.numel()
        if size != 1:
            raise _not_scalar(value, size)
        try:
            version = value._version
        except RuntimeError:  # inference tensors keep no version counter
            version = None
        # detach(): keep the number, not the autograd graph behind it.
        return Captured(self, value.detach(), device, module.current_stream(device), version)

    def launch(self, values: list[Captured], side: dict[Hashable, Any]) -> _Copy:
        torch = sys.modules["torch"]
        device = values[0].device
        module = self.device_module(torch, device.type)
        stream = side.get(device)
        if stream is None:
            stream = side[device] = module.Stream(device=device)
        # Order the copy after the work that produced the values, on every producing stream.
        for producer in {captured.stream for captured in values}:
            stream.wait_stream(producer)
        with torch.no_grad(), module.stream(stream):
            block = torch.stack([captured.value.reshape(()) for captured in values])
            block = block.to(torch.float64)
            host = pinned_empty(torch, len(values))
            host.copy_(block, non_blocking=True)
            event = module.Event()
            event.record(stream)
        # The values stay referenced by the entries until the event has completed, so the
        # caching allocator cannot hand their memory to another stream mid-copy.
        return _Copy([], event.query, host.numpy, keep=(block, host))

    def read(self, value: Any) -> float:
        return float(value.item())


def pinned_empty(torch: Any, size: int) -> Any:
    """Page-locked host memory: what lets a device-to-host copy run asynchronously."""
    return torch.empty(size, dtype=torch.float64, pin_memory=True)


class _CuPy(_Framework):
    root = "cupy"
    type_name = "ndarray"

    def capture(self, value: Any) -> Captured | None:
        if value.size != 1:
            raise _not_scalar(value, value.size)
        cupy = sys.modules["cupy"]
        return Captured(self, value, value.device.id, cupy.cuda.get_current_stream(), None)

    def launch(self, values: list[Captured], side: dict[Hashable, Any]) -> _Copy:
        cupy = sys.modules["cupy"]
        with cupy.cuda.Device(values[0].device):
            stream = side.get(("cupy", values[0].device))
            if stream is None:
                stream = side[("cupy", values[0].device)] = cupy.cuda.Stream(non_blocking=True)
            for producer in {captured.stream for captured in values}:
                stream.wait_event(producer.record())
            with stream:
                block = cupy.stack([captured.value.reshape(()) for captured in values])
                block = block.astype(cupy.float64)
                host = cupy.cuda.alloc_pinned_memory(8 * len(values))
                out = np.frombuffer(host, dtype=np.float64, count=len(values))
                cupy.asnumpy(block, stream=stream, out=out, blocking=False)
                event = stream.record()
        return _Copy([], lambda: bool(event.done), lambda: out, keep=(block, host))


class _Jax(_Framework):
    root = "jax"
    type_name = "Array"

    def capture(self, value: Any) -> Captured | None:
        if not hasattr(value, "copy_to_host_async"):
            return None  # a tracer inside jit: not a value yet (converting it raises)
        if value.size != 1:
            raise _not_scalar(value, value.size)
        return Captured(self, value, "jax", None, None)

    def launch(self, values: list[Captured], side: dict[Hashable, Any]) -> _Copy:
        # JAX arrays are immutable and have their own host cache: start each one's copy,
        # and read them all once every computation behind them has finished.
        arrays = [captured.value for captured in values]
        for array in arrays:
            array.copy_to_host_async()

        def values_now() -> NDArray[np.float64]:
            return np.array([np.asarray(a).reshape(()) for a in arrays], dtype=np.float64)

        return _Copy([], lambda: all(a.is_ready() for a in arrays), values_now)

    def read(self, value: Any) -> float:
        return float(np.asarray(value).reshape(()))


_TORCH, _CUPY, _JAX = _Torch(), _CuPy(), _Jax()
# Keyed by the root of the type's module: torch.Tensor is "torch", CuPy's ndarray
# "cupy._core.core", JAX's ArrayImpl "jaxlib._jax" (formerly "jaxlib.xla_extension").
_FRAMEWORKS: dict[str, _Framework] = {"torch": _TORCH, "cupy": _CUPY, "jax": _JAX, "jaxlib": _JAX}


# -- the per-run gatherer -----------------------------------------------------------------


class DeviceValues:
    """Device values of one run between the call and the run's buffers.

    ``add`` runs on the training thread(s): one list append. ``poll`` runs on the flusher's
    tick: it launches one block copy per device for what was gathered since the last tick,
    and delivers the blocks whose copies have completed.
    """

    def __init__(self) -> None:
        self._gathered: list[DeviceEntry] = []
        self._in_flight: list[_Copy] = []
        self._side: dict[Hashable, Any] = {}  # one side stream per device, made lazily
        self._warned_in_place: set[str] = set()
        self.lost = 0  # values no copy nor read could recover (reported, never silent)

    def add(self, name: str, captured: Captured, step: int, timestamp: float | None) -> None:
        self._gathered.append(DeviceEntry(name, step, timestamp, captured))

    @property
    def pending(self) -> int:
        """Values logged and not yet delivered."""
        return len(self._gathered) + sum(len(copy.entries) for copy in self._in_flight)

    def poll(self, deliver: Deliver) -> None:
        """Launch copies of what was gathered, deliver what has landed. Never waits."""
        self._launch()
        waiting: list[_Copy] = []
        for copy in self._in_flight:
            try:
                landed = copy.done()
            except Exception as exc:  # a failed device: read each value instead
                self._read_each(copy.entries, exc, deliver)
                continue
            if landed:
                deliver(copy.entries, copy.values())
            else:
                waiting.append(copy)
        self._in_flight = waiting

    def _launch(self) -> None:
        n = len(self._gathered)
        if not n:
            return
        blocks: dict[tuple[int, Hashable], list[DeviceEntry]] = {}
        for entry in self._gathered[:n]:
            key = (id(entry.captured.framework), entry.captured.device)
            blocks.setdefault(key, []).append(entry)
        for block in blocks.values():
            framework = block[0].captured.framework
            try:
                copy = framework.launch([entry.captured for entry in block], self._side)
                copy.entries = block
            except Exception as exc:
                _log.warning("runstream: could not copy %d device values: %s", len(block), exc)
                copy = self._read_now(block)
            self._in_flight.append(copy)
            self._check_in_place(block)
        del self._gathered[:n]  # after the copies are in flight, so pending never dips

    def _read_now(self, block: list[DeviceEntry]) -> _Copy:
        """The fallback: read each value on this (the flusher's) thread, waiting for it."""
        kept: list[DeviceEntry] = []
        values: list[float] = []
        for entry in block:
            try:
                values.append(entry.captured.framework.read(entry.captured.value))
            except Exception as exc:
                self.lost += 1
                _log.error("runstream: metric %r lost a device value: %s", entry.name, exc)
                continue
            kept.append(entry)
        array = np.array(values, dtype=np.float64)
        return _Copy(kept, lambda: True, lambda: array)

    def _read_each(self, entries: list[DeviceEntry], exc: Exception, deliver: Deliver) -> None:
        _log.warning("runstream: a device copy failed (%s); reading values one by one", exc)
        copy = self._read_now(entries)
        deliver(copy.entries, copy.values())

    def _check_in_place(self, block: list[DeviceEntry]) -> None:
        for entry in block:
            captured = entry.captured
            if captured.version is None or entry.name in self._warned_in_place:
                continue
            if captured.value._version != captured.version:
                self._warned_in_place.add(entry.name)
                _log.warning(
                    "runstream: metric %r: a logged tensor was changed in place after "
                    "log_metric, so a later value may be recorded; log a fresh tensor or "
                    "tensor.clone() (warned once per metric)",
                    entry.name,
                )
