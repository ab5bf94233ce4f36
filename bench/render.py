"""Personalised, fully serialised digest messages per second on one core.

    python -m bench.render [--quick]

Same template, the ~10 sample London Daily articles, distinct recipients; every approach
ends with the bytes an SMTP client would send. Ratios are taken within one run, since these
machines are noisy.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from newsletter.config import NewsletterConfig, Settings, load_settings
from newsletter.editions.samples import sample_articles
from newsletter.personal.recipients import PersonalMail
from newsletter.personal.tokens import LinkOwner
from newsletter.rendering import DigestRenderer, MessageTemplate, PersonalTokens, Recipient, RenderedEmail
from newsletter.rendering.dkim import DkimSigner
from newsletter.rendering.inline import inline_css

SENT_AT = datetime(2026, 3, 7, 7, 0, tzinfo=UTC)
NAIVE = "naive: Jinja2 + premailer + EmailMessage per recipient"
REPLACE = "rendered once, str.replace + EmailMessage per recipient"
OURS = "ours: MessageTemplate.build (pre-split bytes)"
SIGNED_RSA = "ours + DKIM signature (RSA-2048)"
SIGNED_ED25519 = "ours + DKIM signature (Ed25519)"
SIGNED_BOTH = "ours + two DKIM signatures (RSA-2048 and Ed25519)"
# Signed messages a second on one core the DKIM rows aim at (issue 18).
SIGNED_AIMS = {SIGNED_RSA: 3_000, SIGNED_ED25519: 8_000}
Build = Callable[[Recipient], bytes]


def settings_for(folder: Path, dkim: dict[str, Any] | None = None) -> Settings:
    config = folder / "bench.toml"
    config.write_text("")
    overrides: dict[str, Any] = {
        "site": {"base_url": "https://londondaily.example"},
        "database": {"url": f"sqlite:///{folder / 'unused.db'}"},
        "security": {"secret_key": "bench-secret-key-0123456789", "admin_token": "bench-admin-0123456789"},
        "smtp": {"list_unsubscribe_mailto": "leave@londondaily.example"},
        "newsletters": [{"id": "daily", "name": "The Daily Briefing", "max_articles": 10}],
    }
    if dkim is not None:
        overrides["dkim"] = {"domain": "londondaily.example", **dkim}
    return load_settings(config, overrides=overrides)


def recipients(settings: Settings, count: int) -> list[Recipient]:
    personal = PersonalMail(settings)
    owners = [LinkOwner(n, f"{n:012X}") for n in range(count)]
    return [
        personal.digest(
            owner, f"reader{owner.subscriber_id}@readers.example", "daily", 1, owner.subscriber_id + 1
        )
        for owner in owners
    ]


def email_message(
    settings: Settings, newsletter: NewsletterConfig, subject: str, html: str, text: str, r: Recipient
) -> bytes:
    message = EmailMessage()
    message["From"] = formataddr((settings.smtp.from_name, settings.smtp.from_address))
    message["To"] = r.email
    message["Subject"] = subject
    message["Date"] = format_datetime(SENT_AT)
    message["Message-ID"] = r.message_id
    message["List-Id"] = f'"{newsletter.name}" <{newsletter.id}.londondaily.example>'
    message["List-Unsubscribe"] = f"<{r.fields['unsubscribe_url']}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(text, cte="quoted-printable")
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    return message.as_bytes()


def naive(
    settings: Settings, renderer: DigestRenderer, newsletter: NewsletterConfig, context: dict[str, Any]
) -> Build:
    """Jinja2 and premailer for every recipient, then EmailMessage."""
    page, plain = (
        renderer.environment.get_template("digest.html"),
        renderer.environment.get_template("digest.txt"),
    )

    def build(r: Recipient) -> bytes:
        values = {**context, **r.fields}
        html = inline_css(page.render(values))
        return email_message(settings, newsletter, context["subject"], html, plain.render(values), r)

    return build


def replace_then_email_message(
    settings: Settings, newsletter: NewsletterConfig, rendered: RenderedEmail
) -> Build:
    """Rendered and inlined once, str.replace of the tokens, then EmailMessage per recipient."""

    def build(r: Recipient) -> bytes:
        html, text = rendered.filled_html(r.fields), rendered.filled_text(r.fields)
        return email_message(settings, newsletter, rendered.subject, html, text, r)

    return build


def pre_split(settings: Settings, newsletter: NewsletterConfig, rendered: RenderedEmail) -> Build:
    template = MessageTemplate.digest(settings, newsletter, rendered, date=SENT_AT)
    return lambda r: template.build(r).data


def per_message(build: Build, people: list[Recipient], rounds: int) -> float:
    """Median seconds per message over `rounds` passes through `people`."""
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        for person in people:
            build(person)
        samples.append((time.perf_counter() - started) / len(people))
    return statistics.median(samples)


def keys_alone(folder: Path, dkim: dict[str, Any], rounds: int) -> float:
    """Signatures a second that the row's keys make by themselves (all its keys once a round):
    this CPU's ceiling for a signed row, whatever our code does around them."""
    keys = DkimSigner(settings_for(folder, dkim).dkim).keys
    digest = hashlib.sha256(b"London Daily").digest()
    started = time.perf_counter()
    for _ in range(rounds):
        for key in keys:
            key.sign(digest)
    return rounds / (time.perf_counter() - started)


def dkim_settings(folder: Path) -> dict[str, dict[str, Any]]:
    """[dkim] settings for each signed row, with an RSA-2048 and an Ed25519 key made now."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    files = {"rsa": folder / "rsa.pem", "ed25519": folder / "ed25519.pem"}
    for name, key in (("rsa", rsa_key), ("ed25519", ed25519.Ed25519PrivateKey.generate())):
        files[name].write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    rsa_part = {"selector": "bench", "private_key_file": str(files["rsa"])}
    ed25519_part = {"ed25519_selector": "bench-ed", "ed25519_private_key_file": str(files["ed25519"])}
    return {
        SIGNED_RSA: {"algorithms": ["rsa-sha256"], **rsa_part},
        SIGNED_ED25519: {"algorithms": ["ed25519-sha256"], **ed25519_part},
        SIGNED_BOTH: {"algorithms": ["rsa-sha256", "ed25519-sha256"], **rsa_part, **ed25519_part},
    }


@contextmanager
def one_core() -> Iterator[None]:
    """Pin this process to one CPU while measuring, then restore what it had."""
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def approaches(folder: Path, quick: bool) -> list[tuple[str, Build, int]]:
    """(name, build, how many recipients to time it on), naive first."""
    settings = settings_for(folder)
    newsletter = settings.newsletters[0]
    articles = sample_articles(limit=newsletter.max_articles)
    renderer = DigestRenderer(settings)
    context = renderer.digest_context(newsletter, SENT_AT.date(), articles, PersonalTokens.fresh())
    # render_digest's default (no "View in your browser" link): the naive page is `rendered`'s page.
    context["view_url"] = ""
    rendered = renderer.render_digest(newsletter, SENT_AT.date(), articles)
    chosen: list[tuple[str, Build, int]] = [
        (NAIVE, naive(settings, renderer, newsletter, context), 10 if quick else 40),
        (REPLACE, replace_then_email_message(settings, newsletter, rendered), 200 if quick else 1_000),
        (OURS, pre_split(settings, newsletter, rendered), 2_000 if quick else 20_000),
    ]
    for name, dkim in dkim_settings(folder).items():
        signed = settings_for(folder, dkim)
        chosen.append((name, pre_split(signed, newsletter, rendered), 500 if quick else 3_000))
    return chosen


def run(quick: bool) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp, one_core():
        folder = Path(tmp)
        chosen = approaches(folder, quick)
        people = recipients(settings_for(folder), max(count for _, _, count in chosen))
        size = len(chosen[2][1](people[0]))
        rates = {}
        for name, build, count in chosen:
            seconds = per_message(build, people[:count], rounds=3 if quick else 5)
            rates[name] = 1 / seconds
            rows.append({"approach": name, "us_per_message": round(seconds * 1e6, 1), "message_bytes": size})
        for name, dkim in dkim_settings(folder).items():
            row = next(row for row in rows if row["approach"] == name)
            row["keys_alone_per_s"] = round(keys_alone(folder, dkim, 200 if quick else 1_000))
    for row in rows:
        rate = rates[str(row["approach"])]
        row["messages_per_s"] = round(rate)
        row["x_naive"] = round(rate / rates[NAIVE], 1)
    return rows


def print_table(rows: list[dict[str, object]]) -> None:
    print(f"{'approach':<58} {'µs/msg':>10} {'msg/s':>10} {'× naive':>9}")
    for row in rows:
        figures = f"{row['us_per_message']!s:>10} {row['messages_per_s']!s:>10} {row['x_naive']!s:>9}"
        print(f"{row['approach']!s:<58} {figures}")
    print(f"(one core; message size {rows[0]['message_bytes']} bytes; medians)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer recipients and rounds")
    print_table(run(parser.parse_args().quick))


if __name__ == "__main__":
    main()
