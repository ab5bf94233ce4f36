"""DKIM records in DNS: the comparison of a published TXT value with our key in each case a
check can meet, and lookups against a real DNS server on loopback."""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator

import dns.message
import dns.rcode
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from newsletter.errors import InvalidInput
from newsletter.rendering.dkim import DkimKey
from newsletter.rendering.dkim_dns import (
    Status,
    TxtLookup,
    check_keys,
    compare,
    judge,
    parse_nameserver,
    parse_tags,
    txt_record,
)
from tests.support.dns import Zone, dns_server

DOMAIN = "londondaily.example"


@pytest.fixture(scope="module")
def rsa_key() -> DkimKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return DkimKey("rsa-sha256", "news2026", DOMAIN, "dkim.private_key_file", private)


@pytest.fixture(scope="module")
def ed_key() -> DkimKey:
    private = ed25519.Ed25519PrivateKey.generate()
    return DkimKey("ed25519-sha256", "ed2026", DOMAIN, "dkim.ed25519_private_key_file", private)


def other_rsa_value() -> str:
    public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def other_ed_value() -> str:
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    return base64.b64encode(public.public_bytes_raw()).decode()


def test_our_own_records_match(rsa_key: DkimKey, ed_key: DkimKey) -> None:
    for key in (rsa_key, ed_key):
        assert compare(key.algorithm, key.public_value(), key.dns_record()).status is Status.MATCHES


def test_what_verifiers_accept_also_matches(rsa_key: DkimKey, ed_key: DkimKey) -> None:
    p = rsa_key.public_value()
    folded = " ".join(p[i : i + 60] for i in range(0, len(p), 60))
    pkcs1 = rsa_key.private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1
    )
    accepted = [
        f"p={p}",  # v= is optional, k= defaults to rsa
        f"v=DKIM1;k=rsa;p={p};",
        f"v=DKIM1; k=rsa; t=s; h=sha256; p={folded}",  # whitespace inside p= is folding
        f"v=DKIM1; p={base64.b64encode(pkcs1).decode()}",  # PKCS#1 rather than SubjectPublicKeyInfo
    ]
    for record in accepted:
        assert compare("rsa-sha256", p, record).status is Status.MATCHES, record
    ed = ed_key.public_value()
    assert compare("ed25519-sha256", ed, f"k=ed25519;  p = {ed}").status is Status.MATCHES


@pytest.mark.parametrize(
    ("record", "status", "words"),
    [
        ("v=DKIM1; k=rsa; p=", Status.REVOKED, "revoked"),
        ("v=DKIM1; k=rsa; p=  ;", Status.REVOKED, "revoked"),
        ("v=DKIM1; k=rsa; p={other_rsa}", Status.DIFFERENT, "another rsa key"),
        ("v=DKIM1; k=ed25519; p={other_ed}", Status.DIFFERENT, "k=ed25519"),
        ("v=spf1 include:_spf.example -all", Status.MALFORMED, "-all: not a DKIM key record (v=DKIM1)"),
        ("hello, world", Status.MALFORMED, "not a DKIM key record"),
        ("k=rsa; v=DKIM1; p={ours}", Status.MALFORMED, "not the first tag"),
        ("v=DKIM1; k=rsa", Status.MALFORMED, "no p="),
        ("v=DKIM1; p=a; p=b", Status.MALFORMED, "not a DKIM key record"),
        ("v=DKIM1; k=rsa; p=not*base64!", Status.MALFORMED, "not base64"),
        ("v=DKIM1; k=rsa; p=AAAA", Status.MALFORMED, "not an RSA public key"),
    ],
)
def test_each_way_a_record_can_be_wrong_for_the_rsa_key(
    rsa_key: DkimKey, record: str, status: Status, words: str
) -> None:
    record = record.format(
        other_rsa=other_rsa_value(), other_ed=other_ed_value(), ours=rsa_key.public_value()
    )
    finding = compare("rsa-sha256", rsa_key.public_value(), record)
    assert finding.status is status and words in finding.detail, finding


@pytest.mark.parametrize(
    ("record", "status", "words"),
    [
        ("v=DKIM1; k=rsa; p={other_rsa}", Status.DIFFERENT, "k=rsa"),
        ("v=DKIM1; p={ours}", Status.DIFFERENT, "k=rsa"),  # without k=, it is an RSA key
        ("v=DKIM1; k=ed25519; p={other_ed}", Status.DIFFERENT, "another ed25519 key"),
        ("v=DKIM1; k=ed25519; p=", Status.REVOKED, "revoked"),
        ("v=DKIM1; k=ed25519; p=AAAA", Status.MALFORMED, "3 bytes"),
    ],
)
def test_each_way_a_record_can_be_wrong_for_the_ed25519_key(
    ed_key: DkimKey, record: str, status: Status, words: str
) -> None:
    record = record.format(other_rsa=other_rsa_value(), other_ed=other_ed_value(), ours=ed_key.public_value())
    finding = compare("ed25519-sha256", ed_key.public_value(), record)
    assert finding.status is status and words in finding.detail, finding


def test_judge_reads_missing_several_and_failed_lookups(rsa_key: DkimKey) -> None:
    assert judge(rsa_key, TxtLookup([])).finding.status is Status.MISSING
    several = judge(rsa_key, TxtLookup([rsa_key.dns_record(), "v=DKIM1; p="]))
    assert several.finding.status is Status.MALFORMED and "2 TXT records" in several.finding.detail
    failed = judge(rsa_key, TxtLookup([], "timeout"))
    assert failed.finding.status is Status.LOOKUP_FAILED and "not the key's" in failed.finding.detail
    assert failed.as_json()["status"] == "lookup_failed" and failed.name == f"news2026._domainkey.{DOMAIN}."


def test_tag_lists() -> None:
    assert parse_tags(" v=DKIM1 ; k = rsa; p=AB CD ;") == {"v": "DKIM1", "k": "rsa", "p": "AB CD"}
    assert parse_tags("") is None and parse_tags("no tags here") is None and parse_tags("=x") is None


def test_zone_file_strings_are_at_most_255_characters(rsa_key: DkimKey, ed_key: DkimKey) -> None:
    long = txt_record(rsa_key)
    assert len(long.strings) == 2 and all(len(part) <= 255 for part in long.strings)
    assert "".join(long.strings) == long.value == rsa_key.dns_record()
    assert long.zone_file().startswith(f'news2026._domainkey.{DOMAIN}. IN TXT ( "v=DKIM1; k=rsa; p=')
    assert long.zone_file().endswith('" )')
    short = txt_record(ed_key)
    assert short.zone_file() == f'ed2026._domainkey.{DOMAIN}. IN TXT "{ed_key.dns_record()}"'


def test_nameserver_forms() -> None:
    assert parse_nameserver("192.0.2.1") == ("192.0.2.1", 53)
    assert parse_nameserver("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_nameserver("::1") == ("::1", 53)
    assert parse_nameserver("[::1]:5353") == ("::1", 5353)
    for bad in ("ns1.example", "127.0.0.1:0", "127.0.0.1:port", "[::1"):
        with pytest.raises(InvalidInput, match="--nameserver"):
            parse_nameserver(bad)


async def test_lookups_against_a_server(rsa_key: DkimKey, ed_key: DkimKey) -> None:
    # The RSA record is longer than one string: the server splits it, the check joins it.
    zone = Zone({f"news2026._domainkey.{DOMAIN}": rsa_key.dns_record()})
    with dns_server(zone) as server:
        checks = await check_keys([rsa_key, ed_key], nameserver=server, lifetime=5)
    assert [checked.finding.status for checked in checks] == [Status.MATCHES, Status.MISSING]
    assert checks[0].published == rsa_key.dns_record()


class FailingZone(Zone):
    """Answers SERVFAIL to everything, as a server does when the zone is broken."""

    def answer(self, query: bytes) -> bytes:
        response = dns.message.make_response(dns.message.from_wire(query))
        response.set_rcode(dns.rcode.SERVFAIL)
        return response.to_wire()


async def test_servfail_is_a_failed_lookup_saying_so(rsa_key: DkimKey) -> None:
    with dns_server(FailingZone()) as server:
        [checked] = await check_keys([rsa_key], nameserver=server, lifetime=5)
    assert checked.finding.status is Status.LOOKUP_FAILED
    assert f"{server[0]}:{server[1]} answered SERVFAIL" in checked.finding.detail


@pytest.fixture
def silent_server() -> Iterator[tuple[str, int]]:
    """A UDP port that takes queries and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield "127.0.0.1", sock.getsockname()[1]


async def test_no_answer_is_a_timeout(rsa_key: DkimKey, silent_server: tuple[str, int]) -> None:
    [checked] = await check_keys([rsa_key], nameserver=silent_server, lifetime=0.3)
    assert checked.finding.status is Status.LOOKUP_FAILED
    assert checked.finding.detail.startswith("timeout: no answer from 127.0.0.1:")
