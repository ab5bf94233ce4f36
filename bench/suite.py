"""The cases, run one after another and each timed; a case that fails is reported, not fatal."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import Any

from rich.console import Console

from bench import archive, bounces, clicks, console, delivery, ingest, render, scale, signup, workers
from bench.figures import Figure, at_least

Rows = list[dict[str, Any]]
RENDER_AIM_RATIO, RENDER_AIM_RATE = 250, 10_000


def render_figures(quick: bool) -> Rows:
    """bench/render.py's rows as figures: each approach against the naive one."""
    rows = render.run(quick)
    naive = next(r for r in rows if r["approach"] == render.NAIVE)
    figures = []
    for row in rows:
        if row is naive:
            continue
        rate, times = _number(row["messages_per_s"]), _number(row["x_naive"])
        ours = row["approach"] == render.OURS
        signed_aim = render.SIGNED_AIMS.get(str(row["approach"]))
        figures.append(
            Figure(
                "render",
                str(row["approach"]),
                ours=rate,
                unit="msg/s",
                baseline=_number(naive["messages_per_s"]),
                baseline_name="naive: Jinja2 + premailer + EmailMessage per recipient",
                ratio=times,
                aim=_render_aim(ours, signed_aim),
                met=_render_met(ours, signed_aim, rate, times),
                note=_render_note(row),
                details=row,
            ).row()
        )
    return figures


def _render_note(row: dict[str, Any]) -> str:
    note = f"one core, {row['us_per_message']} µs/msg, {row['message_bytes']:,} B"
    if "keys_alone_per_s" in row:  # a signed row: what its keys can do alone on this CPU
        note += f"; its keys alone {row['keys_alone_per_s']:,}/s"
    return note


def _render_aim(ours: bool, signed_aim: int | None) -> str:
    if signed_aim is not None:
        return f"≥ {signed_aim:,} signed msg/s"
    return f"≥ {RENDER_AIM_RATIO}× and ≥ {RENDER_AIM_RATE:,} msg/s" if ours else ""


def _render_met(ours: bool, signed_aim: int | None, rate: float, times: float) -> bool | None:
    if signed_aim is not None:
        return rate >= signed_aim
    return bool(at_least(times, RENDER_AIM_RATIO) and rate >= RENDER_AIM_RATE) if ours else None


def _number(value: object) -> float:
    assert isinstance(value, int | float), value
    return float(value)


CASES: dict[str, Callable[[bool, bool], Rows]] = {
    "render": lambda quick, _full: render_figures(quick),
    "delivery": lambda quick, _full: delivery.run(quick),
    "scale": lambda quick, full: scale.run(quick, full_send=full),
    "workers": lambda quick, _full: workers.run(quick),
    "signup": lambda quick, _full: signup.run(quick),
    "ingest": lambda quick, _full: ingest.run(quick),
    "bounces": lambda quick, _full: bounces.run(quick),
    "archive": lambda quick, _full: archive.run(quick),
    "clicks": lambda quick, _full: clicks.run(quick),
    "console": lambda quick, _full: console.run(quick),
}


def run_cases(
    console: Console, names: list[str], *, quick: bool, full_send: bool
) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        console.print(f"[bold]{name}[/bold] …", highlight=False)
        started = time.monotonic()
        rows: Rows = []
        error = None
        try:
            rows = CASES[name](quick, full_send)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            console.print(traceback.format_exc(), markup=False, highlight=False)
        seconds = time.monotonic() - started
        results[name] = {"seconds": round(seconds, 1), "rows": rows, "error": error}
        skips = [r["what"] for r in rows if str(r["what"]).startswith("skipped")]
        status = f"error: {error}" if error else "; ".join(skips) or "done"
        console.print(f"  {name}: {status} ({seconds:.0f} s)", markup=False, highlight=False)
    return results
