"""A real HTTP server for feed tests: threads on 127.0.0.1, port 0, serving configured paths.

Each Route says what a path answers: a body with its type, an ETag / Last-Modified honoured by
conditional GET (304), a status (404, 500...), a redirect, a delay before answering, a body sent
one byte at a time (trickle), chunked or gzip-encoded bodies. Requests are recorded.
"""

from __future__ import annotations

import contextlib
import gzip
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "application/rss+xml; charset=utf-8"
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None
    redirect_to: str | None = None  # answered with 302 and this Location
    delay: float = 0.0  # seconds before answering
    trickle: float = 0.0  # seconds between single bytes of the body
    chunked: bool = False  # no Content-Length; Transfer-Encoding: chunked
    gzip: bool = False  # Content-Encoding: gzip
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]


class FeedServer:
    """`with FeedServer() as server: server.route("/feed.xml", Route(body=...)); server.url("/feed.xml")`"""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        # Set on stop, so delayed and trickling answers end at once instead of holding threads.
        self.stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def route(self, path: str, route: Route) -> str:
        with self.lock:
            self.routes[path] = route
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return int(self._server.server_address[1])

    def requests_for(self, path: str) -> list[Request]:
        with self.lock:
            return [request for request in self.requests if request.path == path]

    def start(self) -> FeedServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="feed-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def _handler_for(server: FeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            with server.lock:
                server.requests.append(Request(path, {k.lower(): v for k, v in self.headers.items()}))
                route = server.routes.get(path)
            # The client may have given up (a timeout test): then there is nobody to answer.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._answer(route)

        def _answer(self, route: Route | None) -> None:
            if route is None:
                route = Route(body=b"<html><body><h1>Not Found</h1></body></html>", status=404)
                route.content_type = "text/html"
            if route.delay and server.stopping.wait(route.delay):
                return
            if route.redirect_to is not None:
                self._head(302, {"Location": route.redirect_to, "Content-Length": "0"})
                return
            if self._unchanged(route):
                self._head(304, {"ETag": route.etag or "", "Content-Length": "0"})
                return
            body = gzip.compress(route.body) if route.gzip else route.body
            headers = {"Content-Type": route.content_type, **route.headers}
            if route.etag:
                headers["ETag"] = route.etag
            if route.last_modified:
                headers["Last-Modified"] = route.last_modified
            if route.gzip:
                headers["Content-Encoding"] = "gzip"
            if route.chunked:
                headers["Transfer-Encoding"] = "chunked"
            else:
                headers["Content-Length"] = str(len(body))
            self._head(route.status, headers)
            self._body(route, body)

        def _unchanged(self, route: Route) -> bool:
            if route.etag and self.headers.get("If-None-Match") == route.etag:
                return True
            return bool(route.last_modified) and self.headers.get("If-Modified-Since") == route.last_modified

        def _head(self, status: int, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()

        def _body(self, route: Route, body: bytes) -> None:
            for piece in _pieces(body, 1 if route.trickle else 64 * 1024):
                if route.trickle and server.stopping.wait(route.trickle):
                    return
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if route.chunked else piece)
                self.wfile.flush()
            if route.chunked:
                self.wfile.write(b"0\r\n\r\n")

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def _pieces(body: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]
