"""Page identities (normalize), hosts, crawl scope and object slugs of the sync (shared/sync/urls.py)."""

from __future__ import annotations

import re

import pytest

from shared.sync.urls import Scope, host_of, normalize, object_slug

NORMALIZATION = [
    # scheme and host case, default ports
    ("HTTP://Docs.Example.COM/Guide", "http://docs.example.com/Guide"),
    ("https://docs.example.test:443/a", "https://docs.example.test/a"),
    ("http://docs.example.test:80/a", "http://docs.example.test/a"),
    ("https://docs.example.test:8443/a", "https://docs.example.test:8443/a"),
    ("http://docs.example.test:443/a", "http://docs.example.test:443/a"),
    ("https://docs.example.test./a", "https://docs.example.test/a"),
    # path: empty -> "/", dot segments, case kept, trailing slash and index.html NOT merged
    ("https://docs.example.test", "https://docs.example.test/"),
    ("https://docs.example.test/a/./b/../c", "https://docs.example.test/a/c"),
    ("https://docs.example.test/../../a", "https://docs.example.test/a"),
    ("https://docs.example.test/a/b/..", "https://docs.example.test/a/"),
    ("https://docs.example.test/Docs/API", "https://docs.example.test/Docs/API"),
    ("https://docs.example.test/docs/", "https://docs.example.test/docs/"),
    ("https://docs.example.test/docs", "https://docs.example.test/docs"),
    ("https://docs.example.test/docs/index.html", "https://docs.example.test/docs/index.html"),
    # fragments, hashbang
    ("https://docs.example.test/a#section-2", "https://docs.example.test/a"),
    ("https://docs.example.test/#!/page/7", "https://docs.example.test/"),
    ("https://docs.example.test/a?x=1#!frag", "https://docs.example.test/a?x=1"),
    # tracking parameters, query order (stable for repeated keys), empty query
    ("https://docs.example.test/a?utm_source=news&utm_medium=mail", "https://docs.example.test/a"),
    ("https://docs.example.test/a?b=2&gclid=x&a=1&fbclid=y", "https://docs.example.test/a?a=1&b=2"),
    ("https://docs.example.test/a?UTM_Campaign=x&_ga=1&_gl=2&mc_cid=3&mc_eid=4&ref_src=t&k=v",
     "https://docs.example.test/a?k=v"),
    ("https://docs.example.test/a?msclkid=1&yclid=2&igshid=3", "https://docs.example.test/a"),
    ("https://docs.example.test/a?tag=b&page=2&tag=a", "https://docs.example.test/a?page=2&tag=b&tag=a"),
    ("https://docs.example.test/a?", "https://docs.example.test/a"),
    ("https://docs.example.test/a?q=&&x", "https://docs.example.test/a?q=&x"),
    # percent-encoding: unreserved decoded, hex upper-cased, reserved kept encoded, unsafe encoded
    ("https://docs.example.test/%7euser/%61bc", "https://docs.example.test/~user/abc"),
    ("https://docs.example.test/a%2fb%3a", "https://docs.example.test/a%2Fb%3A"),
    ("https://docs.example.test/a b/ü", "https://docs.example.test/a%20b/%C3%BC"),
    ("https://docs.example.test/100%", "https://docs.example.test/100%25"),
    ("https://docs.example.test/a?q=a%26b&r=x%3dy", "https://docs.example.test/a?q=a%26b&r=x%3Dy"),
    ("https://docs.example.test/%2E%2E/a", "https://docs.example.test/a"),
    # IDN, IPv6, credentials
    ("https://Bücher.example/", "https://xn--bcher-kva.example/"),
    ("http://[::1]:8080/x", "http://[::1]:8080/x"),
    ("https://user:secret@docs.example.test/a", "https://docs.example.test/a"),
    # not http(s), or not a URL at all
    ("mailto:support@example.test", None),
    ("javascript:alert(1)", None),
    ("data:text/html,hi", None),
    ("tel:+123456", None),
    ("ftp://files.example.test/a", None),
    ("", None),
    ("not a url", None),
    ("https://", None),
    ("https://docs..example.test/", None),
    ("https://docs.example.test:99999/", None),
    ("https://docs.example.test:abc/", None),
    ("https://docs.example.test/" + "a" * 9000, None),
]


@pytest.mark.parametrize(("url", "expected"), NORMALIZATION)
def test_normalize(url, expected):
    assert normalize(url) == expected


def test_normalize_resolves_against_the_base():
    base = "https://docs.example.test/guide/setup/install.html"
    assert normalize("../api/", base) == "https://docs.example.test/guide/api/"
    assert normalize("/faq?b=1&a=2#top", base) == "https://docs.example.test/faq?a=2&b=1"
    assert normalize("//cdn.example.test/x", base) == "https://cdn.example.test/x"
    assert normalize("#only-a-fragment", base) == "https://docs.example.test/guide/setup/install.html"
    assert normalize("mailto:a@example.test", base) is None


def test_normalize_is_idempotent():
    for url, expected in NORMALIZATION:
        if expected is not None:
            assert normalize(expected) == expected, url


@pytest.mark.parametrize("garbage", [None, 42, b"https://docs.example.test/", "http://[::1/", "https://exa mple.test/"])
def test_normalize_never_raises(garbage):
    assert normalize(garbage) is None


def test_host_of():
    assert host_of("HTTPS://Docs.Example.test:443/a") == "docs.example.test"
    assert host_of("http://docs.example.test:8080/a") == "docs.example.test:8080"
    assert host_of("mailto:a@example.test") == ""


def test_scope_hosts_and_prefixes():
    scope = Scope(hosts=frozenset({"Docs.Example.test"}), prefixes=("/docs/", "/api/"))
    assert scope.contains("https://docs.example.test/docs/start")
    assert scope.contains("https://DOCS.example.test/api/v1#x")
    assert not scope.contains("https://docs.example.test/blog/post")
    assert not scope.contains("https://docs.example.test/docs")  # "/docs/" is a plain prefix
    assert not scope.contains("https://www.example.test/docs/start")
    assert not scope.contains("mailto:docs@example.test")


def test_scope_include_and_exclude_globs():
    scope = Scope(hosts=frozenset({"docs.example.test"}), include=("/docs/*", "/faq"),
                  exclude=("*/changelog*", "*.zip", "*?print=*"))
    assert scope.contains("https://docs.example.test/docs/a/b")
    assert scope.contains("https://docs.example.test/faq")
    assert not scope.contains("https://docs.example.test/faq/more")
    assert not scope.contains("https://docs.example.test/pricing")  # not included
    assert not scope.contains("https://docs.example.test/docs/changelog/2024")
    assert not scope.contains("https://docs.example.test/docs/files/all.zip")
    assert not scope.contains("https://docs.example.test/docs/a?print=1")
    assert scope.contains("https://docs.example.test/docs/a?page=1")


def test_scope_patterns_are_case_sensitive_and_see_the_normalized_query():
    scope = Scope(hosts=frozenset({"docs.example.test"}), exclude=("*.ZIP", "*?a=1&b=2"))
    assert scope.contains("https://docs.example.test/x.zip")
    assert not scope.contains("https://docs.example.test/x.ZIP")
    assert not scope.contains("https://docs.example.test/p?b=2&utm_source=x&a=1")  # sorted, tracking removed


SLUGS = [
    ("https://docs.example.test/", "index"),
    ("https://docs.example.test", "index"),
    ("https://docs.example.test/docs/", "docs/index"),
    ("https://docs.example.test/docs/Getting%20Started.html", "docs/getting-started"),
    ("https://docs.example.test/Guide/Install.HTM", "guide/install"),
    ("https://docs.example.test/a/page.php", "a/page"),
    ("https://docs.example.test/a/page.aspx", "a/page"),
    ("https://docs.example.test/a/readme.md", "a/readme"),
    ("https://docs.example.test/a/manual.pdf", "a/manual.pdf"),
    ("https://docs.example.test/api/v1.2/intro", "api/v1.2/intro"),
    ("https://docs.example.test/caf%C3%A9/cr%C3%A8me", "cafe/creme"),
    ("https://docs.example.test/a/$weird!!name*(1)", "a/weird-name-1"),
    ("https://docs.example.test/.well-known/x", "well-known/x"),
    ("https://docs.example.test/a/..hidden../b", "a/hidden/b"),
]


@pytest.mark.parametrize(("url", "expected"), SLUGS)
def test_object_slug(url, expected):
    assert object_slug(url) == expected


def _assert_safe(slug: str):
    assert re.fullmatch(r"[a-z0-9._/-]+", slug), slug
    assert not slug.startswith((".", "/")) and not slug.endswith("/")
    assert ".." not in slug and "//" not in slug
    assert all(segment and not segment.startswith(".") for segment in slug.split("/"))


def test_object_slug_query_adds_a_hash_and_keeps_pages_apart():
    first = object_slug("https://docs.example.test/search?q=alpha")
    second = object_slug("https://docs.example.test/search?q=beta")
    assert re.fullmatch(r"search-q[0-9a-f]{8}", first)
    assert first != second
    # equal after normalisation -> equal slug
    assert object_slug("https://docs.example.test/s?b=2&a=1&utm_source=x") == object_slug(
        "https://docs.example.test/s?a=1&b=2")
    assert re.fullmatch(r"index-q[0-9a-f]{8}", object_slug("https://docs.example.test/?page=2"))


def test_object_slug_is_deterministic_and_safe_for_unreadable_segments():
    japanese = "https://docs.example.test/%E6%97%A5%E6%9C%AC/%E8%AA%9E"
    slug = object_slug(japanese)
    assert slug == object_slug(japanese)
    assert re.fullmatch(r"u-[0-9a-f]{8}/u-[0-9a-f]{8}", slug)
    assert object_slug("https://docs.example.test/%E6%97%A5") != object_slug("https://docs.example.test/%E8%AA%9E")
    for url in ("https://docs.example.test/a//b", "https://docs.example.test/.../...", "https://docs.example.test/-.-/",
                "https://docs.example.test/x./y", japanese):
        _assert_safe(object_slug(url))


def test_object_slug_bounds_segments_and_the_whole_path():
    long_segment = object_slug("https://docs.example.test/" + "a" * 200 + "/page")
    first = long_segment.split("/")[0]
    assert len(first) <= 80 and re.search(r"-[0-9a-f]{8}$", first)
    assert long_segment.endswith("/page")
    deep = "https://docs.example.test/" + "/".join(f"section-{i:03d}-with-a-longer-name" for i in range(40))
    slug = object_slug(deep)
    assert len(slug) <= 300
    assert re.search(r"-[0-9a-f]{8}$", slug)
    assert object_slug(deep + "x") != slug  # the hash of the URL keeps long siblings apart
    assert all(len(segment) <= 80 for segment in slug.split("/"))
    _assert_safe(slug)


def test_object_slug_can_include_the_host():
    assert object_slug("https://docs.example.test:8443/a/", include_host=True) == "docs.example.test-8443/a/index"
    assert object_slug("https://one.example.test/a") == object_slug("https://two.example.test/a")
    assert object_slug("https://one.example.test/a", include_host=True) != object_slug(
        "https://two.example.test/a", include_host=True)
