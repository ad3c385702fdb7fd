"""Training-loop cost of logging GPU tensors: steps/s of a small MLP, logging two metrics
(the loss and the gradient norm) every step in different ways, in one run.

    python benchmarks/bench_gpu.py            # CUDA: 8 layers of width 2048, batch 1024
    python benchmarks/bench_gpu.py --small    # a small model, the CPU's default

Variants: no logging; ``.item()`` every step (what every tracker does at the call);
TensorBoard's ``add_scalar`` and tensorboardX's, where installed; runstream with
``.item()``; runstream with the tensors themselves (kept on the device, copied off in
blocks asynchronously). Each variant runs ``--repeats`` times, interleaved, and the table
gives the median. The device is synchronized only around each timed block, never inside.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import torch

import runstream
from runstream import Run

Hook = Callable[[int, Any, Any], None]
Variant = Callable[[], AbstractContextManager[Hook]]


def build(args: argparse.Namespace, device: Any) -> tuple[Any, Any, Any, Any]:
    torch.manual_seed(0)
    layers: list[Any] = []
    for _ in range(args.layers - 1):
        layers += [torch.nn.Linear(args.width, args.width), torch.nn.ReLU()]
    layers.append(torch.nn.Linear(args.width, 10))
    model = torch.nn.Sequential(*layers).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    x = torch.randn(args.batch, args.width, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    return model, optimizer, x, y


def make_step(model: Any, optimizer: Any, x: Any, y: Any) -> Callable[[], tuple[Any, Any]]:
    parameters = list(model.parameters())

    def step() -> tuple[Any, Any]:
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        # The norm is a device tensor too; a huge max_norm leaves the gradients alone.
        grad_norm = torch.nn.utils.clip_grad_norm_(parameters, 1e9)
        optimizer.step()
        return loss, grad_norm

    return step


# -- the variants: a context (set up, torn down outside the timing) giving a per-step hook --


@contextmanager
def no_logging() -> Iterator[Hook]:
    yield lambda i, loss, grad_norm: None


@contextmanager
def item_every_step() -> Iterator[Hook]:
    kept: list[float] = []

    def hook(i: int, loss: Any, grad_norm: Any) -> None:
        kept.append(loss.item())
        kept.append(grad_norm.item())

    yield hook


@contextmanager
def tensorboard(module: str) -> Iterator[Hook]:
    summary = importlib.import_module(module)
    with tempfile.TemporaryDirectory() as logdir:
        writer = summary.SummaryWriter(logdir)

        def hook(i: int, loss: Any, grad_norm: Any) -> None:
            writer.add_scalar("loss", loss, i)  # converts the tensor at the call
            writer.add_scalar("grad_norm", grad_norm, i)

        try:
            yield hook
        finally:
            writer.close()


@contextmanager
def runstream_run(tensors: bool, written: list[int]) -> Iterator[Hook]:
    with tempfile.TemporaryDirectory() as store:
        with Run("bench-gpu", "tensors" if tensors else "items", store=store) as run:
            if tensors:

                def hook(i: int, loss: Any, grad_norm: Any) -> None:
                    run.log_metrics({"loss": loss, "grad_norm": grad_norm}, step=i)

            else:

                def hook(i: int, loss: Any, grad_norm: Any) -> None:
                    run.log_metrics({"loss": loss.item(), "grad_norm": grad_norm.item()}, step=i)

            yield hook
        written.append(run.stats.points_written)


def variants(
    written: dict[str, list[int]],
) -> dict[str, Variant]:
    found: dict[str, Variant] = {
        "no logging": no_logging,
        ".item() every step": item_every_step,
    }
    if importlib.util.find_spec("tensorboard") is not None:
        found["TensorBoard add_scalar"] = functools.partial(tensorboard, "torch.utils.tensorboard")
    if importlib.util.find_spec("tensorboardX") is not None:
        found["tensorboardX add_scalar"] = functools.partial(tensorboard, "tensorboardX")
    for name, tensors in (("runstream, .item()", False), ("runstream, tensors", True)):
        counts = written[name] = []
        found[name] = functools.partial(runstream_run, tensors, counts)
    return found


def time_variant(
    variant: Variant,
    step: Callable[[], tuple[Any, Any]],
    sync: Callable[[], None],
    args: argparse.Namespace,
) -> float:
    """Steps per second over ``args.steps`` steps after ``args.warmup`` (setup excluded)."""
    with variant() as hook:
        for i in range(args.warmup):
            hook(i, *step())
        sync()
        start = time.perf_counter()
        for i in range(args.warmup, args.warmup + args.steps):
            hook(i, *step())
        sync()
        elapsed = time.perf_counter() - start
    return float(args.steps) / elapsed


def machine(device: Any) -> str:
    if device.type == "cuda":
        accelerator = torch.cuda.get_device_name(device)
    else:
        accelerator = "no GPU (CPU run)"
    cpu = platform.processor() or platform.machine()
    return (
        f"{accelerator}; {os.cpu_count()} CPUs ({cpu}); Python {platform.python_version()}; "
        f"torch {torch.__version__}; runstream {runstream.__version__}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--small", action="store_true", help="4 layers of 256, batch 64")
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=500, help="timed steps per repeat")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.small or device.type == "cpu":
        args.layers, args.width, args.batch = 4, 256, 64
        if device.type == "cpu" and not args.small:
            print("no GPU: the small model (--small), on the CPU, where .item() syncs nothing")
    if device.type == "cpu":
        # One thread: intra-op threads spinning against the flusher (and anything else on
        # a small machine) make CPU timings mostly noise.
        torch.set_num_threads(1)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    step = make_step(*build(args, device))
    written: dict[str, list[int]] = {}
    table = variants(written)
    rates: dict[str, list[float]] = {name: [] for name in table}
    for _ in range(args.repeats):
        for name, variant in table.items():
            rates[name].append(time_variant(variant, step, sync, args))

    print(f"machine: {machine(device)}")
    print(
        f"model: MLP {args.layers} x {args.width}, batch {args.batch}, {args.steps} steps "
        f"(+{args.warmup} warm-up) x {args.repeats} repeats, 2 metrics a step"
    )
    base = statistics.median(rates["no logging"])
    print(f"\n{'variant':<26} {'steps/s':>9} {'ms/step':>8} {'vs none':>8}")
    for name, values in rates.items():
        rate = statistics.median(values)
        change = "" if name == "no logging" else f"{(rate / base - 1) * 100:+.1f}%"
        print(f"{name:<26} {rate:>9.1f} {1000 / rate:>8.2f} {change:>8}")
    expected = 2 * (args.warmup + args.steps)
    for name, counts in written.items():
        if any(count != expected for count in counts):
            sys.exit(f"{name}: wrote {counts} points per repeat, expected {expected}")
    print(f"\nrunstream wrote every point ({expected} per repeat) in both variants")


if __name__ == "__main__":
    main()
