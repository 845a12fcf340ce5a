"""A small HTTP(S) server on a thread that serves test images and records every connection.

The hostile-input tests assert on `connections`: a refused URL must not even open one.

    with ImageServer() as server:            # 127.0.0.1, a free port
        server.url("/image.png")              # http://127.0.0.1:<port>/image.png
        server.connections, server.requests

Routes: /image.png, /image.jpg, /image.gif, /image.webp, /octet (a PNG as
application/octet-stream), /html, /notfound, /gzip (a gzip-encoded PNG), /huge (an endless
chunked body, no Content-Length), /huge-declared (a Content-Length of 1 GB), /slow (answers after
`slow_seconds`), /redirect?to=URL (302), /loop (302 to itself), plus any `extra_routes`.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.vision.images import make_image

Route = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    local: tuple[str, int]


@dataclass
class ImageServer:
    host: str = "127.0.0.1"
    tls: ssl.SSLContext | None = None
    slow_seconds: float = 5.0
    extra_routes: dict[str, Route] = field(default_factory=dict)
    connections: list[tuple[str, str]] = field(default_factory=list)  # (local address, peer address)
    requests: list[RecordedRequest] = field(default_factory=list)
    sni_names: list[str | None] = field(default_factory=list)
    huge_bytes_sent: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.png = make_image(64, 48, "PNG")
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                local = self.connection.getsockname()[:2]
                server.requests.append(RecordedRequest(self.path, dict(self.headers.items()), local))
                route = urlsplit(self.path).path
                handler = server.extra_routes.get(route) or server.routes().get(route)
                if handler is None:
                    self.send_error(404)
                    return
                handler(self)

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET

        class Server(ThreadingHTTPServer):
            address_family = family
            daemon_threads = True

            def server_bind(self) -> None:
                if family == socket.AF_INET6:
                    self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                super().server_bind()

            def get_request(self) -> tuple[socket.socket, Any]:
                sock, peer = super().get_request()
                server.connections.append((sock.getsockname()[0], peer[0]))
                if server.tls is not None:
                    sock = server.tls.wrap_socket(sock, server_side=True)
                return sock, peer

        if self.tls is not None:
            self.tls.sni_callback = lambda _sock, name, _ctx: self.sni_names.append(name)
        self._server = Server((self.host, 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> ImageServer:
        self._thread.start()
        return self

    def __exit__(
        self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]
    ) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str, host: str | None = None) -> str:
        scheme = "https" if self.tls else "http"
        shown = host or (f"[{self.host}]" if ":" in self.host else self.host)
        return f"{scheme}://{shown}:{self.port}{path}"

    def reset(self) -> None:
        self.connections.clear()
        self.requests.clear()

    # --- routes ---------------------------------------------------------------------------
    def routes(self) -> dict[str, Route]:
        return {
            "/image.png": lambda h: _send(h, 200, self.png, "image/png"),
            "/image.jpg": lambda h: _send(h, 200, make_image(40, 30, "JPEG"), "image/jpeg"),
            "/image.gif": lambda h: _send(h, 200, make_image(40, 30, "GIF"), "image/gif"),
            "/image.webp": lambda h: _send(h, 200, make_image(40, 30, "WEBP"), "image/webp"),
            "/octet": lambda h: _send(h, 200, self.png, "application/octet-stream"),
            "/html": lambda h: _send(h, 200, b"<html>secret admin page</html>", "text/html"),
            "/notfound": lambda h: _send(h, 404, b"no", "text/plain"),
            "/gzip": lambda h: _send(
                h, 200, gzip.compress(self.png), "image/png", {"Content-Encoding": "gzip"}
            ),
            "/huge": self._huge,
            "/huge-declared": lambda h: _send(
                h, 200, b"\x89PNG\r\n\x1a\n", "image/png", {"Content-Length": str(1 << 30)}
            ),
            "/slow": self._slow,
            "/redirect": self._redirect,
            "/loop": lambda h: _send(h, 302, b"", "text/plain", {"Location": "/loop"}),
        }

    def _huge(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        chunk = self.png + b"\0" * (1 << 20)
        sent = 0
        try:
            for _ in range(1000):  # about 1 GB, unless the client hangs up first
                handler.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
        except OSError:
            pass
        self.huge_bytes_sent.append(sent)
        handler.close_connection = True

    def _slow(self, handler: BaseHTTPRequestHandler) -> None:
        time.sleep(self.slow_seconds)
        with contextlib.suppress(OSError):
            _send(handler, 200, self.png, "image/png")

    def _redirect(self, handler: BaseHTTPRequestHandler) -> None:
        target = parse_qs(urlsplit(handler.path).query)["to"][0]
        _send(handler, 302, b"", "text/plain", {"Location": target})


def send_image(handler: BaseHTTPRequestHandler, body: bytes, content_type: str = "image/png") -> None:
    """Answer 200 with an image: for `extra_routes` handlers."""
    _send(handler, 200, body, content_type)


def _send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    content_type: str,
    headers: dict[str, str] | None = None,
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    headers = headers or {}
    if "Content-Length" not in headers:
        handler.send_header("Content-Length", str(len(body)))
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)
