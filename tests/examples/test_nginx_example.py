"""examples/production/nginx.conf: Debian's nginx accepts it, and, run in front of a real
`newsletter serve` on the production configuration, passes readers, mail providers and operators
through as the app needs, over TLS.

The site is used as shipped but for what only a real machine has: its certificate (one made
here), its ports (spare loopback ones), its log folder, the app's port and certbot's webroot.

What the app takes from nginx's X-Forwarded-* headers is observable through the reader's
address it records; the forwarded scheme is not: the app never builds a URL from a request
(links come from site.base_url, and trailing-slash redirects are off).
"""

from __future__ import annotations

import re
import shutil
import socket
import sqlite3
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from newsletter.config.sections import ServerConfig
from newsletter.personal.links import DAY
from newsletter.personal.tokens import LinkOwner, Purpose, TokenSigner
from tests.examples.production import (
    ADMIN_TOKEN,
    CONFIG,
    NGINX_SITE,
    PUBLIC_HOST,
    SECRET_KEY,
    production_environment,
    write_dkim_key,
)
from tests.support.database import sqlite_copy
from tests.support.live import LiveServer, live_server
from tests.support.mta import wait_for
from tests.support.ports import free_port
from tests.support.tls import TlsFiles, make_certificates

NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
needs_nginx = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed: sudo apt-get install nginx (or make system-deps)"
)
SPOOFED = "198.51.100.23"
# The readers' side: another loopback address than nginx's own (127.0.0.1, its address towards
# the app), so that the app recording this one shows it believed nginx's X-Forwarded-For.
READER = "127.0.0.2"


def _replace(text: str, pattern: str, replacement: str, count: int) -> str:
    """Substitute `count` matches exactly: a changed site fails here, not by testing less."""
    replaced, found = re.subn(pattern, replacement, text)
    assert found == count, f"{NGINX_SITE.name}: expected {count} of {pattern!r}, found {found}"
    return replaced


@dataclass(frozen=True)
class Ports:
    http: int
    https: int
    app: int


def localized_site(folder: Path, ports: Ports, tls: TlsFiles) -> str:
    """The site with this machine's certificate, ports and folders in place of the real ones."""
    site = NGINX_SITE.read_text(encoding="utf-8")
    site = _replace(site, r"server 127\.0\.0\.1:8000;", f"server 127.0.0.1:{ports.app};", 1)
    site = _replace(site, r"\n\s*listen \[::\]:\d+[^;]*;", "", 4)  # no IPv6 needed on loopback
    site = _replace(site, r"listen 80\b", f"listen 127.0.0.1:{ports.http}", 2)
    site = _replace(site, r"listen 443\b", f"listen 127.0.0.1:{ports.https}", 2)
    site = _replace(site, r"/etc/letsencrypt/live/[^;]*/fullchain\.pem", str(tls.cert), 1)
    site = _replace(site, r"/etc/letsencrypt/live/[^;]*/privkey\.pem", str(tls.key), 1)
    site = _replace(site, r"/var/log/nginx/", f"{folder}/", 3)
    return _replace(site, r"root /var/www/letsencrypt;", f"root {folder}/acme;", 1)


def write_nginx_config(folder: Path, ports: Ports) -> Path:
    """A whole nginx configuration (as Debian's /etc/nginx/nginx.conf, but everything in `folder`)
    whose http block includes the localized site."""
    tls = make_certificates(folder / "tls")
    (folder / "site.conf").write_text(localized_site(folder, ports, tls), encoding="utf-8")
    temp = "\n".join(
        f"    {kind}_temp_path {folder}/{kind}_temp;"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = folder / "nginx.conf"
    main.write_text(
        f"""# One process, this user, everything under {folder}.
master_process off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log notice;
events {{
    worker_connections 64;
}}
http {{
{temp}
    access_log {folder}/access.log;
    include {folder}/site.conf;
}}
""",
        encoding="utf-8",
    )
    return main


def nginx_command(config: Path, *extra: str) -> list[str]:
    assert NGINX is not None
    return [
        NGINX,
        "-p",
        f"{config.parent}/",
        "-e",
        str(config.parent / "error.log"),
        "-c",
        str(config),
        *extra,
    ]


def _diagnostics(folder: Path) -> str:
    logs = [folder / "nginx.out", folder / "error.log"]
    return "\n".join(log.read_text(encoding="utf-8", errors="replace") for log in logs if log.exists())


@contextmanager
def running_nginx(config: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """nginx in the foreground until the block ends; its output in nginx.out beside the config."""
    with (config.parent / "nginx.out").open("wb") as output:
        process = subprocess.Popen(nginx_command(config, "-g", "daemon off;"), stdout=output, stderr=output)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                log = _diagnostics(config.parent)
                assert process.poll() is None, f"nginx exited: {log}"
                assert time.monotonic() < deadline, f"nginx did not listen on {port}: {log}"
                time.sleep(0.05)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@needs_nginx
def test_nginx_accepts_the_site(tmp_path: Path) -> None:
    config = write_nginx_config(tmp_path, Ports(free_port(), free_port(), 8000))
    tested = subprocess.run(nginx_command(config, "-t"), capture_output=True, text=True, timeout=60)
    assert tested.returncode == 0, tested.stderr
    assert "test is successful" in tested.stderr


def _size(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([km]?)", value).groups()  # type: ignore[union-attr]
    return int(number) * {"": 1, "k": 1024, "m": 1024 * 1024}[unit]


def test_the_body_limits_are_the_apps() -> None:
    """nginx refuses no body the app would take, and reads none the app would refuse."""
    site = NGINX_SITE.read_text(encoding="utf-8")
    pages, api_limit, webhooks_limit = re.findall(r"client_max_body_size (\w+);", site)
    assert api_limit in site[site.index("location /api/") :]
    assert webhooks_limit in site[site.index("location /webhooks/") :]
    assert _size(pages) == ServerConfig().max_body_bytes
    # The app gives the providers' webhooks the admin API's limit (web/limits.py).
    assert _size(api_limit) == _size(webhooks_limit) == ServerConfig().max_api_body_bytes


@dataclass(frozen=True)
class Proxied:
    """`newsletter serve` on the production configuration, and nginx in front of it."""

    server: LiveServer
    ports: Ports
    folder: Path
    database: Path

    def https(self, *, name: str = PUBLIC_HOST) -> httpx.Client:
        """A reader's client of https://news.londondaily.example, nginx being at 127.0.0.1:<port>:
        the name in the Host header and in TLS's SNI, connecting from READER. The certificate is
        checked against the test CA, not for the name (it was made for localhost)."""
        trusted = ssl.create_default_context(cafile=str(self.folder / "tls" / "ca.pem"))
        trusted.check_hostname = False
        return httpx.Client(
            base_url=f"https://127.0.0.1:{self.ports.https}",
            headers={"Host": name},
            transport=httpx.HTTPTransport(verify=trusted, local_address=READER),
            timeout=10,
            event_hooks={"request": [lambda request: request.extensions.update(sni_hostname=name)]},
        )

    def events(self) -> list[tuple[str, str | None]]:
        with sqlite3.connect(self.database) as db:
            return db.execute("SELECT kind, ip FROM events ORDER BY id").fetchall()


@pytest.fixture(scope="module")
def proxied(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxied]:
    if NGINX is None:
        pytest.skip("nginx is not installed: sudo apt-get install nginx (or make system-deps)")
    folder = tmp_path_factory.mktemp("nginx")
    database_url = sqlite_copy(sqlite_template, folder)
    env = production_environment(write_dkim_key(folder))
    overrides = {
        "NEWSLETTER_CONFIG": str(CONFIG),
        # What the test machine has instead of a DNS resolver, and another process's metrics port.
        "NEWSLETTER_SUBSCRIPTIONS__CHECK_DELIVERABILITY": "false",
        "NEWSLETTER_SERVER__METRICS_PORT": "0",
    }
    overrides |= {name: value for name, value in env.items() if name.startswith("NEWSLETTER_")}
    with live_server(folder, database_url, **overrides) as server:
        ports = Ports(free_port(), free_port(), int(server.base_url.rsplit(":", 1)[1]))
        config = write_nginx_config(folder, ports)
        (folder / "acme" / ".well-known" / "acme-challenge").mkdir(parents=True)
        with running_nginx(config, ports.https):
            yield Proxied(server, ports, folder, Path(database_url.removeprefix("sqlite:///")))


@needs_nginx
def test_the_signup_page_is_served_over_https_with_hsts(proxied: Proxied) -> None:
    with proxied.https() as client:
        page = client.get("/")
    assert page.status_code == 200
    assert page.headers["server"].startswith("nginx")
    assert "London Daily" in page.text
    assert "Focus on the big picture." in page.text
    assert page.headers["strict-transport-security"] == "max-age=63072000"


@needs_nginx
def test_plain_http_redirects_to_https_and_serves_certbots_challenges(proxied: Proxied) -> None:
    challenge = proxied.folder / "acme" / ".well-known" / "acme-challenge" / "t0k3n"
    challenge.write_text("t0k3n.thumbprint", encoding="utf-8")
    base = f"http://127.0.0.1:{proxied.ports.http}"
    with httpx.Client(base_url=base, headers={"Host": PUBLIC_HOST}, timeout=10) as client:
        moved = client.get("/preferences/abc?x=1")
        answered = client.get("/.well-known/acme-challenge/t0k3n")
    assert moved.status_code == 301
    assert moved.headers["location"] == f"https://{PUBLIC_HOST}/preferences/abc?x=1"
    assert (answered.status_code, answered.text) == (200, "t0k3n.thumbprint")


@needs_nginx
def test_other_names_get_no_answer(proxied: Proxied) -> None:
    with proxied.https(name="elsewhere.example") as client, pytest.raises(httpx.ConnectError):
        client.get("/")
    with (
        httpx.Client(base_url=f"http://127.0.0.1:{proxied.ports.http}", timeout=10) as client,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        client.get("/", headers={"Host": "elsewhere.example"})


@needs_nginx
def test_one_click_unsubscribe_passes_through_and_records_the_readers_address(proxied: Proxied) -> None:
    """A mail provider's RFC 8058 POST reaches the app, and the app records the address nginx saw,
    not the one a client wrote in its own X-Forwarded-For."""
    with proxied.https() as client:
        refused = client.post("/api/subscribers", json={"email": "reader@londondaily.example"})
        added = client.post(
            "/api/subscribers",
            json={"email": "reader@londondaily.example", "confirmed": True},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert refused.status_code == 401
        assert refused.headers["strict-transport-security"] == "max-age=63072000"
        assert added.status_code == 200, added.text
        with sqlite3.connect(proxied.database) as db:
            subscriber_id, nonce = db.execute(
                "SELECT id, token_nonce FROM subscribers WHERE email = ?", ("reader@londondaily.example",)
            ).fetchone()
        token = TokenSigner(SECRET_KEY, {Purpose.CONFIRM: DAY, Purpose.PREFERENCES: DAY}).sign(
            Purpose.UNSUBSCRIBE, LinkOwner(subscriber_id, nonce)
        )
        one_click = client.post(
            f"/unsubscribe/{token}",
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded", "X-Forwarded-For": SPOOFED},
        )
    assert one_click.status_code == 200, one_click.text
    with sqlite3.connect(proxied.database) as db:
        (status,) = db.execute("SELECT status FROM subscribers WHERE id = ?", (subscriber_id,)).fetchone()
    assert status == "unsubscribed"
    kind, ip = proxied.events()[-1]
    assert "unsubscribe" in kind
    assert ip == READER  # as nginx saw it and told the app; not nginx's own, never SPOOFED
    assert all(ip != SPOOFED for _, ip in proxied.events())
    # nginx logs a request after answering it: the line may come a moment after the answer.
    access_log = wait_for(
        lambda: _logged(proxied.folder / "newsletter.access.log", "POST /unsubscribe/"), "the log"
    )
    assert "POST /unsubscribe/[token]" in access_log
    assert token not in access_log


def _logged(path: Path, mark: str) -> str | None:
    text = path.read_text(encoding="utf-8")
    return text if mark in text else None


@needs_nginx
def test_bodies_up_to_the_apps_limits_reach_the_app(proxied: Proxied) -> None:
    limit = ServerConfig().max_body_bytes
    with proxied.https() as client:
        at_limit = client.post("/subscribe", content=b"x" * limit, headers={"Content-Type": "text/plain"})
        over = client.post("/subscribe", content=b"x" * (limit + 1), headers={"Content-Type": "text/plain"})
        api = client.post("/api/subscribers", content=b"[" + b" " * 100_000 + b"]")
    assert at_limit.status_code not in (413, 502), at_limit.text  # the app's own answer
    assert over.status_code == 413
    assert api.status_code == 401  # read by the app, refused for want of the token


@needs_nginx
def test_metrics_are_not_served_to_the_internet(proxied: Proxied) -> None:
    with proxied.https() as client:
        metrics = client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert metrics.status_code == 403
    assert "nginx" in metrics.text
