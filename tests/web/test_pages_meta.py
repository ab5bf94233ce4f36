"""What crawlers and browser chrome read: robots.txt, the favicon, the signup page's description."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from urllib.parse import unquote
from urllib.robotparser import RobotFileParser

import httpx


async def test_robots_txt_lets_crawlers_see_the_signup_page_and_nothing_behind_a_link(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/robots.txt")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    robots = RobotFileParser()
    robots.parse(response.text.splitlines())
    assert robots.can_fetch("AnyBot", "http://testserver/")
    for path in ("/confirm/1.abc.sig", "/unsubscribe/1.abc", "/preferences/1.abc", "/api/subscribers"):
        assert not robots.can_fetch("AnyBot", f"http://testserver{path}"), path
    lines = set(response.text.splitlines())
    assert {"Disallow: /confirm/", "Disallow: /unsubscribe/", "Disallow: /preferences/"} <= lines
    assert {"Disallow: /api/", "Allow: /"} <= lines


async def test_the_signup_page_describes_itself_to_search_engines(client: httpx.AsyncClient) -> None:
    page = (await client.get("/")).text
    description = re.search(r'<meta name="description" content="([^"]+)">', page)
    assert description is not None
    assert "London Daily" in description.group(1) and len(description.group(1)) <= 160


async def test_every_page_has_an_inline_favicon(client: httpx.AsyncClient) -> None:
    for path in ("/", "/no-such-page", "/confirm/not-a-token"):
        page = (await client.get(path, headers={"Accept": "text/html"})).text
        icon = re.search(r'<link rel="icon" type="image/svg\+xml" href="data:image/svg\+xml,([^"]+)">', page)
        assert icon is not None, path
        assert " " not in icon.group(1) and "<" not in icon.group(1)  # a valid URL, as the Nu checker wants
        svg = ElementTree.fromstring(unquote(icon.group(1)))
        assert svg.tag == "{http://www.w3.org/2000/svg}svg"
