"""The reader's pages: signup, confirm, unsubscribe (one button, and RFC 8058 one-click), preferences."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from newsletter.config import NewsletterConfig, Settings
from newsletter.database.engine import READ_ONLY
from newsletter.database.ratelimit import SharedRateLimiter
from newsletter.errors import InvalidInput, InvalidToken
from newsletter.personal.links import Links
from newsletter.personal.tokens import LinkNoLongerValid, Purpose, TokenData, TokenExpired
from newsletter.resources import template_dirs
from newsletter.states import SubscriberStatus
from newsletter.subscriptions import service
from newsletter.subscriptions.audit import Actor
from newsletter.subscriptions.choices import COMMON_ZONES
from newsletter.subscriptions.forms import (
    form_fields,
    honeypot_filled,
    parse_preferences,
    parse_signup,
)
from newsletter.subscriptions.intake import count_and_store
from newsletter.subscriptions.signup import SignupRequest
from newsletter.web.bodies import decode_json, decode_urlencoded
from newsletter.web.deps import ContextDep
from newsletter.web.security import SECURITY_HEADERS

# The signup page and the public archive may be crawled; the pages behind emailed links and
# the API may not. Disallow
# lines first: some parsers take the first rule that matches, others the longest.
ROBOTS_TXT = """\
User-agent: *
Disallow: /confirm/
Disallow: /unsubscribe/
Disallow: /preferences/
Disallow: /api/
Allow: /
"""
FIELD_LABELS = {
    "email": "Email address",
    "newsletters": "Newsletters",
    "sections": "Sections",
    "timezone": "Timezone",
    "body": "Form",
}

router = APIRouter(include_in_schema=False)
# Whom an unsubscribe link still acts for: an erased reader has nothing left to leave.
UNSUBSCRIBABLE = (
    SubscriberStatus.PENDING,
    SubscriberStatus.ACTIVE,
    SubscriberStatus.UNSUBSCRIBED,
    SubscriberStatus.BOUNCED,
)


class Pages:
    """The page templates (autoescaped Jinja2, an operator's folder first), the links and the
    signup rate limiter: built once per app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.env = Environment(
            loader=FileSystemLoader([str(d) for d in template_dirs("web", settings.site.templates_dir)]),
            autoescape=select_autoescape(disabled_extensions=("js",), default=True),
            undefined=StrictUndefined,
            auto_reload=False,
        )
        self.env.globals.update(site=settings.site, double_opt_in=settings.subscriptions.double_opt_in)
        self.links = Links(settings)
        self.limiter = SharedRateLimiter(
            "signup",
            settings.subscriptions.rate_limit_per_minute,
            key=settings.security.secret_key.get_secret_value(),
        )

    def render(
        self, name: str, status_code: int = 200, headers: dict[str, str] | None = None, **data: Any
    ) -> HTMLResponse:
        html = self.env.get_template(name).render(**data)
        return HTMLResponse(html, status_code, headers={**SECURITY_HEADERS, **(headers or {})})

    def error(self, status_code: int, title: str, message: str, **data: Any) -> HTMLResponse:
        data.setdefault("offer_signup", False)
        return self.render("error.html", status_code, title=title, message=message, **data)

    def bad_link(self, exc: InvalidToken) -> HTMLResponse:
        if isinstance(exc, TokenExpired) and exc.purpose is Purpose.PREFERENCES:
            days = self.settings.security.preferences_max_age_days
            message = (
                f"Links to your preferences last {days} days. Use the one in the latest email "
                "you had from us: each one carries a fresh link."
            )
            return self.error(400, "This link has expired", message)
        if isinstance(exc, TokenExpired):
            days = self.settings.security.confirm_max_age_days
            message = f"Confirmation links last {days} days. Sign up again and we will send you a fresh one."
            return self.error(400, "This link has expired", message, offer_signup=True)
        if isinstance(exc, LinkNoLongerValid):
            message = (
                "It belongs to a subscription that has since changed. You can sign up again at any time."
            )
            return self.error(400, "This link is no longer valid", message, offer_signup=True)
        message = "It may have been cut short or mistyped: open it straight from the email."
        return self.error(400, "This link is not valid", message)

    def verify(self, purpose: Purpose, token: str) -> TokenData:
        return self.links.signer.verify(purpose, token)

    def signup_form(
        self, status_code: int = 200, error: InvalidInput | None = None, values: Any = None
    ) -> HTMLResponse:
        newsletters = self.settings.newsletters
        sections: list[str] = []
        for newsletter in newsletters:
            sections += [s for s in self.settings.sections_of(newsletter) if s not in sections]
        shown = {"email": "", "newsletters": [newsletters[0].id], "sections": [], "timezone": ""}
        shown.update(values or {})
        return self.render(
            "signup.html", status_code, newsletters=newsletters, sections=sections, values=shown,
            error=_described(error) if error else None,
        )  # fmt: skip


async def get_pages(request: Request) -> Pages:
    pages: Pages = request.app.state.pages
    return pages


PagesDep = Annotated[Pages, Depends(get_pages)]


def _described(error: InvalidInput) -> dict[str, str]:
    base = error.field.split("[", 1)[0].split(":", 1)[0]
    return {"field": base, "label": FIELD_LABELS.get(base, error.field), "message": error.message}


def _actor(request: Request) -> Actor:
    return Actor.web(request.client.host if request.client else None, request.headers.get("user-agent"))


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _own_path(request: Request, route: str, token: str) -> str:
    """A form's action: the path of the route it posts to, never a URL from the Host header."""
    return str(request.app.url_path_for(route, token=quote(token, safe="")))


@router.get("/", response_class=HTMLResponse)
async def signup_page(pages: PagesDep) -> HTMLResponse:
    return pages.signup_form()


@router.get("/assets/timezone.js")
async def timezone_script(pages: PagesDep) -> Response:
    script = pages.env.get_template("timezone.js").render()
    headers = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
    return Response(script, media_type="text/javascript", headers=headers)


@router.get("/robots.txt")
async def robots(pages: PagesDep) -> PlainTextResponse:
    headers = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}
    sitemap = f"Sitemap: {pages.settings.site.base_url}/sitemap.xml\n"
    return PlainTextResponse(f"{ROBOTS_TXT}\n{sitemap}", headers=headers)


@router.post("/subscribe")
async def subscribe(request: Request, pages: PagesDep, context: ContextDep) -> Response:
    """Form or JSON; the same answer for a new, a pending and an active address."""
    wants_json = _media_type(request) == "application/json"
    client = request.client.host if request.client else "unknown"
    data: dict[str, object] = {}
    problem: InvalidInput | None = None
    signup_request: SignupRequest | None = None
    try:
        data = await _signup_data(request, wants_json)
        if not honeypot_filled(data):
            signup_request = await parse_signup(pages.settings, data)
    except InvalidInput as exc:
        problem = exc
    retry_after = await count_and_store(context, pages.limiter, client, signup_request, _actor(request))
    if retry_after is not None:
        return _too_many(pages, wants_json, retry_after)
    if problem is not None:
        if wants_json:
            return JSONResponse({"detail": str(problem), "field": problem.field}, 422)
        return pages.signup_form(422, problem, _echo(data))
    return _accepted(pages, wants_json)


def _too_many(pages: Pages, wants_json: bool, retry_after: int) -> Response:
    message = f"too many signups from your network; try again in {retry_after} seconds"
    headers = {"Retry-After": str(retry_after)}
    if wants_json:
        return JSONResponse({"detail": message}, 429, headers=headers)
    return pages.error(429, "Please wait a moment", message.capitalize() + ".", headers=headers)


async def _signup_data(request: Request, wants_json: bool) -> dict[str, object]:
    body = await request.body()
    if wants_json:
        payload = decode_json(body)
        if not isinstance(payload, dict):
            raise InvalidInput("body", "must be a JSON object")
        return payload
    if _media_type(request) not in ("application/x-www-form-urlencoded", ""):
        raise InvalidInput("body", "send application/x-www-form-urlencoded or application/json")
    return form_fields(decode_urlencoded(body))


def _echo(data: dict[str, object]) -> dict[str, object]:
    """What the reader typed, shown again (autoescaped) with the error."""
    echoed: dict[str, object] = {}
    if isinstance(data.get("email"), str):
        echoed["email"] = str(data["email"])[:320]
    for name in ("newsletters", "sections"):
        if isinstance(data.get(name), list):
            echoed[name] = data[name]
    return echoed


def _accepted(pages: Pages, wants_json: bool) -> Response:
    double_opt_in = pages.settings.subscriptions.double_opt_in
    if wants_json:
        return JSONResponse({"status": "pending" if double_opt_in else "subscribed"}, 202)
    return pages.render("thanks.html", confirm_days=pages.settings.security.confirm_max_age_days)


@router.get("/confirm/{token}", response_class=HTMLResponse)
async def confirm(token: str, request: Request, pages: PagesDep, context: ContextDep) -> HTMLResponse:
    try:
        data = pages.verify(Purpose.CONFIRM, token)
        async with context.db.session() as session, session.begin():
            confirmed = await service.confirm(session, link=data, actor=_actor(request))
    except InvalidToken as exc:
        return pages.bad_link(exc)
    return pages.render(
        "confirmed.html",
        already=confirmed.outcome is service.Confirmation.ALREADY_CONFIRMED,
        preferences_url=pages.links.preferences(confirmed.owner),
    )


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
async def unsubscribe_page(
    token: str, request: Request, pages: PagesDep, context: ContextDep
) -> HTMLResponse:
    """One button; a GET changes nothing, since mail scanners follow links."""
    try:
        data = pages.verify(Purpose.UNSUBSCRIBE, token)
        async with context.db.session() as session:
            await session.connection(execution_options=READ_ONLY)
            await service.link_holder(session, data, statuses=UNSUBSCRIBABLE)
    except InvalidToken as exc:
        return pages.bad_link(exc)
    return pages.render(
        "unsubscribe.html",
        newsletter=_newsletter(pages.settings, data.newsletter_id),
        action=_own_path(request, "unsubscribe", token),
    )


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
async def unsubscribe(token: str, request: Request, pages: PagesDep, context: ContextDep) -> HTMLResponse:
    """At once and idempotent; RFC 8058 one-click bodies need no cookie and no CSRF token."""
    try:
        data = pages.verify(Purpose.UNSUBSCRIBE, token)
    except InvalidToken as exc:
        return pages.bad_link(exc)
    one_click = _is_one_click(await request.body())
    try:
        async with context.db.session() as session, session.begin():
            await service.link_holder(session, data, statuses=UNSUBSCRIBABLE, lock=True)
            await service.unsubscribe(
                session,
                subscriber_id=data.subscriber_id,
                newsletter_id=data.newsletter_id,
                actor=_actor(request),
                one_click=one_click,
            )
    except InvalidToken as exc:
        return pages.bad_link(exc)
    return pages.render("unsubscribed.html", newsletter=_newsletter(pages.settings, data.newsletter_id))


def _is_one_click(body: bytes) -> bool:
    """RFC 8058's body, URL-encoded or (as in its example) multipart; recorded, never required."""
    return b"List-Unsubscribe=One-Click" in body or (
        b'name="List-Unsubscribe"' in body and b"One-Click" in body
    )


def _newsletter(settings: Settings, newsletter_id: str | None) -> NewsletterConfig | None:
    """The newsletter a link names, if it is still configured (a page for a removed one still
    answers, naming none)."""
    try:
        return settings.find_newsletter(newsletter_id) if newsletter_id else None
    except InvalidInput:
        return None


@router.get("/preferences/{token}", response_class=HTMLResponse)
async def preferences_page(
    token: str, request: Request, pages: PagesDep, context: ContextDep
) -> HTMLResponse:
    try:
        data = pages.verify(Purpose.PREFERENCES, token)
        async with context.db.session() as session:
            await session.connection(execution_options=READ_ONLY)
            subscriber, choices = await service.preferences_of(session, link=data)
    except InvalidToken as exc:
        return pages.bad_link(exc)
    action = _own_path(request, "save_preferences", token)
    return _preferences_form(pages, action, subscriber.email or "", choices, subscriber.timezone or "")


def _preferences_form(
    pages: Pages,
    action: str,
    email: str,
    chosen: dict[str, list[str]],
    timezone: str,
    status_code: int = 200,
    **data: Any,
) -> HTMLResponse:
    newsletters = [
        {"id": n.id, "name": n.name, "description": n.description, "sections": pages.settings.sections_of(n)}
        for n in pages.settings.newsletters
    ]
    data.setdefault("saved", False)
    data.setdefault("error", None)
    return pages.render(
        "preferences.html", status_code, action=action, email=email, newsletters=newsletters,
        chosen=chosen, timezone=timezone, zones=COMMON_ZONES, **data,
    )  # fmt: skip


@router.post("/preferences/{token}", response_class=HTMLResponse)
async def save_preferences(
    token: str, request: Request, pages: PagesDep, context: ContextDep
) -> HTMLResponse:
    action = _own_path(request, "save_preferences", token)
    try:
        data = pages.verify(Purpose.PREFERENCES, token)
        async with context.db.session() as session, session.begin():
            subscriber, before = await service.preferences_of(session, link=data, lock=True)
            email = subscriber.email or ""
            try:
                form = parse_preferences(pages.settings, decode_urlencoded(await request.body()))
            except InvalidInput as exc:
                return _preferences_form(
                    pages, action, email, before, subscriber.timezone or "", 422, error=_described(exc)
                )
            actor = _actor(request)
            if form.unsubscribe_all or not form.choices:
                await service.unsubscribe(
                    session, subscriber_id=data.subscriber_id, newsletter_id=None, actor=actor
                )
            else:
                await service.update_preferences(
                    session,
                    subscriber_id=data.subscriber_id,
                    choices=form.choices,
                    timezone=form.timezone,
                    actor=actor,
                )
    except InvalidToken as exc:
        return pages.bad_link(exc)
    if form.unsubscribe_all or not form.choices:
        return pages.render("unsubscribed.html", newsletter=None)
    return _preferences_form(pages, action, email, form.choices, form.timezone or "", saved=True)
