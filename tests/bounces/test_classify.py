"""classify() over the corpus of real bounces, complaints and auto-replies, a DSN built like
Postfix's, and input that is broken, hostile or huge."""

from __future__ import annotations

import time
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.bounces.classify import classify
from newsletter.bounces.report import BounceKind

CORPUS = Path(__file__).parent / "corpus"

# Files no reasonable rule classifies as index.tsv does, with why.
EXPECTED_FAILURES = {
    "hard-googleworkspace-01.eml": "Gmail refused the sender's misconfigured 'Send mail as' account: no code "
    "and nothing wrong with the address, so it reads as soft",
}


def corpus_rows() -> list[pytest.ParameterSet]:
    lines = (CORPUS / "index.tsv").read_text(encoding="utf-8").splitlines()[1:]
    rows = []
    for line in lines:
        name, kind, status, recipient = line.split("\t")[:4]
        marks = []
        if name in EXPECTED_FAILURES:
            marks.append(pytest.mark.xfail(strict=True, reason=EXPECTED_FAILURES[name]))
        rows.append(pytest.param(name, kind, status, recipient, id=name, marks=marks))
    return rows


@pytest.mark.parametrize(("name", "kind", "status", "recipient"), corpus_rows())
def test_corpus(name: str, kind: str, status: str, recipient: str) -> None:
    report = classify((CORPUS / name).read_bytes())
    assert report.kind == BounceKind(kind)
    if status:
        assert report.status == status
    if recipient:
        assert (report.recipient or "").lower() == recipient.lower()


def test_the_corpus_index_names_every_message() -> None:
    listed = {row.values[0] for row in corpus_rows()}
    assert listed == {path.name for path in CORPUS.glob("*.eml")}


def test_feedback_reports_carry_their_type() -> None:
    report = classify((CORPUS / "complaint-rfc5965-02.eml").read_bytes())
    assert report.feedback_type == "abuse"
    assert classify((CORPUS / "complaint-generic-02.eml").read_bytes()).feedback_type == "opt-out"


def test_an_ses_notification_is_read_from_its_json() -> None:
    report = classify((CORPUS / "hard-amazonses-04.eml").read_bytes())
    assert report.diagnostic == "550 5.1.1 user unknown"
    assert report.original_sender == "kijitora@neko.example.org"


def original_digest() -> EmailMessage:
    digest = EmailMessage()
    digest["Return-Path"] = "<bounce+AbC123@news.example.org>"
    digest["From"] = "Daily News <news@example.org>"
    digest["To"] = "reader@example.com"
    digest["Subject"] = "Today's digest"
    digest["Message-ID"] = "<edition-7.reader-42@news.example.org>"
    digest["X-Newsletter-Delivery"] = "7.42.Zm9v"
    digest.set_content("The news.\n")
    return digest


def postfix_dsn(*, action: str, status: str, reply: str) -> bytes:
    """A report shaped like Postfix's: notice, delivery-status fields, the returned original."""
    report = EmailMessage()
    report["From"] = "MAILER-DAEMON@mx.example.org (Mail Delivery System)"
    report["To"] = "bounce+AbC123@news.example.org"
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Auto-Submitted"] = "auto-replied"
    report.make_mixed()
    report.set_type("multipart/report")
    report.set_param("report-type", "delivery-status")
    notice = EmailMessage()
    notice.set_content(
        "This is the mail system at host mx.example.org.\n\n"
        f"<reader@example.com>: host mail.example.com[192.0.2.1] said: {reply}\n"
    )
    report.attach(notice)
    per_message = EmailMessage()
    per_message["Reporting-MTA"] = "dns; mx.example.org"
    per_message["X-Postfix-Sender"] = "rfc822; bounce+AbC123@news.example.org"
    per_recipient = EmailMessage()
    per_recipient["Final-Recipient"] = "rfc822; reader@Example.COM"
    per_recipient["Original-Recipient"] = "rfc822;reader@example.com"
    per_recipient["Action"] = action
    per_recipient["Status"] = status
    per_recipient["Diagnostic-Code"] = f"smtp; {reply}"
    fields = EmailMessage()
    fields["Content-Type"] = "message/delivery-status"
    fields.set_payload([per_message, per_recipient])
    report.attach(fields)
    returned = EmailMessage()
    returned.set_content(original_digest())
    report.attach(returned)
    return report.as_bytes()


def test_a_postfix_dsn_names_the_returned_original() -> None:
    reply = "550 5.1.1 <reader@example.com>: Recipient address rejected: User unknown"
    report = classify(postfix_dsn(action="failed", status="5.1.1", reply=reply))
    assert report.kind == BounceKind.HARD
    assert report.recipient == "reader@example.com"
    assert report.status == "5.1.1"
    assert report.diagnostic == reply
    assert report.original_message_id == "<edition-7.reader-42@news.example.org>"
    assert report.delivery_header == "7.42.Zm9v"
    assert report.original_sender == "bounce+AbC123@news.example.org"


@pytest.mark.parametrize(
    ("action", "status", "kind"),
    [
        ("failed", "4.2.2", BounceKind.SOFT),
        ("expired", "5.4.7", BounceKind.SOFT),
        ("delayed", "4.4.1", BounceKind.DELAYED),
        ("delivered", "2.0.0", BounceKind.UNKNOWN),
        ("relayed", "2.0.0", BounceKind.UNKNOWN),
    ],
)
def test_a_dsn_action_and_status_decide_the_kind(action: str, status: str, kind: BounceKind) -> None:
    report = classify(postfix_dsn(action=action, status=status, reply=f"{status[0]}00 {status} said so"))
    assert report.kind == kind


def test_the_original_is_found_in_a_report_that_quotes_it_as_text() -> None:
    digest = original_digest().as_string()
    notice = (
        "From: MAILER-DAEMON@mx.example.org\nTo: bounce+AbC123@news.example.org\nSubject: failure notice\n\n"
        "Hi. This is the qmail-send program at mx.example.org.\n\n<reader@example.com>:\n"
        "Sorry, no mailbox here by that name. (#5.1.1)\n\n--- Below this line is a copy of the message.\n\n"
    )
    report = classify((notice + digest).encode())
    assert (report.kind, report.recipient, report.status) == (BounceKind.HARD, "reader@example.com", "5.1.1")
    assert report.original_message_id == "<edition-7.reader-42@news.example.org>"
    assert report.delivery_header == "7.42.Zm9v"
    assert report.original_sender == "bounce+AbC123@news.example.org"


def test_an_empty_message_is_unknown() -> None:
    for raw in (b"", b"\r\n\r\n", b"   "):
        report = classify(raw)
        assert report.kind == BounceKind.UNKNOWN
        assert report.diagnostic == "empty message"


def test_every_truncation_of_a_dsn_is_read_without_raising() -> None:
    raw = (CORPUS / "hard-postfix-02.eml").read_bytes()
    for end in range(0, len(raw), 37):
        assert isinstance(classify(raw[:end]).kind, BounceKind)


def test_a_five_megabyte_attachment_is_read_quickly() -> None:
    raw = postfix_dsn(action="failed", status="5.1.1", reply="550 5.1.1 no such user")
    boundary = raw.split(b'boundary="', 1)[1].split(b'"', 1)[0]
    attachment = (
        b"--" + boundary + b"\r\nContent-Type: application/octet-stream\r\n\r\n" + b"QUJD" * 1_300_000
    )
    huge = raw.replace(b"--" + boundary + b"--", attachment + b"\r\n--" + boundary + b"--")
    assert len(huge) > 5_000_000
    started = time.perf_counter()
    report = classify(huge)
    assert time.perf_counter() - started < 5
    assert (report.kind, report.status) == (BounceKind.HARD, "5.1.1")


@pytest.mark.parametrize(
    "body",
    [
        b"a" * 1_000_000,  # a run an unbounded address pattern would backtrack over for ever
        b"<" * 1_000_000,
        b"5.1.1." * 200_000,
        b"\xff\xfe\x00" * 300_000,
    ],
    ids=["letters", "angles", "codes", "binary"],
)
def test_hostile_bodies_are_read_quickly(body: bytes) -> None:
    raw = b"From: MAILER-DAEMON@example.org\r\nSubject: Undelivered Mail\r\n\r\n" + body
    started = time.perf_counter()
    classify(raw)
    assert time.perf_counter() - started < 5


def test_deeply_nested_multiparts_are_read_without_raising() -> None:
    depth = 500
    opening = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (level, level)
        for level in range(depth)
    )
    report = classify(b"Subject: nest\r\n" + opening + b"Content-Type: text/plain\r\n\r\nx\r\n")
    assert isinstance(report.kind, BounceKind)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_random_bytes_never_raise(raw: bytes) -> None:
    assert isinstance(classify(raw).kind, BounceKind)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "Content-Type: multipart/report; boundary=x",
                "--x",
                "--x--",
                "Content-Type: message/delivery-status",
                "Content-Type: message/rfc822",
                "Action: failed",
                "Status: 5.1.1",
                "Final-Recipient: rfc822; a@b.c",
                "Content-Transfer-Encoding: base64",
                "",
                "=?utf-8?q?=ff?=",
                "Content-Type: message/feedback-report",
                '{"notificationType":"Bounce","bounce":[1]}',
            ]
        ),
        max_size=40,
    )
)
def test_random_mime_skeletons_never_raise(lines: list[str]) -> None:
    assert isinstance(classify("\r\n".join(lines).encode()).kind, BounceKind)
