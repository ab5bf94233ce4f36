"""The DKIM signer against two independent verifiers, dkimpy and OpenDKIM's opendkim-testmsg, for
RSA-SHA256, Ed25519-SHA256 and both at once; tampered copies must fail both.

OpenDKIM looks keys up in DNS through the system resolver, so its check runs in a mount
namespace of its own whose /etc/resolv.conf names a DNS server the test starts on 127.0.0.77:53
(needs root, as CI runs, and Debian's opendkim-tools: `make system-deps`).
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from hypothesis import given
from hypothesis import strategies as st

from newsletter.config import DkimConfig, Settings
from newsletter.errors import ConfigError
from newsletter.personal.recipients import make_message_id
from newsletter.rendering import DigestRenderer, MessageTemplate, Recipient
from newsletter.rendering.dkim import DkimSigner, relaxed_body, relaxed_header
from tests.rendering.articles import EDITION_DATE, stories
from tests.rendering.conftest import DIGEST_VALUES, READER, RenderSettings
from tests.rendering.test_dkim import SENT_AT
from tests.support.dns import Zone, can_bind_port_53, dns_server

DOMAIN = "londondaily.example"
RESOLVER = "127.0.0.77"
ALGORITHMS = [["rsa-sha256"], ["ed25519-sha256"], ["rsa-sha256", "ed25519-sha256"]]
OVER_SIGNED = [b"from", b"to", b"subject", b"date", b"message-id", b"list-id", b"list-unsubscribe"]
OVER_SIGNED += [b"list-unsubscribe-post", b"mime-version", b"content-type"]

Verify = Callable[[bytes], bool]


def pem(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture(scope="module")
def key_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("dkim")
    files = {"rsa": folder / "rsa.pem", "ed25519": folder / "ed25519.pem"}
    files["rsa"].write_bytes(pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    files["ed25519"].write_bytes(pem(ed25519.Ed25519PrivateKey.generate()))
    return files


def dkim_settings(key_files: dict[str, Path], algorithms: list[str]) -> dict[str, object]:
    settings: dict[str, object] = {"domain": DOMAIN, "algorithms": algorithms}
    if "rsa-sha256" in algorithms:
        settings |= {"selector": "news2026", "private_key_file": str(key_files["rsa"])}
    if "ed25519-sha256" in algorithms:
        settings |= {"ed25519_selector": "news2026e", "ed25519_private_key_file": str(key_files["ed25519"])}
    return settings


def digest(settings: Settings) -> bytes:
    newsletter = settings.newsletters[0]
    rendered = DigestRenderer(settings).render_digest(newsletter, EDITION_DATE, stories())
    template = MessageTemplate.digest(settings, newsletter, rendered, date=SENT_AT)
    message_id = make_message_id(settings, "e", 1, 2)
    return template.build(Recipient(READER, message_id, DIGEST_VALUES)).data


def zone_of(config: DkimConfig) -> Zone:
    return Zone({key.dns_name: key.dns_record() for key in DkimSigner(config).keys})


def dkimpy(zone: Zone) -> Verify:
    """True when every signature of the message verifies with dkimpy."""

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        value = zone.records.get(name.decode().rstrip(".").lower())
        return value.encode() if value is not None else None

    def verify(message: bytes) -> bool:
        count = len(re.findall(rb"^DKIM-Signature:", message, re.MULTILINE))
        checker = dkim.DKIM(message)
        try:
            return count > 0 and all(checker.verify(idx=i, dnsfunc=lookup) for i in range(count))
        except dkim.DKIMException:  # what it raises for a body hash that does not match
            return False

    return verify


@pytest.fixture(scope="module")
def opendkim() -> Iterator[Callable[[Zone, Path], Verify]]:
    missing = [tool for tool in ("opendkim-testmsg", "unshare", "mount") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}: apt-get install opendkim-tools (make system-deps)")
    if not can_bind_port_53(RESOLVER):
        pytest.skip("OpenDKIM asks the system resolver (port 53): run as root, as CI does")
    yield _opendkim


def _opendkim(zone: Zone, folder: Path) -> Verify:
    resolv = folder / "resolv.conf"
    resolv.write_text(f"nameserver {RESOLVER}\noptions timeout:2 attempts:1\n")

    def verify(message: bytes) -> bool:
        (folder / "message.eml").write_bytes(message)
        script = f"mount --bind {resolv} /etc/resolv.conf && exec opendkim-testmsg < {folder / 'message.eml'}"
        with dns_server(zone, host=RESOLVER, port=53):
            done = subprocess.run(["unshare", "--mount", "sh", "-c", script], capture_output=True, timeout=30)
        return done.returncode == 0

    return verify


def tampered(message: bytes) -> dict[str, bytes]:
    """Copies changed the ways a signature must catch: the body, and headers added on top."""
    first = message.index(b"\r\nFrom: ") + 2  # after the signatures
    on_top = message[:first]
    rest = message[first:]
    return {
        "body changed": message.replace(b"Read more", b"Read less", 1),
        "a second Subject": on_top + b"Subject: Claim your prize\r\n" + rest,
        "a List-Unsubscribe added": on_top + b"List-Unsubscribe: <https://evil.example/u>\r\n" + rest,
    }


@pytest.mark.parametrize("algorithms", ALGORITHMS, ids=["rsa", "ed25519", "both"])
def test_dkimpy_verifies_each_signature_and_refuses_tampered_copies(
    render_settings: RenderSettings, key_files: dict[str, Path], algorithms: list[str]
) -> None:
    settings = render_settings(dkim=dkim_settings(key_files, algorithms))
    message = digest(settings)
    signatures = re.findall(rb"^DKIM-Signature: v=1; a=([a-z0-9-]+);", message, re.MULTILINE)
    assert [a.decode() for a in signatures] == algorithms
    verify = dkimpy(zone_of(settings.dkim))
    assert verify(message)
    for change, copy in tampered(message).items():
        assert not verify(copy), change


@pytest.mark.parametrize("algorithms", ALGORITHMS, ids=["rsa", "ed25519", "both"])
def test_opendkim_verifies_and_refuses_tampered_copies(
    render_settings: RenderSettings,
    key_files: dict[str, Path],
    algorithms: list[str],
    opendkim: Callable[[Zone, Path], Verify],
    tmp_path: Path,
) -> None:
    settings = render_settings(dkim=dkim_settings(key_files, algorithms))
    message = digest(settings)
    verify = opendkim(zone_of(settings.dkim), tmp_path)
    assert verify(message)
    for change, copy in tampered(message).items():
        assert not verify(copy), change


def test_each_signed_name_is_listed_once_more_than_it_occurs(
    render_settings: RenderSettings, key_files: dict[str, Path]
) -> None:
    message = digest(render_settings(dkim=dkim_settings(key_files, ["rsa-sha256"])))
    header = message.split(b"\r\nFrom: ", 1)[0].replace(b"\r\n\t", b" ")
    found = re.search(rb"h=([^;]+);", header)
    assert found is not None
    listed = found.group(1).replace(b" ", b"").split(b":")
    for name in OVER_SIGNED:
        assert listed.count(name) == 2, name
    assert listed.count(b"reply-to") == 1  # absent, and so can never be added
    assert b"bh=" in header and b"c=relaxed/relaxed" in header and b"d=londondaily.example" in header


def test_a_template_signs_as_a_whole_message_would(
    render_settings: RenderSettings, key_files: dict[str, Path]
) -> None:
    """The plan hashes the fixed headers once; the result is what hashing them all gives."""
    settings = render_settings(dkim=dkim_settings(key_files, ["ed25519-sha256"]))
    planned = digest(settings)
    body = planned[planned.index(b"\r\nFrom: ") + 2 :]
    whole = DkimSigner(settings.dkim).sign(body) + body
    strip_time = re.compile(rb"t=\d+;")
    # Ed25519 signatures are deterministic: same input, same signature (given the same t=).
    assert strip_time.sub(b"", planned).split(b"\tb=")[0] == strip_time.sub(b"", whole).split(b"\tb=")[0]
    assert dkimpy(zone_of(settings.dkim))(whole)


def _relaxed_header_by_the_rule(field: bytes) -> bytes:
    """RFC 6376 §3.4.2 word for word: unfold, runs of blanks made one space, trimmed."""
    name, _, value = field.partition(b":")
    value = re.sub(rb"[ \t]+", b" ", value.replace(b"\r\n", b"")).strip(b" ")
    return name.strip().lower() + b":" + value + b"\r\n"


@given(
    st.lists(
        st.sampled_from([b"a", b"B", b" ", b"  ", b"\t", b"\r\n", b"\r\n\t", b"\r\n ", b"\r", b"\n", b";"])
    )
)
def test_relaxed_header_is_the_rule_for_any_blanks_and_folds(pieces: list[bytes]) -> None:
    field = b"List-Unsubscribe:" + b"".join(pieces) + b"\r\n"
    assert relaxed_header(field) == _relaxed_header_by_the_rule(field)


def test_relaxed_canonicalisation() -> None:
    assert relaxed_header(b"SUBJECT :  Two\r\n \t spaces  \r\n") == b"subject:Two spaces\r\n"
    assert relaxed_body(b"a  b \r\nc\t\r\n\r\n\r\n") == b"a b\r\nc\r\n"
    assert relaxed_body(b"plain\r\nlines\r\n") == b"plain\r\nlines\r\n"
    assert relaxed_body(b"\r\n\r\n") == b""
    assert relaxed_body(b"no end  ") == b"no end\r\n"


@pytest.mark.parametrize(
    ("algorithms", "setting"),
    [
        (["rsa-sha256"], "dkim.private_key_file: an Ed25519 key; rsa-sha256 needs RSA"),
        (
            ["ed25519-sha256"],
            "dkim.ed25519_private_key_file: an RSA key; ed25519-sha256 needs Ed25519",
        ),
    ],
)
def test_a_key_of_another_algorithm_is_refused_naming_its_setting(
    key_files: dict[str, Path], algorithms: list[str], setting: str
) -> None:
    wrong = {"rsa": key_files["ed25519"], "ed25519": key_files["rsa"]}
    config = DkimConfig.model_validate(dkim_settings(wrong, algorithms))
    with pytest.raises(ConfigError) as raised:
        DkimSigner(config)
    assert str(raised.value) == setting


def test_algorithms_and_keys_must_agree(key_files: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="ed25519_selector and ed25519_private_key_file are needed"):
        DkimConfig(
            domain=DOMAIN,
            selector="s",
            private_key_file=key_files["rsa"],
            algorithms=["rsa-sha256", "ed25519-sha256"],
        )
    with pytest.raises(ValueError, match="dkim.algorithms does not list ed25519-sha256"):
        DkimConfig.model_validate(
            dkim_settings(key_files, ["rsa-sha256", "ed25519-sha256"]) | {"algorithms": ["rsa-sha256"]}
        )
    with pytest.raises(ValueError, match="each at most once"):
        DkimConfig(algorithms=["rsa-sha256", "rsa-sha256"])


@pytest.mark.parametrize(
    ("algorithms", "slow"),
    [(["rsa-sha256"], True), (["ed25519-sha256"], False), (["rsa-sha256", "ed25519-sha256"], True)],
)
def test_only_rsa_signing_is_worth_another_thread(
    key_files: dict[str, Path], algorithms: list[str], slow: bool
) -> None:
    signer = DkimSigner(DkimConfig.model_validate(dkim_settings(key_files, algorithms)))
    assert signer.slow is slow


@pytest.mark.parametrize("value", [b"https://l.example/u/1=\r\n", b"two  words", b"", b"\r\nstarts a line"])
def test_a_body_hashed_in_parts_equals_the_whole_bodys_hash(key_files: dict[str, Path], value: bytes) -> None:
    """Constant parts are canonicalised once; a recipient value that could change how its
    neighbours canonicalise (blanks, empty, a line start) sends the whole body the long way."""
    config = DkimConfig.model_validate(dkim_settings(key_files, ["ed25519-sha256"]))
    parts: list[bytes | None] = [b"<p>Read  \r\n more ", None, b"  here</p> \r\n\r\n\r\n"]
    head = b"From: a@londondaily.example\r\nTo: b@readers.example\r\n"
    plan = DkimSigner(config).plan([head.split(b"\r\n")[0] + b"\r\n", None], [b"from", b"to"], body=parts)
    body = parts[0] + value + parts[2]  # type: ignore[operator]
    signed = plan.sign(head, body, [value])
    whole = hashlib.sha256(relaxed_body(body)).digest()
    assert f"bh={base64.b64encode(whole).decode()};".encode() in signed.replace(b"\r\n\t", b" ")
