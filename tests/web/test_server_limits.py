"""`newsletter serve` under slow and many connections: read deadlines, a connection cap within
the open-file limit, and the accept error logged at most once a second.

Before: with 1,024 descriptors, about 1,100 sockets that never finished their headers took
`/healthz` down for as long as they stayed open, and asyncio logged "Too many open files"
about 35,000 times a second."""

from __future__ import annotations

import resource
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.ports import free_port
from tests.support.process import NEWSLETTER, clean_environment

OPEN_FILES = 512


@contextmanager
def serving(tmp_path: Path, **settings: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`newsletter serve` (web only) in a process limited to OPEN_FILES descriptors."""
    port = free_port()
    env = clean_environment(
        NEWSLETTER_DATABASE__URL=f"sqlite:///{tmp_path / 'limits.db'}",
        NEWSLETTER_SERVER__PORT=str(port),
        NEWSLETTER_SERVER__WORKER="false",
        NEWSLETTER_SERVER__SCHEDULER="false",
        **settings,
    )

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES))

    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [*NEWSLETTER, "serve"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
        text=True, preexec_fn=limited,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: healthy(base), 60, process)
        yield base, process
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def wait_until(condition: object, seconds: float, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert process.poll() is None, "the server exited"
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def slow_sockets(port: int, count: int) -> list[socket.socket]:
    """Connections that start a request and never finish its headers."""
    opened = []
    for _ in range(count):
        connection = socket.create_connection(("127.0.0.1", port), timeout=5)
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        opened.append(connection)
    return opened


def answer_of(connection: socket.socket) -> bytes:
    """What the server said before closing; b"reset" when it closed with our request unread."""
    connection.settimeout(15)
    chunks = []
    try:
        while chunk := connection.recv(4096):
            chunks.append(chunk)
    except ConnectionResetError:
        return b"".join(chunks) or b"reset"
    return b"".join(chunks)


@pytest.mark.slow
def test_slow_sockets_are_closed_and_the_service_recovers(tmp_path: Path) -> None:
    with serving(tmp_path, NEWSLETTER_SERVER__HEADER_TIMEOUT_SECONDS="2") as (base, process):
        port = int(base.rsplit(":", 1)[1])
        attackers = slow_sockets(port, OPEN_FILES + 100)
        try:
            answers = [answer_of(connection) for connection in attackers]
        finally:
            for connection in attackers:
                connection.close()
        timed_out = sum(answer.startswith(b"HTTP/1.1 408") for answer in answers)
        # Past the cap: 503 and closed (often a reset, our request being unread).
        refused = sum(answer.startswith((b"HTTP/1.1 503", b"reset")) for answer in answers)
        # Every slow socket was closed (answer_of returned): those within the cap when their
        # deadline passed, the others at once.
        assert timed_out >= 100 and refused >= 100
        wait_until(lambda: healthy(base), 30, process)
    log = (tmp_path / "serve.log").read_text()
    assert "server.max_connections_lowered" in log and f"open_file_limit={OPEN_FILES}" in log
    accept_errors = log.count("socket.accept() out of system resource")
    assert accept_errors <= 10, accept_errors


def test_a_body_sent_too_slowly_gets_408(tmp_path: Path) -> None:
    with serving(tmp_path, NEWSLETTER_SERVER__BODY_TIMEOUT_SECONDS="1") as (base, _):
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
            connection.sendall(
                b"POST /subscribe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100\r\n\r\n{"email"'
            )
            answer = answer_of(connection)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        # A prompt request on a fresh connection is answered as usual.
        assert healthy(base)


def test_a_kept_alive_connection_still_serves_requests(tmp_path: Path) -> None:
    """The header deadline covers each request, not the connection's whole life."""
    with (
        serving(tmp_path, NEWSLETTER_SERVER__HEADER_TIMEOUT_SECONDS="1") as (base, _),
        httpx.Client(base_url=base) as client,
    ):
        first = client.get("/healthz")
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:  # outlive the first request's deadline
            assert client.get("/healthz").status_code == 200
        assert first.status_code == 200


def test_a_worker_serves_its_metrics_on_a_loopback_listener(tmp_path: Path) -> None:
    """server.metrics_port: every process (a worker has no web app) can be scraped, without a
    token, on loopback."""
    port = free_port()
    env = clean_environment(
        NEWSLETTER_DATABASE__URL=f"sqlite:///{tmp_path / 'worker.db'}",
        NEWSLETTER_SERVER__METRICS_PORT=str(port),
    )
    worker = subprocess.Popen(
        [*NEWSLETTER, "worker"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/metrics"

        def scraped() -> bool:
            try:
                return "newsletter_messages_total" in httpx.get(url, timeout=2).text
            except httpx.TransportError:
                return False

        wait_until(scraped, 60, worker)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 404
    finally:
        worker.terminate()
        worker.wait(30)
