"""The bounce mailbox scanner: reads the mailbox a relay's bounces and feedback-loop reports
land in (IMAP or POP3), hands each message to the recorder, and removes it only after the
recorder has returned, so a crash or a database outage loses nothing."""

from newsletter.bounces.mailbox.errors import MailboxUnavailable
from newsletter.bounces.mailbox.runner import run_scanner
from newsletter.bounces.mailbox.scanner import ScanReport, scan_once

__all__ = ["MailboxUnavailable", "ScanReport", "run_scanner", "scan_once"]
