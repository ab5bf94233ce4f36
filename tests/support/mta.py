"""Real mail software for tests: Debian's Dovecot (IMAP, POP3, LMTP, SASL) and Postfix (a submission
service), started as root on spare loopback ports with throwaway configurations, beside and apart
from the machine's own."""

from __future__ import annotations

import email
import email.policy
import itertools
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import TypeVar

import pytest

from tests.support.ports import free_port
from tests.support.tls import TlsFiles, make_certificates

PACKAGES = ("postfix", "dovecot-core", "dovecot-imapd", "dovecot-pop3d", "dovecot-lmtpd")
POSTFIX = Path("/usr/sbin/postfix")
POSTLOG = Path("/usr/sbin/postlog")
DOVECOT = Path("/usr/sbin/dovecot")
PROGRAMS = (
    POSTFIX,
    POSTLOG,
    DOVECOT,
    *(Path("/usr/lib/dovecot") / name for name in ("imap", "pop3", "lmtp")),
)
DOVECOT_PACKAGES = PACKAGES[1:]
DOVECOT_PROGRAMS = PROGRAMS[2:]
DOMAIN = "readers.example"  # tests.support.factories.add_subscribers' default
FAILED_LOGIN = re.compile(r"SASL \S+ authentication failed")
START_SECONDS = 30

LOG_MARK = "newsletter-test-mark-"

T = TypeVar("T")
_MARKS = itertools.count(1)


def require_mail_software() -> None:
    """Skip the test unless it can run Postfix and Dovecot: root, and the Debian packages."""
    install = f"apt-get install {' '.join(PACKAGES)}"
    if os.geteuid() != 0:
        pytest.skip(f"Postfix and Dovecot tests run as root (as in CI), with Debian's: {install}")
    missing = [str(program) for program in PROGRAMS if not program.exists()]
    if missing:
        pytest.skip(f"Postfix and Dovecot tests need Debian's mail software ({install}); missing {missing}")


def require_dovecot() -> None:
    """Skip the test unless it can run Dovecot alone: root, and Debian's IMAP and POP3 servers."""
    install = f"apt-get install {' '.join(DOVECOT_PACKAGES)}"
    if os.geteuid() != 0:
        pytest.skip(f"Dovecot tests run as root (as in CI), with Debian's: {install}")
    missing = [str(program) for program in DOVECOT_PROGRAMS if not program.exists()]
    if missing:
        pytest.skip(f"Dovecot tests need Debian's Dovecot ({install}; make system-deps); missing {missing}")


def wait_for(check: Callable[[], T | None], what: str, *, seconds: float = START_SECONDS) -> T:
    """`check()` once it returns something other than None or False; an error after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found is not None and found is not False:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {seconds} s")
        time.sleep(0.05)


def greeting(port: int) -> bytes | None:
    """The first line a server on 127.0.0.1:`port` sends, or None while nothing answers."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            return sock.makefile("rb").readline() or None
    except OSError:
        return None


def _run(*command: str | Path) -> str:
    done = subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(map(str, command))} failed ({done.returncode}): {done.stderr}{done.stdout}"
        )
    return done.stdout


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def read_maildir(maildir: Path) -> list[EmailMessage]:
    """Every message of a Maildir (new and seen), parsed."""
    found: list[EmailMessage] = []
    for path in sorted([*maildir.glob("new/*"), *maildir.glob("cur/*")]):
        parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        found.append(parsed)
    return found


@dataclass
class Dovecot:
    """Dovecot with IMAP and POP3 (plain with STARTTLS, and implicit TLS), LMTP on a unix
    socket and an auth socket for Postfix, its users in a passwd-file: `users` log in (SASL,
    IMAP, POP3); mail for any address in `domain` is kept in a Maildir under `root`."""

    root: Path
    tls: TlsFiles
    users: dict[str, str]
    domain: str = DOMAIN
    imap_port: int = field(default_factory=free_port)
    imaps_port: int = field(default_factory=free_port)
    pop3_port: int = field(default_factory=free_port)
    pop3s_port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def lmtp_socket(self) -> Path:
        return self.run_dir / "lmtp"

    @property
    def auth_socket(self) -> Path:
        return self.run_dir / "auth-postfix"

    @property
    def log(self) -> Path:
        return self.root / "dovecot.log"

    def maildir(self, address: str) -> Path:
        local, domain = address.lower().rsplit("@", 1)
        return self.root / "mail" / domain / local / "Maildir"

    def messages(self, address: str) -> list[EmailMessage]:
        """What Dovecot delivered to `address`."""
        return read_maildir(self.maildir(address))

    def folder(self, address: str, folder: str = "INBOX") -> Path:
        """A folder's Maildir (Maildir++: INBOX at the top, "Processed" in `.Processed`)."""
        maildir = self.maildir(address)
        return maildir if folder.upper() == "INBOX" else maildir / f".{folder}"

    def drop(self, address: str, raw: bytes, *, folder: str = "INBOX") -> Path:
        """Put `raw` into a user's folder as a delivery agent does (written in tmp/, then renamed
        into new/), the Maildir made first if the user never had mail; returns its path."""
        mail = pwd.getpwnam("mail")
        target = self.folder(address, folder)
        for path in (*reversed(target.relative_to(self.root).parents[:-1]), target.relative_to(self.root)):
            if path.parts[0] == "mail":
                made = self.root / path
                made.mkdir(exist_ok=True)
                os.chown(made, mail.pw_uid, mail.pw_gid)
        for sub in ("tmp", "new", "cur"):
            (target / sub).mkdir(exist_ok=True)
            os.chown(target / sub, mail.pw_uid, mail.pw_gid)
        name = f"{time.time_ns()}.P{os.getpid()}Q{next(_MARKS)}.newsletter-test"
        written = target / "tmp" / name
        written.write_bytes(raw)
        os.chown(written, mail.pw_uid, mail.pw_gid)
        return written.rename(target / "new" / name)

    def stored(self, address: str, folder: str = "INBOX") -> list[bytes]:
        """The messages in a user's folder (new and seen) as bytes, oldest name first."""
        target = self.folder(address, folder)
        return [path.read_bytes() for path in sorted([*target.glob("new/*"), *target.glob("cur/*")])]

    def mailboxes(self) -> set[str]:
        """The addresses Dovecot delivered anything to."""
        homes = self.root.glob("mail/*/*/Maildir")
        return {f"{home.parent.name}@{home.parent.parent.name}" for home in homes if read_maildir(home)}

    def config(self) -> str:
        mail = pwd.getpwnam("mail")
        return DOVECOT_CONF.format(
            dovecot=self,
            uid=mail.pw_uid,
            gid=mail.pw_gid,
            mail_home=self.root / "mail" / "%d" / "%n",
            users_file=self.root / "users",
        )

    def start(self) -> Dovecot:
        self.root.mkdir(parents=True, exist_ok=True)
        users = self.root / "users"
        users.write_text(
            "".join(f"{name}:{{PLAIN}}{password}::::::\n" for name, password in self.users.items())
        )
        users.chmod(0o600)
        internal = pwd.getpwnam("dovecot")  # the auth process reads it as Dovecot's own user
        os.chown(users, internal.pw_uid, internal.pw_gid)
        mail = pwd.getpwnam("mail")
        (self.root / "mail").mkdir(exist_ok=True)
        os.chown(self.root / "mail", mail.pw_uid, mail.pw_gid)
        conf = self.root / "dovecot.conf"
        conf.write_text(self.config())
        with (self.root / "dovecot.out").open("wb") as out:
            self._process = subprocess.Popen([str(DOVECOT), "-F", "-c", str(conf)], stdout=out, stderr=out)
        try:
            wait_for(self._ready, "Dovecot to listen")
        except TimeoutError as exc:
            self.stop()
            raise RuntimeError(f"{exc}:\n{_tail(self.root / 'dovecot.out')}\n{_tail(self.log)}") from None
        return self

    def _ready(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            raise RuntimeError(f"Dovecot exited: {_tail(self.root / 'dovecot.out')}\n{_tail(self.log)}")
        sockets = self.lmtp_socket.exists() and self.auth_socket.exists()
        return sockets and all(greeting(port) for port in (self.imap_port, self.pop3_port))

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(10)
        self._process = None

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


DOVECOT_CONF = """\
instance_name = newsletter-test-{dovecot.imap_port}
base_dir = {dovecot.run_dir}
state_dir = {dovecot.root}/state
log_path = {dovecot.log}
protocols = imap pop3 lmtp
listen = 127.0.0.1
ssl = yes
ssl_cert = <{dovecot.tls.cert}
ssl_key = <{dovecot.tls.key}
auth_mechanisms = plain login
auth_verbose = yes
auth_failure_delay = 0
disable_plaintext_auth = yes
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users_file}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={mail_home} allow_all_users=yes
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {dovecot.imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {dovecot.imaps_port}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {dovecot.pop3_port}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {dovecot.pop3s_port}
    ssl = yes
  }}
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
}}
service auth {{
  unix_listener auth-postfix {{
    mode = 0666
  }}
}}
"""


@dataclass
class Postfix:
    """Postfix with a submission service on 127.0.0.1:`port` (STARTTLS required, then SASL
    login through Dovecot's auth socket) that hands mail for `domain` to Dovecot over LMTP.
    Its config, queue and data directories and its log (postlogd) are all under `root`."""

    root: Path
    tls: TlsFiles
    dovecot: Dovecot
    port: int = field(default_factory=free_port)

    @property
    def config_dir(self) -> Path:
        return self.root / "etc"

    @property
    def queue_dir(self) -> Path:
        return self.root / "spool"

    @property
    def log(self) -> Path:
        return self.root / "postfix.log"

    def start(self) -> Postfix:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.queue_dir.mkdir(exist_ok=True)
        (self.config_dir / "main.cf").write_text(POSTFIX_MAIN_CF.format(postfix=self, dovecot=self.dovecot))
        (self.config_dir / "master.cf").write_text(POSTFIX_MASTER_CF.format(port=self.port))
        _run(POSTFIX, "-c", self.config_dir, "start")
        try:
            wait_for(lambda: (greeting(self.port) or b"").startswith(b"220"), "Postfix to listen")
        except TimeoutError as exc:
            self.stop()
            raise RuntimeError(f"{exc}:\n{_tail(self.log)}") from None
        return self

    def stop(self) -> None:
        master = self._master_pid()
        subprocess.run([str(POSTFIX), "-c", str(self.config_dir), "stop"], capture_output=True, timeout=60)
        if master is not None:
            try:
                wait_for(lambda: not _alive(master), "Postfix to stop")
            except TimeoutError:
                os.kill(master, 9)

    def _master_pid(self) -> int | None:
        try:
            return int((self.queue_dir / "pid" / "master.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def queue_is_empty(self) -> bool:
        """Nothing waiting in Postfix's queues: every message it took was delivered (or bounced)."""
        queues = ("maildrop", "incoming", "active", "deferred", "hold")
        return not any(path.is_file() for name in queues for path in (self.queue_dir / name).rglob("*"))

    def log_lines(self) -> list[str]:
        """Postfix's log, complete up to now: a line it logged before this call is in it."""
        # postlogd writes what it is sent in order: once a mark sent now is in the file, so is
        # every line the daemons sent before.
        mark = f"{LOG_MARK}{os.getpid()}-{next(_MARKS)}"
        _run(POSTLOG, "-c", self.config_dir, "-t", "newsletter-test", mark)

        def complete() -> list[str] | None:
            lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
            return lines if any(line.endswith(mark) for line in lines) else None

        return [line for line in wait_for(complete, "Postfix's log") if LOG_MARK not in line]

    def failed_logins(self) -> int:
        """How many SASL logins Postfix refused."""
        return sum(1 for line in self.log_lines() if FAILED_LOGIN.search(line))

    def connections_refused_login(self) -> int:
        """How many connections tried to log in and never did (smtpd's summary says `auth=0/N`)."""
        return sum(1 for line in self.log_lines() if " auth=0/" in line)

    def __enter__(self) -> Postfix:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class MailSystem:
    """Postfix in front of Dovecot, both trusting `tls` (ca.pem is the client's to trust)."""

    tls: TlsFiles
    dovecot: Dovecot
    postfix: Postfix

    def settle(self) -> None:
        """Wait until Postfix has handed on everything it accepted."""
        try:
            wait_for(self.postfix.queue_is_empty, "Postfix's queue to empty")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}:\n{_tail(self.postfix.log)}") from None

    def delivered(self, address: str) -> list[EmailMessage]:
        """What reached `address`'s Maildir, once Postfix's queue is empty."""
        self.settle()
        return self.dovecot.messages(address)


@contextmanager
def mail_system(users: dict[str, str], *, domain: str = DOMAIN) -> Iterator[MailSystem]:
    """A new CA, Dovecot and Postfix in a throwaway folder; all stopped and removed after."""
    require_mail_software()
    # Not pytest's tmp_path: its folders are private to root (Postfix's and Dovecot's own users
    # must reach theirs) and long (a unix socket's path has at most 107 bytes).
    root = Path(tempfile.mkdtemp(prefix="mta-"))
    try:
        root.chmod(0o755)
        tls = make_certificates(root / "tls")
        dovecot = Dovecot(root / "dovecot", tls, users, domain)
        with dovecot, Postfix(root / "postfix", tls, dovecot) as postfix:
            yield MailSystem(tls, dovecot, postfix)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def dovecot_alone(users: dict[str, str], *, domain: str = DOMAIN) -> Iterator[Dovecot]:
    """A new CA and Dovecot (IMAP and POP3, plain with STARTTLS and over TLS) in a throwaway
    folder, without Postfix; `dovecot.tls.ca` is the CA a client trusts. Stopped and removed after."""
    require_dovecot()
    root = Path(tempfile.mkdtemp(prefix="mta-"))  # short and reachable by Dovecot's users, as above
    try:
        root.chmod(0o755)
        tls = make_certificates(root / "tls")
        with Dovecot(root / "dovecot", tls, users, domain) as dovecot:
            yield dovecot
    finally:
        shutil.rmtree(root, ignore_errors=True)


POSTFIX_MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {postfix.queue_dir}
data_directory = {postfix.root}/lib
maillog_file = {postfix.log}
maillog_file_prefixes = {postfix.root}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mta.newsletter.test
mydestination =
mynetworks = 127.0.0.0/8
relayhost =
alias_maps =
alias_database =
local_recipient_maps =
local_transport = error:local delivery is off
virtual_mailbox_domains = {dovecot.domain}
virtual_transport = lmtp:unix:{dovecot.lmtp_socket}
smtpd_peername_lookup = no
smtputf8_enable = yes
biff = no
smtpd_tls_cert_file = {postfix.tls.cert}
smtpd_tls_key_file = {postfix.tls.key}
smtpd_tls_security_level = may
smtpd_sasl_type = dovecot
smtpd_sasl_path = {dovecot.auth_socket}
"""

# chroot (the fifth column) off: a throwaway instance has no copies of /etc in its queue.
POSTFIX_MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_auth_only=yes
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
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
lmtp unix - - n - - lmtp
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""
