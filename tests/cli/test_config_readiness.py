"""`newsletter config check` names what production still needs, as warnings beside "OK"."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.process import clean_environment, newsletter

DKIM = """
[dkim]
selector = "news2026"
domain = "londondaily.co.uk"
private_key_file = "dkim.pem"
"""
PRODUCTION = f"""
[site]
base_url = "https://news.londondaily.co.uk"
postal_address = "10 Fleet Street, London EC4Y 1AA"

[database]
url = "postgresql+psycopg://newsletter@db.internal/newsletter"

[security]
secret_key = "k8Jq2Vn4Zp9Xw3Lr7Tb5Hc1M"
admin_token = "Qm6Hs1Cy8Ud4Ge2Wa9Fk0Pz"

[smtp]
host = "smtp.londondaily.co.uk"
port = 587
security = "starttls"
username = "mailer"
password = "s3cret-relay-pass"
from_address = "briefing@londondaily.co.uk"
{DKIM}
[bounces]
domain = "bounce.londondaily.co.uk"

[[feeds]]
url = "https://www.londondaily.co.uk/world/rss"
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "dkim.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return tmp_path


def check(folder: Path, config: str, *args: str) -> subprocess.CompletedProcess[str]:
    (folder / "newsletter.toml").write_text(config, encoding="utf-8")
    return newsletter("config", "check", *args, cwd=folder, env=clean_environment(COLUMNS="200"))


def warned(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """Each warning line by the key it names; it is OK all the same."""
    assert result.returncode == 0, result.stderr
    assert "# configuration OK" in result.stdout
    lines = result.stderr.splitlines()
    assert all(line.startswith("warning: ") for line in lines), lines
    keys = [line.removeprefix("warning: ").split(": ", 1)[0] for line in lines]
    assert len(set(keys)) == len(keys), keys
    return dict(zip(keys, lines, strict=True))


def with_(config: str, old: str, new: str) -> str:
    assert old in config
    return config.replace(old, new)


def test_a_production_config_gets_no_warning(folder: Path) -> None:
    assert warned(check(folder, PRODUCTION)) == {}
    assert json.loads(check(folder, PRODUCTION, "--json").stdout)["warnings"] == []


def test_built_in_defaults_name_everything_production_needs(folder: Path) -> None:
    found = warned(check(folder, ""))
    assert set(found) == {
        "security.secret_key",
        "security.admin_token",
        "site.base_url",
        "site.postal_address",
        "feeds",
        "smtp.from_address",
        "dkim",
        "bounces",
    }
    assert "still the built-in default" in found["security.admin_token"]
    assert "http://localhost:8000 is this machine only" in found["site.base_url"]
    assert "none configured" in found["feeds"]
    assert "bounces.domain" in found["bounces"] and "[bounces.mailbox]" in found["bounces"]
    as_json = json.loads(check(folder, "", "--json").stdout)
    assert len(as_json["warnings"]) == len(found)


@pytest.mark.parametrize(
    ("old", "new", "key", "said"),
    [
        ('base_url = "https://news.londondaily.co.uk"', 'base_url = "http://127.0.0.1:8000"', "site.base_url",
         "is this machine only"),
        ('postal_address = "10 Fleet Street, London EC4Y 1AA"', "", "site.postal_address",
         "built-in example"),
        ('[[feeds]]\nurl = "https://www.londondaily.co.uk/world/rss"', "", "feeds", "none configured"),
        ('from_address = "briefing@londondaily.co.uk"', 'from_address = "news@mail.example.com"',
         "smtp.from_address", "reserved domain"),
        (DKIM, "", "dkim", "not set"),
    ],
)  # fmt: skip
def test_each_missing_setting_is_one_warning(folder: Path, old: str, new: str, key: str, said: str) -> None:
    found = warned(check(folder, with_(PRODUCTION, old, new)))
    assert list(found) == [key]
    assert said in found[key]


def test_weak_secrets_on_this_machine_only(folder: Path) -> None:
    local = with_(
        PRODUCTION, 'base_url = "https://news.londondaily.co.uk"', 'base_url = "http://localhost:8000"'
    )
    local = with_(local, 'admin_token = "Qm6Hs1Cy8Ud4Ge2Wa9Fk0Pz"', 'admin_token = "change-me"')
    found = warned(check(folder, local))
    assert set(found) == {"site.base_url", "security.admin_token"}
    assert "still the built-in default" in found["security.admin_token"]
    # Public, the same secret is refused outright (exposure), not warned of.
    public = with_(PRODUCTION, 'admin_token = "Qm6Hs1Cy8Ud4Ge2Wa9Fk0Pz"', 'admin_token = "change-me"')
    refused = check(folder, public)
    assert refused.returncode == 2 and "security.admin_token" in refused.stderr


def test_smtp_in_clear_or_unverified_to_another_host(folder: Path) -> None:
    clear = with_(PRODUCTION, 'security = "starttls"\nusername = "mailer"\npassword = "s3cret-relay-pass"\n',
                  'security = "none"\n')  # fmt: skip
    found = warned(check(folder, clear))
    assert list(found) == ["smtp.security"]
    assert '"none" to smtp.londondaily.co.uk' in found["smtp.security"]
    relays = (
        PRODUCTION + '\n[[smtp.relays]]\nname = "backup"\nhost = "mx2.mailhost.net"\nvalidate_certs = false\n'
    )
    found = warned(check(folder, relays))
    assert list(found) == ["smtp.relays[0].validate_certs"]
    assert "mx2.mailhost.net" in found["smtp.relays[0].validate_certs"]
    # To a relay on this machine (a local MTA), neither is a concern.
    local = with_(clear, 'host = "smtp.londondaily.co.uk"', 'host = "127.0.0.1"')
    assert warned(check(folder, local)) == {}


@pytest.mark.parametrize(
    "bounces",
    [
        '[bounces.mailbox]\nhost = "imap.londondaily.co.uk"\nusername = "bounces"\n',
        '[bounces.webhooks]\nses_topic_arns = ["arn:aws:sns:eu-west-1:123456789012:bounces"]\n',
    ],
)
def test_a_mailbox_or_a_webhook_hears_bounces_as_well_as_verp(folder: Path, bounces: str) -> None:
    config = with_(PRODUCTION, '[bounces]\ndomain = "bounce.londondaily.co.uk"\n', bounces)
    assert warned(check(folder, config)) == {}
