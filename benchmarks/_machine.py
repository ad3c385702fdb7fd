"""What every benchmark prints first: the machine and the versions, so numbers have context."""

from __future__ import annotations

import os
import platform
import sys

import numpy as np


def describe() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"machine: {cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
        f"Python {sys.version.split()[0]}, numpy {np.__version__}; load avg {load:.2f}"
    )
