"""HMAC under one key over many short messages: tokens, Message-IDs, bounce tags, click tokens,
several per recipient on the sender's event loop.

Not `hmac.digest(key, message, name)`: CPython's one-shot HMAC lets go of the GIL around
OpenSSL's call, whatever the message's size, so every token on the event loop handed the
interpreter to whichever thread was waiting (the ledger's, the signer's) for up to a switch
interval (5 ms). A keyed context copied per message keeps the GIL for short messages (hashlib
lets go only from 2 KiB) and skips the key schedule too.
"""

from __future__ import annotations

import hmac


class KeyedMac:
    def __init__(self, key: bytes, digest: str) -> None:
        self._keyed = hmac.new(key, digestmod=digest)

    def digest(self, message: bytes) -> bytes:
        mac = self._keyed.copy()
        mac.update(message)
        return mac.digest()
