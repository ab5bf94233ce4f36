"""/api/docs and /api/redoc work offline: every asset is ours, behind the same rule as the pages,
and the schema they show speaks to the API's users, not to our code."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import lxml.html
import pytest

import newsletter
from tests.conftest import SettingsFactory
from tests.subscriptions.helpers import serve

# The pages do not depend on the database: one backend is enough.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

ASSET_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
PAGES = {"/api/docs": "swagger-ui-bundle.js", "/api/redoc": "redoc.standalone.js"}


def referenced(html: str) -> list[str]:
    """Every URL the page loads or links to (the schema's included)."""
    root = lxml.html.document_fromstring(html)
    urls = [*root.xpath("//@src"), *root.xpath("//@href"), *root.xpath("//redoc/@spec-url")]
    urls += re.findall(r"url:\s*'([^']*)'", html)
    return [str(url) for url in urls]


@pytest.mark.parametrize("path", list(PAGES))
async def test_the_pages_load_only_our_own_assets(
    make_settings: SettingsFactory, admin_headers: dict[str, str], path: str
) -> None:
    async with serve(make_settings()) as (http, _):
        page = await http.get(path, headers=admin_headers)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert not re.search(r"https?:|//[a-z]", page.text, re.IGNORECASE), "an absolute URL in the page"
        urls = referenced(page.text)
        assert "/api/openapi.json" in urls and any(url.endswith(PAGES[path]) for url in urls)
        for url in urls:
            parts = urlsplit(url)
            assert (parts.scheme, parts.netloc) == ("", "") and url.startswith("/api/"), url
            if url == "/api/openapi.json":
                continue
            asset = await http.get(url, headers=admin_headers)
            assert asset.status_code == 200, url
            assert asset.headers["content-type"].startswith(ASSET_TYPES[Path(url).suffix]), url
            assert asset.headers["x-content-type-options"] == "nosniff"
        policy = page.headers["content-security-policy"]
        assert (
            "http" not in policy
            and "connect-src 'self'" in policy
            and "unsafe-inline" not in (policy.split("script-src", 1)[1].split(";", 1)[0])
        )


async def test_the_assets_follow_the_pages_rule(
    make_settings: SettingsFactory, admin_headers: dict[str, str]
) -> None:
    paths = ["/api/redoc", "/api/docs/assets/swagger-ui.css", "/api/docs/assets/redoc.standalone.js"]
    async with serve(make_settings()) as (http, _):
        for path in paths:
            assert (await http.get(path)).status_code == 401, path
        missing = await http.get("/api/docs/assets/../openapi.json", headers=admin_headers)
        assert missing.status_code == 404
        assert (await http.get("/api/docs/assets/index.html", headers=admin_headers)).status_code == 404
    async with serve(make_settings(server={"public_api_docs": True})) as (http, _):
        for path in paths:
            assert (await http.get(path)).status_code == 200, path


def descriptions(node: object, where: str = "") -> Iterator[tuple[str, str]]:
    """(where, text) of every description and summary in an OpenAPI document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("description", "summary") and isinstance(value, str):
                yield f"{where}/{key}", value
            else:
                yield from descriptions(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from descriptions(value, f"{where}/{index}")


def public_names(schema: dict[str, object]) -> set[str]:
    """Names the document itself shows its readers: schemas and their titles, properties, parameters."""
    names = set(schema.get("components", {}).get("schemas", {}))  # type: ignore[attr-defined]
    text = repr(schema)
    names |= set(re.findall(r"'properties': \{'(\w+)'", text))
    names |= set(re.findall(r"'(\w+)': \{'(?:anyOf|type|title|items|\$ref|default|description)'", text))
    names |= set(re.findall(r"'(?:name|title)': '(\w+)'", text))
    return names


def code_names() -> set[str]:
    """The names of our functions and classes."""
    names: set[str] = set()
    for source in Path(newsletter.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name.strip("_"))
    return names


def unmistakable(names: set[str]) -> set[str]:
    """Those that cannot be English words: snake_case, CamelCase."""
    return {name for name in names if "_" in name or re.search(r"[a-z][A-Z]", name)}


async def test_the_schema_describes_the_api_not_our_code(
    make_settings: SettingsFactory, admin_headers: dict[str, str]
) -> None:
    async with serve(make_settings()) as (http, _):
        schema = (await http.get("/api/openapi.json", headers=admin_headers)).json()
    internal = code_names() - public_names(schema)
    assert {"validate_articles", "tidy", "ArticleRules"} <= internal
    found = list(descriptions(schema))
    assert len(found) > 50
    for where, text in found:
        assert not set(re.findall(r"\w+", text)) & unmistakable(internal), (where, text)
        quoted = {name.removesuffix("()") for name in re.findall(r"`([^`]*)`", text)}
        assert not quoted & internal, (where, text)
