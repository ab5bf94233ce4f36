"""`newsletter` commands started as a user would start them, with their peak memory measured.

The peak RSS comes from the kernel's own account of the child (wait4's ru_maxrss), so nothing
is missed between samples; samples of the current RSS are kept too, to show how it moves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

NEWSLETTER = [sys.executable, "-m", "newsletter"]
MIB = 1024 * 1024


@dataclass(frozen=True)
class Finished:
    returncode: int
    seconds: float
    peak_rss: int
    cpu_seconds: float
    rss_samples: list[tuple[float, int]]
    output: str

    @property
    def peak_rss_mib(self) -> float:
        return round(self.peak_rss / MIB, 1)


@dataclass
class Running:
    """A `newsletter` command in the background; its stdout and stderr go to `log`."""

    args: tuple[str, ...]
    env: dict[str, str]
    log: Path
    cwd: Path
    process: subprocess.Popen[bytes] = field(init=False)
    started: float = field(init=False)
    samples: list[tuple[float, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.started = time.monotonic()
            self.process = subprocess.Popen(
                [*NEWSLETTER, *self.args], cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.returncode is None and _status_line(self.pid, "State:") not in (None, "Z")

    def sample_rss(self) -> int | None:
        """The current RSS in bytes (kept as a sample), or None once the process has ended."""
        value = _status_line(self.pid, "VmRSS:")
        if value is None:
            return None
        rss = int(value) * 1024
        self.samples.append((time.monotonic() - self.started, rss))
        return rss

    def signal(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.process.returncode is None:
            self.process.send_signal(sig)

    def wait(self, timeout: float, *, sample_every: float = 0.25) -> Finished:
        """Wait for the end (SIGKILL after `timeout` seconds), sampling the RSS meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(self.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                self.process.kill()
                pid, status, usage = os.wait4(self.pid, 0)
                break
            self.sample_rss()
            time.sleep(sample_every)
        self.process.returncode = os.waitstatus_to_exitcode(status)
        # ru_maxrss is in kilobytes on Linux.
        return Finished(
            returncode=self.process.returncode,
            seconds=time.monotonic() - self.started,
            peak_rss=usage.ru_maxrss * 1024,
            cpu_seconds=usage.ru_utime + usage.ru_stime,
            rss_samples=list(self.samples),
            output=self.log.read_text(errors="replace"),
        )

    def stop(self, timeout: float = 60) -> Finished:
        """SIGTERM (the commands finish the work in hand and exit), then wait."""
        self.signal(signal.SIGTERM)
        return self.wait(timeout)


def run(args: tuple[str, ...], env: dict[str, str], log: Path, cwd: Path, timeout: float) -> Finished:
    return Running(args, env, log, cwd).wait(timeout)


def _status_line(pid: int, key: str) -> str | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(key):
                    return line.split()[1]
    except OSError:
        return None
    return None


def tail(output: str, lines: int = 5) -> str:
    return " | ".join(output.strip().splitlines()[-lines:])
