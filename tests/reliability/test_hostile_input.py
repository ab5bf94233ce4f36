"""Hostile input against a real server: schemathesis over the OpenAPI schema, hypothesis over the
pages, and the admin token. Every answer is a documented status, never a 500."""

from __future__ import annotations

import string
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance

from tests.support.database import migrated_sqlite_template, sqlite_copy
from tests.support.live import ADMIN_TOKEN, LiveServer, live_server

pytestmark = pytest.mark.slow

# What the pages may answer; anything else (and every 5xx but a busy database's 503) is a bug.
PAGE_STATUSES = {200, 202, 303, 400, 404, 405, 413, 415, 422, 429}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("hostile")
    url = sqlite_copy(migrated_sqlite_template(folder), folder)
    with live_server(folder, url, NEWSLETTER_SUBSCRIPTIONS__RATE_LIMIT_PER_MINUTE="100000") as live:
        yield live


def test_the_api_answers_documented_statuses(server: LiveServer) -> None:
    """Every operation of the OpenAPI schema, with and without the admin token, on cases
    schemathesis generates from the schema (valid and invalid ones)."""
    schema = schemathesis.openapi.from_url(f"{server.base_url}/api/openapi.json", headers=server.admin)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 10

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def answers(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
            for headers in ({"Authorization": f"Bearer {ADMIN_TOKEN}"}, {}):
                response = case.call(headers=headers)
                case.validate_response(response, checks=[not_a_server_error, status_code_conformance])

        answers()


TOKENS = st.one_of(
    st.text(alphabet=string.ascii_letters + string.digits + "._-", max_size=300),
    st.text(max_size=50).map(lambda t: t.replace("/", "")).filter(bool),
)
CONTENT_TYPES = st.sampled_from(
    ["application/json", "application/x-www-form-urlencoded", "multipart/form-data", "text/plain", ""]
)


@given(body=st.binary(max_size=4000), content_type=CONTENT_TYPES)
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_signup_with_arbitrary_bodies(server: LiveServer, body: bytes, content_type: str) -> None:
    response = httpx.post(
        f"{server.base_url}/subscribe", content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code in PAGE_STATUSES, response.text[:300]


INJECTIONS = [
    "reader@example.com\r\nBcc: victim@example.org",
    "reader@example.com\nSubject: hi",
    "reader@example.com%0d%0aBcc:x@y.z",
    "reader@example.com\x00",
    "a" * 400 + "@example.com",
    "réader@exämple.com",
    "reader@[127.0.0.1]",
    "reader@example.com, other@example.com",
    "\ud800@example.com",
]


@given(
    email=st.one_of(st.sampled_from(INJECTIONS), st.text(max_size=400)),
    sections=st.lists(st.text(max_size=40)),
)
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_signup_with_hostile_fields(server: LiveServer, email: str, sections: list[str]) -> None:
    payload = {"email": email, "sections": sections, "newsletters": ["daily"]}
    try:
        response = httpx.post(f"{server.base_url}/subscribe", json=payload)
    except UnicodeEncodeError:
        return  # a lone surrogate cannot even be sent as JSON text
    assert response.status_code in {202, 422, 429}, response.text[:300]


@given(
    token=TOKENS,
    body=st.binary(max_size=500),
    method=st.sampled_from(["GET", "POST"]),
    route=st.sampled_from(["confirm", "unsubscribe", "preferences"]),
)
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
def test_token_routes_with_forged_tokens(
    server: LiveServer, token: str, body: bytes, method: str, route: str
) -> None:
    response = httpx.request(
        method,
        f"{server.base_url}/{route}/{quote(token, safe='') or 'x'}",
        content=body if method == "POST" else None,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code in PAGE_STATUSES, response.text[:300]
    # A forged token never does anything: no token here is validly signed.
    assert response.status_code != 200 or method == "GET"


def test_admin_tokens_close_to_the_real_one_are_refused(server: LiveServer) -> None:
    probes = [ADMIN_TOKEN[:n] for n in range(1, len(ADMIN_TOKEN))] + [ADMIN_TOKEN + "x", ADMIN_TOKEN.upper()]
    for probe in probes:
        response = httpx.get(
            f"{server.base_url}/api/subscribers", headers={"Authorization": f"Bearer {probe}"}
        )
        assert response.status_code == 401
    assert httpx.get(f"{server.base_url}/api/subscribers", headers=server.admin).status_code == 200


def test_paths_that_do_not_exist(server: LiveServer, tmp_path: Path) -> None:
    for path in ("/../../etc/passwd", "/api/../api/subscribers", "/%00", "/unsubscribe/", "/" + "a" * 5000):
        response = httpx.get(server.base_url + path)
        assert response.status_code in {401, 404, 405, 414, 422}, (path, response.status_code)
