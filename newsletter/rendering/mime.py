"""RFC 5322 / MIME building blocks: folded headers, quoted-printable segments, boundaries."""

from __future__ import annotations

import binascii
import email.policy
import hashlib
from email.header import Header

CRLF = b"\r\n"
SOFT_BREAK = b"=\r\n"
# RFC 2045: encoded lines at most 76 characters; a soft break's "=" counts.
QP_LINE = 76

_ASCII_POLICY = email.policy.SMTP
_UTF8_POLICY = email.policy.SMTPUTF8


def header(name: str, value: str, *, utf8: bool = False) -> bytes:
    """One folded header line, RFC 2047-encoded where needed (raw UTF-8 under SMTPUTF8)."""
    if any(ch in value for ch in "\r\n\x00"):
        raise ValueError(f"{name}: line breaks are not allowed in a header")
    policy = _UTF8_POLICY if utf8 else _ASCII_POLICY
    folded: str = policy.header_factory(name, value).fold(policy=policy)
    return folded.encode("utf-8" if utf8 else "ascii")


def phrase(text: str) -> str:
    """A display name usable before <...> in List-Id: quoted, or an encoded word."""
    if text.isascii():
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    return Header(text, "utf-8").encode()


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def quoted_printable(data: bytes) -> bytes:
    """Quoted-printable with CRLF line ends; input must use LF (or no) line breaks."""
    return binascii.b2a_qp(data, istext=True).replace(b"\n", CRLF)


def open_ended(encoded: bytes) -> bytes:
    """End an encoded segment with a soft line break, so whatever is joined after it starts
    on a fresh line and no line grows past 76 characters."""
    if not encoded or encoded.endswith(CRLF):
        return encoded
    start = encoded.rfind(b"\n") + 1
    if len(encoded) - start < QP_LINE:
        return encoded + SOFT_BREAK
    cut = start + QP_LINE - 1
    # "=" only ever starts an escape in encoded text: never split "=XX".
    escape = encoded.find(b"=", cut - 2, cut)
    if escape != -1:
        cut = escape
    return encoded[:cut] + SOFT_BREAK + encoded[cut:] + SOFT_BREAK


def qp_segment(text: str) -> bytes:
    return open_ended(quoted_printable(normalise_newlines(text).encode("utf-8")))


def boundary(*parts: bytes) -> str:
    """Deterministic per content; "=_" cannot occur in quoted-printable text."""
    digest = hashlib.sha256(b"\0".join(parts)).hexdigest()[:32]
    return f"=_nl_{digest}"


def part_header(content_type: str) -> bytes:
    return (
        f'Content-Type: {content_type}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode("ascii")
