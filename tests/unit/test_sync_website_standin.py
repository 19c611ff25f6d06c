"""The website stand-in (infra/standins/website.py), the sample docs site and the benchmark site, over real sockets."""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import http.client
import json
import time
import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from infra.bench_site import build_site, page_path
from infra.standins.website import Website, serve_sample_site

MODIFIED = datetime(2026, 11, 2, 8, 30, tzinfo=UTC)
PAGE = "<!DOCTYPE html><html><head><title>A</title></head><body><main><p>Hello</p></main></body></html>"
SITEMAP_NS = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}


@pytest.fixture
def site():
    with Website() as running:
        yield running


def fetch(site: Website, path: str, method: str = "GET", headers: dict[str, str] | None = None,
          connection: http.client.HTTPConnection | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request; returns status, lower-cased headers and body."""
    own = connection is None
    connection = connection or http.client.HTTPConnection("127.0.0.1", int(site.url.rsplit(":", 1)[1]), timeout=5)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        if own:
            connection.close()


def http_date(moment: datetime) -> str:
    return email.utils.format_datetime(moment, usegmt=True)


# -- conditional GET ----------------------------------------------------------------------------------------------

def test_etag_is_quoted_sha1_and_a_matching_if_none_match_answers_304_without_body(site):
    site.put("/a.html", PAGE)
    status, headers, body = fetch(site, "/a.html")
    assert status == 200 and body == PAGE.encode()
    assert headers["etag"] == '"%s"' % hashlib.sha1(PAGE.encode()).hexdigest()
    assert headers["content-type"] == "text/html; charset=utf-8"

    status, again, body = fetch(site, "/a.html", headers={"If-None-Match": headers["etag"]})
    assert (status, body) == (304, b"")
    assert again["etag"] == headers["etag"]
    assert fetch(site, "/a.html", headers={"If-None-Match": 'W/"nope", ' + headers["etag"]})[0] == 304
    assert fetch(site, "/a.html", headers={"If-None-Match": '"something-else"'})[0] == 200


def test_if_modified_since_at_or_after_last_modified_answers_304(site):
    site.put("/a.html", PAGE, last_modified=MODIFIED.replace(microsecond=123))
    status, headers, _ = fetch(site, "/a.html")
    assert headers["last-modified"] == "Mon, 02 Nov 2026 08:30:00 GMT"
    assert fetch(site, "/a.html", headers={"If-Modified-Since": http_date(MODIFIED)})[0] == 304
    assert fetch(site, "/a.html", headers={"If-Modified-Since": http_date(MODIFIED + timedelta(days=1))})[0] == 304
    assert fetch(site, "/a.html", headers={"If-Modified-Since": http_date(MODIFIED - timedelta(seconds=1))})[0] == 200
    assert fetch(site, "/a.html", headers={"If-Modified-Since": "not a date"})[0] == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110): a stale ETag means 200 even with a matching date.
    stale = {"If-None-Match": '"old"', "If-Modified-Since": http_date(MODIFIED)}
    assert fetch(site, "/a.html", headers=stale)[0] == 200


def test_without_last_modified_if_modified_since_never_matches(site):
    site.put("/a.html", PAGE)
    status, headers, _ = fetch(site, "/a.html", headers={"If-Modified-Since": http_date(datetime.now(UTC))})
    assert status == 200 and "last-modified" not in headers


def test_etags_switch_off_removes_the_header_and_the_304(site):
    site.put("/a.html", PAGE)
    etag = fetch(site, "/a.html")[1]["etag"]
    site.etags = False
    status, headers, _ = fetch(site, "/a.html", headers={"If-None-Match": etag})
    assert status == 200 and "etag" not in headers
    site.etags = True
    site.put("/b.html", PAGE, etag=False)
    assert "etag" not in fetch(site, "/b.html")[1]


def test_rotate_last_modified_sends_now_and_never_304s_on_if_modified_since(site):
    site.put("/a.html", PAGE, last_modified=MODIFIED)
    site.rotate_last_modified = True
    future = http_date(datetime(2030, 1, 1, tzinfo=UTC))
    status, headers, _ = fetch(site, "/a.html", headers={"If-Modified-Since": future})
    assert status == 200
    sent = email.utils.parsedate_to_datetime(headers["last-modified"])
    assert abs((sent - datetime.now(UTC)).total_seconds()) < 5


def test_nonce_changes_body_and_etag_on_every_response(site):
    site.put("/a.html", PAGE)
    site.put("/data.json", '{"a": 1}')
    site.nonce = True
    first, second = fetch(site, "/a.html"), fetch(site, "/a.html")
    assert first[2] != second[2] and first[1]["etag"] != second[1]["etag"]
    for _, headers, body in (first, second):
        assert headers["etag"] == '"%s"' % hashlib.sha1(body).hexdigest()  # computed after the injection
        head, rest = body.split(b"</head>", 1)
        assert b'<meta name="csrf-token" content="' in head and b"<script>var nonce=" in head
        assert rest == PAGE.encode().split(b"</head>", 1)[1]
    assert fetch(site, "/a.html", headers={"If-None-Match": first[1]["etag"]})[0] == 200
    assert fetch(site, "/data.json")[2] == b'{"a": 1}'  # only HTML gets the nonce


# -- content management -------------------------------------------------------------------------------------------

def test_edit_remove_gone_and_content_types(site):
    site.put("/a.html", PAGE, last_modified=MODIFIED)
    old_etag = fetch(site, "/a.html")[1]["etag"]
    site.edit("/a.html", "Hello", "Hello again")
    status, headers, body = fetch(site, "/a.html", headers={"If-Modified-Since": http_date(MODIFIED)})
    assert status == 200 and b"Hello again" in body and headers["etag"] != old_etag
    assert email.utils.parsedate_to_datetime(headers["last-modified"]) > MODIFIED
    with pytest.raises(ValueError):
        site.edit("/a.html", "not in the page", "x")

    site.remove("/a.html")
    assert fetch(site, "/a.html")[0] == 404
    site.put("/b.html", PAGE)
    site.gone("/b.html")
    assert fetch(site, "/b.html")[0] == 410
    assert site.paths() == []

    site.put("/latin.txt", "café", "text/plain; charset=latin-1")
    assert fetch(site, "/latin.txt")[2] == "café".encode("latin-1")
    archive = gzip.compress(b"<urlset/>", mtime=0)
    site.put("/sitemap-2.xml.gz", archive)
    status, headers, body = fetch(site, "/sitemap-2.xml.gz")
    assert headers["content-type"] == "application/gzip" and body == archive
    site.put("/file.pdf", b"%PDF-1.4")
    assert fetch(site, "/file.pdf")[1]["content-type"] == "application/pdf"
    assert site.paths() == ["/file.pdf", "/latin.txt", "/sitemap-2.xml.gz"]


def test_head_is_get_without_body_and_keep_alive_survives_every_kind_of_answer(site):
    site.put("/a.html", PAGE)
    site.redirect("/old", "/a.html")
    connection = http.client.HTTPConnection("127.0.0.1", int(site.url.rsplit(":", 1)[1]), timeout=5)
    try:
        status, head_headers, body = fetch(site, "/a.html", "HEAD", connection=connection)
        assert status == 200 and body == b""
        assert head_headers["content-length"] == str(len(PAGE)) and "etag" in head_headers
        etag = head_headers["etag"]
        # One connection, many answers: each must be framed by its Content-Length for the next to parse.
        answers = [fetch(site, path, connection=connection, headers=extra)[0] for path, extra in [
            ("/missing", {}), ("/old", {}), ("/a.html", {"If-None-Match": etag}), ("/a.html", {})]]
        assert answers == [404, 301, 304, 200]
        assert fetch(site, "/a.html", "POST", connection=connection)[0] == 405
    finally:
        connection.close()


# -- redirects, robots, failures ----------------------------------------------------------------------------------

def test_redirect_chain_and_loop(site):
    site.put("/final.html", PAGE)
    site.redirect("/one", "/two")
    site.redirect("/two", site.url + "/three", status=302)
    site.redirect("/three", "final.html", status=308)
    assert [fetch(site, p)[1]["location"] for p in ("/one", "/two", "/three")] == [
        "/two", site.url + "/three", "final.html"]
    assert [fetch(site, p)[0] for p in ("/one", "/two", "/three")] == [301, 302, 308]
    site.redirect("/loop-a", "/loop-b")
    site.redirect("/loop-b", "/loop-a")
    assert fetch(site, "/loop-a")[1]["location"] == "/loop-b"
    assert fetch(site, "/loop-b")[1]["location"] == "/loop-a"
    with pytest.raises(ValueError):
        site.redirect("/x", "/y", status=200)


def test_robots_text_and_status_switches(site):
    assert site.robots is None and fetch(site, "/robots.txt")[0] == 404
    site.robots = "User-agent: *\nDisallow: /private/\n"
    status, headers, body = fetch(site, "/robots.txt")
    assert status == 200 and body == b"User-agent: *\nDisallow: /private/\n"
    assert headers["content-type"].startswith("text/plain")
    site.robots_status = 503
    assert fetch(site, "/robots.txt")[0] == 503
    site.robots_status = 404
    assert fetch(site, "/robots.txt")[0] == 404
    site.robots_status = None
    assert fetch(site, "/robots.txt")[0] == 200
    site.robots = None
    assert fetch(site, "/robots.txt")[0] == 404


def test_fail_answers_the_status_n_times_then_the_page_with_retry_after(site):
    site.put("/a.html", PAGE)
    site.put("/b.html", PAGE)
    site.fail("/a.html", 503, times=2)
    site.fail("/b.html", 429, retry_after="2")
    when = http_date(datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    site.fail("/b.html", 429, retry_after=when)
    first, second, third = (fetch(site, "/a.html") for _ in range(3))
    assert [first[0], second[0], third[0]] == [503, 503, 200]
    assert "retry-after" not in first[1] and third[2] == PAGE.encode()
    assert fetch(site, "/b.html")[1]["retry-after"] == "2"
    assert fetch(site, "/b.html")[1]["retry-after"] == when
    assert fetch(site, "/b.html")[0] == 200
    site.fail("/robots.txt", 500)
    assert fetch(site, "/robots.txt")[0] == 500
    with pytest.raises(ValueError):
        site.fail("/a.html", 200)


def test_down_closes_the_connection_without_a_response(site):
    site.put("/a.html", PAGE)
    site.down = True
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        fetch(site, "/a.html")
    assert site.requests[-1].status is None
    site.down = False
    assert fetch(site, "/a.html")[0] == 200


def test_down_after_answers_n_requests_then_goes_down(site):
    site.put("/a.html", PAGE)
    site.down_after(2)
    assert [fetch(site, "/a.html")[0] for _ in range(2)] == [200, 200]
    assert site.down
    for _ in range(2):
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            fetch(site, "/a.html")
    assert [r.status for r in site.requests] == [200, 200, None, None]


def test_delay_holds_each_response(site):
    site.put("/a.html", PAGE)
    site.delay = 0.2
    started = time.perf_counter()
    assert fetch(site, "/a.html")[0] == 200
    assert time.perf_counter() - started >= 0.2


# -- request log --------------------------------------------------------------------------------------------------

def test_request_log_records_method_path_headers_status_and_bytes(site):
    site.put("/docs/a.html", PAGE)
    fetch(site, "/docs/a.html?utm_source=x", headers={"User-Agent": "BrightwaveSync/1", "X-Trace": "t1"})
    fetch(site, "/docs/a.html", "HEAD")
    fetch(site, "/other")
    assert [(r.method, r.path, r.status) for r in site.requests] == [
        ("GET", "/docs/a.html?utm_source=x", 200), ("HEAD", "/docs/a.html", 200), ("GET", "/other", 404)]
    first = site.requests[0]
    assert first.headers["user-agent"] == "BrightwaveSync/1" and first.headers["x-trace"] == "t1"
    assert [r.method for r in site.requests_for("/docs/")] == ["GET", "HEAD"]
    not_found_page = fetch(site, "/other")[2]
    assert site.bytes_sent == len(PAGE) + 2 * len(not_found_page)  # HEAD sends no body
    site.clear_log()
    assert site.requests == [] and site.bytes_sent == 0


# -- load_dir and the sample site ---------------------------------------------------------------------------------

def test_load_dir_serves_files_folder_index_and_replaces_the_origin_placeholder(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.html").write_text('<link rel="canonical" href="{{origin}}/docs/">')
    (tmp_path / "robots.txt").write_text("User-agent: *\nSitemap: {{origin}}/sitemap.xml\n")
    (tmp_path / "logo.png").write_bytes(b"\x89PNG{{origin}}")
    with Website() as site:
        assert site.load_dir(tmp_path) == ["/docs/index.html", "/logo.png", "/robots.txt"]
        assert fetch(site, "/robots.txt")[2].decode() == f"User-agent: *\nSitemap: {site.origin}/sitemap.xml\n"
        folder = fetch(site, "/docs/")
        assert folder[0] == 200 and folder[2] == f'<link rel="canonical" href="{site.origin}/docs/">'.encode()
        assert fetch(site, "/docs/index.html")[2] == folder[2]
        status, headers, _ = fetch(site, "/docs")
        assert (status, headers["location"]) == (301, "/docs/")
        assert fetch(site, "/logo.png")[2] == b"\x89PNG{{origin}}"  # binary files are served untouched


def test_sample_site_serves_pages_robots_sitemap_redirect_and_feed():
    site = serve_sample_site()
    try:
        robots = fetch(site, "/robots.txt")[2].decode()
        assert "Disallow: /internal/" in robots and f"Sitemap: {site.origin}/sitemap.xml" in robots
        sitemap = ElementTree.fromstring(fetch(site, "/sitemap.xml")[2])
        locations = [loc.text for loc in sitemap.findall("s:url/s:loc", SITEMAP_NS)]
        assert locations and all(loc.startswith(site.origin + "/docs/") for loc in locations)
        for location in locations:
            status, headers, body = fetch(site, location[len(site.origin):])
            assert status == 200 and "last-modified" in headers, location
            if location.endswith(".html") or location.endswith("/"):
                assert b"<main>" in body and b"<article>" in body and b"&copy; 2026 Brightwave" in body
                assert b"<table>" in body and b'<pre><code class="language-' in body
                assert f'<link rel="canonical" href="{site.origin}/docs/'.encode() in body
        assert b'<pre><code class="language-html">' in fetch(site, "/docs/booking-widget.html")[2]
        assert b'href="/docs/files/sms-reminder-guide.pdf"' in fetch(site, "/docs/sms-reminders.html")[2]
        assert fetch(site, "/docs/files/sms-reminder-guide.pdf")[2].startswith(b"%PDF")
        assert not any("/internal/" in loc for loc in locations)
        assert fetch(site, "/internal/roadmap.html")[0] == 200  # present: only robots.txt keeps a crawler out
        status, headers, _ = fetch(site, "/help/booking-widget.html")
        assert (status, headers["location"]) == (301, "/docs/booking-widget.html")
        addons = json.loads(fetch(site, "/feeds/addons.json")[2])["addons"]
        assert 5 <= len(addons) <= 6
        assert all({"id", "name", "price_eur_month", "description", "plans"} <= set(a) for a in addons)
        assert "/README.md" not in site.paths() and "/build_pdf.py" not in site.paths()
    finally:
        site.stop()


# -- the benchmark site -------------------------------------------------------------------------------------------

def _write_corpus(folder: Path, count: int) -> Path:
    documents = [{"_id": f"msdocs:ods:Exchange/Admin/Topic-{n}.md", "title": f"Topic {n}",
                  "text": f"# Topic {n}\n\nFirst paragraph of topic {n}.\n\nSecond paragraph.\n\n| a | b |\n|---|---|\n"
                          f"| 1 | 2 |\n", "metadata": {"source": "msdocs"}} for n in range(count)]
    documents.append({"_id": "msdocs:sp:SharePoint/Can't sync (files).md", "title": "Cannot sync",
                      "text": "- only a list\n", "metadata": {"source": "msdocs"}})
    documents.append({"_id": "wix:123", "title": "Not msdocs", "text": "x", "metadata": {"source": "wix"}})
    path = folder / "corpus.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as out:
        for document in documents:
            out.write(json.dumps(document) + "\n")
    return path


def test_page_path_is_lower_case_and_url_safe():
    assert page_path("msdocs:ods:Exchange/ExchangeHybrid/x.md") == "/ods/exchange/exchangehybrid/x.html"
    assert page_path("msdocs:ods:Outlook/Client/can't-search (toast).md") == (
        "/ods/outlook/client/can-t-search-toast-.html")


def _child_sitemaps(bench) -> list[bytes]:
    index = ElementTree.fromstring(fetch(bench.site, "/sitemap.xml")[2])
    children = [loc.text[len(bench.site.origin):] for loc in index.findall("s:sitemap/s:loc", SITEMAP_NS)]
    assert len(children) == 2 and children[1].endswith(".gz")
    bodies = [fetch(bench.site, child)[2] for child in children]
    return [bodies[0], gzip.decompress(bodies[1])]


def _lastmods(bench) -> dict[str, str]:
    lastmods = {}
    for xml in _child_sitemaps(bench):
        for entry in ElementTree.fromstring(xml).findall("s:url", SITEMAP_NS):
            path = entry.findtext("s:loc", namespaces=SITEMAP_NS)[len(bench.site.origin):]
            lastmods[path] = entry.findtext("s:lastmod", namespaces=SITEMAP_NS)
    return lastmods


def test_bench_site_builds_pages_sitemaps_and_robots_from_a_corpus(tmp_path):
    bench = build_site(_write_corpus(tmp_path, 24))
    with bench.site:
        assert len(bench.pages) == 25  # the wix document is not a page
        assert "/ods/exchange/admin/topic-3.html" in bench.pages
        assert "/sp/sharepoint/can-t-sync-files-.html" in bench.pages
        status, _, body = fetch(bench.site, "/ods/exchange/admin/topic-3.html")
        html = body.decode()
        assert status == 200 and "<main>" in html and "<article>" in html and "&copy; 2026" in html
        assert "<p>First paragraph of topic 3.</p>" in html and "<table>" in html
        sidebar = html.split('<aside class="sidebar">', 1)[1].split("</aside>", 1)[0]
        assert sidebar.count("<a href=") == 20 and "/topic-3.html" not in sidebar
        assert set(_lastmods(bench)) == set(bench.pages)
        robots = fetch(bench.site, "/robots.txt")[2].decode()
        assert f"Sitemap: {bench.site.origin}/sitemap.xml" in robots
        assert fetch(bench.site, "/")[0] == 200


def test_bench_site_edit_changes_exactly_the_returned_pages(tmp_path):
    bench = build_site(_write_corpus(tmp_path, 24))
    with bench.site:
        before = {path: fetch(bench.site, path)[2] for path in bench.pages}
        lastmods_before = _lastmods(bench)
        changed = bench.edit(0.2, seed=7)
        assert len(changed) == 5 and changed == sorted(changed)
        after = {path: fetch(bench.site, path)[2] for path in bench.pages}
        assert {path for path in bench.pages if before[path] != after[path]} == set(changed)
        for path in changed:
            article = after[path].decode().split("<article>", 1)[1]
            first_paragraph = article.split("</p>", 1)[0]
            assert "Revision 7-" in first_paragraph and "reviewed by the support team" in first_paragraph
        lastmods_after = _lastmods(bench)
        assert {p for p in bench.pages if lastmods_before[p] != lastmods_after[p]} == set(changed)
        assert bench.edit(0.0, seed=1) == []
    again = build_site(_write_corpus(tmp_path, 24))
    assert again.edit(0.2, seed=7) == changed  # the seed alone decides which pages change
    with pytest.raises(ValueError):
        again.edit(1.5, seed=1)
