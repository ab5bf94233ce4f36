"""SNS's signing certificates, fetched over HTTPS from the addresses allowed, once per address."""

from __future__ import annotations

import ssl
from collections import OrderedDict
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from newsletter.bounces.webhooks.errors import Forbidden, Unavailable
from newsletter.logs import get_logger

log = get_logger(__name__)

TIMEOUT_SECONDS = 5.0
MAX_PEM_BYTES = 64 * 1024
MAX_CACHED = 32  # SNS signs with one certificate per region for years: a few are plenty


class Certificates:
    """The public key of each SigningCertURL, kept for the process's life once fetched.

    Only a URL the caller has already matched against `sns_certificate_url` is asked for;
    failures are not kept, so a certificate that could not be fetched is tried again next time.
    """

    def __init__(self, ca_file: Path | None, timeout: float = TIMEOUT_SECONDS) -> None:
        self.ca_file = ca_file
        self.timeout = timeout
        self._keys: OrderedDict[str, rsa.RSAPublicKey] = OrderedDict()
        self._tls: ssl.SSLContext | None = None

    async def key(self, url: str) -> rsa.RSAPublicKey:
        cached = self._keys.get(url)
        if cached is not None:
            return cached
        key = _rsa_key(await self._fetch(url))
        self._keys[url] = key
        while len(self._keys) > MAX_CACHED:
            self._keys.popitem(last=False)
        return key

    def client(self) -> httpx.AsyncClient:
        """A client that trusts `ca_file` (else the system's CAs) and follows no redirect."""
        return httpx.AsyncClient(verify=self._context(), timeout=self.timeout, follow_redirects=False)

    async def _fetch(self, url: str) -> bytes:
        try:
            async with self.client() as client, client.stream("GET", url) as response:
                if response.status_code != 200:
                    log.warning("webhook.sns_certificate_refused", status=response.status_code)
                    if response.status_code >= 500:
                        raise Unavailable("SNS's signing certificate could not be fetched; try again")
                    raise Forbidden("SigningCertURL: no certificate there")
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_PEM_BYTES:
                        raise Forbidden("SigningCertURL: not a certificate (too large)")
                return body
        except httpx.HTTPError as exc:
            log.warning("webhook.sns_certificate_unavailable", error=type(exc).__name__)
            raise Unavailable("SNS's signing certificate could not be fetched; try again") from None

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            try:
                self._tls = ssl.create_default_context(cafile=self.ca_file)
            except (OSError, ssl.SSLError) as exc:
                log.error("webhook.sns_ca_file_unreadable", error=type(exc).__name__)
                raise Unavailable("bounces.webhooks.sns_ca_file cannot be read") from None
        return self._tls


def _rsa_key(pem: bytes) -> rsa.RSAPublicKey:
    try:
        key = x509.load_pem_x509_certificate(pem).public_key()
    except ValueError:
        raise Forbidden("SigningCertURL: not a PEM certificate") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise Forbidden("SigningCertURL: not an RSA certificate")
    return key
