"""The one entry point: raw bytes that arrived at the bounce address in, a BounceReport out.

Evidence in order of trust: an RFC 3464 delivery-status part, an RFC 5965 feedback report (or
another complaint format), an Amazon SES notification, then the notice's own words, and only
for a message that is no bounce, the marks of an automatic reply.
"""

from __future__ import annotations

from email.message import Message
from email.utils import getaddresses

from newsletter.bounces import arf, dsn, heuristics, ses
from newsletter.bounces.autoreply import is_autoreply
from newsletter.bounces.original import Original, identifiers, returned_original
from newsletter.bounces.reading import Unreadable, header, parse, walk
from newsletter.bounces.report import BounceKind, BounceReport

NOTHING_FOUND = "no bounce, complaint or auto-reply found"


def classify(raw: bytes) -> BounceReport:
    """What the message is; never raises: what cannot be read is UNKNOWN, saying why."""
    try:
        return _classify(parse(raw))
    except Unreadable as error:
        return BounceReport(BounceKind.UNKNOWN, diagnostic=str(error))
    except Exception as error:  # a parser bug on hostile input must not stop the receiver
        return BounceReport(BounceKind.UNKNOWN, diagnostic=f"could not be read ({type(error).__name__})")


def _classify(message: Message) -> BounceReport:
    parts = walk(message)
    original_message = returned_original(parts)
    text = heuristics.all_text(parts)
    original = identifiers(original_message, text)
    notice, rest = heuristics.split_notice(parts)
    status_text = dsn.status_text(parts)
    notification = dsn.parse_notification(status_text) if status_text else None
    if notification is not None:
        return _from_notification(notification, original, message, notice)
    complaint = arf.complaint(message, parts, original_message)
    if complaint is not None:
        return _from_complaint(complaint, original)
    ses_json = ses.notification_in(text)
    if ses_json is not None:
        return ses.report_of(ses_json)
    notification = dsn.parse_notification(notice)  # DSN fields in a report whose MIME is broken
    if notification is not None:
        return _from_notification(notification, original, message, notice)
    if status_text is not None:
        return _from_empty_report(heuristics.read_notice(message, notice, rest), original, message)
    if heuristics.looks_like_bounce(message):
        return _from_notice(heuristics.read_notice(message, notice, rest), original, message)
    if is_autoreply(message):
        return BounceReport(BounceKind.AUTOREPLY, recipient=_from_address(message), **_ids(original))
    return BounceReport(BounceKind.UNKNOWN, diagnostic=NOTHING_FOUND, **_ids(original))


def _from_empty_report(notice: heuristics.Notice, original: Original, message: Message) -> BounceReport:
    """A delivery-status part without per-recipient fields: only the notice's words can name one."""
    if notice.recipient is None:
        reason = "a delivery status report without per-recipient fields"
        return BounceReport(BounceKind.UNKNOWN, diagnostic=reason, **_ids(original))
    return _from_notice(notice, original, message)


def _from_notification(
    notification: dsn.Notification, original: Original, message: Message, notice: str
) -> BounceReport:
    recipient = dsn.chosen(notification.recipients)
    ids = _ids(original)
    ids["original_sender"] = ids["original_sender"] or notification.envelope_sender or _addressee(message)
    return BounceReport(
        dsn.kind_of(recipient),
        recipient=recipient.recipient,
        status=recipient.status,
        diagnostic=recipient.diagnostic or heuristics.diagnostic(notice),
        **ids,
    )


def _from_complaint(complaint: arf.Complaint, original: Original) -> BounceReport:
    recipient = complaint.recipient or (
        dsn.bare_address(dsn.angle_address(original.to)) if original.to else None
    )
    ids = _ids(original)
    ids["original_sender"] = ids["original_sender"] or complaint.sender
    feedback_type = complaint.feedback_type
    return BounceReport(BounceKind.COMPLAINT, recipient=recipient, feedback_type=feedback_type, **ids)


def _from_notice(notice: heuristics.Notice, original: Original, message: Message) -> BounceReport:
    ids = _ids(original)
    ids["original_sender"] = ids["original_sender"] or _addressee(message)
    return BounceReport(
        notice.kind,
        recipient=notice.recipient,
        status=notice.status,
        diagnostic=notice.diagnostic,
        **ids,
    )


def _addressee(message: Message) -> str | None:
    """The report's own To: relays address a bounce to the original's envelope sender."""
    addresses = getaddresses([header(message, "To") or ""])
    return dsn.bare_address(addresses[0][1]) if len(addresses) == 1 else None


def _ids(original: Original) -> dict[str, str | None]:
    return {
        "original_message_id": original.message_id,
        "original_sender": original.sender,
        "delivery_header": original.delivery_header,
    }


def _from_address(message: Message) -> str | None:
    value = header(message, "From")
    return dsn.bare_address(dsn.angle_address(value)) if value else None
