"""DATA's payload (RFC 5321 §4.5.2: a "." that starts a line doubled, ".\r\n" at the end) joined
from a template's pieces: each fixed piece stuffed once per template, only the reader's values
and the joins between pieces per message, so no message's 40 KB is scanned again for a line
that starts with a dot."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

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


class StuffedLayout:
    """A message's pieces (bytes) and slots (a value's name), fixed pieces stuffed once. Most
    messages need no look at the joins at all: when no fixed piece starts with "." or "\\n."
    and no value of the reader's does, no join can make a line that starts with a dot."""

    def __init__(self, pieces: Sequence[bytes | str]) -> None:
        self._pieces = [stuff_within(piece) if isinstance(piece, bytes) else piece for piece in pieces]
        last = pieces[-1] if pieces else b""
        fixed_safe = not any(isinstance(piece, bytes) and _may_start_a_dot_line(piece) for piece in pieces)
        # What ends the payload when the joins need no look; None: they always need one.
        self._end: bytes | None = None
        if fixed_safe and isinstance(last, bytes) and len(last) >= 2:
            self._end = END if last.endswith(CRLF) else CRLF + END

    def join(self, values: Mapping[str, bytes]) -> bytes:
        """The payload, `values` filling the slots: the same bytes as `join_stuffed`."""
        stuffed = {slot: stuff_within(value) for slot, value in values.items()}
        parts = [piece if isinstance(piece, bytes) else stuffed[piece] for piece in self._pieces]
        if self._end is None or any(_may_start_a_dot_line(value) for value in stuffed.values()):
            return join_stuffed(parts)
        parts.append(self._end)
        return b"".join(parts)


def _may_start_a_dot_line(piece: bytes) -> bool:
    """Whether joined after some piece, `piece` can put a dot at a line's start."""
    return piece[:1] == b"." or piece[:2] == b"\n."
