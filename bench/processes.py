"""`newsletter` commands started as a user would start them, with their peak memory measured.

The peak RSS comes from the kernel's own account of the child (wait4's ru_maxrss), so nothing
is missed between samples; samples of the current RSS are kept too, to show how it moves.

A command run with `--json` prints its result as one JSON document at the end. Once that is in
its output the command has finished and is only exiting: it is not stopped then (a SIGTERM that
lands after `send` has put its signal handlers away kills the exit, status -15, and used to fail
a run that had measured everything), and a -15 that crossed the printing is not an error."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NEWSLETTER = [sys.executable, "-m", "newsletter"]
MIB = 1024 * 1024
# Where a JSON document may begin: a line starting with { or [ (log lines start with a time).
_DOCUMENT = re.compile(r"^[\[{]", re.MULTILINE)


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

    @property
    def result(self) -> Any | None:
        """The JSON result it printed (with `--json`), or None."""
        return result(self.output)

    def ended(self, *statuses: int) -> bool:
        """It exited with one of `statuses`, or it had printed its result when our SIGTERM found
        it exiting (the work was done: what it measured is in the database and its output)."""
        if self.returncode in statuses:
            return True
        return self.returncode == -signal.SIGTERM and self.result is not None


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

    def has_result(self) -> bool:
        """It has printed its result (see the module's docstring): finished, only exiting."""
        return result(self.log.read_text(errors="replace")) is not None

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
        """SIGTERM (the commands finish the work in hand and exit), then wait; a command whose
        result is in is exiting by itself and is only waited for."""
        if not self.has_result():
            self.signal(signal.SIGTERM)
        return self.wait(timeout)


def run(args: tuple[str, ...], env: dict[str, str], log: Path, cwd: Path, timeout: float) -> Finished:
    return Running(args, env, log, cwd).wait(timeout)


def result(output: str) -> Any | None:
    """The JSON document that ends `output` (a `--json` command's result), or None when there is
    none yet: the output is read while the command runs, so a half-written one is not taken."""
    for start in _DOCUMENT.finditer(output):
        try:
            document, end = json.JSONDecoder().raw_decode(output, start.start())
        except ValueError:
            continue
        if not output[end:].strip():
            return document
    return None


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
