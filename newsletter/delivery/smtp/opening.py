"""Opening a connection: aiosmtplib connects, negotiates STARTTLS or TLS and logs in; what fails
is reported as facts (OpenFailure, the reply code, the setting involved)."""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass
from typing import cast

import aiosmtplib

from newsletter.config import SmtpConfig
from newsletter.delivery.smtp.errors import OpenFailure, SmtpUnavailable


@dataclass(frozen=True)
class Opened:
    """A connection ready for transactions, and what its server offered."""

    transport: asyncio.Transport
    offers: dict[str, str]  # the ESMTP extensions, with their parameters
    tls: str | None  # the TLS version and cipher, when over TLS


async def open_connection(config: SmtpConfig, key: str) -> Opened:
    """Connect, negotiate TLS and log in with aiosmtplib; SmtpUnavailable saying what failed
    (`key`: where the relay is configured, to name the setting at fault)."""
    client = aiosmtplib.SMTP(
        hostname=config.host,
        port=config.port,
        use_tls=config.security == "tls",
        start_tls=config.security == "starttls",
        validate_certs=config.validate_certs,
        cert_bundle=str(config.ca_file) if config.ca_file else None,
        timeout=config.timeout,
        local_hostname=config.helo_name or socket.getfqdn(),
    )
    try:
        await client.connect()
        if client.is_ehlo_or_helo_needed:
            await _greet(client)
        if config.username or config.password.get_secret_value():
            await _log_in(client, config.username, config.password.get_secret_value())
    except (TimeoutError, aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
        await _discard(client)
        raise _unavailable(exc, config, key) from None
    # An asyncio.Transport in spirit; uvloop's TCPTransport does not inherit from it.
    transport = cast(asyncio.Transport, client.transport)
    assert transport is not None
    ssl_object = transport.get_extra_info("ssl_object")
    tls = f"{ssl_object.version()} {ssl_object.cipher()[0]}" if ssl_object is not None else None
    return Opened(transport, dict(client.esmtp_extensions), tls)


async def _greet(client: aiosmtplib.SMTP) -> None:
    try:
        await client.ehlo()
    except aiosmtplib.SMTPHeloError:
        await client.helo()


async def _log_in(client: aiosmtplib.SMTP, username: str, password: str) -> None:
    """One login, with the first method both sides support: a wrong password must cost one
    failed login per connection (aiosmtplib's own login() tries every method in turn, and
    fail2ban and account lockouts count each)."""
    if not client.supports_extension("auth"):
        raise aiosmtplib.SMTPException("The SMTP AUTH extension is not supported by this server.")
    methods = client.supported_auth_methods
    if not methods:
        raise aiosmtplib.SMTPException("No suitable authentication method found.")
    await getattr(client, f"auth_{methods[0].replace('-', '')}")(username, password)


async def _discard(client: aiosmtplib.SMTP) -> None:
    """Drop a connection that could not be set up, its socket included (a graceful TLS close
    would leave the socket open until a handshake that may never come)."""
    transport = cast(asyncio.Transport | None, client.transport)
    if transport is not None:
        transport.abort()
    client.close()
    await asyncio.sleep(0)  # the socket closes on the loop's next turn


def _unavailable(exc: BaseException, config: SmtpConfig, key: str) -> SmtpUnavailable:
    """What failed while connecting, as the facts delivery.decisions needs."""
    causes = _chain(exc)
    verify = next((c for c in causes if isinstance(c, ssl.SSLCertVerificationError)), None)
    if verify is not None:
        return SmtpUnavailable(
            f"{config.host}'s certificate was rejected ({verify.verify_message or verify}); use a "
            f"certificate the system trusts, name its CA in {key}.ca_file, or turn validate_certs off",
            failure=OpenFailure.CERTIFICATE_REJECTED,
            setting=f"{key}.validate_certs",
        )
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return SmtpUnavailable(
            f"{config.host} refused the login of {config.username!r}: {exc.code} {exc.message}",
            failure=OpenFailure.LOGIN_REFUSED,
            code=exc.code,
            setting=f"{key}.password",
        )
    text = str(exc)
    if "STARTTLS extension not supported" in text:
        return SmtpUnavailable(
            f"{config.host} does not offer STARTTLS",
            failure=OpenFailure.NO_STARTTLS,
            setting=f"{key}.security",
        )
    if "No suitable authentication method" in text or "AUTH extension not supported" in text:
        return SmtpUnavailable(
            f"{config.host} offers no way to log in: {text}",
            failure=OpenFailure.NO_LOGIN,
            setting=f"{key}.username",
        )
    code = exc.code if isinstance(exc, aiosmtplib.SMTPResponseException) else None
    return SmtpUnavailable(_describe(exc), code=code)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


UNREACHABLE = (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPConnectTimeoutError, ConnectionRefusedError)


def _describe(exc: BaseException) -> str:
    if isinstance(
        exc, aiosmtplib.SMTPConnectError | aiosmtplib.SMTPConnectTimeoutError | ConnectionRefusedError
    ):
        return f"unreachable: {exc}"
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
