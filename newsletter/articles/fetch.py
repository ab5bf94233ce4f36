"""Getting a feed's bytes: over HTTP with conditional GET, a deadline and a size cap, or from a file."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from newsletter.config import IngestConfig
from newsletter.errors import NewsletterError

ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1"


class FetchError(NewsletterError, ConnectionError):
    """The feed could not be fetched; `kind` is timeout, http, too_large, redirects, network or file."""

    def __init__(self, message: str, kind: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status


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


def http_client(config: IngestConfig) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(config.timeout),
        follow_redirects=True,
        max_redirects=config.max_redirects,
        headers={"User-Agent": config.user_agent, "Accept": ACCEPT},
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
