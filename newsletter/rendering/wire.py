"""DATA's payload (RFC 5321 §4.5.2: a "." that starts a line doubled, ".\r\n" at the end) joined
from a template's pieces: each fixed piece stuffed once per template, only the reader's values
and the joins between pieces per message, so no message's 40 KB is scanned again for a line
that starts with a dot."""

from __future__ import annotations

from collections.abc import Iterable

CRLF = b"\r\n"
END = b".\r\n"


def stuff_within(piece: bytes) -> bytes:
    """`piece` with the dots that start a line inside it doubled; a dot at its very start
    depends on what comes before it, which `join_stuffed` sees."""
    return piece.replace(b"\r\n.", b"\r\n..") if b"\r\n." in piece else piece


def join_stuffed(pieces: Iterable[bytes]) -> bytes:
    """The payload of the message that is the concatenation of `pieces`, each already passed
    through `stuff_within`: the same bytes as stuffing the whole message at once."""
    out: list[bytes] = []
    tail = CRLF  # the message's start is a line's start
    for piece in pieces:
        if not piece:
            continue
        if piece[:1] == b"." and tail == CRLF:
            piece = b"." + piece
        elif piece[:2] == b"\n." and tail[-1:] == b"\r":
            piece = b"\n." + piece[1:]
        out.append(piece)
        tail = piece[-2:] if len(piece) > 1 else tail[-1:] + piece
    if not out or tail != CRLF:
        out.append(CRLF)
    out.append(END)
    return b"".join(out)
