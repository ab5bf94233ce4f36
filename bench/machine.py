"""The machine a run was taken on: cores, memory, CPU, and the versions of what was measured."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from bench.postfix import postfix_version, tool
from bench.scratch import postgres_version


def facts() -> dict[str, str]:
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": str(os.cpu_count() or "?"),
        "memory": _memory(),
        "cpu": _cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres_version() or "not reachable",
        "postfix": postfix_version() or "not installed",
        "wrk": _wrk_version(),
    }


def _memory() -> str:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return "?"


def _cpu_model() -> str:
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def _wrk_version() -> str:
    wrk = tool("wrk")
    if wrk is None:
        return "not installed"
    done = subprocess.run([wrk, "-v"], capture_output=True, text=True)
    first = (done.stdout or done.stderr).strip().splitlines()
    return first[0].split(" [")[0].removeprefix("wrk ") if first else "?"


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""
