"""DKIM signatures with dkimpy (RSA-SHA256, relaxed/relaxed), the key read once."""

from __future__ import annotations

from collections.abc import Sequence

import dkim
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from newsletter.config import DkimConfig
from newsletter.errors import ConfigError

KEY_SETTING = "dkim.private_key_file"


class DkimSigner:
    def __init__(self, config: DkimConfig) -> None:
        if config.private_key_file is None:
            raise ConfigError("dkim.private_key_file: not set", setting=KEY_SETTING)
        try:
            key = config.private_key_file.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"dkim.private_key_file: unreadable: {exc.strerror}", setting=KEY_SETTING
            ) from None
        key = key.replace(b"\r\n", b"\n")
        _check_rsa(key)
        self._key = key
        self._selector = config.selector.encode("ascii")
        self._domain = config.domain.encode("idna")

    def sign(self, message: bytes, headers: Sequence[bytes]) -> bytes:
        """The DKIM-Signature header line (CRLF-terminated) to put before `message`."""
        try:
            signature: bytes = dkim.sign(
                message,
                self._selector,
                self._domain,
                self._key,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=list(headers),
            )
        except dkim.DKIMException as exc:
            # The key parsed but cannot sign (another algorithm): no message can be signed.
            raise ConfigError(
                f"dkim.private_key_file: cannot sign with it: {exc}", setting=KEY_SETTING
            ) from None
        return signature


def _check_rsa(pem: bytes) -> None:
    """A readable, unencrypted PEM RSA private key, or ConfigError saying what it is instead."""
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError(
            "dkim.private_key_file: not a PEM private key (PKCS#1 or PKCS#8, unencrypted)",
            setting=KEY_SETTING,
        ) from None
    if not isinstance(key, RSAPrivateKey):
        kind = type(key).__name__.removeprefix("_").removesuffix("PrivateKey") or "another"
        raise ConfigError(f"dkim.private_key_file: an {kind} key; RSA is needed", setting=KEY_SETTING)


def check_key(config: DkimConfig) -> None:
    """Read and parse the key now, when signing is configured: a bad one stops the command at
    once with one line naming dkim.private_key_file (ConfigError), instead of every message."""
    if config.enabled:
        DkimSigner(config)
