"""Page extraction for the sync: HTML to clean Markdown, page facts (canonical, links, robots, JavaScript shells),
the site's own Markdown, the stored document and the change digest."""

from __future__ import annotations

import time
from urllib.parse import urljoin

import pytest

from shared.ingest.parsers.markdown import parse as parse_markdown_document
from shared.ingest.parsers.markdown import split_front_matter
from shared.sync.extract import (
    Page,
    _UrlResolver,
    content_digest,
    extract_html,
    extract_markdown,
    render_document,
    validate_selector,
    visible_length,
)

URL = "https://docs.example.test/guide/setup/page.html"


def extract(html: str | bytes, url: str = URL, **kwargs) -> Page:
    return extract_html(html.encode("utf-8") if isinstance(html, str) else html, url, **kwargs)


def docs_page(article: str, *, title: str = "Setup | Example Docs", head: str = "", footer_date: str = "2026-12-01",
              nonce: str = "r4nd0m", csrf: str = "tok-1") -> str:
    """A docs page as generators write them: site chrome around a <main> with the article."""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<meta name="csrf-token" content="{csrf}">{head}
<script nonce="{nonce}">window.__DATA__ = {{"build": "{nonce}"}};</script><style>.x {{ color: red }}</style></head>
<body>
<a class="skip-link" href="#content">Skip to main content</a>
<header class="site-header"><a href="/">Example logo</a><nav><a href="/pricing">Pricing nav</a></nav></header>
<div class="cookie-banner">We use cookies banner text <button>Accept</button></div>
<div class="layout">
  <aside class="theme-doc-sidebar-container"><ul><li><a href="/guide/a">Sidebar entry</a></li></ul></aside>
  <main>
    <nav aria-label="Breadcrumbs" class="theme-doc-breadcrumbs"><a href="/">Home crumb</a></nav>
    <div class="breadcrumbs">Docs › Guide crumb</div>
    <article>{article}</article>
    <div class="tocCollapsible_ETCw">On this page toc</div>
    <div class="theme-edit-this-page"><a href="https://git.example.test/edit">Edit this page</a></div>
    <div id="feedback-widget">Was this helpful? feedback</div>
    <nav class="pagination-nav"><a href="/guide/next">Next page pagination</a></nav>
    <div class="table-of-contents">Table of contents entries</div>
  </main>
</div>
<footer class="footer"><p>Copyright © 2026 Example. Last built {footer_date}.</p></footer>
<div role="contentinfo">Contentinfo text</div>
<script src="/assets/app.js"></script>
</body></html>"""


ARTICLE = """<h1>Setup</h1>
<p>Install the <strong>agent</strong> with <code>pip install agent</code>, then read
   <a href="../reference/config.html">the configuration reference</a>.</p>
<h2 id="requirements">Requirements</h2>
<p>You need Python 3.11.</p>"""


# ---------------------------------------------------------------------------------------------------------------
# Main content and boilerplate


def test_page_chrome_is_removed_and_the_article_kept():
    page = extract(docs_page(ARTICLE))
    for chrome in ("Skip to main content", "Example logo", "Pricing nav", "cookies banner", "Accept",
                   "Sidebar entry", "Home crumb", "Guide crumb", "toc", "Edit this page", "feedback",
                   "pagination", "Table of contents", "Copyright", "Contentinfo", "window.__DATA__", "color: red"):
        assert chrome not in page.markdown, chrome
    assert page.markdown.startswith("# Setup\n\nInstall the **agent** with `pip install agent`, then read "
                                    "[the configuration reference](https://docs.example.test/guide/reference/"
                                    "config.html).")
    assert "## Requirements\n\nYou need Python 3.11." in page.markdown
    assert page.flags == []
    assert page.text_length == len("Setup Install the agent with pip install agent, then read the configuration "
                                   "reference. Requirements You need Python 3.11.")


def test_hidden_elements_are_not_text():
    page = extract("""<main><p>Shown.</p><div hidden>Hidden attribute</div><p style="display: none">Hidden
    style</p><span aria-hidden="true">Hidden aria</span><div style="visibility:hidden">Hidden visibility</div>
    <template><p>Template text</p></template><noscript>Noscript text</noscript><svg><title>Svg title</title></svg>
    <form><label>Form label</label></form></main>""")
    assert page.markdown == "Shown."


def test_a_section_whose_id_is_a_chrome_word_but_which_holds_a_heading_is_kept():
    # Sphinx and many CMSs give a section the slug of its heading: a privacy page's "Cookies" section.
    page = extract('<main><section id="cookies"><h2>Cookies</h2><p>We store two cookies.</p></section>'
                   '<div class="layout has-sidebar"><h1>Title</h1><p>Body text.</p></div></main>')
    assert "## Cookies\n\nWe store two cookies." in page.markdown
    assert "# Title\n\nBody text." in page.markdown


def test_the_article_header_is_kept_and_the_site_header_dropped():
    page = extract('<body><header>Site header</header><article><header><h1>Post</h1><p>By Ann</p></header>'
                   '<p>Text.</p><footer>Article footer</footer></article></body>')
    assert page.markdown == "# Post\n\nBy Ann\n\nText."


@pytest.mark.parametrize("html, expected", [
    ('<div id="content"><p>In content</p></div><div role="main"><p>In role main</p></div>', "In role main"),
    ('<article><p>One article</p></article><div class="content"><p>Content class</p></div>', "One article"),
    ('<article><p>First</p></article><article><p>Second</p></article><div id="main-content"><p>Main content id'
     '</p></div>', "Main content id"),
    ('<div class="wrapper"><div class="markdown-body"><p>GitHub body</p></div><p>Outside</p></div>', "GitHub body"),
])
def test_the_main_content_element_is_chosen_in_order(html, expected):
    assert extract(f"<html><body>{html}</body></html>").markdown == expected


def test_without_a_main_element_the_body_is_used_and_flagged():
    page = extract("<html><body><nav>Menu</nav><p>Plain page.</p><footer>Foot</footer></body></html>")
    assert page.markdown == "Plain page."
    assert page.flags == ["body_fallback"]


def test_a_selector_chooses_the_content():
    html = '<main><div class="intro">Intro</div><div class="doc"><p>The doc.</p></div></main>'
    page = extract(html, selector="main > .doc")
    assert page.markdown == "The doc."
    assert page.flags == []


def test_a_selector_that_matches_nothing_gives_no_markdown_and_a_flag():
    page = extract(docs_page(ARTICLE), selector="div.renamed-by-the-redesign")
    assert page.markdown == ""
    assert page.flags == ["selector_missed"]
    assert page.title == "Setup"  # the page's facts are still there
    assert "https://docs.example.test/guide/a" in page.links


def test_an_invalid_selector_is_flagged_and_validate_selector_names_it():
    page = extract(docs_page(ARTICLE), selector="div[[")
    assert page.markdown == "" and page.flags == ["selector_invalid"]
    with pytest.raises(ValueError, match="not valid CSS"):
        validate_selector("div[[")
    with pytest.raises(ValueError, match="empty"):
        validate_selector("  ")
    validate_selector("article .markdown:not(.hidden)")


# ---------------------------------------------------------------------------------------------------------------
# Markdown


def test_headings_emphasis_and_inline_code():
    page = extract("<main><h1>Title</h1><h3>Third <em>level</em></h3><p>A <b>bold</b> and <i>italic</i>"
                   " word, <code>a_b()</code> and <kbd>Ctrl</kbd>.</p><h6>Six</h6></main>")
    assert page.markdown == ("# Title\n\n### Third *level*\n\nA **bold** and *italic* word, `a_b()` and `Ctrl`."
                             "\n\n###### Six")


def test_code_blocks_are_fenced_with_their_language_and_their_text_exact():
    code = 'if a < b && c:\n    print("**not bold** `tick` _x_")\n\n    return {"k": [1, 2]}'
    escaped = code.replace("&", "&amp;").replace("<", "&lt;")
    page = extract(f"""<main>
<pre class="language-python"><code>{escaped}</code></pre>
<pre><code class="lang-js">let x = 1;</code></pre>
<div class="highlight-source-shell"><pre>$ ls *_x_*</pre></div>
<pre>one line</pre>
<pre><code class="language-text"><span class="line">first</span><br><span class="line">  second</span></code></pre>
<pre>
leading newline dropped</pre>
</main>""")
    assert page.markdown == (f"```python\n{code}\n```\n\n```js\nlet x = 1;\n```\n\n```shell\n$ ls *_x_*\n```\n\n"
                             "```\none line\n```\n\n```text\nfirst\n  second\n```\n\n"
                             "```\nleading newline dropped\n```")


def test_a_code_block_holding_a_fence_gets_a_longer_fence():
    page = extract("<main><pre>```\ninner\n```</pre></main>")
    assert page.markdown == "````\n```\ninner\n```\n````"


def test_tables_become_pipe_tables():
    page = extract("""<main><table>
<thead><tr><th>Option</th><th>Meaning</th></tr></thead>
<tbody><tr><td><code>mode</code></td><td>a | b</td></tr>
<tr><td>retries</td><td>How often<br>to retry</td></tr>
<tr><td colspan="2">spans both</td></tr></tbody></table></main>""")
    assert page.markdown == ("| Option | Meaning |\n|---|---|\n| `mode` | a \\| b |\n| retries | How often to retry |"
                             "\n| spans both |  |")


def test_nested_and_ordered_lists():
    page = extract("""<main><ul>
<li>One</li>
<li>Two
  <ul><li>Two a</li><li>Two b<ol start="3"><li>deep three</li><li>deep four</li></ol></li></ul>
</li>
<li><p>Three</p><pre class="language-sh"><code>echo 3</code></pre></li>
</ul></main>""")
    assert page.markdown == ("- One\n- Two\n  - Two a\n  - Two b\n    3. deep three\n    4. deep four\n"
                             "- Three\n\n  ```sh\n  echo 3\n  ```")


def test_links_are_absolute_images_are_their_alt_text_and_definitions_are_bold_terms():
    page = extract("""<main><p>See <a href="/api#auth">auth</a>, <a href="other.html">a sibling</a>,
<a href="https://elsewhere.test/x">elsewhere</a> and <a href="../a b(1).html">odd</a>.
<img src="diagram.png" alt="The flow diagram"> <a href="/icon"><img src="i.svg" alt=""></a></p>
<dl><dt>Term</dt><dd>Its definition.</dd><dt>Alias</dt><dt>Other name</dt><dd>Shared one.</dd></dl></main>""")
    assert page.markdown == (
        "See [auth](https://docs.example.test/api#auth), [a sibling](https://docs.example.test/guide/setup/"
        "other.html), [elsewhere](https://elsewhere.test/x) and [odd](https://docs.example.test/guide/"
        "a%20b%281%29.html). The flow diagram\n\n**Term**: Its definition.\n\n**Alias**, **Other name**: Shared one.")


def test_text_is_escaped_only_where_markdown_would_misread_it():
    page = extract("<main><p>snake_case_name and my-var stay; __init__, *args, 2 * 3, a &lt;div&gt; tag"
                   " and [x](y) are literal.</p><p># not a heading<br>- not a list<br>1. not a list</p></main>")
    assert page.markdown == ("snake_case_name and my-var stay; \\_\\_init\\_\\_, \\*args, 2 * 3, a \\<div> tag"
                             " and [x\\](y) are literal.\n\n\\# not a heading\n\\- not a list\n1\\. not a list")
    assert "\\_" not in extract("<main><p>a_b c_d MAX_SIZE</p></main>").markdown


def test_layout_has_no_trailing_spaces_nor_runs_of_blank_lines():
    page = extract(docs_page("<h1>T</h1>\n\n\n<div>\n\n<p>  a  </p>\n\n\n</div><div></div><div>   </div>"
                             "<p>b <br>  c  </p><hr><p>d</p>"))
    assert page.markdown == "# T\n\na\n\nb\nc\n\nd"


def test_heading_permalinks_are_not_text():
    page = extract('<main><h2 id="x">Install<a class="hash-link" href="#x">\u200b</a></h2>'
                   '<h2 id="y">Configure<a class="headerlink" href="#y">¶</a></h2></main>')
    assert page.markdown == "## Install\n\n## Configure"


def test_the_markdown_parses_back_to_the_same_structure_in_ingest():
    """What the sync writes is what ingest reads: code exact, literal stars, list items, table cells."""
    code = "for i in range(3):\n    print(i)  # a <comment>"
    page = extract(f"""<main><h1>Guide</h1><p>Intro *with* stars.</p>
<pre class="language-python"><code>{code.replace("<", "&lt;")}</code></pre>
<ul><li>Step one<pre><code>echo listed</code></pre></li><li>Step two</li></ul>
<table><tr><th>a</th><th>b</th></tr><tr><td>1 | 2</td><td>x</td></tr></table></main>""")
    document = parse_markdown_document(page.markdown.encode(), "page.md")
    assert document.title == "Guide"
    assert [(b.kind, b.text) for b in document.blocks if b.kind in ("paragraph", "code")] == [
        ("paragraph", "Intro *with* stars."), ("code", code)]
    listed = " ".join(b.text for b in document.blocks if b.kind == "list")
    assert "Step one echo listed" in listed and "Step two" in listed
    assert "| 1 \\| 2 | x |" in " ".join(b.text for b in document.blocks if b.kind == "table")


# ---------------------------------------------------------------------------------------------------------------
# Decoding


def test_a_latin1_page_without_a_declared_charset():
    page = extract("<html><body><main><p>Un café crème.</p></main></body></html>".encode("latin-1"))
    assert page.markdown == "Un café crème."
    assert page.flags == []
    # Windows "Latin-1" uses 0x80-0x9F for quotes and the euro; the HTML standard reads ISO-8859-1 as windows-1252
    smart = "<main><p>It’s €5 – “cheap”</p></main>".encode("cp1252")
    assert extract(smart).markdown == "It’s €5 – “cheap”"
    assert extract(smart, headers={"content-type": "text/html; charset=ISO-8859-1"}).markdown == "It’s €5 – “cheap”"


def test_the_charset_comes_from_the_header_then_the_meta_tag():
    cyrillic = "<html><head><meta charset='windows-1251'></head><main><p>Привет</p></main></html>"
    assert extract(cyrillic.encode("cp1251")).markdown == "Привет"
    koi8 = "<main><p>Привет</p></main>".encode("koi8-r")
    assert extract(koi8, headers={"content-type": "text/html; charset=KOI8-R"}).markdown == "Привет"
    # the header wins over a meta tag that disagrees
    mixed = "<meta http-equiv='Content-Type' content='text/html; charset=utf-8'><main><p>Grüße</p></main>"
    assert extract(mixed.encode("latin-1"), headers={"content-type": "text/html; charset=iso-8859-1"}
                   ).markdown == "Grüße"


def test_a_byte_order_mark_and_undecodable_bytes():
    utf16 = "\ufeff<main><p>UTF-16 café</p></main>".encode("utf-16-le")
    assert extract(utf16).markdown == "UTF-16 café"
    broken = b"<main><p>bad \x81\x8d\x90 bytes \xff\xfe\xfa</p></main>"
    page = extract(broken, headers={"content-type": "text/html; charset=utf-8"})
    assert "bytes" in page.markdown  # no exception, the text is there


def test_an_empty_body_is_an_empty_page():
    page = extract(b"", headers={"x-robots-tag": "noindex"})
    assert page.markdown == "" and page.flags == ["empty_document"] and page.noindex


# ---------------------------------------------------------------------------------------------------------------
# JavaScript shells


@pytest.mark.parametrize("body", [
    '<div id="root"></div><script src="/static/js/main.js"></script>',
    '<noscript>You need to enable JavaScript to run this app.</noscript><div id="app-shell"></div>'
    '<script src="/bundle.js"></script>',
    '<div id="__next"><div class="spinner"></div></div><script src="/_next/main.js"></script>',
])
def test_a_javascript_shell_is_detected(body):
    page = extract(f"<html><head><title>Docs</title></head><body>{body}</body></html>")
    assert page.javascript_shell
    assert "javascript_shell" in page.flags
    assert page.markdown == ""


@pytest.mark.parametrize("body", [
    # a short page that happens to load a script
    '<main><h1>Contact</h1><p>Mail us.</p></main><script src="/analytics.js"></script>',
    # a server-rendered app: its mount point is full of text
    '<div id="__next"><main><h1>Pricing</h1><p>' + "Plenty of text here. " * 15 + '</p></main></div>'
    '<script src="/_next/main.js"></script>',
    # a long static page with an empty widget mount point and its script
    '<main><h1>Guide</h1><p>' + "Plenty of text here. " * 15 + '</p></main><div id="app"></div>'
    '<script src="/widget.js"></script>',
    # an empty mount point but no script at all
    '<div id="root"></div><p>Static note.</p>',
])
def test_a_normal_page_is_not_a_javascript_shell(body):
    page = extract(f"<html><body>{body}</body></html>")
    assert not page.javascript_shell
    assert "javascript_shell" not in page.flags
    assert page.markdown


# ---------------------------------------------------------------------------------------------------------------
# Page facts: canonical, alternate, links, robots, title


def test_canonical_and_markdown_alternate_are_absolute():
    page = extract(docs_page(ARTICLE, head='<link rel="canonical" href="/guide/setup/"><link rel="alternate" '
                                          'type="text/markdown" href="page.md"><link rel="alternate" '
                                          'hreflang="fr" href="/fr/guide/">'))
    assert page.canonical == "https://docs.example.test/guide/setup/"
    assert page.markdown_alternate == "https://docs.example.test/guide/setup/page.md"
    plain = extract("<main><p>x</p></main>")
    assert plain.canonical is None and plain.markdown_alternate is None


def test_links_cover_the_whole_document_in_order_without_duplicates_or_nofollow():
    page = extract("""<html><head><base href="https://docs.example.test/v2/"></head><body>
<nav><a href="/">Home</a><a href="intro">Intro</a></nav>
<main><a href="intro">Intro again</a><a href="#section">Here</a><a href="/login" rel="nofollow">Log in</a>
<a href="mailto:help@example.test">Mail</a><a href="javascript:void(0)">JS</a><a href="https://other.test/p">
Other</a><a href="/ugc" rel="ugc nofollow">UGC</a></main><footer><a href="/">Home</a></footer></body></html>""")
    assert page.links == ["https://docs.example.test/", "https://docs.example.test/v2/intro",
                          "https://docs.example.test/v2/#section", "https://other.test/p"]


@pytest.mark.parametrize("head, headers, expected", [
    ('<meta name="robots" content="noindex, follow">', {}, True),
    ('<meta name="GoogleBot" content="NOINDEX">', {}, True),
    ('<meta name="robots" content="none">', {}, True),
    ('<meta name="robots" content="index, follow">', {}, False),
    ('<meta name="description" content="noindex tips">', {}, False),
    ("", {"x-robots-tag": "noindex"}, True),
    ("", {"x-robots-tag": "googlebot: noindex, nofollow"}, True),
    ("", {"x-robots-tag": "max-snippet: 20"}, False),
])
def test_noindex_from_robots_meta_or_header(head, headers, expected):
    assert extract(docs_page(ARTICLE, head=head), headers=headers).noindex is expected


@pytest.mark.parametrize("title, article, expected", [
    ("Setup | Example Docs", "<h1>Setup</h1>", "Setup"),
    ("Setup - Example Docs", "<h1>Setup</h1>", "Setup"),
    ("Setup — Example", "<h1>Setup</h1>", "Setup"),
    ("Foo - Bar | Site", "<h1>Foo - Bar</h1>", "Foo - Bar"),
    ("Example Docs", "<h1>Setup guide</h1>", "Setup guide"),  # the site name alone: the h1 is better
    ("Only a title | Site", "<p>no heading</p>", "Only a title | Site"),
])
def test_title_rule(title, article, expected):
    assert extract(docs_page(article, title=title)).title == expected


def test_no_title_at_all():
    assert extract("<main><p>text</p></main>").title == ""


def test_url_shortcuts_agree_with_urljoin():
    base = "https://docs.example.test/guide/setup/page.html?x=1#top"
    resolver = _UrlResolver(base)
    for href in ["/a", "/a/b?c=d#e", "/a/../b", "/./a", "//cdn.test/x", "https://o.test/a/../b", "HTTPS://O.test",
                 "rel", "../up", "?q=1", "#frag", "", "/a b", " /padded "]:
        assert resolver.absolute(href) == urljoin(base, href.strip()), href


# ---------------------------------------------------------------------------------------------------------------
# Change digest


def test_the_digest_ignores_nonces_tokens_footer_dates_and_whitespace():
    original = extract(docs_page(ARTICLE)).markdown
    variants = [
        docs_page(ARTICLE, nonce="0ther-n0nce"),
        docs_page(ARTICLE, csrf="tok-2"),
        docs_page(ARTICLE, footer_date="2026-12-02"),
        docs_page(ARTICLE.replace("\n", "\n\n   ").replace(" with ", "   with\n")),
    ]
    digests = {content_digest(extract(html).markdown) for html in variants}
    assert digests == {content_digest(original)}


def test_the_digest_changes_on_a_real_edit():
    before = content_digest(extract(docs_page(ARTICLE)).markdown)
    assert content_digest(extract(docs_page(ARTICLE.replace("3.11", "3.12"))).markdown) != before
    assert content_digest(extract(docs_page(ARTICLE.replace("<strong>agent</strong>", "agent"))).markdown) != before
    assert len(before) == 64 and int(before, 16) >= 0


# ---------------------------------------------------------------------------------------------------------------
# The stored document and the site's own Markdown


@pytest.mark.parametrize("title", ["Setup", "Errors: what 404 means", "C# and F# #1 guide", 'Say "hi"',
                                   "'quoted'", "Multi\nline   title", "---", ""])
def test_render_document_round_trips_through_ingests_front_matter(title):
    source_url = "https://docs.example.test/a?b=1#c"
    document = render_document(title, source_url, "# Body\n\ntext: with colon\n\n---\n\nmore\n\n")
    assert document.startswith("---\ntitle: ")
    assert document.endswith("more\n")
    meta, body = split_front_matter(document)
    expected = " ".join(title.split())
    assert meta["title"] == expected.replace('"hi"', '"hi”').replace("'quoted'", "‘quoted’")
    assert meta["source_url"] == source_url
    assert body == "\n# Body\n\ntext: with colon\n\n---\n\nmore\n"


def test_render_document_title_is_what_ingest_reads():
    document = render_document("Refunds: the #1 question", "https://x.test/r", "# Refunds\n\nText.")
    assert parse_markdown_document(document.encode(), "r.md").title == "Refunds: the #1 question"


def test_extract_markdown_strips_front_matter_and_keeps_its_title():
    body = b"""---
title: "Install: the quick way"
sidebar_position: 2
---

# Install

See [the guide](../guide.md "Guide"), [![badge](https://img.test/b.svg)](https://ci.test/x) and
<https://auto.test/y>. ![shot](/img/shot.png)

```md
[not a link](https://code.test/)
```

[ref]: /docs/ref
"""
    page = extract_markdown(body, "https://docs.example.test/docs/install.md")
    assert page.title == "Install: the quick way"
    assert page.markdown.startswith("# Install\n\nSee [the guide]")
    assert "sidebar_position" not in page.markdown
    assert page.links == ["https://docs.example.test/guide.md", "https://ci.test/x", "https://auto.test/y",
                          "https://docs.example.test/docs/ref"]
    assert page.canonical is None and not page.javascript_shell
    assert page.text_length == visible_length(page.markdown) > 0


def test_extract_markdown_title_from_first_heading_and_bad_bytes():
    page = extract_markdown(b"\xef\xbb\xbfIntro line\n\n# The Heading #\n\nText \xff here\n", "https://x.test/")
    assert page.title == "The Heading"
    assert "Text \ufffd here" in page.markdown
    assert extract_markdown(b"+++\ntitle = 'Hugo page'\n+++\nBody\n", "https://x.test/").title == "Hugo page"


def test_visible_length_counts_text_not_markup():
    assert visible_length("# Title\n\n- **bold** and [link](https://x.test/long/url) ![alt](i.png)\n\n"
                          "| a | b |\n|---|---|\n| c | d |") == len("Title bold and link alt a b c d")


# ---------------------------------------------------------------------------------------------------------------
# Speed (printed, not asserted: machines differ)


def typical_docs_page(size: int = 30_000) -> str:
    section = """<h2 id="s{i}">Step {i}<a class="hash-link" href="#s{i}">#</a></h2>
<p>A paragraph about <strong>step {i}</strong> with <a href="../guide/x{i}">a link</a>, <code>inline_code()</code>
and <em>emphasis</em>. Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt.</p>
<ul><li>First <a href="https://example.org/a{i}">ext</a></li><li>Second<ul><li>nested</li></ul></li></ul>
<div class="language-python"><pre class="prism-code language-python"><code><span class="token-line">import os</span>
<span class="token-line">print(os.environ["X_{i}"])</span></code></pre></div>
<table><thead><tr><th>Option</th><th>Default</th></tr></thead><tbody><tr><td><code>timeout</code></td><td>30</td>
</tr></tbody></table>
"""
    sidebar = "".join(f'<li><a href="/docs/p{i}">Page {i}</a></li>' for i in range(60))
    page = docs_page("<h1>Install</h1>{sections}").replace('<li><a href="/guide/a">Sidebar entry</a></li>', sidebar)
    sections, i = [], 0
    while len(page) + sum(map(len, sections)) < size:
        sections.append(section.format(i=i))
        i += 1
    return page.replace("{sections}", "".join(sections))


def test_extraction_speed_of_a_typical_30kb_docs_page(capsys):
    html = typical_docs_page().encode()
    assert 29_000 < len(html) < 40_000
    extract_html(html, URL)  # imports and compiled expressions
    rounds = 50
    started, started_cpu = time.perf_counter(), time.process_time()
    for n in range(rounds):
        page = extract_html(html, f"https://docs.example.test/guide/{n}/page.html")
    elapsed_ms = (time.perf_counter() - started) / rounds * 1000
    cpu_ms = (time.process_time() - started_cpu) / rounds * 1000
    assert "## Step 3" in page.markdown and "```python" in page.markdown
    with capsys.disabled():
        print(f"\n  extract_html: {elapsed_ms:.1f} ms wall, {cpu_ms:.1f} ms CPU per {len(html) // 1000} KB docs page")
