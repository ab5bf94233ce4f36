"""KeyedMac: the same MACs as `hmac.digest`, without handing the GIL to another thread."""

from __future__ import annotations

import hmac
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from newsletter.personal.mac import KeyedMac

KEY = b"test-secret-key-0123456789abcdef"


@pytest.mark.parametrize("digest", ["sha1", "sha256"])
def test_same_macs_as_hmac_digest(digest: str) -> None:
    keyed = KeyedMac(KEY, digest)
    for message in (b"", b"1.000000000000", b"message-id\0e.12.3456", bytes(range(256)) * 20):
        assert keyed.digest(message) == hmac.digest(KEY, message, digest)


@pytest.fixture
def waiting_thread() -> Iterator[tuple[threading.Event, Callable[[], bool]]]:
    """A thread that waits for `go`, then needs the GIL to record that it ran; the switch
    interval so long that only a voluntary release of the GIL lets it run once `go` is set."""
    before = sys.getswitchinterval()
    go, ran = threading.Event(), threading.Event()

    def wait_then_run() -> None:
        go.wait()
        ran.set()

    thread = threading.Thread(target=wait_then_run)
    thread.start()
    sys.setswitchinterval(60)
    try:
        yield go, ran.is_set
    finally:
        sys.setswitchinterval(before)
        go.set()
        thread.join()


def test_keeps_the_gil(waiting_thread: tuple[threading.Event, Callable[[], bool]]) -> None:
    go, ran = waiting_thread
    keyed = KeyedMac(KEY, "sha256")
    messages = [b"verp\0d%d" % n for n in range(2_000)]
    go.set()
    for message in messages:
        keyed.digest(message)
    assert not ran(), "a MAC let another thread run"
    # The control: the one-shot hmac.digest lets go, so the same wait lets the thread run.
    for message in messages:
        hmac.digest(KEY, message, "sha256")
        if ran():
            break
    assert ran()
