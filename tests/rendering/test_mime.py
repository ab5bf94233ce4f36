"""Quoted-printable segments joined in any order decode to the joined text, in short lines."""

from __future__ import annotations

import binascii

import pytest
from hypothesis import given
from hypothesis import strategies as st

from newsletter.rendering.mime import header, open_ended, phrase, qp_segment, quoted_printable

texts = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\r"), max_size=400)


def decode(encoded: bytes) -> str:
    return binascii.a2b_qp(encoded.replace(b"\r\n", b"\n")).decode("utf-8")


@given(st.lists(texts, min_size=1, max_size=6))
def test_segments_join_and_decode(pieces: list[str]) -> None:
    encoded = b"".join(qp_segment(piece) for piece in pieces)
    assert decode(encoded) == "".join(pieces)
    assert all(len(line) <= 76 for line in encoded.split(b"\r\n"))
    assert b"\n" not in encoded.replace(b"\r\n", b"")


def test_a_full_last_line_is_split_before_the_soft_break() -> None:
    for length in range(70, 80):
        for tail in ("", "é", "=", " "):
            text = "x" * length + tail
            encoded = open_ended(quoted_printable(text.encode()))
            assert encoded.endswith(b"=\r\n")
            assert max(len(line) for line in encoded.split(b"\r\n")) <= 76
            assert decode(encoded) == text


def test_header_folding() -> None:
    assert header("Subject", "Résumé of the day") == b"Subject: =?utf-8?q?R=C3=A9sum=C3=A9?= of the day\r\n"
    long = header("Subject", "word " * 60)
    assert all(len(line) <= 78 for line in long.split(b"\r\n"))


@pytest.mark.parametrize("bad", ["a\r\nBcc: x@y", "a\nb", "a\x00"])
def test_header_refuses_line_breaks(bad: str) -> None:
    with pytest.raises(ValueError, match="Subject"):
        header("Subject", bad)


def test_phrase_quotes_or_encodes() -> None:
    assert phrase('The "Daily", Briefing') == '"The \\"Daily\\", Briefing"'
    assert phrase("Tägliche Übersicht").startswith("=?utf-8?")
