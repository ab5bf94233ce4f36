"""Pictures of the sample London Daily digest for the docs, as subscribers see it.

    .venv/bin/python docs/make_screenshots.py [--out docs/images]

Renders the digest of the packaged sample feed exactly as a send would (Jinja2, premailer,
personal links for subscriber 0), opens it in Debian's headless chromium through Playwright at
600 and 375 pixels wide, and saves full-page PNGs. The articles' images live on the public
internet, which this machine cannot reach: each is drawn as a neutral illustration instead.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Route, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from newsletter.config import Settings, load_settings  # noqa: E402
from newsletter.editions.samples import sample_articles  # noqa: E402
from newsletter.personal.recipients import NOBODY, PersonalMail  # noqa: E402
from newsletter.rendering import DigestRenderer  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIDTHS = (600, 375)


def sample_settings(folder: Path) -> Settings:
    config = folder / "sample.toml"
    config.write_text("")
    secret = "sample-secret-key-for-pictures-only"
    return load_settings(
        config,
        overrides={
            "site": {"base_url": "https://londondaily.example"},
            "database": {"url": f"sqlite:///{folder / 'unused.db'}"},
            "security": {"secret_key": secret, "admin_token": secret},
        },
    )


def sample_page(settings: Settings) -> str:
    newsletter = settings.newsletters[0]
    articles = sample_articles(limit=newsletter.max_articles)
    edition_date = articles[0].published_at.date()
    rendered = DigestRenderer(settings).render_digest(newsletter, edition_date, articles)
    values = PersonalMail(settings).digest_fields(NOBODY, "reader@example.com", newsletter.id)
    return rendered.filled_html(values)


def illustration(url: str) -> str:
    """A calm stand-in picture: a two-tone sky over a city skyline, coloured by the URL."""
    seed = hashlib.sha256(url.encode()).digest()
    hue = seed[0] * 360 // 256
    towers = "".join(
        f'<rect x="{i * 100 + seed[i] % 30}" y="{300 + seed[i + 8] % 200}" width="{60 + seed[i + 4] % 50}" '
        f'height="400" fill="hsl({hue},25%,{22 + seed[i] % 12}%)"/>'
        for i in range(12)
    )
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="675" viewBox="0 0 1200 675">'
        f'<defs><linearGradient id="sky" x1="0" y1="0" x2="0" y2="1">'
        f'<stop offset="0" stop-color="hsl({hue},45%,78%)"/>'
        f'<stop offset="1" stop-color="hsl({(hue + 30) % 360},40%,60%)"/>'
        f'</linearGradient></defs><rect width="1200" height="675" fill="url(#sky)"/>'
        f'<circle cx="{200 + seed[3] * 3}" cy="170" r="70" fill="hsl({hue},60%,92%)" opacity="0.8"/>'
        f"{towers}</svg>"
    )


def serve_illustrations(route: Route) -> None:
    if route.request.url.startswith(("http://", "https://")):
        route.fulfill(status=200, content_type="image/svg+xml", body=illustration(route.request.url))
    else:
        route.continue_()


def shoot(page_file: Path, out: Path) -> list[Path]:
    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for width in WIDTHS:
            page = browser.new_page(viewport={"width": width, "height": 900}, device_scale_factor=1)
            page.route("**/*", serve_illustrations)
            page.goto(page_file.as_uri())
            page.wait_for_load_state("load")
            target = out / f"digest-{width}.png"
            page.screenshot(path=str(target), full_page=True)
            written.append(target)
            page.close()
        browser.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "images")
    out: Path = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        page_file = folder / "digest.html"
        page_file.write_text(sample_page(sample_settings(folder)), encoding="utf-8")
        for path in shoot(page_file, out):
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
