"""Subscriber CSV files: reading them a line at a time (strict UTF-8), and formula-safe cells."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from newsletter.errors import InvalidInput

# A cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
COLUMNS = ("email", "newsletters", "sections", "status", "confirmed", "timezone")
# Written by `subscribers export`, accepted and ignored by import.
INFORMATIVE = ("created_at", "confirmed_at")


# Every line of a subscriber file is short; a longer one is refused before it is held in memory.
MAX_LINE_BYTES = 64 * 1024
MAX_RECORD_BYTES = 256 * 1024
# Cells starting with a quote are escaped too, so that `'=x@…` (a real address) and `=x@…`
# (neutralised on export) stay apart and an export imports back exactly.
ESCAPED_STARTS = (*FORMULA_STARTS, "'")


def neutralise(cell: str) -> str:
    """Prefix a formula-like (or quote-led) cell with a single quote so spreadsheets show it as
    text."""
    return "'" + cell if cell.startswith(ESCAPED_STARTS) else cell


def restore(cell: str) -> str:
    """Undo `neutralise`, so an exported file imports unchanged."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(ESCAPED_STARTS) else cell


class _Utf8Lines:
    """The file's lines decoded as UTF-8 one by one, so a bad byte is reported with its line."""

    def __init__(self, handle: IO[bytes], name: str) -> None:
        self._handle = handle
        self._name = name
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")
        self.line = 0
        # Bytes of the record being read (a quoted cell may span lines); reset per record.
        self.record_bytes = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        raw = self._handle.readline(MAX_LINE_BYTES + 1)
        if not raw:
            raise StopIteration
        self.line += 1
        self.record_bytes += len(raw)
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            raise InvalidInput(f"{self._name} line {self.line}", f"longer than {MAX_LINE_BYTES} bytes")
        if self.record_bytes > MAX_RECORD_BYTES:
            raise InvalidInput(f"{self._name} line {self.line}", f"a record over {MAX_RECORD_BYTES} bytes")
        try:
            return self._decoder.decode(raw)
        except UnicodeDecodeError:
            raise InvalidInput(
                f"{self._name} line {self.line}", "not UTF-8 text (save the file as CSV UTF-8)"
            ) from None


class CsvRows:
    """The records of a subscriber CSV file after its header: (line number, cells)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.columns: list[str] = []

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        try:
            handle = self.path.open("rb")
        except OSError as exc:
            raise InvalidInput(str(self.path), f"cannot read: {exc.strerror}") from None
        with handle:
            lines = _Utf8Lines(handle, self.path.name)
            reader = csv.reader(lines, strict=True)
            self.columns = _header(self.path, reader)
            while True:
                start = lines.line + 1
                lines.record_bytes = 0
                try:
                    record = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    raise InvalidInput(f"{self.path.name} line {start}", f"malformed CSV: {exc}") from None
                if any(cell.strip() for cell in record):
                    yield start, [restore(cell) for cell in record]


def _header(path: Path, reader: Iterator[list[str]]) -> list[str]:
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInput(path.name, "empty file: a header row naming an 'email' column is needed") from None
    except csv.Error as exc:
        raise InvalidInput(f"{path.name} line 1", f"malformed CSV: {exc}") from None
    columns = [name.strip().lower() for name in header]
    for name in columns:
        if name not in COLUMNS + INFORMATIVE:
            raise InvalidInput(
                f"{path.name} line 1", f"unknown column {name!r} (known: {', '.join(COLUMNS)})"
            )
    if "email" not in columns:
        raise InvalidInput(f"{path.name} line 1", "the header row must name an 'email' column")
    if len(set(columns)) != len(columns):
        raise InvalidInput(f"{path.name} line 1", "a column is named twice")
    return columns
