"""Spare loopback ports for servers a test starts and names to another program.

A port the kernel hands out for `bind(("127.0.0.1", 0))` comes from the ephemeral range, the
same range every outgoing connection (to PostgreSQL, to an SMTP server) takes its local port
from: between the moment a test learns the number and the moment its server binds it, any
connection on the machine may take it ("Address already in use", now and then, on a loaded
machine). So spare ports come from below that range, where the kernel never picks one by
itself, and each pytest-xdist worker takes its own slice of it, so two workers never offer
the same port either. Each port offered was free for TCP and UDP a moment before.
"""

from __future__ import annotations

import itertools
import os
import random
import socket
from collections.abc import Iterator
from pathlib import Path

LOWEST = 10_000
# Slices for this many workers; a worker beyond them shares one (still checked free).
SLICES = 16


def _ephemeral_floor() -> int:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768
    return low if low > LOWEST + SLICES * 100 else 32_768


def _worker_number() -> int:
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    digits = name.removeprefix("gw")
    return int(digits) % SLICES if digits.isdigit() else 0


def _candidates() -> Iterator[int]:
    width = (_ephemeral_floor() - LOWEST) // SLICES
    start = LOWEST + _worker_number() * width
    ports = list(range(start, start + width))
    # Another test run beside this one (a second checkout) starts elsewhere in the slice.
    offset = random.randrange(width)
    return itertools.cycle(ports[offset:] + ports[:offset])


_next_candidate = _candidates()


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Nothing listens on, holds or lingers on `port` (TCP and UDP) at this moment."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A loopback port no one uses, outside the kernel's ephemeral range."""
    for _ in range(1000):
        port = next(_next_candidate)
        if is_free(port, host):
            return port
    raise RuntimeError("no free loopback port below the ephemeral range")
