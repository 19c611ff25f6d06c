"""A stand-in for "any web server": a real HTTP/1.1 server on 127.0.0.1 whose pages and misbehaviour tests control.

The nightly website sync is tested against it, and `make dev` serves the sample company's docs site with it
(`serve_sample_site`, content in infra/sample_site/site/). Stdlib only.

    with Website() as site:
        site.put("/docs/a.html", "<html>...</html>", last_modified=datetime(2026, 11, 2, tzinfo=UTC))
        site.redirect("/old.html", "/docs/a.html")
        site.fail("/docs/a.html", 503, times=2)        # 503, 503, then the page
        ...                                          # point the client at site.url
        assert [r.status for r in site.requests_for("/docs/")] == [503, 503, 200]

What a client meets, in the order the server decides it:
1. `down` (or the countdown of `down_after(n)` ran out): the connection is closed without any response.
2. `delay` seconds of sleep before every response.
3. a failure queued with `fail(path, status, times, retry_after)`.
4. `/robots.txt` answers `robots_status` when that is set (404, 503, ...), else the `robots` text, else 404.
5. `gone(path)`: 410; `redirect(path, target, status)`: that status with Location exactly as given (relative or
   absolute, so chains and loops are the caller's to build).
6. a stored resource, with a conditional GET: the strong ETag is the quoted sha1 of the body as sent; a matching
   If-None-Match answers 304 (ETag still sent); without If-None-Match, an If-Modified-Since at or after the
   resource's Last-Modified answers 304. A folder URL ("/docs/") serves its "index.html"; "/docs" is a 301 to
   "/docs/" when only the index exists.
7. 404.

Switches: `require_header = ("Authorization", "Bearer t")` (any other request but robots.txt answers 401),
`etags = False` (no ETag header, If-None-Match ignored), `rotate_last_modified = True` (Last-Modified is
"now" on every response and If-Modified-Since never matches, like a CDN/ISR origin), `nonce = True` (every HTML
response gets a fresh csrf meta tag and script before </head>, so its body and ETag change on every fetch).
HEAD answers as GET without the body; every response has a Content-Length (HTTP/1.1 keep-alive). A ".gz" path is
served as application/gzip, bytes as given. `requests` logs every request (`Request(method, path, headers,
status)`, status None when the connection was dropped) and `bytes_sent` counts the body bytes written.

    python -m infra.standins.website [--port 8090]     # serves the sample docs site
"""

from __future__ import annotations

import argparse
import email.utils
import hashlib
import logging
import mimetypes
import re
import secrets
import threading
import time
import xml.etree.ElementTree as ElementTree
from collections import deque
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import NamedTuple, Self
from urllib.parse import unquote, urlsplit

from infra.standins.http import JsonHandler, StandinServer

logger = logging.getLogger(__name__)

ORIGIN_PLACEHOLDER = "{{origin}}"
SAMPLE_SITE = Path(__file__).resolve().parents[1] / "sample_site" / "site"
# The old help-centre address of the widget article, still linked from customers' sites.
SAMPLE_SITE_REDIRECTS = {"/help/booking-widget.html": "/docs/booking-widget.html"}

# mimetypes misses or varies across platforms on these; the rest falls back to it.
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".json": "application/json",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".pdf": "application/pdf",
    ".gz": "application/gzip",
}
_TEXTUAL = re.compile(r"^(text/|application/(json|xml|xhtml\+xml|javascript)\b|[^;]*\+xml\b)")
_HEAD_END = re.compile(rb"</head\s*>", re.IGNORECASE)


class Request(NamedTuple):
    """One request as the site received it."""

    method: str
    path: str  # with its query string
    headers: dict[str, str]  # names lower-cased
    status: int | None  # None: the connection was closed without a response


@dataclass(frozen=True)
class _Resource:
    body: bytes
    content_type: str
    last_modified: datetime | None
    etag: bool


def guess_content_type(path: str) -> str:
    """The Content-Type a plain static server would send for `path` (text types in UTF-8)."""
    suffix = Path(urlsplit(path).path).suffix.lower()
    if suffix in _CONTENT_TYPES:
        return _CONTENT_TYPES[suffix]
    guessed = mimetypes.guess_type(path, strict=False)[0] or "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed


def _charset(content_type: str) -> str:
    match = re.search(r"charset=([\w.-]+)", content_type, re.IGNORECASE)
    return match.group(1) if match else "utf-8"


def _whole_seconds(moment: datetime) -> datetime:
    """HTTP dates have one-second resolution; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def _etag_matches(header: str, etag: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 13.1.2): W/ prefixes do not matter."""
    if header.strip() == "*":
        return True
    candidates = (tag.strip().removeprefix("W/") for tag in header.split(","))
    return etag in candidates


class Website:
    """A static web server on 127.0.0.1 (a free port by default) with switches for the ways real sites misbehave.

    The port is bound at construction, so `url` is known before `start()`. Every method is thread-safe.
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self._lock = threading.RLock()
        self._resources: dict[str, _Resource] = {}
        self._redirects: dict[str, tuple[str, int]] = {}
        self._gone: set[str] = set()
        self._failures: dict[str, deque[tuple[int, str | None]]] = {}
        self._requests: list[Request] = []
        self._answers_before_down: int | None = None
        self._down = False
        self.bytes_sent = 0
        self.etags = True
        self.rotate_last_modified = False
        self.nonce = False
        self.delay = 0.0
        self.robots_status: int | None = None
        # (name, value): any other request answers 401, like docs behind a login
        self.require_header: tuple[str, str] | None = None
        self._server = StandinServer(_handler_for(self), host, port)

    # -- lifecycle ------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:50123`` (no trailing slash)."""
        return self._server.url

    @property
    def origin(self) -> str:
        """The site's origin (scheme, host, port): what absolute links and sitemap entries start with."""
        return self._server.url

    def start(self) -> Self:
        """Serve from a daemon thread (idempotent)."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop keep-alive connections and release the port."""
        self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- content --------------------------------------------------------------------------------------------

    def put(self, path: str, body: bytes | str, content_type: str | None = None, *,
            last_modified: datetime | None = None, etag: bool = True) -> None:
        """Serve `body` at `path` (which also undoes `remove`, `gone` and `redirect` on it).

        The content type is guessed from the extension when not given; a str body is encoded in the content
        type's charset (UTF-8 by default). `last_modified` enables Last-Modified and If-Modified-Since;
        `etag=False` serves this one resource without an ETag.
        """
        path = _normalise(path)
        content_type = content_type or guess_content_type(path)
        data = body.encode(_charset(content_type)) if isinstance(body, str) else bytes(body)
        moment = _whole_seconds(last_modified) if last_modified is not None else None
        with self._lock:
            self._redirects.pop(path, None)
            self._gone.discard(path)
            self._resources[path] = _Resource(data, content_type, moment, etag)

    def edit(self, path: str, old: str, new: str) -> None:
        """Replace the text `old` by `new` in a stored resource; raises ValueError when `old` is not in it.

        A resource with a Last-Modified gets a later one (now, and at least a second after the old value), so
        an If-Modified-Since with the old date no longer matches.
        """
        path = _normalise(path)
        with self._lock:
            resource = self._resources[path]
            charset = _charset(resource.content_type)
            text = resource.body.decode(charset)
            if old not in text:
                raise ValueError(f"{old!r} is not in {path}")
            moment = resource.last_modified
            if moment is not None:
                moment = max(_whole_seconds(datetime.now(UTC)), moment + timedelta(seconds=1))
            self._resources[path] = replace(resource, body=text.replace(old, new).encode(charset),
                                            last_modified=moment)

    def body(self, path: str) -> bytes:
        """The stored body of `path` (before any nonce injection); KeyError if there is none."""
        with self._lock:
            return self._resources[_normalise(path)].body

    def remove(self, path: str) -> None:
        """Forget `path`: it answers 404 from now on."""
        path = _normalise(path)
        with self._lock:
            self._resources.pop(path, None)
            self._redirects.pop(path, None)
            self._gone.discard(path)

    def gone(self, path: str) -> None:
        """Delete `path` for good: it answers 410 Gone from now on."""
        path = _normalise(path)
        with self._lock:
            self._resources.pop(path, None)
            self._redirects.pop(path, None)
            self._gone.add(path)

    def redirect(self, path: str, target: str, status: int = 301) -> None:
        """Answer `path` with `status` and `Location: target` (sent as given: relative or absolute)."""
        if status not in (301, 302, 303, 307, 308):
            raise ValueError(f"{status} is not a redirect status")
        path = _normalise(path)
        with self._lock:
            self._resources.pop(path, None)
            self._gone.discard(path)
            self._redirects[path] = (target, status)

    def load_dir(self, directory: Path | str, *, last_modified: datetime | None = None) -> list[str]:
        """Serve every file under `directory` at its relative path; returns the paths, sorted.

        `{{origin}}` in text files becomes this site's origin (robots.txt and sitemaps need absolute URLs, and
        the port is only known now). A folder's index.html is also its folder URL ("/docs/").
        """
        root = Path(directory)
        loaded = []
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            path = "/" + file.relative_to(root).as_posix()
            content_type = guess_content_type(path)
            data: bytes | str = file.read_bytes()
            if _TEXTUAL.match(content_type):
                data = data.decode(_charset(content_type)).replace(ORIGIN_PLACEHOLDER, self.origin)
            self.put(path, data, content_type, last_modified=last_modified)
            loaded.append(path)
        return loaded

    def follow_dir(self, directory: Path | str, known: dict[str, float] | None = None) -> dict[str, float]:
        """Serve `directory` as it is now: files added or changed since `known` (path -> mtime, as returned by the
        previous call) are put, with their modification time as Last-Modified; files gone from it answer 404.
        `make dev` calls it every second, so an edit of a page under .local/docs-site/ is on the site at once."""
        root = Path(directory)
        known = dict(known or {})
        now: dict[str, float] = {}
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            path = "/" + file.relative_to(root).as_posix()
            mtime = file.stat().st_mtime
            now[path] = mtime
            if known.get(path) == mtime:
                continue
            content_type = guess_content_type(path)
            data: bytes | str = file.read_bytes()
            if _TEXTUAL.match(content_type):
                data = data.decode(_charset(content_type)).replace(ORIGIN_PLACEHOLDER, self.origin)
            self.put(path, data, content_type, last_modified=datetime.fromtimestamp(mtime, UTC))
        for path in set(known) - set(now):
            self.remove(path)
        return now

    def paths(self) -> list[str]:
        """The paths that serve content (not redirects or gone ones), sorted."""
        with self._lock:
            return sorted(self._resources)

    @property
    def robots(self) -> str | None:
        """The text of /robots.txt, or None when the site has none (404)."""
        with self._lock:
            resource = self._resources.get("/robots.txt")
        return resource.body.decode(_charset(resource.content_type)) if resource else None

    @robots.setter
    def robots(self, text: str | None) -> None:
        if text is None:
            self.remove("/robots.txt")
        else:
            self.put("/robots.txt", text, "text/plain; charset=utf-8")

    # -- failures -------------------------------------------------------------------------------------------

    def fail(self, path: str, status: int, times: int = 1, retry_after: str | None = None) -> None:
        """The next `times` requests to `path` answer `status` (with `Retry-After: retry_after` when given:
        seconds like "2" or an HTTP-date); later ones get the normal answer. Calls add up in order."""
        if not 400 <= status <= 599 or times < 0:
            raise ValueError("status must be an HTTP error status and times >= 0")
        path = _normalise(path)
        with self._lock:
            self._failures.setdefault(path, deque()).extend([(status, retry_after)] * times)

    @property
    def down(self) -> bool:
        """True: every request has its connection closed without a response (a site that went away).
        Setting it (either way) cancels a `down_after` countdown."""
        with self._lock:
            return self._down or self._answers_before_down == 0

    @down.setter
    def down(self, value: bool) -> None:
        with self._lock:
            self._down = bool(value)
            self._answers_before_down = None

    def down_after(self, answers: int) -> None:
        """Answer the next `answers` requests normally, then go `down`."""
        if answers < 0:
            raise ValueError("answers must be >= 0")
        with self._lock:
            self._down = False
            self._answers_before_down = answers

    # -- request log ----------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[Request]:
        """A copy of the request log, oldest first."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, path_prefix: str) -> list[Request]:
        """The logged requests whose path (with query) starts with `path_prefix`."""
        return [request for request in self.requests if request.path.startswith(path_prefix)]

    def clear_log(self) -> None:
        """Forget the request log and reset `bytes_sent`."""
        with self._lock:
            self._requests.clear()
            self.bytes_sent = 0

    # -- serving (called by the handler threads) ------------------------------------------------------------

    def _admit(self) -> bool:
        """Count one request against `down_after`; False if the connection must be dropped."""
        with self._lock:
            if self._down or self._answers_before_down == 0:
                return False
            if self._answers_before_down is not None:
                self._answers_before_down -= 1
            return True

    def _log(self, request: Request, body_bytes: int) -> None:
        with self._lock:
            self._requests.append(request)
            self.bytes_sent += body_bytes

    def _take_failure(self, path: str) -> tuple[int, str | None] | None:
        with self._lock:
            queue = self._failures.get(path)
            return queue.popleft() if queue else None

    def _answer(self, path: str, headers: dict[str, str]) -> _Answer:
        """Decide the response to a GET of `path` (steps 3-7 of the module docstring)."""
        failure = self._take_failure(path)
        if failure is not None:
            status, retry_after = failure
            return _error_page(status, {"Retry-After": retry_after} if retry_after else {})
        with self._lock:
            required = self.require_header
            if required and path != "/robots.txt" and headers.get(required[0].lower()) != required[1]:
                return _error_page(401, {"WWW-Authenticate": "Bearer"})
            if path == "/robots.txt" and self.robots_status is not None:
                return _error_page(self.robots_status)
            if path in self._gone:
                return _error_page(410)
            if path in self._redirects:
                target, status = self._redirects[path]
                return _error_page(status, {"Location": target})
            resource = self._resources.get(path)
            if resource is None and path.endswith("/"):
                resource = self._resources.get(path + "index.html")
            if resource is None:
                if path + "/index.html" in self._resources:
                    return _error_page(301, {"Location": path + "/"})
                return _error_page(404)
            etags, rotate, nonce = self.etags and resource.etag, self.rotate_last_modified, self.nonce
        return _conditional(resource, headers, etags=etags, rotate=rotate, nonce=nonce)


class _Answer(NamedTuple):
    status: int
    body: bytes
    content_type: str
    headers: dict[str, str]


def _error_page(status: int, headers: dict[str, str] | None = None) -> _Answer:
    phrase = HTTPStatus(status).phrase
    body = f"<!DOCTYPE html><html><head><title>{status} {phrase}</title></head><body><h1>{phrase}</h1></body></html>"
    return _Answer(status, body.encode(), "text/html; charset=utf-8", headers or {})


def _inject_nonce(body: bytes) -> bytes:
    token = secrets.token_urlsafe(16)
    snippet = (f'<meta name="csrf-token" content="{token}">'
               f'<script>var nonce="{secrets.token_hex(8)}";</script>').encode()
    match = _HEAD_END.search(body)
    if match is None:
        return snippet + body
    return body[:match.start()] + snippet + body[match.start():]


def _conditional(resource: _Resource, request_headers: dict[str, str], *, etags: bool, rotate: bool,
                 nonce: bool) -> _Answer:
    """A stored resource as 200 or 304, by RFC 9110's rules: If-None-Match first, If-Modified-Since only without it."""
    body = resource.body
    if nonce and resource.content_type.startswith("text/html"):
        body = _inject_nonce(body)
    headers: dict[str, str] = {}
    etag = f'"{hashlib.sha1(body).hexdigest()}"' if etags else None
    if etag:
        headers["ETag"] = etag
    last_modified = _whole_seconds(datetime.now(UTC)) if rotate else resource.last_modified
    if last_modified is not None:
        headers["Last-Modified"] = email.utils.format_datetime(last_modified, usegmt=True)
    if_none_match = request_headers.get("if-none-match")
    if_modified_since = request_headers.get("if-modified-since")
    not_modified = False
    if if_none_match is not None:
        not_modified = etag is not None and _etag_matches(if_none_match, etag)
    elif if_modified_since and last_modified is not None and not rotate:
        since = _parse_http_date(if_modified_since)
        not_modified = since is not None and since >= last_modified
    # A 304 still tells the length a 200 would have had (RFC 9110 8.6); the handler writes no body for it.
    return _Answer(304 if not_modified else 200, body, resource.content_type, headers)


def _parse_http_date(value: str) -> datetime | None:
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return _whole_seconds(parsed)


def _normalise(path: str) -> str:
    """The lookup key of a path: percent-decoded, without query or fragment, with a leading slash."""
    path = unquote(urlsplit(path).path) or "/"
    return path if path.startswith("/") else "/" + path


def _handler_for(site: Website) -> type[JsonHandler]:
    class WebsiteHandler(JsonHandler):
        server_version = "website-standin/1"

        def version_string(self) -> str:
            return self.server_version

        def do_GET(self) -> None:
            self._serve(send_body=True)

        def do_HEAD(self) -> None:
            self._serve(send_body=False)

        def do_POST(self) -> None:
            self._serve(send_body=True, allowed=False)

        do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_POST

        def _serve(self, send_body: bool, allowed: bool = True) -> None:
            self.read_body()  # keep the connection usable for the next request
            headers = {name.lower(): value for name, value in self.headers.items()}
            if not site._admit():
                site._log(Request(self.command, self.path, headers, None), 0)
                self.abort_connection()
                return
            if site.delay:
                time.sleep(site.delay)
            if allowed:
                answer = site._answer(_normalise(self.path), headers)
            else:
                answer = _error_page(405, {"Allow": "GET, HEAD"})
            with_body = send_body and answer.status != 304
            # Logged before answering, so a client that has its response can already see its request logged.
            site._log(Request(self.command, self.path, headers, answer.status), len(answer.body) if with_body else 0)
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if with_body:
                self.wfile.write(answer.body)

    return WebsiteHandler


def _sitemap_dates(site: Website) -> dict[str, datetime]:
    """path -> <lastmod> of the site's /sitemap.xml entries that are on this site."""
    namespace = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
    dates = {}
    for entry in ElementTree.fromstring(site.body("/sitemap.xml")).iter(f"{namespace}url"):
        location = entry.findtext(f"{namespace}loc", "").strip()
        lastmod = entry.findtext(f"{namespace}lastmod", "").strip()
        if location.startswith(site.origin) and lastmod:
            dates[_normalise(location[len(site.origin):])] = datetime.fromisoformat(lastmod).replace(tzinfo=UTC)
    return dates


def serve_sample_site(port: int = 0, host: str = "127.0.0.1", directory: Path | str = SAMPLE_SITE) -> Website:
    """The sample company's docs site (infra/sample_site/site/) on `host:port`, started.

    Pages carry the Last-Modified of their sitemap <lastmod>; the old help-centre URLs redirect (301).
    """
    site = Website(port, host)
    site.load_dir(directory)
    stored = set(site.paths())
    for path, moment in _sitemap_dates(site).items():
        if path.endswith("/"):
            path += "index.html"
        if path in stored:
            site.put(path, site.body(path), last_modified=moment)
    for old, new in SAMPLE_SITE_REDIRECTS.items():
        site.redirect(old, new)
    return site.start()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the sample docs site (infra/sample_site/site/).")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    site = serve_sample_site(args.port, args.host)
    print(f"sample docs site: {site.url}/docs/  (sitemap {site.url}/sitemap.xml)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        site.stop()


if __name__ == "__main__":
    main()
