"""robots.txt by RFC 9309 (shared/sync/robots.py): what each status means, rules, delays, sitemaps, round trip."""

from __future__ import annotations

import json

import pytest

from shared.sync.robots import MAX_ROBOTS_BYTES, Robots, product_token

AGENT = "BrightwaveDocsSync/1.0 (+https://brightwave.example/bot)"
SITE = "https://docs.example.test"

ROBOTS_TXT = """\
# a comment
User-agent: *
Disallow: /private/
Allow: /private/public-page
Disallow: /*.pdf$
Disallow: /search?*q=
Crawl-delay: 1

User-agent: BrightwaveDocsSync
Disallow: /drafts/
Disallow: /*/print$
Crawl-delay: 2.5

User-agent: OtherBot
Disallow: /

Sitemap: https://docs.example.test/sitemap.xml
Sitemap: https://docs.example.test/sitemap-blog.xml.gz
"""


def test_product_token():
    assert product_token(AGENT) == "BrightwaveDocsSync"
    assert product_token("BrightwaveDocsSync") == "BrightwaveDocsSync"
    assert product_token("  ") == "*"


def test_200_rules_for_our_group_and_for_everyone_else():
    robots = Robots.from_response(200, ROBOTS_TXT.encode())
    assert not robots.unavailable
    # Our own group applies, not "*": /private/ is only disallowed for the others.
    assert robots.allowed(f"{SITE}/private/x", AGENT)
    assert not robots.allowed(f"{SITE}/drafts/x", AGENT)
    assert not robots.allowed(f"{SITE}/drafts/x", "BrightwaveDocsSync")
    assert robots.allowed(f"{SITE}/docs/x", AGENT)
    assert not robots.allowed(f"{SITE}/private/x", "SomeCrawler/2.0")
    assert robots.allowed(f"{SITE}/private/public-page", "SomeCrawler/2.0")  # longest match wins
    assert not robots.allowed(f"{SITE}/docs/x", "OtherBot/1.0")


def test_wildcard_and_end_anchor_rules():
    robots = Robots.from_response(200, ROBOTS_TXT)
    other = "SomeCrawler/2.0"
    assert not robots.allowed(f"{SITE}/files/manual.pdf", other)
    assert robots.allowed(f"{SITE}/files/manual.pdf?download=1", other)  # "$" anchors the end
    assert not robots.allowed(f"{SITE}/search?lang=en&q=robots", other)
    assert robots.allowed(f"{SITE}/search?lang=en", other)
    assert not robots.allowed(f"{SITE}/guide/print", AGENT)
    assert robots.allowed(f"{SITE}/guide/print/more", AGENT)


def test_crawl_delay_and_request_rate():
    robots = Robots.from_response(200, ROBOTS_TXT)
    assert robots.crawl_delay(AGENT) == 2.5
    assert robots.crawl_delay("SomeCrawler/2.0") == 1.0
    assert robots.crawl_delay("OtherBot") is None
    rate = Robots.from_response(200, "User-agent: *\nRequest-rate: 1/10s\nDisallow: /x\n")
    assert rate.crawl_delay(AGENT) == 10.0
    both = Robots.from_response(200, "User-agent: *\nRequest-rate: 2/1s\nCrawl-delay: 3\n")
    assert both.crawl_delay(AGENT) == 3.0  # the stricter of the two


def test_sitemaps_as_written():
    robots = Robots.from_response(200, ROBOTS_TXT)
    assert robots.sitemaps == [f"{SITE}/sitemap.xml", f"{SITE}/sitemap-blog.xml.gz"]
    assert Robots.from_response(404, "").sitemaps == []


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
def test_4xx_means_no_restrictions(status):
    robots = Robots.from_response(status, "<html>not found</html>")
    assert not robots.unavailable
    assert robots.allowed(f"{SITE}/anything", AGENT)
    assert robots.crawl_delay(AGENT) is None


@pytest.mark.parametrize(("status", "error"), [(500, ""), (503, ""), (429, ""), (None, ""), (None, "timeout"),
                                               (None, "dns"), (301, "redirect_loop"), (302, "too_many_redirects"),
                                               (302, ""), (200, "connection")])
def test_unreachable_means_disallow_everything(status, error):
    robots = Robots.from_response(status, ROBOTS_TXT, error)
    assert robots.unavailable
    assert robots.reason
    assert not robots.allowed(f"{SITE}/docs/x", AGENT)
    assert not robots.allowed(f"{SITE}/", AGENT)


def test_reason_names_the_cause():
    assert "503" in Robots.from_response(503, "").reason
    assert "redirect_loop" in Robots.from_response(301, None, "redirect_loop").reason


def test_empty_200_allows_everything():
    robots = Robots.from_response(200, b"")
    assert robots.allowed(f"{SITE}/x", AGENT)
    assert not robots.unavailable


def test_only_the_first_500_kib_count_and_a_cut_line_is_dropped():
    head = "User-agent: *\nDisallow: /early/\n"
    straddling = "Disallow: /"  # the limit falls right after it: cut there, "Disallow: /yyyy" would close the site
    filler = MAX_ROBOTS_BYTES - len(head) - len(straddling)
    comment = "#" + "x" * (filler - 2) + "\n"
    text = head + comment + straddling + "y" * 200 + "\nDisallow: /late/\n"
    assert len((head + comment + straddling).encode()) == MAX_ROBOTS_BYTES
    robots = Robots.from_response(200, text.encode())
    assert not robots.allowed(f"{SITE}/early/x", AGENT)
    assert robots.allowed(f"{SITE}/docs/x", AGENT)  # the half rule was dropped, not read as "Disallow: /"
    assert robots.allowed(f"{SITE}/late/x", AGENT)  # beyond 500 KiB: never read


def test_a_cut_body_from_the_fetcher_is_still_parsed():
    robots = Robots.from_response(200, "User-agent: *\nDisallow: /a/\n", "too_large")
    assert not robots.unavailable
    assert not robots.allowed(f"{SITE}/a/x", AGENT)


def test_bom_and_crlf():
    robots = Robots.from_response(200, b"\xef\xbb\xbfUser-agent: *\r\nDisallow: /x/\r\n")
    assert not robots.allowed(f"{SITE}/x/1", AGENT)
    assert robots.allowed(f"{SITE}/y/1", AGENT)


@pytest.mark.parametrize(("status", "text", "error"), [(200, ROBOTS_TXT, ""), (404, None, ""), (503, None, ""),
                                                       (None, None, "timeout")])
def test_round_trip_through_json(status, text, error):
    original = Robots.from_response(status, text, error)
    copy = Robots.from_dict(json.loads(json.dumps(original.to_dict())))
    assert copy.unavailable == original.unavailable
    assert copy.reason == original.reason
    assert copy.status == original.status
    assert copy.sitemaps == original.sitemaps
    assert copy.fetched_at == original.fetched_at
    for path in ("/private/x", "/drafts/x", "/docs/x", "/files/a.pdf", "/guide/print"):
        for agent in (AGENT, "SomeCrawler/2.0", "OtherBot"):
            assert copy.allowed(SITE + path, agent) == original.allowed(SITE + path, agent), (path, agent)
        assert copy.crawl_delay(AGENT) == original.crawl_delay(AGENT)


def test_stored_rules_drop_comments():
    stored = Robots.from_response(200, ROBOTS_TXT).to_dict()
    assert "#" not in stored["text"]
    assert len(stored["text"]) < len(ROBOTS_TXT)


def test_unknown_stored_format_fails_closed():
    assert Robots.from_dict({}).unavailable
    assert Robots.from_dict({"version": 99, "mode": "allow_all"}).unavailable


def test_staleness():
    robots = Robots.from_response(200, ROBOTS_TXT)
    assert not robots.is_stale(now=robots.fetched_at + 3600)
    assert robots.is_stale(now=robots.fetched_at + 25 * 3600)
