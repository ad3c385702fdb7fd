"""``runstream ui``: the dashboard over HTTP, from the standard library alone.

A :class:`http.server.ThreadingHTTPServer` serves the single-page app in ``static/`` and the
JSON API of :mod:`runstream._ui._api`. It binds 127.0.0.1 unless told otherwise, and
answers only requests whose ``Host`` names the address it serves (a web page elsewhere
cannot reach it by DNS rebinding); a ``Host`` that cannot be parsed is a 400. Stored files
are sent with a sandboxing ``Content-Security-Policy``, so a logged HTML file cannot script
the dashboard, and only a media type of RFC 6838's shape goes into their ``Content-Type``
(anything else is sent as ``application/octet-stream``): no stored value can add a header.
A client that disconnects, or sends half a request and stops, is dropped quietly.
"""

from __future__ import annotations

import logging
import shutil
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, quote, urlsplit

import msgspec

from .._core._exceptions import RunstreamError
from .._run._validate import is_media_type
from ._api import Api, ApiError

if TYPE_CHECKING:
    from .._store import LocalStore

__all__ = ("STATIC_FILES", "Dashboard", "static_text")

#: Everything the browser loads, shipped in the package: no CDN at run time.
STATIC_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "graphs.js": "text/javascript; charset=utf-8",
    "parallel.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "uPlot.iife.min.js": "text/javascript; charset=utf-8",
    "uPlot.min.css": "text/css; charset=utf-8",
    "uPlot.LICENSE": "text/plain; charset=utf-8",
}
_LOCAL_NAMES = {"127.0.0.1", "localhost", "::1"}
_json = msgspec.json.Encoder()
_log = logging.getLogger("runstream")
#: Seconds a client may take to send its request (and to read the answer) before it is
#: dropped: half-sent requests never hold a thread for long.
_CLIENT_TIMEOUT = 30.0


class _Server(ThreadingHTTPServer):
    """A deeper listen backlog than the standard library's 5: fifty clients connecting at
    once are queued by the kernel, not refused into a second-long SYN retry."""

    request_queue_size = 128
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (reset, broken pipe, timed out) is no error to print."""
        import sys

        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError | socket.timeout):
            return
        _log.exception("runstream ui: error serving %s", client_address)


def static_text(name: str) -> str:
    """A static file's text, read from the installed package."""
    return (resources.files("runstream._ui") / "static" / name).read_text(encoding="utf-8")


class Dashboard:
    """The dashboard server. Use as a context manager, or call :meth:`close`.

    :param store: the store to browse (the caller keeps it open while serving)
    :param host: the address to bind; ``0.0.0.0`` exposes the dashboard to the network
    :param port: the port, 0 for any free one (see :attr:`url`)
    """

    def __init__(self, store: LocalStore, host: str = "127.0.0.1", port: int = 8765) -> None:
        self.api = Api(store)
        self.host = host
        handler = type("Handler", (_Handler,), {"api": self.api, "allowed": _allowed(host)})
        self._server = _Server((host, port), handler)
        self.port = int(self._server.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{self.port}/"

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.2)

    def start(self) -> Dashboard:
        """Serve from a background thread (tests, benchmarks, notebooks)."""
        self._thread = threading.Thread(target=self.serve_forever, name="runstream-ui", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Dashboard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _allowed(host: str) -> set[str] | None:
    """Host names a request may carry; ``None`` (any) when bound to every interface."""
    if host in ("0.0.0.0", "::", ""):
        return None
    return _LOCAL_NAMES | {host.strip("[]")}


class _Handler(BaseHTTPRequestHandler):
    api: ClassVar[Api]
    allowed: ClassVar[set[str] | None]
    server_version = "runstream-ui"
    protocol_version = "HTTP/1.1"
    timeout = _CLIENT_TIMEOUT

    def do_GET(self) -> None:
        try:
            url = urlsplit(self.path)
        except ValueError:
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": "malformed request target"})
            return
        host = self._host()
        if host is None:
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": "malformed Host header"})
            return
        if self.allowed is not None and host not in self.allowed:
            self._send_json(HTTPStatus.FORBIDDEN, {"error": "unexpected Host header"})
            return
        query = dict(parse_qsl(url.query))
        try:
            if url.path == "/api/file":
                self._send_file(query)
            elif url.path in self.api.routes:
                self._send_json(HTTPStatus.OK, self.api.routes[url.path](query))
            elif url.path.startswith("/api/"):
                raise ApiError(404, f"no endpoint {url.path}")
            else:
                self._send_static(url.path)
        except ApiError as exc:
            self._send_json(HTTPStatus(exc.status), {"error": str(exc)})
        except RunstreamError as exc:
            self._send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": str(exc)})

    def _host(self) -> str | None:
        """The host name of the ``Host`` header ("" when absent), None when malformed."""
        value = self.headers.get("Host", "")
        try:
            parsed = urlsplit(f"//{value}")
            parsed.port  # noqa: B018 -- raises on a port that is not a number
        except ValueError:  # "[::1", "host:port:x", "host:99999"
            return None
        if parsed.path or parsed.query or parsed.fragment or parsed.username is not None:
            return None
        return parsed.hostname or ""

    def _send_json(self, status: HTTPStatus, body: Any) -> None:
        data = _json.encode(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self._send_body(data)

    def _send_static(self, path: str) -> None:
        name = "index.html" if path in ("/", "/index.html") else path.removeprefix("/static/")
        if name not in STATIC_FILES:  # a fixed list: nothing else on disk is reachable
            raise ApiError(404, f"no page {path}")
        data = static_text(name).encode()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", STATIC_FILES[name])
        self.send_header("Cache-Control", "no-cache")
        self._send_body(data)

    def _send_file(self, query: dict[str, str]) -> None:
        stored = self.api.file(query)
        size = stored.path.stat().st_size
        self.send_response(HTTPStatus.OK)
        media_type = stored.media_type if is_media_type(stored.media_type) else None
        self.send_header("Content-Type", media_type or "application/octet-stream")
        self.send_header("Content-Length", str(size))
        disposition = "attachment" if query.get("download") else "inline"
        self.send_header(
            "Content-Disposition", f"{disposition}; filename*=UTF-8''{quote(stored.name)}"
        )
        self.send_header("Content-Security-Policy", "sandbox")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        with stored.path.open("rb") as source:
            shutil.copyfileobj(source, self.wfile)

    def _send_body(self, data: bytes) -> None:
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a dashboard polling every few seconds would fill the terminal."""
