"""Getting a feed's bytes: over HTTP with conditional GET, a deadline and a size cap, or from a file.

Feeds come from other people's servers, and what they answer is stored and mailed. So a fetch
connects only to public addresses: the host of the feed and of every redirect is resolved, each
address checked (loopback, private, link-local, shared, multicast, unspecified and reserved
ranges refused, IPv4 inside IPv6 included), and the connection made to the very address that
was checked, so a second DNS answer cannot point it elsewhere. A feed configured with
`allow_private = true` (an intranet CMS) skips the check.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ipaddress
import socket
import ssl
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpcore
import httpx

from newsletter.config import IngestConfig
from newsletter.errors import NewsletterError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# IPv6 prefixes that carry an IPv4 address a gateway would reach (NAT64, RFC 6052).
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1"


class FetchError(NewsletterError, ConnectionError):
    """The feed could not be fetched; `kind` is timeout, http, too_large, redirects, network,
    refused (a destination that is not public) or file."""

    def __init__(self, message: str, kind: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status


def refusal(address: IPAddress) -> str | None:
    """Why a feed may not be fetched from `address`, or None when it is a public one."""
    embedded: list[IPAddress] = []
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            embedded.append(address.ipv4_mapped)
        if address.sixtofour is not None:
            embedded.append(address.sixtofour)
        if address.teredo is not None:
            embedded.append(address.teredo[1])
        if address in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    for candidate in (address, *embedded):
        if candidate.is_loopback:
            return "a loopback address"
        if candidate.is_unspecified:
            return "an unspecified address"
        if candidate.is_multicast:
            return "a multicast address"
        if candidate.is_link_local:
            return "a link-local address"
        if not candidate.is_global:
            return "a private or reserved address"
    return None


class GuardedNetwork(httpcore.AsyncNetworkBackend):
    """httpcore's network, connecting only to checked public addresses (see the module's
    docstring). `treat_as_public`: (address, port) pairs let through all the same; tests run
    their stand-in for the public internet on loopback."""

    def __init__(self, treat_as_public: Collection[tuple[str, int]] = ()) -> None:
        self._network = httpcore.AnyIOBackend()
        self._public = {(str(ipaddress.ip_address(a)), port) for a, port in treat_as_public}

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._checked(host, port)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._network.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address,
                    socket_options=socket_options,
                )  # fmt: skip
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def _checked(self, host: str, port: int) -> list[IPAddress]:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host.strip("[]"), port, type=socket.SOCK_STREAM
            )
        except (socket.gaierror, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
        for address in addresses:
            reason = refusal(address)
            if reason is not None and (str(address), port) not in self._public:
                raise FetchError(
                    f"refused: {host} is {reason} ({address}); feeds are fetched from public "
                    "addresses only (set allow_private = true on a feed meant for a private network)",
                    "refused",
                )
        return addresses

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise FetchError("feeds are not fetched over Unix sockets", "refused")

    async def sleep(self, seconds: float) -> None:
        await self._network.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over GuardedNetwork: httpx takes no network backend of its own, so the
    connection pool it builds is replaced by an equal one over ours."""

    def __init__(self, network: httpcore.AsyncNetworkBackend) -> None:
        super().__init__(verify=tls_context())
        limits = httpx.Limits(max_connections=20, max_keepalive_connections=10)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=tls_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=network,
        )


@dataclass(frozen=True)
class Fetched:
    body: bytes | None  # None: not modified since the last fetch
    status: int | None  # None for a file
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    location: str | None = None  # the URL the body came from, after redirects

    @property
    def not_modified(self) -> bool:
        return self.body is None


@functools.cache
def tls_context() -> ssl.SSLContext:
    """How every feed client of this process verifies servers (httpx's default: certifi's CA
    bundle, or SSL_CERT_FILE / SSL_CERT_DIR). Made once: each one reads the bundle (~50 ms), and
    an ingest opens two clients, which made three."""
    return httpx.create_ssl_context()


def http_client(
    config: IngestConfig, *, allow_private: bool = False, treat_as_public: Collection[tuple[str, int]] = ()
) -> httpx.AsyncClient:
    """The client feeds are fetched with; it reaches public addresses only unless `allow_private`.
    Proxies from the environment are not used: they would connect on our behalf, unchecked."""
    return httpx.AsyncClient(
        verify=tls_context(),
        timeout=httpx.Timeout(config.timeout),
        follow_redirects=True,
        max_redirects=config.max_redirects,
        headers={"User-Agent": config.user_agent, "Accept": ACCEPT},
        transport=None if allow_private else _GuardedTransport(GuardedNetwork(treat_as_public)),
        trust_env=allow_private,
    )


async def fetch_remote(
    client: httpx.AsyncClient,
    url: str,
    *,
    etag: str | None,
    last_modified: str | None,
    config: IngestConfig,
) -> Fetched:
    """GET with If-None-Match / If-Modified-Since; the whole exchange within `config.timeout`
    seconds and the (decompressed) body within `config.max_bytes`."""
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        async with asyncio.timeout(config.timeout):
            return await _get(client, url, headers, config.max_bytes)
    except FetchError:
        raise
    except TimeoutError:
        raise FetchError(f"no complete answer within {config.timeout:g} s", "timeout") from None
    except httpx.InvalidURL as exc:
        raise FetchError(f"not a usable URL: {exc}", "network") from None
    except httpx.TooManyRedirects:
        raise FetchError(f"more than {config.max_redirects} redirects", "redirects") from None
    except httpx.TimeoutException:
        raise FetchError(f"no answer within {config.timeout:g} s", "timeout") from None
    except (httpx.HTTPError, OSError) as exc:
        raise FetchError(f"cannot fetch: {str(exc) or type(exc).__name__}", "network") from None


async def _get(client: httpx.AsyncClient, url: str, headers: dict[str, str], max_bytes: int) -> Fetched:
    async with client.stream("GET", url, headers=headers) as response:
        if response.status_code == 304:
            return Fetched(None, 304, etag=response.headers.get("ETag"), location=str(response.url))
        if not 200 <= response.status_code < 300:
            status = response.status_code
            raise FetchError(f"HTTP {status} {response.reason_phrase}".strip(), "http", status)
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise FetchError(f"feed larger than {max_bytes} bytes ({declared} declared)", "too_large")
        chunks: list[bytes] = []
        received = 0
        async for chunk in response.aiter_bytes():
            received += len(chunk)
            if received > max_bytes:
                raise FetchError(f"feed larger than {max_bytes} bytes", "too_large")
            chunks.append(chunk)
        return Fetched(
            b"".join(chunks),
            response.status_code,
            content_type=response.headers.get("Content-Type"),
            etag=response.headers.get("ETag"),
            last_modified=response.headers.get("Last-Modified"),
            location=str(response.url),
        )


async def read_local(path: str, *, previous_etag: str | None, max_bytes: int) -> Fetched:
    """A feed file, at most `max_bytes`; its sha256 serves as the ETag, so an unchanged file is
    reported not modified and not parsed again."""
    body = await asyncio.to_thread(_read_capped, path, max_bytes)
    etag = "sha256:" + hashlib.sha256(body).hexdigest()
    if etag == previous_etag:
        return Fetched(None, None, etag=etag)
    return Fetched(body, None, etag=etag)


def _read_capped(name: str, max_bytes: int) -> bytes:
    path = Path(name).expanduser()
    try:
        with path.open("rb") as handle:
            body = handle.read(max_bytes + 1)
    except OSError as exc:
        raise FetchError(f"cannot read {path}: {exc.strerror or exc}", "file") from None
    if len(body) > max_bytes:
        raise FetchError(f"feed larger than {max_bytes} bytes", "too_large")
    return body


def display_url(url: str) -> str:
    """The URL with any password in it masked, for logs, reports and stored keys."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:****@{host}"))
