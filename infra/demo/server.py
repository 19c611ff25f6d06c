"""The demo host site: a fake Brightwave company site that embeds the chat widget with its one script tag.

    /             index.html   the marketing site, with deliberately aggressive global CSS (site.css)
    /inline.html               a help-centre page with the widget inline (`<support-chat mode="inline">`)
    /plain.html                the widget on a page with no CSS at all (the browser tests compare the two)

The chat function's URL changes from run to run (a taken port is replaced by a free one), so the pages say
`{{CHAT_URL}}` and this server fills it in. Stdlib only, served from a daemon thread of whoever starts it
(`make dev`, the browser tests); only the page files themselves are served (.html, .css, .svg), never this module.

    python -m infra.demo.server --chat-url http://127.0.0.1:8081 [--port 8080]
"""

from __future__ import annotations

import argparse
import html
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

from infra.standins.http import StandinServer

logger = logging.getLogger(__name__)

PAGES = Path(__file__).resolve().parent
PLACEHOLDER = "{{CHAT_URL}}"
SITE_KEY_PLACEHOLDER = "{{SITE_KEY}}"
_CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


class DemoSite:
    """Serves infra/demo on `host:port` (0: any free port) with `{{CHAT_URL}}` replaced by `chat_url`, on the
    stand-ins' threaded server (infra/standins/http.py)."""

    def __init__(self, chat_url: str, port: int = 0, host: str = "127.0.0.1", site_key: str = "") -> None:
        self.chat_url = chat_url.rstrip("/")
        self.site_key = site_key  # the pages' data-site-key (a tenant registry's key; empty: none)
        self._address = (host, port)
        self._server: StandinServer | None = None

    @property
    def url(self) -> str:
        """`http://HOST:PORT` of the running site (no trailing slash)."""
        if self._server is None:
            raise RuntimeError("DemoSite is not started; call start() first")
        return self._server.url

    @property
    def origin(self) -> str:
        """The browser origin of the pages: what the chat function's CHAT_ALLOWED_ORIGINS must hold."""
        return self.url

    def start(self) -> DemoSite:
        if self._server is None:
            self._server = StandinServer(_handler(self.chat_url, self.site_key), *self._address)
            self._server.start()
            logger.info("demo site on %s (chat %s)", self.url, self.chat_url)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def render(name: str, chat_url: str, site_key: str = "") -> bytes | None:
    """The page file `name` (relative to infra/demo) ready to serve, or None if it is not a page file."""
    path = (PAGES / name).resolve()
    if path.parent != PAGES or path.suffix not in _CONTENT_TYPES or not path.is_file():
        return None
    data = path.read_bytes()
    if path.suffix == ".html":
        data = data.replace(PLACEHOLDER.encode(), html.escape(chat_url, quote=True).encode())
        data = data.replace(SITE_KEY_PLACEHOLDER.encode(), html.escape(site_key, quote=True).encode())
    return data


def _handler(chat_url: str, site_key: str = "") -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "BrightwaveDemo/1"

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            name = "index.html" if path in ("", "/") else path.lstrip("/")
            if name == "favicon.ico":  # browsers ask for it: answer without an error in the console
                self.send_response(HTTPStatus.NO_CONTENT)
                self.end_headers()
                return
            body = render(name, chat_url, site_key)
            if body is None:
                self.send_error(HTTPStatus.NOT_FOUND)
                return
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", _CONTENT_TYPES[Path(name).suffix])
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")  # the chat URL in the page can change between runs
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            logger.debug("%s %s", self.address_string(), format % args)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chat-url", default="http://127.0.0.1:8081", help="the chat function (default: make dev's)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--site-key", default="", help="data-site-key of the pages (a tenant registry's site key)")
    args = parser.parse_args()
    site = DemoSite(args.chat_url, args.port, args.host).start()
    print(f"demo site: {site.url}/  (the chat function must allow the origin {site.origin})", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        site.stop()


if __name__ == "__main__":
    main()
