"""DKIM signatures with dkimpy (RSA-SHA256, relaxed/relaxed), the key read once."""

from __future__ import annotations

from collections.abc import Sequence

import dkim
from dkim.crypto import UnparsableKeyError, parse_pem_private_key

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
        try:
            parse_pem_private_key(key)
        except UnparsableKeyError:
            raise ConfigError(
                "dkim.private_key_file: not a PEM RSA private key (PKCS#1 or PKCS#8)", setting=KEY_SETTING
            ) from None
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
