"""Postfix's test tools from Debian's package: smtp-sink as the server, smtp-source as the ceiling.

Found on PATH or in /usr/sbin; when missing and we are root with apt-get, installed (postfix with
"No configuration", so no mail system is set up); otherwise the cases that need them are skipped.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.cpu import children_cpu_seconds

SBIN = Path("/usr/sbin")


def tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidate = SBIN / name
    return str(candidate) if os.access(candidate, os.X_OK) else None


def apt_install(package: str, *, preseed: str = "") -> str | None:
    """Install a Debian package when we can; None on success, else why not."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return f"{package} is not installed (apt-get install {package} as root)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if preseed:
        subprocess.run(["debconf-set-selections"], input=preseed, text=True, env=env, check=False)
    command = ["apt-get", "install", "-y", "-qq", package]
    for attempt in ([command], [["apt-get", "update", "-qq"], command]):
        if all(subprocess.run(step, env=env, capture_output=True).returncode == 0 for step in attempt):
            return None
    return f"{package} is not installed and apt-get could not install it"


@dataclass(frozen=True)
class Postfix:
    sink: str
    source: str
    how: str


def find_postfix() -> Postfix | str:
    """The tools, or why they cannot be had."""
    how = "found"
    if tool("smtp-sink") is None or tool("smtp-source") is None:
        preseed = "postfix postfix/main_mailer_type select No configuration\n"
        problem = apt_install("postfix", preseed=preseed)
        if problem is not None:
            return problem
        how = "installed with apt-get"
    sink, source = tool("smtp-sink"), tool("smtp-source")
    if sink is None or source is None:
        return "postfix is installed but smtp-sink/smtp-source are missing"
    return Postfix(sink, source, f"{how}: {sink}, {source} (postfix {postfix_version() or '?'})")


def postfix_version() -> str | None:
    postconf = tool("postconf")
    if postconf is None:
        return None
    done = subprocess.run([postconf, "-d", "-h", "mail_version"], capture_output=True, text=True)
    return done.stdout.strip() or None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on 127.0.0.1:{port}") from None
            time.sleep(0.05)


@dataclass
class SmtpSink:
    """`smtp-sink` on a free loopback port: accepts every message and throws it away."""

    postfix: Postfix
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> SmtpSink:
        # Started as root it must drop to another user; the backlog is the listen queue.
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self.process = subprocess.Popen(
            [self.postfix.sink, *user, f"127.0.0.1:{self.port}", "1000"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


@dataclass(frozen=True)
class SourceRun:
    seconds: float
    cpu_seconds: float


def smtp_source(postfix: Postfix, port: int, *, messages: int, size: int, connections: int) -> SourceRun:
    """smtp-source sending `messages` of `size` bytes over `connections` reused sessions: its wall
    and CPU time (nothing else may be waited for meanwhile: the CPU is read from RUSAGE_CHILDREN)."""
    command = [
        postfix.source,
        "-d",  # keep each connection for the next message, as our pool does
        "-s",
        str(connections),
        "-m",
        str(messages),
        "-l",
        str(size),
        "-f",
        "briefing@londondaily.example",
        "-t",
        "reader@readers.example",
        f"127.0.0.1:{port}",
    ]
    cpu, started = children_cpu_seconds(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    seconds, cpu = time.perf_counter() - started, children_cpu_seconds() - cpu
    if done.returncode != 0:
        raise RuntimeError(f"smtp-source failed ({done.returncode}): {done.stderr.strip()[:300]}")
    return SourceRun(seconds, cpu)
