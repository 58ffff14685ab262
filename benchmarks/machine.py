"""What CPU a benchmark ran on: its model name and flags, from /proc/cpuinfo (Linux)."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_info() -> tuple[str, set[str]]:
    """(model name, CPU flags); off Linux the platform's machine type and no flags."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
            if line == "" and flags:  # the first processor's block is enough
                break
    except OSError:
        pass
    return name, flags


def cpu_name() -> str:
    """The CPU's model name (see :func:`cpu_info`)."""
    return cpu_info()[0]
