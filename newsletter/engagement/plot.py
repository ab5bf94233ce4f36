"""An edition's clicks per article as an SVG bar chart, for operators who would rather look than
read. Drawn by hand (a few rectangles and texts): no plotting library to install."""

from __future__ import annotations

from xml.sax.saxutils import escape

from newsletter.engagement.stats import EditionStats

WIDTH = 720
ROW = 28
LABEL = 330
TOP = 48


def clicks_svg(stats: EditionStats) -> str:
    rows = stats.articles
    height = TOP + ROW * max(len(rows), 1) + 24
    most = max((a.clicks for a in rows), default=0) or 1
    bar_space = WIDTH - LABEL - 70
    title = f"Clicks per article, edition {stats.edition} of {stats.newsletter} ({stats.date})"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-labelledby="title">',
        f'<title id="title">{escape(title)}</title>',
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
        f'<text x="12" y="28" font-family="Helvetica, Arial, sans-serif" font-size="16" '
        f'font-weight="bold" fill="#111111">{escape(title)}</text>',
    ]
    if not rows:
        parts.append(
            f'<text x="12" y="{TOP + 18}" font-family="Helvetica, Arial, sans-serif" font-size="13" '
            'fill="#4a4a4a">No reader has clicked yet.</text>'
        )
    for index, article in enumerate(rows):
        y = TOP + index * ROW
        width = max(round(bar_space * article.clicks / most), 1)
        label = article.title if len(article.title) <= 48 else article.title[:47] + "…"
        parts += [
            f'<text x="{LABEL - 8}" y="{y + 18}" text-anchor="end" font-family="Helvetica, Arial, '
            f'sans-serif" font-size="12" fill="#1a1a1a">{escape(label)}</text>',
            f'<rect x="{LABEL}" y="{y + 5}" width="{width}" height="{ROW - 10}" fill="#b3261e"/>',
            f'<text x="{LABEL + width + 6}" y="{y + 18}" font-family="Helvetica, Arial, sans-serif" '
            f'font-size="12" fill="#1a1a1a">{article.clicks}</text>',
        ]
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
