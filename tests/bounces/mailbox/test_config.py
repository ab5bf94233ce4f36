"""[bounces.mailbox]: the ports by protocol and security, and what is refused at load."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from newsletter.config.bounces import MailboxConfig


@pytest.mark.parametrize(
    ("protocol", "security", "port"),
    [("imap", "tls", 993), ("imap", "starttls", 143), ("pop3", "tls", 995), ("pop3", "none", 110)],
)
def test_the_port_follows_the_protocol_and_security(protocol: str, security: str, port: int) -> None:
    assert MailboxConfig(protocol=protocol, security=security).effective_port == port  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"host": "mail.example"}, "username"),
        ({"host": "mail.example", "username": "u", "protocol": "pop3", "processed_folder": "Done"}, "POP3"),
        ({"folder": "Bo\u00eete"}, "printable ASCII"),
        ({"processed_folder": "Done\r\nA1 DELETE INBOX"}, "printable ASCII"),
    ],
    ids=["no-username", "pop3-folder", "non-ascii-folder", "injected-command"],
)
def test_incoherent_settings_are_refused(values: dict[str, str], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        MailboxConfig(**values)  # type: ignore[arg-type]


def test_an_imap_mailbox_may_move_what_it_handled() -> None:
    config = MailboxConfig(host="mail.example", username="bounces", processed_folder="Bounces/Done")
    assert (config.enabled, config.processed_folder) == (True, "Bounces/Done")
