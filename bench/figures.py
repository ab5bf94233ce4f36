"""One measured figure: ours beside its baseline, their ratio, the aim and whether it is met.

Cases return plain dicts (`Figure.row()`), so results are JSON as they stand."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Figure:
    case: str
    what: str
    ours: float | None = None
    unit: str = ""
    baseline: float | None = None
    baseline_name: str = ""
    ratio: float | None = None
    aim: str = ""
    met: bool | None = None
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return asdict(self)


def skipped(case: str, why: str) -> dict[str, Any]:
    return Figure(case, f"skipped: {why}").row()


def ratio(ours: float | None, baseline: float | None, digits: int = 2) -> float | None:
    if ours is None or not baseline:
        return None
    return round(ours / baseline, digits)


def at_least(value: float | None, aim: float) -> bool | None:
    return None if value is None else value >= aim


def at_most(value: float | None, aim: float) -> bool | None:
    return None if value is None else value <= aim


def number(value: float | None, unit: str = "") -> str:
    """1234.5 → "1,235", 0.4567 → "0.46", with the unit after it."""
    if value is None:
        return "–"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:,.1f}"
    else:
        text = f"{value:,.2f}"
    return f"{text} {unit}".strip()
