"""Returned messages for the scanner: real ones from the corpus, delivered to a VERP address
(the Delivered-To header a delivery agent adds), and a DSN of our own digest."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

CORPUS = Path(__file__).parent.parent / "corpus"
HARD = "hard-postfix-02.eml"
COMPLAINT = "complaint-rfc5965-01.eml"
AUTOREPLY = "autoreply-generic-01.eml"
UNTAGGED_HARD = "hard-exim-02.eml"


def corpus(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def delivered_to(address: str, raw: bytes) -> bytes:
    """`raw` as a delivery agent stores it for `address` (Delivered-To on top), its own line endings kept."""
    newline = b"\r\n" if raw.split(b"\n", 1)[0].endswith(b"\r") else b"\n"
    return b"Delivered-To: " + address.encode() + newline + raw


def dsn_with_header(tag: str, *, recipient: str = "reader1@readers.example") -> bytes:
    """A Postfix-style hard bounce to our plain return path, its returned original carrying
    the X-Newsletter-Delivery header (the second way a report finds its delivery)."""
    original = EmailMessage()
    original["From"] = "London Daily <news@londondaily.example>"
    original["To"] = recipient
    original["Subject"] = "Focus on the big picture."
    original["X-Newsletter-Delivery"] = tag
    original.set_content("Today's stories.\n")
    report = EmailMessage()
    report["From"] = "MAILER-DAEMON@mx.readers.example (Mail Delivery System)"
    report["To"] = "news@londondaily.example"
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Auto-Submitted"] = "auto-replied"
    report.set_content(f"<{recipient}>: host mx.readers.example said: 550 5.1.1 User unknown\n")
    report.make_mixed()
    report.set_type("multipart/report")
    report.set_param("report-type", "delivery-status")
    status = EmailMessage()
    status["Content-Type"] = "message/delivery-status"
    fields = EmailMessage()
    fields["Reporting-MTA"] = "dns; mx.readers.example"
    recipient_fields = EmailMessage()
    recipient_fields["Final-Recipient"] = f"rfc822; {recipient}"
    recipient_fields["Action"] = "failed"
    recipient_fields["Status"] = "5.1.1"
    recipient_fields["Diagnostic-Code"] = "smtp; 550 5.1.1 User unknown"
    status.set_payload([fields, recipient_fields])
    report.attach(status)
    returned = EmailMessage()
    returned.set_content(original)
    report.attach(returned)
    return report.as_bytes()
