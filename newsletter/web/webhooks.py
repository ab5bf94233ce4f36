"""`POST /webhooks/{ses,postmark,sendgrid,mailgun}`: providers' bounce and complaint events, each
request authenticated its provider's way, each event handed to the one bounce recorder.

A provider left unconfigured answers 404; a body that is not the provider's JSON, 400; wrong
credentials, 401 (Postmark); a signature that does not verify, a stale or replayed request, a
topic or certificate address not allowed, 403; any other event type, 200 and nothing done.
Nothing reaches the database before the request is authenticated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from newsletter.bounces.incoming import BounceSource, Incoming
from newsletter.bounces.recorder import BounceRecorder
from newsletter.bounces.webhooks import amazon_ses, mailgun, postmark, sendgrid, sns
from newsletter.bounces.webhooks.certificates import Certificates
from newsletter.bounces.webhooks.errors import Malformed, Unauthenticated, WebhookError
from newsletter.bounces.webhooks.window import SeenTokens
from newsletter.context import AppContext
from newsletter.database.models import utcnow
from newsletter.errors import InvalidInput
from newsletter.logs import get_logger
from newsletter.web.bodies import decode_json
from newsletter.web.deps import context_of
from newsletter.web.security import SECURITY_HEADERS

log = get_logger(__name__)

PREFIX = "/webhooks"
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "accepted: how many bounces and complaints it carried, how many were new"},
    400: {"description": "the body is not this provider's JSON"},
    403: {"description": "the signature does not verify, or the request is stale or replayed"},
    404: {"description": "this provider is not configured (bounces.webhooks)"},
    503: {"description": "the database, or SNS's certificate, is unreachable: retry"},
}

router = APIRouter(prefix=PREFIX, tags=["webhooks"], responses=_RESPONSES)


class Webhooks:
    """What the routes share for the app's life: one recorder, SNS's certificates, Mailgun's
    tokens seen."""

    def __init__(self, context: AppContext) -> None:
        self.config = context.settings.bounces.webhooks
        self.recorder = BounceRecorder(context)
        self.certificates = Certificates(self.config.sns_ca_file)
        self.sns = sns.SnsChecks(self.config, self.certificates)
        self.mailgun_tokens = SeenTokens(self.config.max_age_seconds)
        self.sendgrid_key = self.config.sendgrid_verification_key() if self.config.sendgrid_enabled else None


async def get_webhooks(request: Request) -> Webhooks:
    state = request.app.state
    webhooks: Webhooks | None = getattr(state, "webhooks", None)
    if webhooks is None:
        webhooks = state.webhooks = Webhooks(context_of(request))
    return webhooks


WebhooksDep = Annotated[Webhooks, Depends(get_webhooks)]


@router.post("/ses", summary="Amazon SES bounce and complaint notifications, through an SNS topic")
async def ses(request: Request, webhooks: WebhooksDep) -> JSONResponse:
    if not webhooks.config.ses_enabled:
        return _not_configured()
    try:
        message = sns.parse(await _json(request))
        await webhooks.sns.verify(message, utcnow())
        if message.type == sns.SUBSCRIPTION:
            await webhooks.sns.confirm(message)
            return _answer({"confirmed": True})
        found = (
            amazon_ses.events(message.message, message.message_id) if message.type == sns.NOTIFICATION else []
        )
    except WebhookError as exc:
        return _refused(BounceSource.SES, exc)
    return await _record(webhooks, BounceSource.SES, found)


@router.post("/postmark", summary="Postmark bounce and spam complaint webhooks (HTTP Basic)")
async def postmark_events(request: Request, webhooks: WebhooksDep) -> JSONResponse:
    if not webhooks.config.postmark_enabled:
        return _not_configured()
    try:
        postmark.check_credentials(webhooks.config, request.headers.get("authorization"))
        found = postmark.events(await _json(request))
    except WebhookError as exc:
        return _refused(BounceSource.POSTMARK, exc)
    return await _record(webhooks, BounceSource.POSTMARK, found)


@router.post("/sendgrid", summary="SendGrid's signed event webhook")
async def sendgrid_events(request: Request, webhooks: WebhooksDep) -> JSONResponse:
    if webhooks.sendgrid_key is None:
        return _not_configured()
    try:
        body = await request.body()
        sendgrid.check_signature(
            webhooks.sendgrid_key,
            request.headers.get(sendgrid.SIGNATURE_HEADER),
            request.headers.get(sendgrid.TIMESTAMP_HEADER),
            body,
            now=utcnow(),
            max_age_seconds=webhooks.config.max_age_seconds,
        )
        found = sendgrid.events(_decoded(body))
    except WebhookError as exc:
        return _refused(BounceSource.SENDGRID, exc)
    return await _record(webhooks, BounceSource.SENDGRID, found)


@router.post("/mailgun", summary="Mailgun's webhooks (failed and complained events)")
async def mailgun_events(request: Request, webhooks: WebhooksDep) -> JSONResponse:
    if not webhooks.config.mailgun_enabled:
        return _not_configured()
    now = utcnow()
    try:
        payload = mailgun.payload_of(await _json(request))
        token = mailgun.check_signature(webhooks.config, payload, now=now)
        found = mailgun.events(payload)
        webhooks.mailgun_tokens.claim(token, now)
    except WebhookError as exc:
        return _refused(BounceSource.MAILGUN, exc)
    return await _record(
        webhooks, BounceSource.MAILGUN, found, undo=lambda: webhooks.mailgun_tokens.release(token)
    )


async def _json(request: Request) -> object:
    return _decoded(await request.body())


def _decoded(body: bytes) -> object:
    try:
        return decode_json(body)
    except InvalidInput as exc:
        raise Malformed(str(exc)) from None


async def _record(
    webhooks: Webhooks, source: BounceSource, found: list[Incoming], undo: Callable[[], None] | None = None
) -> JSONResponse:
    counts = {"events": len(found), "recorded": 0, "duplicates": 0}
    try:
        for incoming in found:
            recorded = await webhooks.recorder.record(incoming)
            counts["recorded"] += int(recorded.outcome is not None)
            counts["duplicates"] += int(recorded.duplicate)
    except BaseException:
        if undo is not None:
            undo()  # not handled after all: the provider's retry must not look like a replay
        raise
    log.info(
        "webhook.received",
        provider=source.value,
        events=counts["events"],
        recorded=counts["recorded"],
        duplicates=counts["duplicates"],
    )
    return _answer(counts)


def _refused(source: BounceSource, exc: WebhookError) -> JSONResponse:
    log.warning("webhook.refused", provider=source.value, status=exc.status, reason=str(exc))
    headers = {"WWW-Authenticate": 'Basic realm="webhooks"'} if isinstance(exc, Unauthenticated) else {}
    return _answer({"detail": str(exc)}, exc.status, headers)


def _not_configured() -> JSONResponse:
    return _answer({"detail": "not found"}, 404)


def _answer(
    content: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(content, status, headers={**SECURITY_HEADERS, **(headers or {})})
