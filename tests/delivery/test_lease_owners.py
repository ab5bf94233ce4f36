"""A dead worker's leases come back at once, and only a dead worker's: its pid given to a later
process (pids wrap at 32,768) does not keep them held until they expire."""

from __future__ import annotations

import socket
import subprocess

from newsletter.delivery.leases import _dead_local_owner, _start_time, worker_id

HOST = socket.gethostname()


def test_a_running_worker_is_alive_and_a_finished_one_dead() -> None:
    assert not _dead_local_owner(worker_id(), HOST)
    process = subprocess.Popen(["sleep", "30"])
    try:
        owner = f"{HOST}:{process.pid}:{_start_time(process.pid)}.0badcafe"
        assert not _dead_local_owner(owner, HOST)
    finally:
        process.kill()
        process.wait()
    assert _dead_local_owner(owner, HOST)


def test_a_pid_given_again_to_another_process_is_not_the_worker() -> None:
    process = subprocess.Popen(["sleep", "30"])
    try:
        started = _start_time(process.pid)
        assert started.isdigit()
        reused = f"{HOST}:{process.pid}:{int(started) - 1}.0badcafe"  # the pid's earlier owner
        assert _dead_local_owner(reused, HOST)
        older_format = f"{HOST}:{process.pid}:0badcafe"  # no start time: judged by the pid alone
        assert not _dead_local_owner(older_format, HOST)
        assert not _dead_local_owner(f"elsewhere:{process.pid}:{started}.0badcafe", HOST)
    finally:
        process.kill()
        process.wait()
