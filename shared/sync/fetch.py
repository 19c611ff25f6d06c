"""The sync's HTTP fetcher: conditional GETs, redirects checked hop by hop, bounded bodies, per-host politeness.

    fetch(url) -> FetchResult        never raises for network trouble; `error` names what went wrong:
        "invalid_url"                the address (or nothing at all) is not an http(s) URL
        "dns"                        the host name does not resolve
        "blocked_address"            the host resolves to a loopback/private/link-local/... address (shared.sync.safety)
        "timeout"                    connect, read or the whole response took too long
        "connection"                 refused, reset, TLS failure, protocol error
        "decoding"                   the Content-Encoding (gzip, br) could not be decoded
        "redirect_loop"              a redirect leads back to an address already visited in this fetch
        "too_many_redirects"         more than `max_redirects` hops
        "off_scope_redirect"         `follow(url)` refused a hop's target
        "bad_redirect"               a Location that is not an http(s) URL
        "too_large"                  the body passed `max_bytes` (the first `max_bytes` are kept)
    An HTTP status is not an error: `error` stays None and the caller reads `status` (404, 410, 429, 5xx, ...).

Redirects are followed by hand so that every hop is normalized, in scope, and on a public address: letting the client
follow them would let a public page redirect the sync to the metadata server. The result records each redirecting
response as (its URL, its status) in `redirects`; `final_url` is the last address reached, or the one a hop was
refused at (then `status` and `headers` are those of the redirect that pointed there).

httpx is imported when the first Fetcher is built, so importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from shared.sync.safety import BlockedAddress, check_host
from shared.sync.urls import host_of, normalize

log = logging.getLogger(__name__)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
RETRY_AFTER_STATUSES = frozenset({429, 503})
MAX_RETRY_AFTER_SECONDS = 24 * 3600.0
# Headers the fetcher owns: a caller's value would break identification or the conditional request.
# gzip and deflate are what httpx decodes without optional packages.
_DEFAULT_HEADERS = {"Accept": "*/*", "Accept-Encoding": "gzip, deflate"}
_RESERVED_HEADERS = frozenset({"user-agent", "host", "if-none-match", "if-modified-since", "content-length"})


@dataclass
class FetchResult:
    """What one fetch got: the last response reached (status, lower-case headers, body) or the error that stopped it."""

    url: str
    final_url: str
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    redirects: list[tuple[str, int]] = field(default_factory=list)
    elapsed: float = 0.0
    error: str | None = None
    detail: str = ""
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        """A 2xx response read completely (no error)."""
        return self.error is None and self.status is not None and 200 <= self.status < 300

    @property
    def not_modified(self) -> bool:
        """The server answered 304: the stored copy (matching the ETag / Last-Modified sent) is current."""
        return self.error is None and self.status == 304

    @property
    def etag(self) -> str | None:
        """The ETag to send back as If-None-Match next time."""
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        """The Last-Modified value to send back as If-Modified-Since next time (verbatim, as RFC 9110 asks)."""
        return self.headers.get("last-modified")

    @property
    def content_type(self) -> str:
        """The media type, lower-case, without parameters ("" when the server sent none)."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    @property
    def charset(self) -> str | None:
        """The charset parameter of Content-Type, lower-case, or None."""
        for parameter in self.headers.get("content-type", "").split(";")[1:]:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "charset" and value.strip().strip("\"'"):
                return value.strip().strip("\"'").lower()
        return None


_DELTA_SECONDS = re.compile(r"^-?\d+(\.\d+)?$")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from `now` a Retry-After value asks to wait: delta-seconds or an HTTP-date (RFC 9110 section 10.2.3).

    A negative wait or a date in the past reads as 0, a wait over a day is capped at a day, anything else is None.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if _DELTA_SECONDS.match(value):
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:  # HTTP-dates are GMT by definition
            when = when.replace(tzinfo=timezone.utc)
        now = now or datetime.now(timezone.utc)
        if now.tzinfo is None:
            now = now.replace(tzinfo=timezone.utc)
        seconds = (when - now).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


class CircuitBreaker:
    """Stops hammering a host that keeps failing: open after `threshold` consecutive failures, closed by a success.

    A failure is what the caller says it is; `record_result` counts connection-level errors (timeout, connection,
    dns) and 5xx statuses, and ignores results that say nothing about the host's health (a 404, a blocked redirect).
    """

    FAILURE_ERRORS = frozenset({"timeout", "connection", "dns"})

    def __init__(self, threshold: int = 5):
        self.threshold = threshold
        self._failures: dict[str, int] = {}
        self._lock = threading.Lock()

    def record(self, host: str, ok: bool) -> None:
        """Count one outcome for `host`: a failure adds one, a success resets the count."""
        host = host.lower()
        with self._lock:
            self._failures[host] = 0 if ok else self._failures.get(host, 0) + 1

    def record_result(self, result: FetchResult) -> None:
        """Count a FetchResult against the host that produced it (the last hop's host)."""
        host = host_of(result.final_url) or host_of(result.url)
        if not host:
            return
        if result.error in self.FAILURE_ERRORS or (result.error is None and (result.status or 0) >= 500):
            self.record(host, False)
        elif result.error is None and result.status is not None:
            self.record(host, True)

    def open(self, host: str) -> bool:
        """True when `host` failed `threshold` times in a row: skip it for the rest of the run."""
        with self._lock:
            return self._failures.get(host.lower(), 0) >= self.threshold


class _HostGate:
    """Per-host politeness: at most `concurrency` requests in flight, request starts at least `delay` apart."""

    def __init__(self, concurrency: int):
        self._slots = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        self.delay = 0.0
        self._next_start = 0.0

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        with self._slots:
            with self._lock:
                # Reserve a start time under the lock, sleep outside it: waiting threads queue up in order.
                now = time.monotonic()
                start = max(now, self._next_start)
                self._next_start = start + self.delay
            if start > now:
                time.sleep(start - now)
            yield


class _Stop(Exception):
    """Ends a fetch with an error class; caught in `Fetcher.fetch`."""

    def __init__(self, error: str, detail: str):
        super().__init__(detail)
        self.error = error
        self.detail = detail


class Fetcher:
    """A thread-safe HTTP client for the sync; one per run, shared by the worker threads, `close()` at the end.

    `timeout` bounds each network operation (connect, each read) and, times three, a whole response. Hosts in
    `allowed_private_hosts` skip the address check (tests, or documentation a tenant hosts on a private network);
    they also skip DNS, so a test on httpx's MockTransport can list its made-up hosts there. `headers` (e.g. an
    Authorization for docs behind a login) go with every request to the first URL's host and are dropped on a hop to
    any other host or from https to http. Proxy settings from the environment are ignored on purpose: the address
    check must see the host the request really goes to.
    """

    def __init__(self, user_agent: str, *, timeout: float = 20, max_bytes: int = 20_000_000, max_redirects: int = 10,
                 allowed_private_hosts: frozenset[str] = frozenset(), headers: dict | None = None,
                 concurrency_per_host: int = 4, transport=None, total_timeout: float | None = None):
        import httpx

        self._httpx = httpx
        self.user_agent = user_agent
        self.timeout = timeout
        self.total_timeout = total_timeout if total_timeout is not None else 3 * timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.allowed_private_hosts = frozenset(host.lower() for host in allowed_private_hosts)
        self.headers = _custom_headers(headers)
        self.concurrency_per_host = max(1, concurrency_per_host)
        # The transport is driven directly, not through httpx.Client: the client parses every Location header even
        # when it does not follow it (a malformed one raises and loses the response), and keeps a cookie jar that
        # would carry one source's session into another's requests.
        self._transport = transport if transport is not None else httpx.HTTPTransport(trust_env=False)
        self._timeout = httpx.Timeout(timeout).as_dict()
        self._gates: dict[str, _HostGate] = {}
        self._gates_lock = threading.Lock()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._transport.close()

    def set_delay(self, host: str, seconds: float) -> None:
        """Space request starts to `host` (`host[:port]` as `host_of` gives it) at least `seconds` apart."""
        self._gate(host).delay = max(0.0, float(seconds))

    def _gate(self, host: str) -> _HostGate:
        host = host.lower()
        with self._gates_lock:
            gate = self._gates.get(host)
            if gate is None:
                gate = self._gates[host] = _HostGate(self.concurrency_per_host)
            return gate

    def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None,
              follow: Callable[[str], bool] | None = None, headers: dict | None = None) -> FetchResult:
        """GET `normalize(url)` (conditionally when `etag` / `last_modified` are given), following redirects that
        `follow` accepts; see the module docstring for the errors and what `final_url` and `redirects` hold."""
        started = time.monotonic()
        result = FetchResult(url=url, final_url=url)
        try:
            self._fetch(result, etag, last_modified, follow, {**self.headers, **_custom_headers(headers)})
        except _Stop as stop:
            result.error, result.detail = stop.error, stop.detail
            log.debug("fetch %s stopped: %s (%s)", url, stop.error, stop.detail)
        finally:
            result.elapsed = time.monotonic() - started
        if result.status in RETRY_AFTER_STATUSES:
            result.retry_after = parse_retry_after(result.headers.get("retry-after"))
        return result

    def _fetch(self, result: FetchResult, etag, last_modified, follow, custom: dict[str, str]) -> None:
        current = normalize(result.url)
        if current is None:
            raise _Stop("invalid_url", f"not an http(s) URL: {result.url!r}")
        result.final_url = current
        first = urlsplit(current)
        conditional = {}
        if etag:
            conditional["If-None-Match"] = etag
        if last_modified:
            conditional["If-Modified-Since"] = last_modified
        seen = {current}
        while True:
            hop = urlsplit(current)
            # Credentials stay with the host they were given for, and never travel in clear text after https.
            same_origin = hop.netloc == first.netloc and not (first.scheme == "https" and hop.scheme == "http")
            self._check_address(hop.hostname or "")
            self._request(current, {**conditional, **(custom if same_origin else {})}, result)
            location = result.headers.get("location")
            if result.status not in REDIRECT_STATUSES or not location:
                return
            result.redirects.append((current, result.status))
            target = normalize(location, base=current)
            if target is None:
                raise _Stop("bad_redirect", f"{current} redirects to {location!r}, not an http(s) URL")
            result.final_url = target
            if target in seen:
                raise _Stop("redirect_loop", f"{current} redirects back to {target}")
            if len(result.redirects) > self.max_redirects:
                raise _Stop("too_many_redirects", f"more than {self.max_redirects} redirects")
            if follow is not None and not follow(target):
                raise _Stop("off_scope_redirect", f"{current} redirects to {target}, outside the scope")
            seen.add(target)
            current = target

    def _check_address(self, hostname: str) -> None:
        try:
            check_host(hostname, self.allowed_private_hosts)
        except BlockedAddress as exc:
            raise _Stop("blocked_address", str(exc)) from None
        except socket.gaierror as exc:
            raise _Stop("dns", f"{hostname} does not resolve ({exc})") from None
        except (UnicodeError, ValueError) as exc:
            raise _Stop("invalid_url", f"bad host {hostname!r} ({exc})") from None

    def _request(self, url: str, headers: dict[str, str], result: FetchResult) -> None:
        """One GET: status, headers and (unless it redirects) the body, bounded in size and time."""
        httpx = self._httpx
        result.status, result.headers, result.body = None, {}, b""
        with self._gate(host_of(url)).slot():
            deadline = time.monotonic() + self.total_timeout
            try:
                all_headers = {**_DEFAULT_HEADERS, **headers, "User-Agent": self.user_agent}
                request = httpx.Request("GET", url, headers=all_headers, extensions={"timeout": self._timeout})
                response = self._transport.handle_request(request)
                try:
                    result.status = response.status_code
                    result.headers = {key.lower(): value for key, value in response.headers.items()}
                    if result.status in REDIRECT_STATUSES or result.status == 304:
                        return  # a redirect's or a 304's body is never used
                    result.body = self._read_body(response, result, deadline)
                finally:
                    response.close()
            except httpx.TimeoutException as exc:
                raise _Stop("timeout", f"{url}: {type(exc).__name__} after {self.timeout:g} s") from None
            except httpx.DecodingError as exc:
                raise _Stop("decoding", f"{url}: {exc}") from None
            except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
                raise _Stop("invalid_url", f"{url}: {exc}") from None
            except (httpx.HTTPError, OSError) as exc:
                if _caused_by(exc, socket.gaierror):  # a host in allowed_private_hosts is resolved only here
                    raise _Stop("dns", f"{url}: the host does not resolve ({exc})") from None
                raise _Stop("connection", f"{url}: {type(exc).__name__}: {exc}") from None

    def _read_body(self, response, result: FetchResult, deadline: float) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise _Stop("too_large", f"Content-Length {declared} is over {self.max_bytes} bytes")
        body = bytearray()
        for chunk in response.iter_bytes():  # as they arrive, so the deadline is checked at least every read
            body += chunk
            if len(body) > self.max_bytes:
                result.body = bytes(body[: self.max_bytes])
                raise _Stop("too_large", f"body is over {self.max_bytes} bytes")
            if time.monotonic() > deadline:
                result.body = bytes(body)
                raise _Stop("timeout", f"the response took over {self.total_timeout:g} s")
        return bytes(body)


def _custom_headers(headers: dict | None) -> dict[str, str]:
    return {str(key): str(value) for key, value in (headers or {}).items()
            if str(key).lower() not in _RESERVED_HEADERS}


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 10:  # httpx wraps httpcore's error, which wraps the socket's
        if isinstance(current, kind):
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False
