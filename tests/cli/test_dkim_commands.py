"""`newsletter dkim record` and `dkim check` as subprocesses, with an RSA and an Ed25519 key,
against a DNS server on loopback serving the records each test publishes."""

from __future__ import annotations

import base64
import json
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from tests.support.dns import Zone, dns_server
from tests.support.process import clean_environment, newsletter

DOMAIN = "londondaily.example"
RSA_NAME = f"news2026._domainkey.{DOMAIN}"
ED_NAME = f"news2026e._domainkey.{DOMAIN}"


@dataclass(frozen=True)
class Keys:
    config: Path
    rsa: rsa.RSAPrivateKey
    ed: ed25519.Ed25519PrivateKey
    pems: tuple[bytes, bytes]

    def rsa_value(self) -> str:
        der = self.rsa.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def ed_value(self) -> str:
        return base64.b64encode(self.ed.public_key().public_bytes_raw()).decode()

    def records(self) -> dict[str, str]:
        """The two records as they should be published."""
        return {
            RSA_NAME: f"v=DKIM1; k=rsa; p={self.rsa_value()}",
            ED_NAME: f"v=DKIM1; k=ed25519; p={self.ed_value()}",
        }


def write_pem(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey, path: Path) -> bytes:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(pem)
    return pem


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    folder = tmp_path_factory.mktemp("dkim")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    pems = write_pem(rsa_key, folder / "rsa.pem"), write_pem(ed_key, folder / "ed25519.pem")
    config = folder / "newsletter.toml"
    config.write_text(
        f"""[dkim]
domain = "{DOMAIN}"
algorithms = ["rsa-sha256", "ed25519-sha256"]
selector = "news2026"
private_key_file = "{folder / "rsa.pem"}"
ed25519_selector = "news2026e"
ed25519_private_key_file = "{folder / "ed25519.pem"}"
"""
    )
    return Keys(config, rsa_key, ed_key, pems)


def dkim(keys: Keys, *args: str, cwd: Path) -> Any:
    return newsletter(
        "dkim", *args, "--config", str(keys.config), cwd=cwd, env=clean_environment(COLUMNS="80")
    )


def check_against(zone: Zone, keys: Keys, cwd: Path, *extra: str) -> Any:
    """`dkim check` asking the server of `zone`."""
    with dns_server(zone) as (host, port):
        return dkim(keys, "check", "--nameserver", f"{host}:{port}", *extra, cwd=cwd)


def statuses(result: Any) -> dict[str, str]:
    return {checked["name"]: checked["status"] for checked in json.loads(result.stdout)}


def no_secret(keys: Keys, *results: Any) -> None:
    body = b"".join(pem.split(b"-----")[2] for pem in keys.pems).decode()
    for result in results:
        for line in body.split():
            assert line not in result.stdout + result.stderr


def test_record_prints_both_records_whose_values_are_our_keys(keys: Keys, tmp_path: Path) -> None:
    listed = dkim(keys, "record", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rsa_record, ed_record = json.loads(listed.stdout)
    assert rsa_record["name"] == f"{RSA_NAME}." and ed_record["name"] == f"{ED_NAME}."
    assert {rsa_record["type"], ed_record["type"]} == {"TXT"}
    assert (rsa_record["algorithm"], rsa_record["selector"]) == ("rsa-sha256", "news2026")
    assert (ed_record["algorithm"], ed_record["selector"]) == ("ed25519-sha256", "news2026e")
    # Each p= read back is the public half of the key on disk.
    p = rsa_record["value"].split("p=")[1]
    assert rsa_record["value"].startswith("v=DKIM1; k=rsa; ")
    assert serialization.load_der_public_key(base64.b64decode(p)) == keys.rsa.public_key()
    p = ed_record["value"].split("p=")[1]
    assert ed_record["value"].startswith("v=DKIM1; k=ed25519; ")
    read = ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(p))
    assert read.public_bytes_raw() == keys.ed.public_key().public_bytes_raw()

    shown = dkim(keys, "record", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    # The zone-file entry: quoted strings of at most 255 characters, in parentheses when several.
    entry = re.search(rf"^{re.escape(RSA_NAME)}\. IN TXT \((.*?)\)$", shown.stdout, re.M | re.S)
    assert entry, shown.stdout
    strings = re.findall(r'"([^"]*)"', entry[1])
    assert len(strings) == 2 and max(map(len, strings)) <= 255
    assert "".join(strings) == rsa_record["value"]
    assert f'{ED_NAME}. IN TXT "{ed_record["value"]}"' in shown.stdout.splitlines()
    # The plain values, each on a line of its own, for web DNS consoles.
    assert {rsa_record["value"], ed_record["value"]} <= set(shown.stdout.splitlines())
    no_secret(keys, listed, shown)


def test_check_when_both_records_are_published(keys: Keys, tmp_path: Path) -> None:
    zone = Zone(keys.records())
    shown, listed = check_against(zone, keys, tmp_path), check_against(zone, keys, tmp_path, "--json")
    assert shown.returncode == 0 and listed.returncode == 0, shown.stderr
    assert shown.stdout.count(": matches") == 2 and not shown.stderr
    assert statuses(listed) == {f"{RSA_NAME}.": "matches", f"{ED_NAME}.": "matches"}
    no_secret(keys, shown, listed)


def other_rsa_record() -> str:
    public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


@pytest.mark.parametrize(
    ("published", "words"),
    [
        # The RSA record missing, the Ed25519 one of another key (not rotated yet).
        (
            {ED_NAME: "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="},
            ("no record", "published but different: another ed25519 key"),
        ),
        # The RSA key revoked; an RSA key published at the Ed25519 selector.
        (
            {RSA_NAME: "v=DKIM1; k=rsa; p=", ED_NAME: "{other_rsa}"},
            ("revoked", "published but different: a k=rsa key"),
        ),
        # Something else at the RSA selector; the Ed25519 one right.
        (
            {RSA_NAME: "v=spf1 -all", ED_NAME: "{ed}"},
            ("malformed", "matches"),
        ),
    ],
)
def test_check_names_what_is_wrong_with_each_record(
    keys: Keys, tmp_path: Path, published: dict[str, str], words: tuple[str, str]
) -> None:
    records = {
        name: value.format(other_rsa=other_rsa_record(), ed=keys.records()[ED_NAME])
        for name, value in published.items()
    }
    shown = check_against(Zone(records), keys, tmp_path)
    assert shown.returncode == 1
    said = shown.stdout + shown.stderr
    assert re.search(rf"^(error: )?rsa-sha256 {re.escape(RSA_NAME)}\.: {words[0]}", said, re.M), said
    assert re.search(rf"^(error: )?ed25519-sha256 {re.escape(ED_NAME)}\.: {words[1]}", said, re.M), said
    assert "Traceback" not in shown.stderr


def test_no_dns_server_is_a_failed_lookup(keys: Keys, tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = dkim(keys, "check", "--nameserver", f"127.0.0.1:{port}", "--timeout", "0.5", cwd=tmp_path)
    assert result.returncode == 1
    failed = [line for line in result.stderr.splitlines() if "lookup failed" in line]
    assert len(failed) == 2 and all(f"127.0.0.1:{port}" in line for line in failed), result.stderr


def test_without_dkim_configured_exit_2_with_one_line(tmp_path: Path) -> None:
    for command in ("record", "check"):
        result = newsletter("dkim", command, cwd=tmp_path, env=clean_environment())
        assert result.returncode == 2
        assert result.stderr.strip() == (
            "error: dkim: not configured: set dkim.domain, dkim.selector and dkim.private_key_file"
        )


def test_a_bad_key_file_is_one_line_naming_its_setting(keys: Keys, tmp_path: Path) -> None:
    not_a_key = tmp_path / "ed25519.pem"
    not_a_key.write_text("not a key\n")
    env = clean_environment(NEWSLETTER_DKIM__ED25519_PRIVATE_KEY_FILE=str(not_a_key))
    for command in ("record", "check"):
        result = newsletter("dkim", command, "--config", str(keys.config), cwd=tmp_path, env=env)
        assert result.returncode == 2
        [line] = result.stderr.splitlines()
        assert line.startswith("error: dkim.ed25519_private_key_file: not a PEM private key"), line
