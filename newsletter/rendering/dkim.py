"""DKIM signatures (RFC 6376, relaxed/relaxed) with RSA-SHA256 and Ed25519-SHA256 (RFC 8463) on
OpenSSL through `cryptography`: each key parsed once; a message template's fixed headers
canonicalised and hashed once (`SigningPlan`); per message only its body and its own headers.

Signed headers are over-signed: each name is listed once more than it occurs, so a header of
that name added in transit (a second Subject, a List-Unsubscribe on top) breaks the signature.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from newsletter.config import DkimConfig
from newsletter.config.sections import DkimKeySettings
from newsletter.errors import ConfigError

# What is signed, in the order hashed (the per-recipient ones last, see SigningPlan).
SIGNED = (
    b"from",
    b"subject",
    b"date",
    b"list-id",
    b"list-unsubscribe-post",
    b"reply-to",
    b"mime-version",
    b"content-type",
    b"to",
    b"message-id",
    b"list-unsubscribe",
)
MIN_RSA_BITS = 1024  # RFC 8301: verifiers refuse less
_WSP_RUN = re.compile(rb"[ \t]+")
_LINE_END_WSP = re.compile(rb"[ \t]+(?=\r\n|\Z)")
_INNER_LINE_END_WSP = re.compile(rb"[ \t]+(?=\r\n)")
_FIELD_START = re.compile(rb"\r\n(?![ \t])")

PrivateKey = RSAPrivateKey | Ed25519PrivateKey


@dataclass(frozen=True)
class DkimKey:
    algorithm: str  # "rsa-sha256" or "ed25519-sha256"
    selector: str
    domain: str
    setting: str  # the configuration key naming its file
    private_key: PrivateKey

    def sign(self, digest: bytes) -> bytes:
        """The signature of a SHA-256 header hash (RFC 8463: Ed25519 signs the hash itself)."""
        if isinstance(self.private_key, RSAPrivateKey):
            return self.private_key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
        return self.private_key.sign(digest)

    @property
    def slow(self) -> bool:
        """Whether signing is worth a hop to another thread: RSA-2048's private-key operation
        takes 0.25-1.2 ms by CPU, more than the hop costs (~0.15 ms of CPU between the two
        threads); Ed25519's ~0.05 ms is cheaper done where the message is built."""
        return isinstance(self.private_key, RSAPrivateKey)

    def public_value(self) -> str:
        """The p= of the DNS record: SubjectPublicKeyInfo for RSA, the raw key for Ed25519."""
        public = self.private_key.public_key()
        if self.algorithm == "rsa-sha256":
            der = public.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        else:
            der = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return base64.b64encode(der).decode("ascii")

    def dns_record(self) -> str:
        """The TXT record to publish at `<selector>._domainkey.<domain>`."""
        kind = "rsa" if self.algorithm == "rsa-sha256" else "ed25519"
        return f"v=DKIM1; k={kind}; p={self.public_value()}"

    @property
    def dns_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"


def load_key(settings: DkimKeySettings, domain: str) -> DkimKey:
    """The key of `settings`, parsed and checked against its algorithm; ConfigError naming the
    setting (dkim.private_key_file or dkim.ed25519_private_key_file) otherwise."""
    name = settings.setting
    try:
        pem = settings.private_key_file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{name}: unreadable: {exc.strerror}", setting=name) from None
    try:
        key = serialization.load_pem_private_key(pem.replace(b"\r\n", b"\n"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError(
            f"{name}: not a PEM private key (PKCS#1 or PKCS#8, unencrypted)", setting=name
        ) from None
    wanted = RSAPrivateKey if settings.algorithm == "rsa-sha256" else Ed25519PrivateKey
    if not isinstance(key, wanted):
        kind = type(key).__name__.removeprefix("_").removesuffix("PrivateKey") or "another"
        raise ConfigError(
            f"{name}: an {kind} key; {settings.algorithm} needs {wanted.__name__[:-10]}", setting=name
        )
    if isinstance(key, RSAPrivateKey) and key.key_size < MIN_RSA_BITS:
        raise ConfigError(f"{name}: a {key.key_size}-bit RSA key; at least {MIN_RSA_BITS}", setting=name)
    return DkimKey(settings.algorithm, settings.selector, domain.encode("idna").decode("ascii"), name, key)


def load_keys(config: DkimConfig) -> list[DkimKey]:
    return [load_key(settings, config.domain) for settings in config.key_settings()]


def check_key(config: DkimConfig) -> None:
    """Read and parse the keys now, when signing is configured: a bad one stops the command at
    once with one line naming its setting (ConfigError), instead of every message."""
    load_keys(config)


class DkimSigner:
    """The configured keys, parsed once; one signature per key."""

    def __init__(self, config: DkimConfig) -> None:
        self.keys = load_keys(config)
        if not self.keys:
            raise ConfigError("dkim.private_key_file: not set", setting="dkim.private_key_file")
        self.slow = any(key.slow for key in self.keys)

    def plan(
        self,
        fields: Sequence[bytes | None],
        names: Sequence[bytes],
        body: Sequence[bytes | None] | None = None,
    ) -> SigningPlan:
        """A plan for messages whose header fields are `fields` in order: each the raw field
        (CRLF-terminated) when the same in every message, None where it is per-recipient;
        `names` gives every field's lower-case name. `body`: the body's parts, None where a
        recipient's value goes, when known (its constant parts are then canonicalised once)."""
        return SigningPlan(self.keys, fields, names, body)

    def sign(self, message: bytes) -> bytes:
        """The DKIM-Signature header lines (CRLF-terminated) to put before `message`."""
        head, body = split_message(message)
        fields = header_fields(head)
        return SigningPlan(self.keys, fields, [field_name(field) for field in fields]).sign(head, body)


class SigningPlan:
    """A template's signing work done once: the h= list, and the hash of the signed headers that
    are the same for every recipient. `sign` adds a message's own headers and its body hash."""

    def __init__(
        self,
        keys: Sequence[DkimKey],
        fields: Sequence[bytes | None],
        names: Sequence[bytes],
        body: Sequence[bytes | None] | None = None,
    ) -> None:
        self.keys = keys
        pairs = list(zip(fields, names, strict=True))
        personal = {name for field, name in pairs if field is None}
        # Hashed in the order listed: the fixed names first (hashed now), the recipient's after.
        order = [n for n in SIGNED if n not in personal] + [n for n in SIGNED if n in personal]
        fixed = hashlib.sha256()
        for name in order:
            if name not in personal:
                # Bottom-up, as verifiers take the instances of a name listed more than once.
                for field, _ in reversed([pair for pair in pairs if pair[1] == name]):
                    fixed.update(relaxed_header(field or b""))
        self._fixed = fixed
        self._personal = [n for n in order if n in personal]
        # Where each personal field's turn comes: indexes into the fields of personal names in
        # header order (as `pending` takes them), in the order they are hashed.
        personal_names = [name for _, name in pairs if name in self._personal]
        self._personal_order = [
            index
            for name in self._personal
            for index in reversed([i for i, n in enumerate(personal_names) if n == name])
        ]
        self._h = ":".join(name.decode("ascii") for name in order for _ in range(names.count(name) + 1))
        self._body = _relaxed_parts(body) if body is not None else None

    def personal_fields(self, names: Sequence[bytes]) -> list[int]:
        """Which of the header fields named `names` (in order) `pending` takes."""
        return [index for index, name in enumerate(names) if name in self._personal]

    def sign(self, head: bytes, body: bytes, values: Sequence[bytes] = ()) -> bytes:
        """The DKIM-Signature header lines for the message `head` + CRLF + `body`, whose body
        was joined from the plan's body parts and `values` (the recipient's, in order)."""
        personal = [field for field in header_fields(head) if field_name(field) in self._personal]
        return b"".join(pending.complete() for pending in self.pending(personal, lambda: body, values))

    def pending(
        self, personal: Sequence[bytes], body: Callable[[], bytes], values: Sequence[bytes] = ()
    ) -> list[PendingSignature]:
        """All of `sign` but the key operations, for a message whose header fields of the names
        holding a recipient's value are `personal` (each CRLF-terminated, in header order:
        `personal_fields` says which) and whose body `body()` joins, only when its parts cannot
        be used: one PendingSignature per key, whose `complete` can then run on another thread."""
        body_hash = base64.b64encode(self._body_hash(body, values)).decode("ascii")
        digest = self._fixed.copy()
        for index in self._personal_order:
            digest.update(relaxed_header(personal[index]))
        stamp = int(time.time())
        return [self._pending(key, digest.copy(), body_hash, stamp) for key in self.keys]

    def _body_hash(self, body: Callable[[], bytes], values: Sequence[bytes]) -> bytes:
        parts = self._body
        if parts is None or not all(_inert(value) for value in values):
            return hashlib.sha256(relaxed_body(body())).digest()
        given = iter(values)
        # One hash call over the joined body, not one per part: each large update lets go of the
        # GIL, and a sender's signing thread (PendingSignature) is waiting to take it.
        return hashlib.sha256(
            b"".join([part if part is not None else next(given) for part in parts])
        ).digest()

    def _pending(self, key: DkimKey, digest: hashlib._Hash, body_hash: str, stamp: int) -> PendingSignature:
        unsigned = (
            f"DKIM-Signature: v=1; a={key.algorithm}; c=relaxed/relaxed; d={key.domain};\r\n"
            f"\ts={key.selector}; t={stamp};\r\n\th={self._h};\r\n\tbh={body_hash};\r\n\tb="
        ).encode("ascii")
        digest.update(relaxed_header(unsigned).removesuffix(b"\r\n"))
        return PendingSignature(key, unsigned, digest.digest())


@dataclass(frozen=True)
class PendingSignature:
    """One key's DKIM-Signature of one message but the signature itself: the header up to `b=`
    and the SHA-256 its key signs. `complete` holds the GIL only around the key operation, so
    a thread of its own can sign while the event loop goes on."""

    key: DkimKey
    unsigned: bytes
    digest: bytes

    def complete(self) -> bytes:
        """The header lines (CRLF-terminated), signed now."""
        value = base64.b64encode(self.key.sign(self.digest))
        folded = b"\r\n\t".join(value[i : i + 72] for i in range(0, len(value), 72))
        return self.unsigned + folded + b"\r\n"


def _relaxed_parts(parts: Sequence[bytes | None]) -> list[bytes | None] | None:
    """The body's constant parts in relaxed form, each on its own: right as long as the values
    between them are inert (see `_inert`), so no run of blanks spans a value. None when the body
    does not end with a constant part (its end needs the whole body's rules)."""
    if not parts or parts[-1] is None:
        return None
    relaxed: list[bytes | None] = [
        None if part is None else _WSP_RUN.sub(b" ", _INNER_LINE_END_WSP.sub(b"", part))
        for part in parts[:-1]
    ]
    return [*relaxed, relaxed_body(parts[-1] or b"")]


def _inert(value: bytes) -> bool:
    """A recipient's value that relaxed canonicalisation leaves alone: non-empty, no blanks,
    not starting a line (quoted-printable links and addresses, as ours are)."""
    return bool(value) and b" " not in value and b"\t" not in value and value[:1] not in (b"\r", b"\n")


def split_message(message: bytes) -> tuple[bytes, bytes]:
    """The header block (its fields, each CRLF-terminated) and the body."""
    end = message.find(b"\r\n\r\n")
    if end < 0:
        return message, b""
    return message[: end + 2], message[end + 4 :]


def header_fields(head: bytes) -> list[bytes]:
    """Each field of a header block, continuation lines included, CRLF-terminated."""
    return [field + b"\r\n" for field in _FIELD_START.split(head.removesuffix(b"\r\n"))] if head else []


def field_name(field: bytes) -> bytes:
    return field.split(b":", 1)[0].strip().lower()


def relaxed_header(field: bytes) -> bytes:
    """RFC 6376 §3.4.2: lower-case name, unfolded value with runs of blanks made one space."""
    name, _, value = field.partition(b":")
    # A fold's CRLF + tab is one blank, as the run it ends up in would be; most fields then have
    # no tab and no run left, and skip the regex (a sender hashes four fields a message).
    value = value.replace(b"\r\n\t", b" ").replace(b"\r\n", b"")
    if b"\t" in value or b"  " in value:
        value = _WSP_RUN.sub(b" ", value)
    return name.strip().lower() + b":" + value.strip(b" ") + b"\r\n"


def relaxed_body(body: bytes) -> bytes:
    """RFC 6376 §3.4.4: no blanks at line ends, runs of blanks made one space, no empty lines
    at the end. Quoted-printable bodies (ours) rarely have any of it, so most skip the regexes."""
    if b"\t" in body or b"  " in body or b" \r\n" in body or body.endswith(b" "):
        body = _WSP_RUN.sub(b" ", _LINE_END_WSP.sub(b"", body))
    body = body.rstrip(b"\r\n")
    return body + b"\r\n" if body else b""
