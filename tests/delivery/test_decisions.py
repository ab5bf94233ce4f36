"""Every row of delivery.decisions: what each outcome means for a message, a relay, an edition
and a reader."""

from __future__ import annotations

import pytest

from newsletter.config import DeliveryConfig
from newsletter.delivery import decisions
from newsletter.delivery.decisions import ConnectionAction, FaultScope
from newsletter.delivery.recheck import Refusal
from newsletter.delivery.smtp import OpenFailure, SmtpReply, SmtpUnavailable
from newsletter.delivery.work import Action
from newsletter.errors import ConfigError, RenderError

CONFIG = DeliveryConfig(retry_base_seconds=60, retry_max_seconds=3600, server_down_max_backoff=60)


@pytest.mark.parametrize(
    ("code", "stage", "attempts", "action", "hard"),
    [
        (250, "body", 1, Action.SENT, False),
        (251, "body", 1, Action.SENT, False),
        (250, "rcpt", 1, Action.FAILED, False),  # a 2xx that is not the body's is no delivery
        (421, "mail", 1, Action.RETRY, False),
        (450, "rcpt", 2, Action.RETRY, False),
        (451, "body", 4, Action.RETRY, False),
        (452, "rcpt", 5, Action.FAILED, False),  # the fifth temporary failure is the last
        (550, "rcpt", 1, Action.FAILED, True),
        (551, "rcpt", 1, Action.FAILED, True),
        (553, "rcpt", 1, Action.FAILED, True),
        (552, "rcpt", 1, Action.FAILED, False),  # mailbox full: permanent, but no bounce
        (550, "body", 1, Action.FAILED, False),  # content refused
        (554, "data", 1, Action.FAILED, False),
    ],
)
def test_replies(code: int, stage: str, attempts: int, action: Action, hard: bool) -> None:
    decision = decisions.after_reply(
        SmtpReply(code, "text", stage), attempts=attempts, max_attempts=5, config=CONFIG
    )
    assert (decision.action, decision.hard_bounce, decision.code) == (action, hard, code)
    assert decision.reply == f"{code} text"
    if action is Action.RETRY:
        assert decision.delay is not None and 30 * 2 ** (attempts - 1) <= decision.delay <= 3600
    else:
        assert decision.delay is None


@pytest.mark.parametrize(("attempts", "action"), [(1, Action.RETRY), (4, Action.RETRY), (5, Action.FAILED)])
def test_a_lost_connection_is_retried_until_the_last_attempt(attempts: int, action: Action) -> None:
    decision = decisions.after_lost_connection("reset", attempts=attempts, max_attempts=5, config=CONFIG)
    assert decision.action is action and decision.reply == "connection lost: reset" and decision.code is None


@pytest.mark.parametrize(
    ("code", "setting"),
    [(530, "smtp.relays[1].username"), (550, "smtp.from_address"), (553, "smtp.from_address")],
)
def test_a_refused_sender_is_the_relays_configuration_not_the_readers(code: int, setting: str) -> None:
    """A 5xx to MAIL FROM would refuse every reader alike: no message fails for it."""
    decision = decisions.after_reply(
        SmtpReply(code, "no", "mail"), attempts=1, max_attempts=5, config=CONFIG, relay="smtp.relays[1]"
    )
    assert decision.action is Action.RELEASED and decision.fault is not None
    assert (decision.fault.scope, decision.fault.setting) == (FaultScope.RELAY, setting)
    assert decision.fault.reason.startswith(setting) and "smtp.relays[1]" in decision.fault.reason


def test_a_temporary_refusal_of_the_sender_is_retried() -> None:
    decision = decisions.after_reply(
        SmtpReply(451, "later", "mail"), attempts=1, max_attempts=5, config=CONFIG
    )
    assert decision.action is Action.RETRY and decision.fault is None


@pytest.mark.parametrize(
    ("refusal", "action", "reply"),
    [
        (Refusal.EDITION_STOPPED, Action.RELEASED, ""),
        (Refusal.NOT_SUBSCRIBED, Action.SKIPPED, "no longer subscribed"),
        (Refusal.NOT_PENDING, Action.SKIPPED, "no longer pending"),
        (Refusal.LEFT_NEWSLETTER, Action.SKIPPED, "unsubscribed from this newsletter"),
    ],
)
def test_recheck_refusals(refusal: Refusal, action: Action, reply: str) -> None:
    decision = decisions.after_refusal(refusal)
    assert (decision.action, decision.reply) == (action, reply)


def test_a_lost_lease_hands_the_message_back_and_an_unsendable_address_fails() -> None:
    assert decisions.after_lost_lease().action is Action.RELEASED
    invalid = decisions.invalid_recipient("a space")
    assert invalid.action is Action.FAILED and invalid.reply == "invalid recipient: a space"
    assert decisions.smtputf8_unsupported().action is Action.FAILED


def test_what_cannot_be_built() -> None:
    def built(error: Exception, template: bool, edition: int | None) -> decisions.Decision:
        return decisions.after_build_failure(error, template=template, edition_id=edition, retry_seconds=60)

    mine = built(ValueError("bad address"), False, 7)
    assert mine.action is Action.FAILED and "bad address" in mine.reply and mine.fault is None
    edition = built(RenderError("template x"), True, 7)
    assert edition.action is Action.RELEASED and edition.delay is None
    assert edition.pause_edition is not None and "newsletter editions resume 7" in edition.pause_edition
    confirmation = built(RenderError("template y"), True, None)
    assert (confirmation.action, confirmation.delay, confirmation.pause_edition) == (
        Action.RELEASED,
        60,
        None,
    )
    unknown = built(KeyError("weekly"), True, 7)
    assert (
        unknown.pause_edition is not None and "newsletter 'weekly' is not configured" in unknown.pause_edition
    )
    # The configuration at fault, wherever it shows: nobody's message fails, all sending stops.
    for template in (True, False):
        key = built(ConfigError("dkim.private_key_file: x", setting="dkim.private_key_file"), template, 7)
        assert key.action is Action.RELEASED and key.pause_edition is None and key.fault is not None
        assert (key.fault.scope, key.fault.setting) == (FaultScope.SERVICE, "dkim.private_key_file")


LOGIN_REFUSED = OpenFailure.LOGIN_REFUSED


def unavailable(failure: OpenFailure, code: int | None = None, setting: str | None = None) -> SmtpUnavailable:
    return SmtpUnavailable("what happened", failure=failure, code=code, setting=setting)


@pytest.mark.parametrize(
    ("error", "action", "setting"),
    [
        (SmtpUnavailable("connection refused"), ConnectionAction.WAIT, None),
        (SmtpUnavailable("421 too busy", code=421), ConnectionAction.WAIT, None),
        (
            unavailable(OpenFailure.LOGIN_REFUSED, 535, "smtp.password"),
            ConnectionAction.STOP,
            "smtp.password",
        ),
        (
            unavailable(OpenFailure.LOGIN_REFUSED, 534, "smtp.password"),
            ConnectionAction.STOP,
            "smtp.password",
        ),
        # 454: "temporary authentication failure": the moment's, not the password's.
        (
            unavailable(OpenFailure.LOGIN_REFUSED, 454, "smtp.password"),
            ConnectionAction.WAIT,
            "smtp.password",
        ),
        (
            unavailable(OpenFailure.CERTIFICATE_REJECTED, None, "smtp.relays[0].validate_certs"),
            ConnectionAction.STOP,
            "smtp.relays[0].validate_certs",
        ),
        (unavailable(OpenFailure.NO_STARTTLS, None, "smtp.security"), ConnectionAction.STOP, "smtp.security"),
        (unavailable(OpenFailure.NO_LOGIN, None, "smtp.username"), ConnectionAction.STOP, "smtp.username"),
    ],
)
def test_connections_that_fail(error: SmtpUnavailable, action: ConnectionAction, setting: str | None) -> None:
    decision = decisions.after_open_failure(error)
    assert decision.action is action
    if action is ConnectionAction.STOP:
        assert decision.setting == setting and decision.reason == f"{setting}: what happened"
    else:
        assert decision.setting is None


def test_reconnect_pauses_grow_to_the_cap() -> None:
    pauses = [0.0]
    for _ in range(12):
        pauses.append(decisions.reconnect_pause(pauses[-1], CONFIG))
    assert pauses[1] == 0.25 and pauses[2] == 0.5 and pauses[-1] == 60
    assert pauses == sorted(pauses)


@pytest.mark.parametrize(
    ("sent", "failed", "total", "pauses"),
    [
        # More than 5 % of the first 1,000 attempts (of the whole edition when smaller) failed.
        (95, 5, 1000, False),
        (0, 50, 1000, False),
        (10, 51, 1000, True),  # it need not wait for all 1,000 to know
        (0, 6, 100, True),
        (0, 5, 100, False),
        (2000, 60, 5000, False),  # past the first 1,000 attempts it no longer pauses itself
        (0, 1, 1, True),  # a one-reader edition that failed
    ],
)
def test_the_pause_rule(sent: int, failed: int, total: int, pauses: bool) -> None:
    assert decisions.should_pause(sent=sent, failed=failed, total=total, rate=0.05, window=1000) is pauses


def test_the_pause_reason_names_the_counts_and_the_replies_behind_them() -> None:
    replies = [("550 5.7.1 blocked", 40), ("552 mailbox full", 11)]
    reason = decisions.pause_reason(9, sent=10, failed=51, rate=0.05, replies=replies)
    assert "51 of the first 61 attempts failed permanently (more than 5%)" in reason
    assert "most often: 40 × 550 5.7.1 blocked; 11 × 552 mailbox full" in reason
    assert "`newsletter editions show 9 --failures`" in reason and "`newsletter editions resume 9`" in reason


@pytest.mark.parametrize(("bounces", "threshold", "bounced"), [(1, 1, True), (1, 2, False), (3, 2, True)])
def test_the_bounce_rule(bounces: int, threshold: int, bounced: bool) -> None:
    assert decisions.becomes_bounced(bounces, threshold) is bounced


def test_a_test_copy_is_delivered_only_when_the_body_was_taken() -> None:
    assert decisions.delivered(SmtpReply(250, "ok", "body"))
    assert not decisions.delivered(SmtpReply(250, "ok", "rcpt"))
    assert not decisions.delivered(SmtpReply(550, "no", "rcpt"))


def test_retry_delays_double_with_jitter_and_stop_at_the_cap() -> None:
    for attempts in range(1, 12):
        delay = decisions.retry_delay(attempts, CONFIG)
        ceiling = min(3600, 60 * 2 ** (attempts - 1))
        assert ceiling / 2 <= delay <= ceiling
