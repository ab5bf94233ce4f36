"""Feeds are fetched from public addresses only: loopback, private, link-local and the other
special ranges are refused, in any spelling, at the first request and at every redirect, and
before any connection is made. A feed with `allow_private = true` reaches them.

Before: a feed (or a redirect from one) could point at loopback, the database's port or the
service's own admin API, and the answer was stored and mailed to every reader."""

from __future__ import annotations

import ipaddress
import ssl

import pytest
from prometheus_client import REGISTRY

from newsletter.articles import ingest_feeds
from newsletter.articles.fetch import http_client, refusal, tls_context
from newsletter.config import FeedConfig, IngestConfig
from tests.articles.conftest import ContextFactory
from tests.articles.feeds import rss, rss_item
from tests.articles.helpers import feed_state, stored_articles
from tests.support.http import FeedServer, Route

FEED = rss(rss_item("A public story", "https://news.example/public"))


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.255.0.9", "::1", "0.0.0.0", "::", "10.0.0.1", "172.16.5.4", "192.168.1.1",
        "169.254.169.254", "fe80::1", "fc00::1", "fd12:3456::1", "100.64.0.1", "224.0.0.1",
        "239.255.255.250", "ff02::1", "255.255.255.255", "240.0.0.1", "192.0.2.1", "198.18.0.1",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::7f00:1", "64:ff9b::a00:1", "2002:7f00:1::1",
        "2001:db8::1",
    ],
)  # fmt: skip
def test_special_addresses_are_refused(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "64:ff9b::808:808"])
def test_public_addresses_are_fetched_from(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def spellings_of_loopback(port: int) -> list[str]:
    """(Octal, http://0177.0.0.1/, is not a URL httpx reads: refused as a feed's url already.)"""
    return [
        f"http://127.0.0.1:{port}/feed.xml",
        f"http://localhost:{port}/feed.xml",
        f"http://LOCALHOST:{port}/feed.xml",
        f"http://2130706433:{port}/feed.xml",  # decimal
        f"http://0x7f000001:{port}/feed.xml",  # hexadecimal
        f"http://127.1:{port}/feed.xml",  # short form
        f"http://[::1]:{port}/feed.xml",
        f"http://[::ffff:127.0.0.1]:{port}/feed.xml",
        f"http://0.0.0.0:{port}/feed.xml",
    ]


async def test_loopback_in_any_spelling_is_refused_before_connecting(
    make_context: ContextFactory, feed_server: FeedServer
) -> None:
    context = await make_context()
    feed_server.route("/feed.xml", Route(body=FEED))
    feeds = [FeedConfig(url=url) for url in spellings_of_loopback(feed_server.port)]
    reports = await ingest_feeds(context, feeds)
    for feed, report in zip(feeds, reports, strict=True):
        assert report.error is not None and report.error.startswith("refused:"), (feed.url, report.error)
        assert "allow_private" in report.error
    assert feed_server.requests_for("/feed.xml") == []
    assert await stored_articles(context) == []
    state = await feed_state(context, feeds[0].url)
    assert state is not None and state.last_error is not None and "loopback" in state.last_error
    assert REGISTRY.get_sample_value("newsletter_feed_errors_total", {"kind": "refused"})


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:5432/",  # the database's port
        "http://localhost:8000/api/subscribers",  # the service's own admin API
        "http://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
        "http://10.0.0.1/admin",
        "http://[::1]:6379/",
        "http://2130706433:22/",
    ],
)
async def test_a_redirect_to_a_private_address_is_refused(
    make_context: ContextFactory, feed_server: FeedServer, target: str
) -> None:
    """The test's feed server stands in for a public one; where it redirects to is checked as
    the first request was, and nothing is connected to there."""
    context = await make_context()
    url = feed_server.route("/moved.xml", Route(redirect_to=target))
    public = [("127.0.0.1", feed_server.port)]
    [report] = await ingest_feeds(context, [FeedConfig(url=url)], treat_as_public=public)
    assert report.error is not None and report.error.startswith("refused:"), report.error
    assert len(feed_server.requests_for("/moved.xml")) == 1
    assert await stored_articles(context) == []


async def test_a_redirect_to_a_public_address_is_followed(
    make_context: ContextFactory, feed_server: FeedServer
) -> None:
    context = await make_context()
    feed_server.route("/feed.xml", Route(body=FEED))
    url = feed_server.route("/old.xml", Route(redirect_to=feed_server.url("/feed.xml")))
    public = [("127.0.0.1", feed_server.port)]
    [report] = await ingest_feeds(context, [FeedConfig(url=url)], treat_as_public=public)
    assert (report.error, report.new) == (None, 1)


async def test_a_feed_allowed_private_addresses_reaches_them(
    make_context: ContextFactory, feed_server: FeedServer
) -> None:
    context = await make_context(feeds=[{"url": feed_server.url("/feed.xml"), "allow_private": True}])
    feed_server.route("/feed.xml", Route(body=FEED))
    [report] = await ingest_feeds(context)
    assert (report.error, report.new) == (None, 1)
    assert len(feed_server.requests_for("/feed.xml")) == 1


async def test_every_feed_client_verifies_with_the_one_tls_context() -> None:
    """A TLS context reads the whole CA bundle when made (~50 ms): the guarded client (and the
    transport it replaces) and the private one take the process's one, made once per process."""
    config = IngestConfig()
    async with http_client(config) as public, http_client(config, allow_private=True) as private:
        contexts = [client._transport._pool._ssl_context for client in (public, private)]  # type: ignore[attr-defined]
    assert all(context is tls_context() for context in contexts)
    assert tls_context().verify_mode is ssl.CERT_REQUIRED and tls_context().check_hostname
