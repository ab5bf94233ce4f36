"""Setup mistakes said in one line before anything is sent: a DKIM key that cannot sign (config
check, send, serve), a digest too big for Gmail (preview, dry run, config check), and addresses
at local domains (refused unless allowed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from newsletter.config import Settings
from newsletter.context import AppContext
from newsletter.errors import InvalidInput
from newsletter.subscriptions.addresses import normalise_address
from newsletter.subscriptions.forms import parse_signup
from tests.conftest import SettingsFactory
from tests.support.factories import add_articles, add_subscribers
from tests.support.process import environment_for, newsletter
from tests.support.smtp import SmtpServer


def ed25519_key(path: Path) -> Path:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(pem)
    return path


@pytest.mark.parametrize("content", ["ed25519", "garbage", "missing"])
async def test_a_dkim_key_that_cannot_sign_stops_every_command_in_one_line(
    settings: Settings, context: AppContext, smtp_server: SmtpServer, tmp_path: Path, content: str
) -> None:
    await add_articles(context, 2)
    await add_subscribers(context, 3)
    key = tmp_path / "dkim.pem"
    if content == "ed25519":
        ed25519_key(key)
    elif content == "garbage":
        key.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    dkim = {
        "NEWSLETTER_DKIM__SELECTOR": "news",
        "NEWSLETTER_DKIM__DOMAIN": "londondaily.example",
        "NEWSLETTER_DKIM__PRIVATE_KEY_FILE": str(key),
    }
    env = environment_for(settings, **dkim)
    for command in (["config", "check"], ["send"], ["preview", "--out", str(tmp_path / "p")], ["worker"]):
        result = newsletter(*command, cwd=tmp_path, env=env, timeout=60)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert result.stderr.count("\n") == 1 and "dkim.private_key_file" in result.stderr, command
        assert "Traceback" not in result.stdout + result.stderr
    assert smtp_server.handler.count() == 0


async def test_sizes_near_gmails_clipping_point_are_reported(
    settings: Settings, context: AppContext, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    await add_articles(context, 60)
    await add_subscribers(context, 2)
    big = environment_for(
        settings, NEWSLETTER_NEWSLETTERS='[{"id": "daily", "name": "Daily", "max_articles": 60}]'
    )
    preview = newsletter("preview", "--out", str(tmp_path / "big"), cwd=tmp_path, env=big)
    assert preview.returncode == 0, preview.stderr
    html = (tmp_path / "big.html").read_bytes()
    assert f"HTML: {len(html):,} bytes" in preview.stdout and len(html) > 90 * 1024
    assert "102 KB" in preview.stderr and "max_articles" in preview.stderr
    dry = newsletter("send", "--dry-run", cwd=tmp_path, env=big)
    assert dry.returncode == 0 and "102 KB" in dry.stderr
    dry_json = json.loads(newsletter("send", "--dry-run", "--json", cwd=tmp_path, env=big).stdout)
    assert dry_json[0]["html_bytes"] > 90 * 1024
    check = json.loads(newsletter("config", "check", "--json", cwd=tmp_path, env=big).stdout)
    assert any(w.startswith("newsletters[0].max_articles:") for w in check["warnings"])
    # The defaults (12 articles) are far from it.
    small = newsletter(
        "preview", "--out", str(tmp_path / "small"), cwd=tmp_path, env=environment_for(settings)
    )
    assert small.returncode == 0 and "102 KB" not in small.stderr
    quiet = json.loads(
        newsletter("config", "check", "--json", cwd=tmp_path, env=environment_for(settings)).stdout
    )
    assert not any("max_articles" in w for w in quiet["warnings"])
    assert smtp_server.handler.count() == 0


@pytest.mark.parametrize("address", ["reader@localhost", "ops@mailhost", "qa@box.test", "x@printer.local"])
def test_local_domains_only_when_allowed(address: str) -> None:
    with pytest.raises(InvalidInput, match="email"):
        normalise_address(address)
    allowed = normalise_address(address.upper(), local_domains=True)
    assert allowed.key == address and allowed.email.split("@")[1] == address.split("@")[1]


@pytest.mark.parametrize("address", ["a b@localhost", "@localhost", "x@-bad", "x@bad-.test", "x@a..test"])
def test_local_domains_still_need_a_valid_address(address: str) -> None:
    with pytest.raises(InvalidInput):
        normalise_address(address, local_domains=True)


async def test_signup_at_a_local_domain_follows_the_setting(make_settings: SettingsFactory) -> None:
    default = make_settings()
    with pytest.raises(InvalidInput, match="email"):
        await parse_signup(default, {"email": "reader@localhost"})
    local = make_settings(subscriptions={"allow_local_domains": True})
    request = await parse_signup(local, {"email": "reader@localhost"})
    assert request.address.email == "reader@localhost"
