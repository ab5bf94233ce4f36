"""`newsletter smtp check` and `config check --connect` as subprocesses, against Debian's Postfix
(STARTTLS, SASL login through Dovecot): what a usable relay offers, and one line naming the
setting to fix when it is not usable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ADMIN_TOKEN, SECRET_KEY
from tests.support.mta import MailSystem, mail_system
from tests.support.ports import free_port
from tests.support.process import clean_environment, newsletter

pytestmark = pytest.mark.slow

USER, PASSWORD = "newsletter", "right-password"


@pytest.fixture
def mail() -> Iterator[MailSystem]:
    with mail_system({USER: PASSWORD}) as system:
        yield system


def environment(port: int, **smtp: str) -> dict[str, str]:
    """The environment of a `newsletter` process whose [smtp] is `smtp` on 127.0.0.1:`port`."""
    settings = {"host": "127.0.0.1", "port": str(port), "timeout": "30", **smtp}
    return clean_environment(
        NEWSLETTER_SECURITY__SECRET_KEY=SECRET_KEY,
        NEWSLETTER_SECURITY__ADMIN_TOKEN=ADMIN_TOKEN,
        COLUMNS="200",
        **{f"NEWSLETTER_SMTP__{name.upper()}": value for name, value in settings.items()},
    )


def submission(mail: MailSystem, **changes: str) -> dict[str, str]:
    """The environment for Postfix's submission port: STARTTLS against the test CA, logged in."""
    smtp = {
        "security": "starttls",
        "validate_certs": "true",
        "ca_file": str(mail.tls.ca),
        "username": USER,
        "password": PASSWORD,
    }
    return environment(mail.postfix.port, **(smtp | changes))


def checked(result: Any) -> dict[str, Any]:
    """The one relay of `smtp check --json`'s report."""
    [relay] = json.loads(result.stdout)["relays"]
    assert isinstance(relay, dict)
    return relay


def one_error(stderr: str) -> str:
    [line] = [line for line in stderr.splitlines() if line.startswith("error:")]
    return line


def test_a_usable_relay_reports_tls_login_and_offers(mail: MailSystem, tmp_path: Path) -> None:
    result = newsletter("smtp", "check", "--json", cwd=tmp_path, env=submission(mail))
    assert result.returncode == 0, result.stderr
    relay = checked(result)
    assert relay["ok"] is True and relay["error"] is None
    assert relay["server"] == f"127.0.0.1:{mail.postfix.port}" and relay["security"] == "starttls"
    assert relay["tls"].startswith("TLSv1.")
    assert relay["logged_in_as"] == USER
    offers = relay["offers"]
    assert int(offers["size"]) > 0
    assert {"pipelining", "8bitmime", "smtputf8", "auth"} <= set(offers)
    assert set(offers["auth"].split()) >= {"PLAIN"}


def test_a_wrong_password_is_one_error_naming_the_setting(mail: MailSystem, tmp_path: Path) -> None:
    env = submission(mail, password="wrong-password")
    result = newsletter("smtp", "check", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert "smtp.password" in one_error(result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    assert not checked(newsletter("smtp", "check", "--json", cwd=tmp_path, env=env))["ok"]


def test_an_untrusted_certificate_names_validate_certs(mail: MailSystem, tmp_path: Path) -> None:
    env = submission(mail)
    del env["NEWSLETTER_SMTP__CA_FILE"]
    result = newsletter("smtp", "check", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert "smtp.validate_certs" in one_error(result.stderr)
    # The password was never offered to a server the check did not trust.
    assert not [line for line in mail.postfix.log_lines() if "SASL" in line or "sasl_" in line]


def test_nothing_listening_is_unreachable(tmp_path: Path) -> None:
    port = free_port()
    result = newsletter("smtp", "check", cwd=tmp_path, env=environment(port, security="starttls"))
    assert result.returncode == 1
    error = one_error(result.stderr)
    assert f"127.0.0.1:{port}" in error and "unreachable" in error.lower()


def test_config_check_connect_fails_only_for_an_unusable_relay(mail: MailSystem, tmp_path: Path) -> None:
    usable = newsletter("config", "check", "--connect", cwd=tmp_path, env=submission(mail))
    assert usable.returncode == 0, usable.stderr
    assert "logged in as newsletter" in usable.stdout and "wrong-password" not in usable.stdout
    refused = newsletter(
        "config", "check", "--connect", cwd=tmp_path, env=submission(mail, password="wrong-password")
    )
    assert refused.returncode == 1
    assert "smtp.password" in one_error(refused.stderr)
    assert "wrong-password" not in refused.stdout + refused.stderr
