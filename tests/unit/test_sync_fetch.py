"""The sync's fetcher and address safety (shared/sync/fetch.py, shared/sync/safety.py) against real HTTP servers on
127.0.0.1: conditional GETs, redirects checked hop by hop, bounds, errors, Retry-After, headers, per-host limits."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared.sync import safety
from shared.sync.fetch import CircuitBreaker, Fetcher, FetchResult, parse_retry_after
from shared.sync.safety import BlockedAddress, check_host
from shared.sync.urls import host_of

AGENT = "BrightwaveDocsSync/1.0 (+https://brightwave.example/bot)"
LOCAL = frozenset({"127.0.0.1"})
LAST_MODIFIED = "Wed, 01 May 2024 10:00:00 GMT"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.starts: list[float] = []
        self.other_port = 0  # set by the fixture: where /to-other points

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request, client_address):
        pass  # clients that time out close their end; the broken pipe is expected


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args):
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, length: bool = True):
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, status: int, location: str):
        self._send(status, b"moved", {"Location": location})

    def do_GET(self):
        server = self.server
        with server.lock:
            server.requests.append((self.path, {key.lower(): value for key, value in self.headers.items()}))
        path = self.path
        if path == "/page":
            if self.headers.get("If-None-Match") == '"v1"' or self.headers.get("If-Modified-Since") == LAST_MODIFIED:
                return self._send(304, headers={"ETag": '"v1"'}, length=False)
            return self._send(200, b"<h1>Page</h1>", {"Content-Type": 'text/html; charset="UTF-8"', "ETag": '"v1"',
                                                      "Last-Modified": LAST_MODIFIED})
        if path == "/r1":
            return self._redirect(301, "/r2")
        if path == "/r2":
            return self._redirect(302, "r3#ignored")  # relative, with a fragment
        if path == "/r3":
            return self._redirect(307, f"{server.base}/page?utm_source=redirect")
        if path == "/loop-a":
            return self._redirect(302, "/loop-b")
        if path == "/loop-b":
            return self._redirect(301, "/loop-a")
        if path.startswith("/chain/"):
            left = int(path.rsplit("/", 1)[1])
            return self._redirect(302, f"/chain/{left - 1}") if left else self._send(200, b"end")
        if path == "/to-other":
            return self._redirect(302, f"http://127.0.0.1:{server.other_port}/echo")
        if path == "/to-metadata":
            return self._redirect(302, "http://169.254.169.254/computeMetadata/v1/")
        if path == "/to-mailto":
            return self._redirect(302, "mailto:support@example.test")
        if path == "/to-broken":
            return self._redirect(301, "http://[not-an-address/x")
        if path == "/gzip":
            return self._send(200, gzip.compress(b"<p>compressed</p>" * 100), {"Content-Encoding": "gzip"})
        if path == "/set-cookie":
            return self._send(200, b"ok", {"Set-Cookie": "session=tenant-a; Path=/"})
        if path == "/echo":
            body = json.dumps(dict(self.headers.items())).encode()
            return self._send(200, body, {"Content-Type": "application/json"})
        if path == "/big":
            return self._send(200, b"x" * 300_000, length=False)  # HTTP/1.0: the body ends when the server closes
        if path == "/big-declared":
            return self._send(200, b"x" * 300_000)
        if path == "/slow":
            time.sleep(0.6)
            return self._send(200, b"late")
        if path == "/drip":
            self.send_response(200)
            self.end_headers()
            for _ in range(10):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.08)
            return None
        if path == "/busy":
            return self._send(429, b"slow down", {"Retry-After": "7"})
        if path == "/busy-date":
            when = datetime.now(timezone.utc) + timedelta(seconds=120)
            return self._send(503, b"maintenance", {"Retry-After": format_datetime(when, usegmt=True)})
        if path.startswith("/count"):
            with server.lock:
                server.in_flight += 1
                server.max_in_flight = max(server.max_in_flight, server.in_flight)
                server.starts.append(time.monotonic())
            time.sleep(0.1)
            with server.lock:
                server.in_flight -= 1
            return self._send(200, b"counted")
        return self._send(404, b"no such page")


@pytest.fixture(scope="module")
def servers():
    main, other = _Server(), _Server()
    main.other_port = other.server_address[1]
    threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in (main, other)]
    for thread in threads:
        thread.start()
    yield main, other
    for server in (main, other):
        server.shutdown()
        server.server_close()


@pytest.fixture
def server(servers):
    main, other = servers
    for each in (main, other):
        each.requests.clear()
        each.starts.clear()
        each.max_in_flight = 0
    return main


@pytest.fixture
def other(servers, server):
    return servers[1]


@pytest.fixture
def fetcher():
    with Fetcher(AGENT, timeout=2, allowed_private_hosts=LOCAL) as client:
        yield client


def _paths(server: _Server) -> list[str]:
    return [path for path, _ in server.requests]


# --- conditional requests ---------------------------------------------------------------------------------------

def test_plain_get(fetcher, server):
    result = fetcher.fetch(f"{server.base}/page")
    assert result.ok and result.error is None and result.status == 200
    assert result.body == b"<h1>Page</h1>"
    assert result.final_url == f"{server.base}/page" and result.redirects == []
    assert result.etag == '"v1"' and result.last_modified == LAST_MODIFIED
    assert result.content_type == "text/html" and result.charset == "utf-8"
    assert result.elapsed > 0
    assert server.requests[0][1]["user-agent"] == AGENT


def test_304_when_the_etag_sent_matches(fetcher, server):
    result = fetcher.fetch(f"{server.base}/page", etag='"v1"')
    assert result.not_modified and not result.ok and result.body == b""
    assert server.requests[-1][1]["if-none-match"] == '"v1"'
    changed = fetcher.fetch(f"{server.base}/page", etag='"v0"')
    assert changed.ok and changed.body == b"<h1>Page</h1>" and not changed.not_modified


def test_304_when_if_modified_since_matches(fetcher, server):
    result = fetcher.fetch(f"{server.base}/page", last_modified=LAST_MODIFIED)
    assert result.not_modified
    assert server.requests[-1][1]["if-modified-since"] == LAST_MODIFIED
    assert "if-none-match" not in server.requests[-1][1]


# --- redirects --------------------------------------------------------------------------------------------------

def test_redirect_chain_is_recorded_hop_by_hop(fetcher, server):
    seen = []
    result = fetcher.fetch(f"{server.base}/r1", follow=lambda url: seen.append(url) or True)
    assert result.ok and result.body == b"<h1>Page</h1>"
    assert result.final_url == f"{server.base}/page"  # normalized: fragment and tracking parameter gone
    assert result.redirects == [(f"{server.base}/r1", 301), (f"{server.base}/r2", 302), (f"{server.base}/r3", 307)]
    assert seen == [f"{server.base}/r2", f"{server.base}/r3", f"{server.base}/page"]
    assert _paths(server) == ["/r1", "/r2", "/r3", "/page"]


def test_redirect_loop(fetcher, server):
    result = fetcher.fetch(f"{server.base}/loop-a")
    assert result.error == "redirect_loop"
    assert result.redirects == [(f"{server.base}/loop-a", 302), (f"{server.base}/loop-b", 301)]
    assert result.final_url == f"{server.base}/loop-a"
    assert _paths(server) == ["/loop-a", "/loop-b"]


def test_too_many_redirects(server):
    with Fetcher(AGENT, timeout=2, allowed_private_hosts=LOCAL, max_redirects=3) as fetcher:
        assert fetcher.fetch(f"{server.base}/chain/3").ok
        result = fetcher.fetch(f"{server.base}/chain/4")
    assert result.error == "too_many_redirects"
    assert len(result.redirects) == 4
    assert "/chain/0" not in _paths(server)[-4:]


def test_off_scope_hop_is_refused_and_recorded(fetcher, server, other):
    host = host_of(server.base)
    result = fetcher.fetch(f"{server.base}/to-other", follow=lambda url: host_of(url) == host)
    assert result.error == "off_scope_redirect"
    assert result.redirects == [(f"{server.base}/to-other", 302)]
    assert result.final_url == f"{other.base}/echo"
    assert result.status == 302
    assert other.requests == []


def test_a_redirect_to_a_private_address_is_blocked(fetcher, server):
    result = fetcher.fetch(f"{server.base}/to-metadata")
    assert result.error == "blocked_address"
    assert "169.254.169.254" in result.detail
    assert result.final_url == "http://169.254.169.254/computeMetadata/v1/"


def test_a_redirect_to_something_not_http(fetcher, server):
    result = fetcher.fetch(f"{server.base}/to-mailto")
    assert result.error == "bad_redirect"
    assert result.redirects == [(f"{server.base}/to-mailto", 302)]


def test_a_malformed_location_is_a_bad_redirect_not_a_crash(fetcher, server):
    result = fetcher.fetch(f"{server.base}/to-broken")
    assert result.error == "bad_redirect" and result.status == 301


def test_gzip_bodies_are_decoded(fetcher, server):
    result = fetcher.fetch(f"{server.base}/gzip")
    assert result.ok and result.body == b"<p>compressed</p>" * 100
    assert "gzip" in server.requests[-1][1]["accept-encoding"]


def test_no_cookie_travels_from_one_fetch_to_the_next(fetcher, server):
    fetcher.fetch(f"{server.base}/set-cookie")
    fetcher.fetch(f"{server.base}/page")
    assert "cookie" not in server.requests[-1][1]


# --- address safety ---------------------------------------------------------------------------------------------

def test_loopback_is_blocked_unless_allowed(server):
    with Fetcher(AGENT, timeout=2) as strict:
        result = strict.fetch(f"{server.base}/page")
    assert result.error == "blocked_address" and "127.0.0.1" in result.detail
    assert result.status is None and result.body == b""
    assert server.requests == []  # refused before connecting
    with Fetcher(AGENT, timeout=2, allowed_private_hosts=frozenset({"127.0.0.1"})) as trusting:
        assert trusting.fetch(f"{server.base}/page").ok


@pytest.mark.parametrize(("host", "reason"), [
    ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"), ("[::1]:8080", "loopback"),
    ("10.1.2.3", "private"), ("172.16.0.9", "private"), ("192.168.1.1", "private"), ("fd00::1", "private"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"), ("100.64.0.1", "shared"),
    ("100.127.255.254", "shared"), ("224.0.0.251", "multicast"), ("0.0.0.0", "unspecified"),
    ("240.0.0.1", "reserved"), ("::ffff:127.0.0.1", "loopback"), ("::ffff:10.0.0.1", "private"),
    ("::ffff:169.254.169.254", "link-local"),
])
def test_check_host_blocks_non_public_literals(host, reason):
    with pytest.raises(BlockedAddress, match=reason) as caught:
        check_host(host)
    assert caught.value.host in str(caught.value) and caught.value.address in str(caught.value)


@pytest.mark.parametrize("host", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "100.128.0.1"])
def test_check_host_lets_public_literals_through(host):
    check_host(host)


def test_check_host_blocks_when_any_resolved_address_is_private(monkeypatch):
    answers = {"docs.example.test": ["93.184.216.34"], "sneaky.example.test": ["93.184.216.34", "10.0.0.5"]}

    def getaddrinfo(name, port, *args, **kwargs):
        if name not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, 0)) for address in answers[name]]

    monkeypatch.setattr(safety.socket, "getaddrinfo", getaddrinfo)
    check_host("docs.example.test")
    check_host("Docs.Example.test:443")
    with pytest.raises(BlockedAddress, match="sneaky.example.test resolves to 10.0.0.5"):
        check_host("sneaky.example.test")
    check_host("sneaky.example.test:8443", allowed=frozenset({"sneaky.example.test"}))
    with pytest.raises(socket.gaierror):
        check_host("missing.example.test")
    with Fetcher(AGENT, timeout=1) as fetcher:
        result = fetcher.fetch("https://missing.example.test/page")
    assert result.error == "dns" and result.status is None


def test_allowed_skips_the_check_for_that_host_only():
    check_host("127.0.0.1", allowed=LOCAL)
    check_host("[::1]:8080", allowed=frozenset({"::1"}))
    with pytest.raises(BlockedAddress):
        check_host("10.0.0.1", allowed=LOCAL)


# --- bounds and network errors ----------------------------------------------------------------------------------

def test_body_over_max_bytes_is_cut(server):
    with Fetcher(AGENT, timeout=2, allowed_private_hosts=LOCAL, max_bytes=100_000) as fetcher:
        streamed = fetcher.fetch(f"{server.base}/big")
        declared = fetcher.fetch(f"{server.base}/big-declared")
        small = fetcher.fetch(f"{server.base}/page")
    assert streamed.error == "too_large" and len(streamed.body) == 100_000 and not streamed.ok
    assert streamed.status == 200
    assert declared.error == "too_large" and "300000" in declared.detail
    assert small.ok


def test_timeout(server):
    with Fetcher(AGENT, timeout=0.2, allowed_private_hosts=LOCAL) as fetcher:
        result = fetcher.fetch(f"{server.base}/slow")
    assert result.error == "timeout" and result.status is None
    assert result.elapsed < 0.55


def test_a_response_slower_than_the_total_timeout(server):
    # Every byte arrives within the read timeout, but the whole body takes 0.8 s.
    with Fetcher(AGENT, timeout=0.5, total_timeout=0.3, allowed_private_hosts=LOCAL) as fetcher:
        result = fetcher.fetch(f"{server.base}/drip")
    assert result.error == "timeout" and result.status == 200
    assert result.elapsed < 0.6


def test_connection_refused(fetcher):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = fetcher.fetch(f"http://127.0.0.1:{port}/")
    assert result.error == "connection" and result.status is None
    assert result.detail


@pytest.mark.parametrize("url", ["mailto:support@example.test", "ftp://files.example.test/x", "not a url", ""])
def test_invalid_url(fetcher, url):
    result = fetcher.fetch(url)
    assert result.error == "invalid_url" and result.url == url


def test_http_errors_are_statuses_not_errors(fetcher, server):
    result = fetcher.fetch(f"{server.base}/missing")
    assert result.error is None and result.status == 404 and not result.ok
    assert result.body == b"no such page"


# --- Retry-After ------------------------------------------------------------------------------------------------

def test_retry_after_seconds(fetcher, server):
    result = fetcher.fetch(f"{server.base}/busy")
    assert result.status == 429 and result.error is None
    assert result.retry_after == 7.0


def test_retry_after_http_date(fetcher, server):
    result = fetcher.fetch(f"{server.base}/busy-date")
    assert result.status == 503
    assert 110 <= result.retry_after <= 121


def test_retry_after_only_on_429_and_503(fetcher, server):
    assert fetcher.fetch(f"{server.base}/page").retry_after is None


NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(("value", "expected"), [
    ("120", 120.0), (" 30 ", 30.0), ("0", 0.0), ("-5", 0.0), ("1.5", 1.5),
    ("Wed, 01 May 2024 12:02:00 GMT", 120.0),
    ("Wednesday, 01-May-24 12:00:30 GMT", 30.0),  # RFC 850 form
    ("Wed May  1 12:01:00 2024", 60.0),  # asctime form
    ("Wed, 01 May 2024 11:00:00 GMT", 0.0),  # in the past
    ("999999999", 86400.0), ("Thu, 01 May 2025 12:00:00 GMT", 86400.0),  # capped at a day
    ("soon", None), ("", None), (None, None), ("12 seconds", None),
])
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value, now=NOW) == expected


# --- headers ----------------------------------------------------------------------------------------------------

def test_custom_headers_never_leave_the_first_host(server, other):
    with Fetcher(AGENT, timeout=2, allowed_private_hosts=LOCAL, headers={"Authorization": "Bearer s3cret"}) as fetcher:
        result = fetcher.fetch(f"{server.base}/to-other", headers={"X-Docs-Token": "t0ken", "User-Agent": "Spoof/1"})
    assert result.ok and result.final_url == f"{other.base}/echo"
    first = server.requests[-1][1]
    assert first["authorization"] == "Bearer s3cret" and first["x-docs-token"] == "t0ken"
    assert first["user-agent"] == AGENT
    received = other.requests[-1][1]
    assert "authorization" not in received and "x-docs-token" not in received
    assert received["user-agent"] == AGENT
    assert json.loads(result.body)["User-Agent"] == AGENT


def test_custom_headers_follow_same_host_redirects(server):
    with Fetcher(AGENT, timeout=2, allowed_private_hosts=LOCAL, headers={"Authorization": "Bearer s3cret"}) as fetcher:
        assert fetcher.fetch(f"{server.base}/r1").ok
    assert [headers.get("authorization") for _, headers in server.requests] == ["Bearer s3cret"] * 4


# --- per-host politeness ----------------------------------------------------------------------------------------

def test_per_host_concurrency_is_never_exceeded(server):
    with Fetcher(AGENT, timeout=2, allowed_private_hosts=LOCAL, concurrency_per_host=2) as fetcher:
        with ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(lambda i: fetcher.fetch(f"{server.base}/count?i={i}"), range(6)))
    assert all(result.ok for result in results)
    assert server.max_in_flight == 2  # never more, and the two slots were really used in parallel


def test_crawl_delay_spaces_request_starts(server):
    with Fetcher(AGENT, timeout=2, allowed_private_hosts=LOCAL) as fetcher:
        fetcher.set_delay(host_of(server.base), 0.15)
        with ThreadPoolExecutor(max_workers=3) as pool:
            list(pool.map(lambda i: fetcher.fetch(f"{server.base}/count?d={i}"), range(3)))
    starts = sorted(server.starts)
    assert len(starts) == 3
    assert all(later - earlier >= 0.13 for earlier, later in zip(starts, starts[1:]))


# --- results and the circuit breaker ----------------------------------------------------------------------------

def test_result_properties():
    result = FetchResult(url="u", final_url="u", status=200,
                         headers={"content-type": "Text/Markdown; Charset='ISO-8859-1'; q=1"})
    assert result.ok and result.content_type == "text/markdown" and result.charset == "iso-8859-1"
    bare = FetchResult(url="u", final_url="u", status=200, error="too_large")
    assert not bare.ok and bare.content_type == "" and bare.charset is None and bare.etag is None


def test_circuit_breaker_opens_after_consecutive_failures():
    breaker = CircuitBreaker(threshold=3)
    for _ in range(2):
        breaker.record("docs.example.test", False)
    assert not breaker.open("docs.example.test")
    breaker.record("docs.example.test", True)  # a success resets the count
    for _ in range(2):
        breaker.record("docs.example.test", False)
    assert not breaker.open("docs.example.test")
    breaker.record("Docs.Example.test", False)
    assert breaker.open("docs.example.test")
    assert not breaker.open("other.example.test")


def test_circuit_breaker_counts_connection_failures_and_5xx_only():
    breaker = CircuitBreaker(threshold=2)
    page = "https://docs.example.test/a"
    breaker.record_result(FetchResult(page, page, status=503))
    breaker.record_result(FetchResult(page, page, error="off_scope_redirect", status=302))  # says nothing
    breaker.record_result(FetchResult(page, page, status=None, error="timeout"))
    assert breaker.open("docs.example.test")
    breaker.record_result(FetchResult(page, page, status=404))  # the host answered: healthy
    assert not breaker.open("docs.example.test")


def test_circuit_breaker_is_thread_safe():
    breaker = CircuitBreaker(threshold=4000)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: breaker.record("docs.example.test", False), range(4000)))
    assert breaker.open("docs.example.test")


def test_a_mock_transport_works_for_made_up_hosts_listed_as_allowed():
    import httpx

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/old":
            return httpx.Response(308, headers={"Location": "/new"})
        return httpx.Response(200, text=f"{request.headers['user-agent']} {request.url.host}")

    allowed = frozenset({"docs.example.test"})
    with Fetcher(AGENT, transport=httpx.MockTransport(answer), allowed_private_hosts=allowed) as fetcher:
        result = fetcher.fetch("https://docs.example.test/old")
    assert result.ok and result.body == f"{AGENT} docs.example.test".encode()
    assert result.redirects == [("https://docs.example.test/old", 308)]
