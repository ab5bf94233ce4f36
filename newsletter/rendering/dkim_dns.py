"""DKIM keys in DNS: the TXT record to publish for each key, and whether what DNS answers for
its selector is that key (`newsletter dkim record`, `newsletter dkim check`)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from newsletter.errors import InvalidInput
from newsletter.rendering.dkim import DkimKey

TXT_STRING_MAX = 255  # octets in one character-string of a TXT record (RFC 1035 §3.3)
DEFAULT_LIFETIME = 5.0  # seconds for each lookup
ED25519_KEY_BYTES = 32
_TAG_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_KINDS = {"rsa-sha256": "rsa", "ed25519-sha256": "ed25519"}


class Status(StrEnum):
    MATCHES = "matches"
    DIFFERENT = "different"  # a key is published, but not this one (or not of this algorithm)
    MISSING = "missing"
    REVOKED = "revoked"
    MALFORMED = "malformed"
    LOOKUP_FAILED = "lookup_failed"  # DNS did not answer: says nothing about the key

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    Status.MATCHES: "matches",
    Status.DIFFERENT: "published but different",
    Status.MISSING: "no record",
    Status.REVOKED: "revoked",
    Status.MALFORMED: "malformed",
    Status.LOOKUP_FAILED: "lookup failed",
}


@dataclass(frozen=True)
class Finding:
    status: Status
    detail: str = ""


@dataclass(frozen=True)
class TxtRecord:
    """What to publish for one key: the name (absolute, with its final dot) and the value."""

    name: str
    value: str
    algorithm: str
    selector: str

    @property
    def strings(self) -> list[str]:
        """The value as the character-strings of one TXT record; a verifier joins them."""
        return [self.value[i : i + TXT_STRING_MAX] for i in range(0, len(self.value), TXT_STRING_MAX)]

    def zone_file(self) -> str:
        """The record as a BIND zone-file entry; a long value in parentheses, a string a line."""
        quoted = [f'"{part}"' for part in self.strings]
        if len(quoted) == 1:
            return f"{self.name} IN TXT {quoted[0]}"
        return f"{self.name} IN TXT ( " + "\n    ".join(quoted) + " )"

    def as_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "type": "TXT",
            "value": self.value,
            "algorithm": self.algorithm,
            "selector": self.selector,
        }


def txt_record(key: DkimKey) -> TxtRecord:
    return TxtRecord(f"{key.dns_name}.", key.dns_record(), key.algorithm, key.selector)


@dataclass(frozen=True)
class KeyCheck:
    """One key's record as DNS answered it; `published` is the TXT value found, if one."""

    name: str
    algorithm: str
    selector: str
    finding: Finding
    published: str | None = None

    @property
    def ok(self) -> bool:
        return self.finding.status is Status.MATCHES

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "algorithm": self.algorithm,
            "selector": self.selector,
            "status": str(self.finding.status),
            "detail": self.finding.detail,
            "published": self.published,
        }


@dataclass(frozen=True)
class TxtLookup:
    """The TXT records at a name, each one's strings joined; or why DNS gave no answer."""

    records: list[str]
    failure: str | None = None


def parse_tags(record: str) -> dict[str, str] | None:
    """An RFC 6376 §3.2 tag list as a dict, values stripped; None if it is not one."""
    tags: dict[str, str] = {}
    for part in record.split(";"):
        if not part.strip():
            continue  # a trailing ";" is allowed
        name, equals, value = part.partition("=")
        name = name.strip()
        if not equals or not _TAG_NAME.match(name) or name in tags:
            return None
        tags[name] = value.strip()
    return tags or None


def compare(algorithm: str, public_value: str, record: str) -> Finding:
    """Whether the TXT `record` publishes our key: `public_value` (the p= of our record) for
    `algorithm`, as a verifier would read it (RFC 6376 §3.6.1, RFC 8463)."""
    tags = parse_tags(record)
    if tags is None:
        return Finding(Status.MALFORMED, "not a DKIM key record (a list of tag=value; tags)")
    # Verifiers discard a record whose v= is anything else, or not the first tag.
    if tags.get("v", "DKIM1") != "DKIM1":
        return Finding(Status.MALFORMED, f"v={tags['v']}: not a DKIM key record (v=DKIM1)")
    if "v" in tags and next(iter(tags)) != "v":
        return Finding(Status.MALFORMED, "v=DKIM1 is not the first tag")
    if "p" not in tags:
        return Finding(Status.MALFORMED, "no p= tag (the public key)")
    published = re.sub(r"\s+", "", tags["p"])
    if not published:
        return Finding(Status.REVOKED, "the record's p= is empty: the key is revoked, signatures fail")
    kind = tags.get("k", "rsa")  # RFC 6376: k= defaults to rsa
    wanted = _KINDS[algorithm]
    if kind != wanted:
        return Finding(Status.DIFFERENT, f"a k={kind} key; {algorithm} needs k={wanted}")
    try:
        theirs = base64.b64decode(published, validate=True)
    except (binascii.Error, ValueError):
        return Finding(Status.MALFORMED, "p= is not base64")
    key_bytes = _rsa_key(theirs) if kind == "rsa" else _ed25519_key(theirs)
    if isinstance(key_bytes, Finding):
        return key_bytes
    if key_bytes != base64.b64decode(public_value):
        return Finding(
            Status.DIFFERENT,
            f"another {kind} key: the record was not updated after a key rotation, "
            "or this key file is not the one published",
        )
    return Finding(Status.MATCHES)


def _rsa_key(der: bytes) -> bytes | Finding:
    """A published RSA key as SubjectPublicKeyInfo DER, as ours is; some publish PKCS#1."""
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, TypeError):
        return Finding(Status.MALFORMED, "p= is not an RSA public key")
    if not isinstance(key, RSAPublicKey):
        return Finding(Status.DIFFERENT, "p= holds a key of another type under k=rsa")
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _ed25519_key(raw: bytes) -> bytes | Finding:
    if len(raw) != ED25519_KEY_BYTES:
        return Finding(Status.MALFORMED, f"p= is {len(raw)} bytes; an Ed25519 key is {ED25519_KEY_BYTES}")
    return raw


def judge(key: DkimKey, lookup: TxtLookup) -> KeyCheck:
    """What the TXT records found at `key`'s name mean for it."""
    found = lookup.records[0] if len(lookup.records) == 1 else None
    if lookup.failure is not None:
        finding = Finding(Status.LOOKUP_FAILED, f"{lookup.failure} (a DNS problem, not the key's)")
    elif not lookup.records:
        finding = Finding(Status.MISSING, "publish the one `newsletter dkim record` prints")
    elif found is None:
        # RFC 6376 §3.6.2.2: a verifier may use any one of them, so signatures fail at random.
        finding = Finding(Status.MALFORMED, f"{len(lookup.records)} TXT records at this name; publish one")
    else:
        finding = compare(key.algorithm, key.public_value(), found)
    published = found if found is not None else (" | ".join(lookup.records) or None)
    return KeyCheck(f"{key.dns_name}.", key.algorithm, key.selector, finding, published)


def parse_nameserver(text: str) -> tuple[str, int]:
    """`IP`, `IP:PORT`, `[IPv6]:PORT` or a bare IPv6 address, as (address, port)."""
    host, port = text, "53"
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        port = rest.removeprefix(":") if rest.startswith(":") else rest or "53"
        host = host if bracket else ""
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        address, number = str(ipaddress.ip_address(host)), int(port)
    except ValueError:
        address, number = "", 0
    if not 0 < number < 65536:
        raise InvalidInput("--nameserver", f"{text!r}: not an IP address with an optional :PORT")
    return address, number


def make_resolver(nameserver: tuple[str, int] | None, lifetime: float) -> dns.asyncresolver.Resolver:
    """The system resolver, or one asking only `nameserver`; NoResolverConfiguration when the
    system has none configured."""
    resolver = dns.asyncresolver.Resolver(configure=nameserver is None)
    if nameserver is not None:
        resolver.nameservers = [dns.nameserver.Do53Nameserver(*nameserver)]
    resolver.timeout = lifetime
    resolver.lifetime = lifetime
    return resolver


async def lookup_txt(resolver: dns.asyncresolver.Resolver, name: str) -> TxtLookup:
    """The TXT records at `name` (absolute); NXDOMAIN and no TXT are both no records."""
    try:
        answer = await resolver.resolve(dns.name.from_text(name), dns.rdatatype.TXT, search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return TxtLookup([])
    except dns.exception.Timeout:
        return TxtLookup([], f"timeout: no answer from {_servers(resolver)} within {resolver.lifetime:g} s")
    except dns.resolver.NoNameservers as exc:
        return TxtLookup([], _no_nameservers(exc))
    except dns.exception.DNSException as exc:
        return TxtLookup([], str(exc) or type(exc).__name__)
    # Long values (RSA keys) are split into strings of at most 255 octets: joined as one.
    return TxtLookup([b"".join(rdata.strings).decode("ascii", "replace") for rdata in answer])


def _servers(resolver: dns.asyncresolver.Resolver) -> str:
    return ", ".join(_server(str(ns)) for ns in resolver.nameservers)


def _server(described: str) -> str:
    """dnspython's "Do53:127.0.0.1@53" as "127.0.0.1:53" ("[::1]:53" for IPv6)."""
    address, _, port = described.removeprefix("Do53:").partition("@")
    if not port:
        return address
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _no_nameservers(exc: dns.resolver.NoNameservers) -> str:
    """Each server's answer: an rcode such as SERVFAIL or REFUSED, or the network error."""
    errors = exc.kwargs.get("errors") or []
    said = {f"{_server(error[0])} {_reason(error[3])}" for error in errors}
    return "; ".join(sorted(said)) or "no nameserver answered"


def _reason(error: object) -> str:
    if isinstance(error, str):
        return f"answered {error}"  # an rcode
    if isinstance(error, OSError) and error.strerror:
        return f"failed: {error.strerror.lower()}"
    return f"failed: {error or type(error).__name__}"


async def check_keys(
    keys: Sequence[DkimKey], *, nameserver: tuple[str, int] | None = None, lifetime: float = DEFAULT_LIFETIME
) -> list[KeyCheck]:
    """Each key's record looked up (at once) and compared with the key; `lifetime` is the
    seconds each lookup may take (dnspython's name)."""
    try:
        resolver = make_resolver(nameserver, lifetime)
    except dns.resolver.NoResolverConfiguration:
        failed = TxtLookup([], "no system resolver configured (/etc/resolv.conf): use --nameserver")
        return [judge(key, failed) for key in keys]
    lookups = await asyncio.gather(*(lookup_txt(resolver, f"{key.dns_name}.") for key in keys))
    return [judge(key, lookup) for key, lookup in zip(keys, lookups, strict=True)]
