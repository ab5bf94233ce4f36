"""The first hour, as a newcomer walks it: `newsletter demo --serve`, two readers sign up in
Chromium (one with an address in Unicode), confirm from the captured emails, London Daily
publishes its next story, the send command the demo printed delivers it, one click unsubscribes."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import re
import shlex
import subprocess
import threading
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from tests.support.ports import free_port
from tests.support.process import clean_environment, start

pytestmark = [pytest.mark.browser, pytest.mark.slow, needs_chromium]

READERS = ["newcomer@readers.example", "jürgen.größe@readers.example"]


class Output:
    """The demo's stdout, read line by line on a thread as it runs."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        assert process.stdout is not None
        self._thread = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    async def wait_for(self, found: Callable[[str], bool], after: int = 0, timeout: float = 90) -> int:
        """The index of the first line from `after` for which `found(line)` is true."""

        def seek() -> int | None:
            return next((i for i in range(after, len(self.lines)) if found(self.lines[i])), None)

        def wait() -> int:
            with self._changed:
                assert self._changed.wait_for(lambda: seek() is not None, timeout), "\n".join(self.lines)
                index = seek()
                assert index is not None
                return index

        return await asyncio.to_thread(wait)


def event(name: str, **expected: object) -> Callable[[str], bool]:
    def matches(line: str) -> bool:
        if not line.startswith("{"):
            return False
        fields = json.loads(line)
        return fields.get("event") == name and all(fields.get(k) == v for k, v in expected.items())

    return matches


def mail_to(outbox: Path, address: str) -> list[EmailMessage]:
    found = []
    for path in sorted(outbox.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if str(message["To"]).endswith(address) or address in str(message["To"]):
            found.append(message)
    return found


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


async def test_from_make_serve_to_a_digest_in_a_readers_inbox(tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    port = free_port()
    demo = start(
        "demo", "--serve", "--story-every", "4",
        cwd=tmp_path, env=clean_environment(NEWSLETTER_SERVER__PORT=str(port), COLUMNS="300"),
    )  # fmt: skip
    output = Output(demo)
    outbox = tmp_path / "var" / "outbox"
    base = f"http://127.0.0.1:{port}"
    ready = await output.wait_for(lambda line: line.strip() == "Ctrl-C stops.")
    printed = output.lines[:ready]
    [send_line] = [line for line in printed if " send --new" in line]
    send_command = shlex.split(send_line.split("#")[0])

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            for address in READERS:
                await page.goto(f"{base}/")
                await page.get_by_label("Email address").fill(address)
                await page.get_by_role("button", name="Subscribe").click()
                await page.wait_for_selector("text=Check your inbox")
            for address in READERS:
                await output.wait_for(event("capture.saved", recipient=address))
                [confirmation] = mail_to(outbox, address)
                link = re.search(rf"{re.escape(base)}/confirm/\S+", text_of(confirmation))
                assert link is not None, text_of(confirmation)
                await page.goto(link.group(0))
                assert await page.get_by_role("heading", name="You are subscribed").is_visible()
        finally:
            await browser.close()

    confirmed = await output.wait_for(event("subscriber.confirmed"), after=ready)
    published = await output.wait_for(event("demo.story_published"), after=confirmed)
    story = json.loads(output.lines[published])["title"]
    await output.wait_for(
        lambda line: event("feed.ingested")(line) and json.loads(line)["new"] >= 1, after=published
    )

    sent = await asyncio.to_thread(
        subprocess.run,
        send_command,
        cwd=tmp_path,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "demo's configuration" in sent.stderr  # found from the project folder, as printed

    for address in READERS:
        digests = [m for m in mail_to(outbox, address) if "List-Unsubscribe" in m]
        assert len(digests) == 1, address
        assert story in " ".join(text_of(digests[0]).split())  # the text part wraps long lines

    [digest] = [m for m in mail_to(outbox, READERS[1]) if "List-Unsubscribe" in m]
    assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = re.search(r"<(https?://[^>]+/unsubscribe/[^>]+)>", str(digest["List-Unsubscribe"]))
    assert unsubscribe is not None
    async with httpx.AsyncClient() as http:  # what a mail provider does (RFC 8058)
        response = await http.post(unsubscribe.group(1), data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    await output.wait_for(event("subscriber.unsubscribed"), after=published)
