"""Sitemaps (shared/sync/sitemaps.py): XML urlset and index, gzip, text, feeds, bounds, lastmod forms and their use."""

from __future__ import annotations

import gzip
from datetime import datetime, timedelta, timezone

import pytest

from shared.sync import sitemaps
from shared.sync.sitemaps import (
    SitemapEntry,
    SitemapError,
    lastmod_is_useful,
    parse_lastmod,
    parse_sitemap,
)

URL = "https://docs.example.test/sitemap.xml"
NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'

URLSET = f"""<?xml version="1.0" encoding="UTF-8"?>
<?xml-stylesheet type="text/xsl" href="/sitemap.xsl"?>
<urlset {NS} xmlns:xhtml="http://www.w3.org/1999/xhtml">
  <!-- generated -->
  <url><loc> https://docs.example.test/a </loc><lastmod>2024-05-01</lastmod><priority>0.5</priority></url>
  <url>
    <loc>https://docs.example.test/b?x=1&amp;y=2</loc>
    <lastmod>2024-05-02T10:30:00+02:00</lastmod>
    <xhtml:link rel="alternate" hreflang="de" href="https://docs.example.test/de/b"/>
  </url>
  <url><loc>https://docs.example.test/c</loc></url>
  <url><lastmod>2024-01-01</lastmod></url>
</urlset>
""".encode()


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def test_urlset():
    sitemap = parse_sitemap(URLSET, URL)
    assert sitemap.children == []
    assert [entry.url for entry in sitemap.entries] == [
        "https://docs.example.test/a", "https://docs.example.test/b?x=1&y=2", "https://docs.example.test/c"]
    assert sitemap.entries[0].lastmod == utc(2024, 5, 1)
    assert sitemap.entries[1].lastmod == utc(2024, 5, 2, 8, 30)
    assert sitemap.entries[2].lastmod is None


def test_sitemap_index():
    body = f"""<?xml version="1.0"?><sitemapindex {NS}>
      <sitemap><loc>https://docs.example.test/sitemap-docs.xml</loc><lastmod>2024-05-01</lastmod></sitemap>
      <sitemap><loc>https://docs.example.test/sitemap-blog.xml.gz</loc></sitemap>
    </sitemapindex>""".encode()
    sitemap = parse_sitemap(body, URL)
    assert sitemap.entries == []
    assert sitemap.children == ["https://docs.example.test/sitemap-docs.xml",
                                "https://docs.example.test/sitemap-blog.xml.gz"]


def test_without_namespace():
    body = b"<urlset><url><loc>https://docs.example.test/x</loc><lastmod>2023-02-03</lastmod></url></urlset>"
    sitemap = parse_sitemap(body, URL)
    assert sitemap.entries == [SitemapEntry("https://docs.example.test/x", utc(2023, 2, 3))]


def test_gzip_is_detected_by_magic_bytes_not_by_name():
    sitemap = parse_sitemap(gzip.compress(URLSET), "https://docs.example.test/sitemap", "application/octet-stream")
    assert len(sitemap.entries) == 3


def test_gzip_expanding_past_the_bound_is_refused(monkeypatch):
    monkeypatch.setattr(sitemaps, "MAX_SITEMAP_BYTES", 10_000)
    bomb = gzip.compress(b"<urlset>" + b" " * 100_000 + b"</urlset>")
    assert len(bomb) < 10_000
    with pytest.raises(SitemapError, match="expands past"):
        parse_sitemap(bomb, URL)


def test_corrupt_gzip():
    with pytest.raises(SitemapError, match="gzip"):
        parse_sitemap(gzip.compress(URLSET)[:40], URL)
    with pytest.raises(SitemapError, match="gzip"):
        parse_sitemap(b"\x1f\x8bnot gzip at all", URL)


def test_text_sitemap():
    body = b"\xef\xbb\xbfhttps://docs.example.test/a\n\n  https://docs.example.test/b  \r\n# comment\nftp://x/y\n" \
           b"HTTP://docs.example.test/c\n"
    sitemap = parse_sitemap(body, "https://docs.example.test/sitemap.txt", "text/plain")
    assert [entry.url for entry in sitemap.entries] == [
        "https://docs.example.test/a", "https://docs.example.test/b", "HTTP://docs.example.test/c"]
    assert all(entry.lastmod is None for entry in sitemap.entries)


def test_empty_files_are_empty_sitemaps():
    assert parse_sitemap(b"", URL).entries == []
    assert parse_sitemap(f"<urlset {NS}></urlset>".encode(), URL).entries == []


def test_text_without_any_url_is_not_an_empty_sitemap():
    with pytest.raises(SitemapError, match="no http"):
        parse_sitemap(b'{"error": "rate limited"}', URL, "application/json")


@pytest.mark.parametrize("body", [
    b"<!DOCTYPE html><html><head><title>Not found</title></head><body>Oops</body></html>",
    b"<html><body><p>Login<br></body></html>",
    b"\n  <!-- cdn --><html lang='en'><body>hi</body></html>",
    b"<?xml version='1.0'?><html xmlns='http://www.w3.org/1999/xhtml'><body/></html>",
])
def test_html_served_as_a_sitemap(body):
    with pytest.raises(SitemapError, match="HTML"):
        parse_sitemap(body, URL, "text/html; charset=utf-8")


def test_plain_text_served_as_html_is_refused():
    with pytest.raises(SitemapError, match="text/html"):
        parse_sitemap(b"Service temporarily unavailable", URL, "text/html")


@pytest.mark.parametrize("body", [
    b"<urlset><url><loc>https://docs.example.test/a</loc></url>",  # truncated
    b"<urlset><url><loc>https://docs.example.test/a & b</loc></url></urlset>",  # bare ampersand
    b"<urlset><url></urlset>",
])
def test_malformed_xml(body):
    with pytest.raises(SitemapError, match="malformed XML"):
        parse_sitemap(body, URL)


def test_other_xml_roots():
    with pytest.raises(SitemapError, match="neither"):
        parse_sitemap(b"<config><item>1</item></config>", URL)


def test_entities_are_not_resolved_and_nothing_is_fetched(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    body = f"""<?xml version="1.0"?>
<!DOCTYPE urlset [<!ENTITY xxe SYSTEM "file://{secret}">]>
<urlset><url><loc>https://docs.example.test/&xxe;</loc></url></urlset>""".encode()
    try:
        sitemap = parse_sitemap(body, URL)
    except SitemapError:
        return  # refusing the document is fine too
    assert all("TOP-SECRET" not in entry.url for entry in sitemap.entries)


def test_at_most_50000_entries_per_file():
    row = b"<url><loc>https://docs.example.test/p</loc></url>"
    assert len(parse_sitemap(b"<urlset>" + row * 50_000 + b"</urlset>", URL).entries) == 50_000
    with pytest.raises(SitemapError, match="50000"):
        parse_sitemap(b"<urlset>" + row * 50_001 + b"</urlset>", URL)
    index_row = b"<sitemap><loc>https://docs.example.test/s.xml</loc></sitemap>"
    with pytest.raises(SitemapError, match="50000"):
        parse_sitemap(b"<sitemapindex>" + index_row * 50_001 + b"</sitemapindex>", URL)
    with pytest.raises(SitemapError, match="50000"):
        parse_sitemap(b"https://docs.example.test/p\n" * 50_001, URL)


def test_uncompressed_size_bound(monkeypatch):
    monkeypatch.setattr(sitemaps, "MAX_SITEMAP_BYTES", 1000)
    with pytest.raises(SitemapError, match="byte limit"):
        parse_sitemap(b"https://docs.example.test/p\n" * 100, URL)


def test_feeds_are_read_as_sitemaps():
    rss = b"""<rss version="2.0"><channel><title>Blog</title>
      <item><title>A</title><link>https://docs.example.test/blog/a</link>
        <pubDate>Wed, 02 Oct 2024 13:00:00 GMT</pubDate></item>
      <item><title>no link</title></item></channel></rss>"""
    assert parse_sitemap(rss, URL).entries == [SitemapEntry("https://docs.example.test/blog/a", utc(2024, 10, 2, 13))]
    atom = b"""<feed xmlns="http://www.w3.org/2005/Atom"><entry>
      <link rel="self" href="https://docs.example.test/feed/1"/><link href="https://docs.example.test/post/1"/>
      <updated>2024-03-04T05:06:07Z</updated></entry></feed>"""
    expected = SitemapEntry("https://docs.example.test/post/1", utc(2024, 3, 4, 5, 6, 7))
    assert parse_sitemap(atom, URL).entries == [expected]


@pytest.mark.parametrize(("value", "expected"), [
    ("2024", utc(2024, 1, 1)),
    ("2024-05", utc(2024, 5, 1)),
    ("2024-05-17", utc(2024, 5, 17)),
    ("2024-05-17T10:20Z", utc(2024, 5, 17, 10, 20)),
    ("2024-05-17T10:20:30Z", utc(2024, 5, 17, 10, 20, 30)),
    ("2024-05-17T10:20:30.45Z", utc(2024, 5, 17, 10, 20, 30, 450000)),
    ("2024-05-17T10:20:30+02:00", utc(2024, 5, 17, 8, 20, 30)),
    ("2024-05-17T10:20:30-05:30", utc(2024, 5, 17, 15, 50, 30)),
    ("2024-05-17T10:20:30+0200", utc(2024, 5, 17, 8, 20, 30)),
    ("2024-05-17T10:20:30", utc(2024, 5, 17, 10, 20, 30)),  # no zone -> UTC
    ("2024-05-17 10:20:30Z", utc(2024, 5, 17, 10, 20, 30)),
    ("  2024-05-17  ", utc(2024, 5, 17)),
    ("2024-13-01", None),
    ("2024-02-30", None),
    ("2024-05-17T25:00Z", None),
    ("yesterday", None),
    ("17/05/2024", None),
    ("", None),
    (None, None),
])
def test_lastmod_forms(value, expected):
    parsed = parse_lastmod(value)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is not None


def _entries(dates):
    return [SitemapEntry(f"https://docs.example.test/{i}", date) for i, date in enumerate(dates)]


def test_lastmod_is_useful():
    base = utc(2024, 5, 1, 12)
    assert lastmod_is_useful(_entries([base - timedelta(days=i) for i in range(20)]))
    # A build stamp on every page (to the second, or differing only in seconds) says nothing.
    assert not lastmod_is_useful(_entries([base] * 20))
    assert not lastmod_is_useful(_entries([base + timedelta(seconds=i % 30) for i in range(20)]))
    # Nearly every: 19 of 20 share the build date.
    assert not lastmod_is_useful(_entries([base] * 19 + [base - timedelta(days=3)]))
    # Mostly shared but a real spread (e.g. a big import day) is still useful.
    assert lastmod_is_useful(_entries([base] * 10 + [base - timedelta(days=i) for i in range(1, 11)]))
    assert not lastmod_is_useful(_entries([None] * 5))
    assert not lastmod_is_useful([])
    assert lastmod_is_useful(_entries([base]))
    # The same instant written in two zones is the same value.
    other_zone = base.astimezone(timezone(timedelta(hours=2)))
    assert not lastmod_is_useful(_entries([base, other_zone] * 10))
