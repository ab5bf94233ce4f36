"""Debian's Postfix as a relay that bounces after accepting, as real relays do: it takes mail
for `dead_domain` from loopback with 250, hands it on to `dead_port` (a server that refuses it
with 550 5.1.1), and mails its own delivery status notification (RFC 3464) to the message's
envelope sender, relaying mail for `bounce_domain` to the test's bounce receiver."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.mta import POSTFIX, greeting, require_mail_software, wait_for
from tests.support.ports import free_port

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/spool
data_directory = {root}/lib
maillog_file = {root}/postfix.log
maillog_file_prefixes = {root}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = relay.newsletter.test
mydestination =
mynetworks = 127.0.0.0/8
relayhost =
relay_domains = {dead_domain}, {bounce_domain}
alias_maps =
alias_database =
local_recipient_maps =
local_transport = error:local delivery is off
transport_maps = texthash:{root}/etc/transport
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_peername_lookup = no
smtp_tls_security_level = none
smtp_address_preference = ipv4
bounce_queue_lifetime = 0
biff = no
"""

TRANSPORT = """\
{dead_domain} smtp:[127.0.0.1]:{dead_port}
{bounce_domain} smtp:[127.0.0.1]:{receiver_port}
"""

MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""


@dataclass(frozen=True)
class BouncingRelay:
    root: Path
    port: int

    @property
    def log(self) -> str:
        path = self.root / "postfix.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def bouncing_relay(
    *, dead_domain: str, dead_port: int, bounce_domain: str, receiver_port: int
) -> Iterator[BouncingRelay]:
    require_mail_software()
    root = Path(tempfile.mkdtemp(prefix="bouncer-"))
    config = root / "etc"
    try:
        root.chmod(0o755)
        config.mkdir()
        (root / "spool").mkdir()
        port = free_port()
        values = {
            "root": root,
            "dead_domain": dead_domain,
            "bounce_domain": bounce_domain,
            "receiver_port": receiver_port,
            "dead_port": dead_port,
            "port": port,
        }
        (config / "main.cf").write_text(MAIN_CF.format(**values))
        (config / "master.cf").write_text(MASTER_CF.format(**values))
        (config / "transport").write_text(TRANSPORT.format(**values))
        _postfix(config, "start")
        try:
            wait_for(lambda: (greeting(port) or b"").startswith(b"220"), "Postfix to listen")
            yield BouncingRelay(root, port)
        finally:
            _stop(config, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _postfix(config: Path, command: str) -> None:
    done = subprocess.run(
        [str(POSTFIX), "-c", str(config), command], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        raise RuntimeError(f"postfix {command} failed: {done.stderr}{done.stdout}")


def _stop(config: Path, root: Path) -> None:
    pid_file = root / "spool" / "pid" / "master.pid"
    master = int(pid_file.read_text().strip()) if pid_file.exists() else None
    subprocess.run([str(POSTFIX), "-c", str(config), "stop"], capture_output=True, timeout=60)
    if master is not None:
        try:
            wait_for(lambda: not _alive(master), "Postfix to stop")
        except TimeoutError:
            os.kill(master, 9)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
