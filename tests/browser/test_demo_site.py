"""The demo site's server (infra/demo/server.py), without a browser: the chat URL filled in, only page files served."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from infra.demo.server import DemoSite

CHAT = 'http://127.0.0.1:8123/"quoted"'


@pytest.fixture(scope="module")
def site():
    with DemoSite(CHAT) as running:
        yield running


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], ""


@pytest.mark.parametrize("page", ["/", "/inline.html", "/plain.html"])
def test_each_page_embeds_the_widget_from_the_chat_url(site, page):
    status, content_type, html = get(site.url + page)
    assert status == 200 and content_type == "text/html; charset=utf-8"
    assert "{{CHAT_URL}}" not in html
    assert 'src="http://127.0.0.1:8123/&quot;quoted&quot;/widget/v1/widget.js"' in html  # escaped for the attribute


def test_only_page_files_are_served(site):
    assert get(site.url + "/site.css")[:2] == (200, "text/css; charset=utf-8")
    for path in ("/server.py", "/__init__.py", "/../README.md", "/%2e%2e/Makefile", "/nope.html"):
        assert get(site.url + path)[0] == 404, path


def test_the_origin_is_what_chat_must_allow(site):
    assert site.origin == site.url and site.url.startswith("http://127.0.0.1:")
