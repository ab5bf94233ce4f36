"""examples/production/newsletter.toml and env.example: what `newsletter config check` makes of
them, and the DKIM record README.md tells an operator to publish."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import dkim
import pytest

from newsletter.config import DkimConfig, Settings
from newsletter.rendering.dkim import DkimSigner
from tests.examples.production import (
    CONFIG,
    ENV_EXAMPLE,
    README,
    production_environment,
    read_env_file,
    write_dkim_key,
)
from tests.support.process import clean_environment, newsletter


def test_config_check_accepts_it_with_the_secrets_from_the_environment(tmp_path: Path) -> None:
    env = production_environment(write_dkim_key(tmp_path))
    checked = newsletter("config", "check", "--json", "--config", str(CONFIG), cwd=tmp_path, env=env)
    assert checked.returncode == 0, checked.stderr
    report = json.loads(checked.stdout)
    # Nothing to fix but the fictional domain itself (RFC 2606's .example), where it is checked.
    assert [w for w in report["warnings"] if "londondaily.example is at a reserved domain" not in w] == []
    config = report["config"]
    assert config["site"]["name"] == "London Daily"
    assert config["site"]["tagline"] == "Focus on the big picture."
    assert config["site"]["base_url"] == "https://news.londondaily.example"
    assert config["database"]["url"].startswith("postgresql+psycopg://")
    assert config["server"]["host"] == "127.0.0.1"
    assert config["server"]["forwarded_allow_ips"] == "127.0.0.1"
    assert (config["smtp"]["port"], config["smtp"]["security"]) == (587, "starttls")
    assert config["smtp"]["password"] == "****"  # it came from NEWSLETTER_SMTP__PASSWORD
    assert config["security"]["secret_key"] == config["security"]["admin_token"] == "****"
    assert (config["dkim"]["selector"], config["dkim"]["domain"]) == ("news2026", "londondaily.example")
    assert [feed["url"].startswith("https://") for feed in config["feeds"]] == [True] * 3
    assert [n["id"] for n in config["newsletters"]] == ["daily", "weekend"]


def test_the_file_keeps_no_secret() -> None:
    text = CONFIG.read_text(encoding="utf-8")
    assert not re.search(r"^\s*(password|secret_key|admin_token|metrics_token)\s*=", text, re.M)


def test_the_env_example_placeholders_keep_the_service_from_starting(tmp_path: Path) -> None:
    """Installed as it is, /etc/newsletter/env stops every command, naming the key to set."""
    env = clean_environment(
        **read_env_file(ENV_EXAMPLE), NEWSLETTER_DKIM__PRIVATE_KEY_FILE=str(write_dkim_key(tmp_path))
    )
    checked = newsletter("config", "check", "--config", str(CONFIG), cwd=tmp_path, env=env)
    assert checked.returncode == 2
    assert "security.secret_key" in checked.stderr
    assert "still the built-in default" in checked.stderr


def test_without_the_dkim_key_on_disk_config_check_names_it(tmp_path: Path) -> None:
    env = production_environment(write_dkim_key(tmp_path))
    del env["NEWSLETTER_DKIM__PRIVATE_KEY_FILE"]
    checked = newsletter("config", "check", "--config", str(CONFIG), cwd=tmp_path, env=env)
    assert checked.returncode == 2
    assert "dkim.private_key_file" in checked.stderr
    assert "/etc/newsletter/dkim/news2026.pem" in checked.stderr


def test_every_variable_the_env_example_names_is_a_setting() -> None:
    names = re.findall(r"^#?\s*(NEWSLETTER_[A-Z_]+)=", ENV_EXAMPLE.read_text(encoding="utf-8"), re.M)
    assert len(names) >= 5
    for name in names:
        section, key = name.removeprefix("NEWSLETTER_").lower().split("__")
        model = Settings.model_fields[section].annotation
        assert model is not None and key in model.model_fields, name


OPENSSL = shutil.which("openssl")


@pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed: sudo apt-get install openssl")
def test_the_dkim_keys_and_records_the_readme_makes_verify_our_signatures(tmp_path: Path) -> None:
    """The keys made with README.md's commands and the records `newsletter dkim record` prints
    for them: newsletter signs with the keys, and a receiver checking against the records
    (dkimpy, as a receiving server would) passes, for both signatures."""
    readme = README.read_text(encoding="utf-8")
    make_rsa = "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out {key}"
    make_ed25519 = "openssl genpkey -algorithm ED25519 -out {key}"
    assert make_rsa.format(key="/etc/newsletter/dkim/news2026.pem") in readme
    assert make_ed25519.format(key="/etc/newsletter/dkim/news2026e.pem") in readme
    assert "nl dkim record" in readme and "nl dkim check" in readme
    keys = {"rsa": tmp_path / "news2026.pem", "ed25519": tmp_path / "news2026e.pem"}
    for command, key in ((make_rsa, keys["rsa"]), (make_ed25519, keys["ed25519"])):
        subprocess.run(command.format(key=key), shell=True, check=True, capture_output=True)
    config: dict[str, str] = {
        "domain": "londondaily.example",
        "algorithms": '["rsa-sha256", "ed25519-sha256"]',
        "selector": "news2026",
        "private_key_file": str(keys["rsa"]),
        "ed25519_selector": "news2026e",
        "ed25519_private_key_file": str(keys["ed25519"]),
    }
    env = clean_environment(**{f"NEWSLETTER_DKIM__{key.upper()}": value for key, value in config.items()})
    printed = newsletter("dkim", "record", "--json", cwd=tmp_path, env=env)
    assert printed.returncode == 0, printed.stderr
    records = {row["name"].rstrip(".").encode(): row["value"].encode() for row in json.loads(printed.stdout)}
    assert set(records) == {
        b"news2026._domainkey.londondaily.example",
        b"news2026e._domainkey.londondaily.example",
    }

    message = (
        b"From: London Daily <briefing@londondaily.example>\r\nTo: reader@example.com\r\n"
        b"Subject: The Daily Briefing\r\n\r\nThe day's essential stories.\r\n"
    )
    settings = config | {"algorithms": json.loads(config["algorithms"])}
    signed = DkimSigner(DkimConfig.model_validate(settings)).sign(message) + message

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return records.get(name.rstrip(b"."))

    checker = dkim.DKIM(signed)
    assert checker.verify(idx=0, dnsfunc=lookup) and checker.verify(idx=1, dnsfunc=lookup)
