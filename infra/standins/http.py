"""The HTTP plumbing the stand-ins share: a threaded server on a free local port and a JSON request handler.

Stdlib only. A stand-in subclasses `StandinServer` (state, fault injection, request log) and `JsonHandler`
(routing); tests start it in a daemon thread and point the real SDK at `server.url`.

Two details matter for fidelity and speed:
- accepted sockets get TCP_NODELAY: the handler writes headers and body separately, and Nagle's algorithm
  plus the client's delayed ACK would otherwise stall every call by ~40 ms;
- HTTP/1.1 with keep-alive and chunked streaming, as the real services speak, so an aborted stream is
  seen by the client as a truncated body (an error), not as a normal end of response.
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple, Self
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger(__name__)


class LoggedRequest(NamedTuple):
    """One request as a stand-in received it: unpacks as ``method, path, json``."""

    method: str
    path: str  # with its query string, e.g. "/vectors/fetch?ids=a&ids=b"
    json: Any  # the parsed body; None for an empty or non-JSON body


class StandinServer(ThreadingHTTPServer):
    """A threaded HTTP server bound to 127.0.0.1 on a free port (by default), run in a daemon thread.

    Keeps the request log (`requests`) and the queue of injected failures that every stand-in offers.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, handler_class: type[BaseHTTPRequestHandler], host: str = "127.0.0.1", port: int = 0):
        super().__init__((host, port), handler_class)
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self.lock = threading.RLock()  # guards the stand-in's state; handlers run on many threads
        self.requests: list[LoggedRequest] = []
        self._failures: list[int] = []

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:50123`` (no trailing slash)."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> str:
        """Serve in a daemon thread; returns the base URL."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.serve_forever, kwargs={"poll_interval": 0.05}, name=type(self).__name__, daemon=True
            )
            self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving, drop open keep-alive connections and release the port."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        with self._connections_lock:
            for connection in self._connections:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.server_close()

    def record(self, method: str, path: str, body: Any) -> None:
        with self.lock:
            self.requests.append(LoggedRequest(method, path, body))

    def queue_failures(self, count: int, status: int) -> None:
        """Make the next `count` requests that reach fault injection answer `status`."""
        if count < 0 or not 400 <= status <= 599:
            raise ValueError("count must be >= 0 and status an HTTP error status")
        with self.lock:
            self._failures.extend([status] * count)

    def reset(self) -> None:
        """Forget the request log and queued failures (stand-ins also drop their stored state)."""
        with self.lock:
            self.requests.clear()
            self._failures.clear()

    def take_failure(self) -> int | None:
        """The status the current request must fail with, if a failure is queued."""
        with self.lock:
            return self._failures.pop(0) if self._failures else None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._connections_lock:
            self._connections.add(connection)
        return connection, address

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up (or a stream we abort on purpose) is routine here, not a crash to print.
        if isinstance(sys.exc_info()[1], OSError):
            logger.debug("connection from %s ended: %s", client_address, sys.exc_info()[1])
            return
        super().handle_error(request, client_address)

    def serve_until_interrupted(self, banner: str) -> None:
        """CLI helper: print where we listen, then serve in the foreground until Ctrl-C."""
        print(banner, flush=True)
        try:
            self.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        finally:
            self.server_close()


class BadJson(ValueError):
    """The request body is not valid JSON."""


class JsonHandler(BaseHTTPRequestHandler):
    """Request handler with JSON and chunked-streaming helpers. Subclasses implement `do_GET`/`do_POST`."""

    protocol_version = "HTTP/1.1"
    server_version = "standin"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    @property
    def route(self) -> str:
        """The request path without its query string."""
        return urlsplit(self.path).path

    @property
    def query(self) -> dict[str, list[str]]:
        """Query parameters; every value is a list, as a parameter may repeat (``?ids=a&ids=b``)."""
        return parse_qs(urlsplit(self.path).query, keep_blank_values=True)

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    @staticmethod
    def parse_json(raw: bytes) -> Any:
        """Parse a request body; an empty body is None. Raises `BadJson`."""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadJson(str(exc)) from exc

    def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        self.send_bytes(status, payload, "application/json", headers)

    def send_text(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        self.send_bytes(status, text.encode(), "text/plain; charset=utf-8", headers)

    def send_bytes(self, status: int, payload: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def start_chunked(self, status: int, content_type: str, headers: dict[str, str] | None = None) -> None:
        """Begin a streamed response (Transfer-Encoding: chunked); follow with `write_chunk` and `end_chunked`."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()

    def write_chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def abort_connection(self) -> None:
        """Drop the connection mid-response, as a crashed backend or a reset would."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def cli_parser(description: str, default_port: int) -> argparse.ArgumentParser:
    """The options every stand-in CLI shares: --host, --port, --api-key."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=default_port, help=f"port to bind (default {default_port})")
    parser.add_argument("--api-key", default=None, help="accept only this API key (default: any non-empty key)")
    return parser
