"""Readers who signed up each day of the last weeks, and the same as an SVG bar chart (drawn by
hand, as the engagement chart is)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from xml.sax.saxutils import escape

from sqlalchemy import func, select

from newsletter.context import AppContext
from newsletter.database.models import Subscriber, utcnow

DAYS = 30
WIDTH, HEIGHT, TOP, BOTTOM, LEFT = 640, 200, 28, 28, 40
BASE = HEIGHT - BOTTOM
LABEL_STYLE = 'font-family="Helvetica, Arial, sans-serif" font-size="11" fill="#1a1a1a"'


@dataclass(frozen=True)
class Day:
    day: date
    signups: int


async def signups_per_day(context: AppContext, days: int = DAYS) -> list[Day]:
    """Each of the last `days` UTC days, oldest first, with the readers created on it."""
    first = utcnow().date() - timedelta(days=days - 1)
    created = Subscriber.created_at
    # PostgreSQL's date() of a timestamptz is in the session's zone: the UTC day is asked for.
    day_of = func.date(created) if context.db.is_sqlite else func.date(func.timezone("UTC", created))
    query = (
        select(day_of, func.count()).where(created >= datetime.combine(first, time.min, UTC)).group_by(day_of)
    )
    async with context.db.session() as session:
        rows = (await session.execute(query)).all()
    counts = {_as_date(value): int(count) for value, count in rows}
    return [Day(first + timedelta(days=n), counts.get(first + timedelta(days=n), 0)) for n in range(days)]


def _as_date(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def growth_svg(days: list[Day]) -> str:
    most = max((d.signups for d in days), default=0) or 1
    total = sum(d.signups for d in days)
    title = f"Sign-ups per day, last {len(days)} days: {total:,} in all"
    step = (WIDTH - LEFT - 8) / max(len(days), 1)
    plot = HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="100%" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="growth-title" class="chart">',
        f'<title id="growth-title">{escape(title)}</title>',
        f'<line x1="{LEFT}" y1="{BASE}" x2="{WIDTH - 8}" y2="{BASE}" stroke="#6b6b6b"/>',
        f'<text x="{LEFT - 6}" y="{TOP + 4}" {LABEL_STYLE} text-anchor="end">{most:,}</text>',
        f'<text x="{LEFT - 6}" y="{BASE}" {LABEL_STYLE} text-anchor="end">0</text>',
    ]
    for index, day in enumerate(days):
        height = round(plot * day.signups / most)
        x = LEFT + index * step
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{HEIGHT - BOTTOM - height}" width="{max(step - 2, 1):.1f}" '
            f'height="{height}" fill="#2d6a3e"><title>{day.day.isoformat()}: {day.signups:,}</title></rect>'
        )
    for index in (0, len(days) - 1):
        if 0 <= index < len(days):
            anchor = "start" if index == 0 else "end"
            x = LEFT if index == 0 else WIDTH - 8
            parts.append(
                f'<text x="{x}" y="{HEIGHT - 8}" {LABEL_STYLE} text-anchor="{anchor}">'
                f"{days[index].day.strftime('%d %b')}</text>"
            )
    parts.append("</svg>")
    return "\n".join(parts)
