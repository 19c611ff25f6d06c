"""The embeddable web widget (`functions/chat/widget/widget.js`): how the chat function serves it, what ships in the
bundle, the size budget, the source rules (no HTML sinks, nothing from third-party hosts), and — when `node` is
installed — its SSE parser and safe Markdown renderer run against a minimal DOM stand-in.

The widget's behaviour in a browser (shadow DOM, streaming, retries, feedback, hand-off) is covered by the browser
tests."""

from __future__ import annotations

import dataclasses
import gzip
import inspect
import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from shared import services
from shared.config import Settings

ROOT = Path(__file__).resolve().parents[2]
WIDGET = ROOT / "functions" / "chat" / "widget" / "widget.js"
URL = "/widget/v1/widget.js"
JS_TYPE = "application/javascript; charset=utf-8"


@pytest.fixture(scope="module")
def app():
    from functions_framework import create_app

    return create_app("chat", str(ROOT / "functions" / "chat" / "main.py"))


@pytest.fixture
def client(app, monkeypatch):
    for key, value in {"DATABASE_URL": "postgresql://test@127.0.0.1:1/unused", "GOOGLE_CLOUD_PROJECT": "demo-test",
                       "CHAT_ALLOWED_ORIGINS": "https://shop.example", "LOG_LEVEL": "WARNING"}.items():
        monkeypatch.setenv(key, value)
    services.reset()
    yield app.test_client()
    services.reset()


def main_module(app):
    return inspect.unwrap(app.view_functions["run"]).__globals__  # functions/chat/main.py's globals


# --- serving ---------------------------------------------------------------------------------------------------------
def test_widget_is_served_as_a_cacheable_script(client):
    response = client.get(URL)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == JS_TYPE
    assert response.headers["Cache-Control"] == "public, max-age=3600"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert re.fullmatch(r'"[0-9a-f]{20}"', response.headers["ETag"])
    assert "Accept-Encoding" in response.headers["Vary"]
    assert "Content-Encoding" not in response.headers
    assert response.get_data() == WIDGET.read_bytes()


def test_widget_is_gzipped_for_browsers_that_accept_it(client):
    plain = client.get(URL)
    zipped = client.get(URL, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert zipped.status_code == 200
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.headers["Content-Type"] == JS_TYPE
    assert gzip.decompress(zipped.get_data()) == WIDGET.read_bytes()
    assert zipped.headers["ETag"] != plain.headers["ETag"]  # one validator per representation
    refused = client.get(URL, headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in refused.headers and refused.get_data() == WIDGET.read_bytes()


@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_a_current_copy_is_revalidated_with_a_304(client, encoding):
    headers = {"Accept-Encoding": encoding} if encoding else {}
    etag = client.get(URL, headers=headers).headers["ETag"]
    response = client.get(URL, headers={**headers, "If-None-Match": etag})
    assert response.status_code == 304
    assert response.get_data() == b""
    assert response.headers["ETag"] == etag
    assert response.headers["Cache-Control"] == "public, max-age=3600"
    assert client.get(URL, headers={**headers, "If-None-Match": f"W/{etag}"}).status_code == 304  # weak match
    assert client.get(URL, headers={**headers, "If-None-Match": '"stale"'}).status_code == 200


@pytest.mark.parametrize("path", ["/widget/v2/widget.js", "/widget/v0/widget.js", "/widget/widget.js",
                                  "/widget/v1/other.js", "/widget/v1/", "/widget/v1/widget.js/x"])
def test_other_versions_and_files_are_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_any_origin_may_load_the_widget(client):
    """Script tags send no Origin, but a crossorigin/integrity load does: the allow-list is for the API only."""
    response = client.get(URL, headers={"Origin": "https://not-listed.example"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.get_data() == WIDGET.read_bytes()
    api = client.get("/v1/sessions/session-1", headers={"Origin": "https://not-listed.example"})
    assert api.status_code == 403  # the API itself still refuses that origin


def test_widget_route_answers_get_and_head_only(client):
    assert client.head(URL).status_code == 200
    response = client.post(URL)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"


def test_widget_version_constant_names_the_route_and_the_documented_url(app):
    module = main_module(app)
    assert module["WIDGET_VERSION"] == "v1"
    rules = {rule.rule for rule in module["ROUTES"].iter_rules()}
    assert f"/widget/{module['WIDGET_VERSION']}/widget.js" in rules
    assert f"/widget/{module['WIDGET_VERSION']}/widget.js" in WIDGET.read_text()


def test_the_chat_bundle_ships_the_widget(tmp_path):
    from infra.package import build

    folder, zip_path = build("chat", tmp_path)
    assert zipfile.ZipFile(zip_path).read("widget/widget.js") == WIDGET.read_bytes()
    assert (folder / "widget" / "widget.js").read_bytes() == WIDGET.read_bytes()
    # main.py finds it next to itself, wherever the bundle is unpacked
    assert 'pathlib.Path(__file__).resolve().parent / "widget" / "widget.js"' in (folder / "main.py").read_text()


# --- the source ------------------------------------------------------------------------------------------------------
def test_gzipped_size_is_within_budget():
    size = len(gzip.compress(WIDGET.read_bytes(), compresslevel=9))
    assert size < 30 * 1024, f"widget.js is {size} bytes gzipped; the budget is 30 KiB"


@pytest.mark.parametrize("sink", [r"innerHTML", r"outerHTML", r"insertAdjacentHTML", r"document\s*\.\s*write",
                                  r"\beval\b", r"\bFunction\s*\(", r"srcdoc", r"DOMParser", r"createContextualFragment",
                                  r"setHTML", r"set(?:Timeout|Interval)\(\s*['\"`]"])
def test_no_html_sinks_or_code_from_strings(sink):
    hits = [line.strip() for line in WIDGET.read_text().splitlines() if re.search(sink, line)]
    assert not hits, f"{sink} in widget.js: {hits}"


def test_nothing_is_fetched_from_a_third_party_host():
    urls = re.findall(r"https?://[^\s\"'`)<>]+", WIDGET.read_text())
    allowed = {"http://www.w3.org/2000/svg"}  # the SVG namespace name, never fetched
    strays = [url for url in urls if url not in allowed and not url.startswith("https://CHAT_HOST/")]
    assert not strays, strays
    assert "import(" not in WIDGET.read_text() and "importScripts" not in WIDGET.read_text()


def test_session_ttl_default_matches_the_server():
    server_default = next(f.default for f in dataclasses.fields(Settings) if f.name == "session_ttl_seconds")
    match = re.search(r'"session-ttl": "(\d+)"', WIDGET.read_text())
    assert match and int(match.group(1)) == server_default


def test_message_limit_matches_the_server():
    server_default = next(f.default for f in dataclasses.fields(Settings) if f.name == "chat_max_message_chars")
    match = re.search(r"const MAX_CHARS = (\d+);", WIDGET.read_text())
    assert match and int(match.group(1)) == server_default


# --- the parser and the renderer, under node -------------------------------------------------------------------------
HARNESS = r"""
const fs = require("fs"), vm = require("vm");

class Node {
  constructor() { this.childNodes = []; }
  append(...nodes) { for (const n of nodes) this.appendChild(typeof n === "object" ? n : new Text(String(n))); }
  appendChild(node) {
    if (node instanceof Fragment) { this.childNodes.push(...node.childNodes); node.childNodes = []; return node; }
    this.childNodes.push(node);
    return node;
  }
  replaceChildren(...nodes) { this.childNodes = []; this.append(...nodes); }
  get textContent() { return this.childNodes.map((n) => n.textContent).join(""); }
  set textContent(value) { this.childNodes = [new Text(String(value))]; }
}
class Text extends Node {
  constructor(data) { super(); this.data = data; }
  get textContent() { return this.data; }
}
class Fragment extends Node {}
class Element extends Node {
  constructor(tag) { super(); this.tagName = tag; this.attrs = []; }
  setAttribute(name, value) { this.attrs = this.attrs.filter(([n]) => n !== name).concat([[name, String(value)]]); }
  getAttribute(name) { const a = this.attrs.find(([n]) => n === name); return a ? a[1] : null; }
  set className(value) { this.setAttribute("class", value); }
  addEventListener() {}
}
const escape = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
function html(node) {
  if (node instanceof Text) return escape(node.data);
  const inner = node.childNodes.map(html).join("");
  if (!(node instanceof Element)) return inner;
  const attrs = node.attrs.map(([n, v]) => ` ${n}="${escape(v)}"`).join("");
  return `<${node.tagName}${attrs}>${inner}</${node.tagName}>`;
}

const registry = new Map();
const context = {
  URL, console,
  HTMLElement: class {},
  customElements: { get: (n) => registry.get(n), define: (n, c) => registry.set(n, c) },
  location: { origin: "https://host.example", href: "https://host.example/" },
  document: {
    currentScript: null, readyState: "loading", baseURI: "https://host.example/",
    addEventListener() {}, querySelector: () => null,
    createElement: (tag) => new Element(tag), createElementNS: (ns, tag) => new Element(tag),
    createTextNode: (data) => new Text(data), createDocumentFragment: () => new Fragment(),
  },
};
context.window = context;
vm.createContext(context);
vm.runInContext(fs.readFileSync(process.argv[2], "utf8"), context);
const Chat = registry.get("support-chat");
const input = JSON.parse(fs.readFileSync(0, "utf8"));

const out = { markdown: {}, sources: html(Chat.sourceList(input.sources)), sse: {} };
for (const [name, [text, cites]] of Object.entries(input.markdown)) {
  out.markdown[name] = html(Chat.markdown(text, cites));
}

function parse(chunks) {
  const events = [];
  const parser = new Chat.SSEParser((name, data) => events.push([name, data]));
  for (const chunk of chunks) parser.feed(chunk);
  parser.end();
  return events;
}
const stream = input.stream;
out.sse.whole = parse([stream]);
out.sse.chars = parse([...stream]);
out.sse.splits = [];
for (let i = 0; i <= stream.length; i++) out.sse.splits.push(parse([stream.slice(0, i), stream.slice(i)]));
process.stdout.write(JSON.stringify(out));
"""

MARKDOWN = {
    "xss": ["Hi <img src=x onerror=alert(1)> <script>alert(1)</script> & bye", []],
    "links": ["[a](javascript:alert(1)) [b](https://ex.example/p?q=1) [c](mailto:x@ex.example) [d](/rel) "
              "[e](data:text/html,hi) [f](JAVASCRIPT:alert(1))", []],
    "inline": ["**bold** and *it* and `x<y` and __strong__", []],
    "blocks": ["# Title\nline one\nline two\n\n- a\n- b\n\n3. three\n4. four\n\n```py\nprint('<b>')\n```", []],
    "citations": ["See [1] and [2], also [1, 3].",
                  [{"number": 1, "title": "Refunds", "url": "https://help.example/r", "snippet": "s",
                    "document_id": "d1"},
                   {"number": 3, "title": "Other", "url": "gs://kb/o.md", "document_id": "d3"}]],
    "bare": ["Go to https://ex.example/a_b. Or (https://ex.example/c).", []],
    "linktext": ["[see https://ex.example/x **now** [1]](https://ex.example/y)",
                 [{"number": 1, "title": "T", "url": "https://t.example", "document_id": "d"}]],
}
SOURCES = [
    {"number": 1, "title": "<b>Refunds</b>", "url": "https://help.example/refunds", "snippet": "<script>x</script>",
     "source": "gs://kb/billing/refunds.md", "document_id": "d1"},
    {"number": 2, "title": "Setup", "url": "javascript:alert(1)", "source": "gs://kb/setup.md", "document_id": "d2"},
    {"number": 4, "title": "Plans", "url": "gs://kb/plans.md", "source": "gs://kb/plans.md", "document_id": "d4"},
    {"number": 5, "title": "", "url": "", "source": "gs://kb/untitled.md", "document_id": "d5"},
]
STREAM = ("\ufeff: ping\r\n\r\nevent: session\r\ndata: {\"session_id\":\"s-1\",\"turn_id\":\"t-1\"}\r\n\r\n"
          "event: delta\ndata: línea 1\ndata:line 2\n\n: ping\n\nevent: empty\n\n"
          "id: 7\nretry: 10\nevent: delta\ndata: «x»\n\nevent: done\rdata: {}\r\r")
EXPECTED_EVENTS = [["session", '{"session_id":"s-1","turn_id":"t-1"}'], ["delta", "línea 1\nline 2"],
                   ["delta", "«x»"], ["done", "{}"]]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    node = shutil.which("node")
    if not node:
        pytest.skip("node is not installed")
    harness = tmp_path_factory.mktemp("widget") / "harness.js"
    harness.write_text(HARNESS)
    result = subprocess.run([node, str(harness), str(WIDGET)], input=json.dumps(
        {"markdown": MARKDOWN, "sources": SOURCES, "stream": STREAM}), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_html_in_an_answer_is_literal_text(rendered):
    out = rendered["markdown"]["xss"]
    assert out == "<p>Hi &lt;img src=x onerror=alert(1)&gt; &lt;script&gt;alert(1)&lt;/script&gt; &amp; bye</p>"


def test_only_http_and_mailto_links_become_links(rendered):
    out = rendered["markdown"]["links"]
    hrefs = re.findall(r'href="([^"]*)"', out)
    assert hrefs == ["https://ex.example/p?q=1", "mailto:x@ex.example"]
    assert 'rel="noopener noreferrer"' in out and 'target="_blank"' in out
    for text in ("a", "d", "e", "f"):
        assert f" {text} " in f" {re.sub(r'<[^>]+>', ' ', out)} "  # the text stays, the link goes


def test_inline_and_block_markdown(rendered):
    assert rendered["markdown"]["inline"] == (
        "<p><strong>bold</strong> and <em>it</em> and <code>x&lt;y</code> and <strong>strong</strong></p>")
    assert rendered["markdown"]["blocks"] == (
        '<p class="md-h"><strong>Title</strong></p><p>line one<br></br>line two</p>'
        "<ul><li>a</li><li>b</li></ul>"
        '<ol start="3"><li>three</li><li>four</li></ol>'
        '<pre><code data-lang="py">print(\'&lt;b&gt;\')</code></pre>')


def test_citation_markers_link_to_known_sources_only(rendered):
    out = rendered["markdown"]["citations"]
    assert out == (
        '<p>See <sup class="cite"><a href="#c1" data-cite="1" aria-label="Source 1: Refunds">[1]</a></sup>'
        ' and <sup class="cite">[2]</sup>, also '
        '<sup class="cite"><a href="#c1" data-cite="1" aria-label="Source 1: Refunds">[1]</a></sup>'
        '<sup class="cite"><a href="#c3" data-cite="3" aria-label="Source 3: Other">[3]</a></sup>.</p>')


def test_bare_urls_stop_before_trailing_punctuation(rendered):
    out = rendered["markdown"]["bare"]
    assert re.findall(r'href="([^"]*)"', out) == ["https://ex.example/a_b", "https://ex.example/c"]
    assert "/a_b</a>. Or (<a " in out and out.endswith("/c</a>).</p>")


def test_nothing_nests_inside_a_link(rendered):
    out = rendered["markdown"]["linktext"]
    assert out.count("<a ") == 1
    assert '<a href="https://ex.example/y" target="_blank" rel="noopener noreferrer">see https://ex.example/x ' \
           '<strong>now</strong> <sup class="cite">[1]</sup></a>' in out


def test_source_list_escapes_titles_and_links_only_web_pages(rendered):
    out = rendered["sources"]
    assert out.startswith('<ol class="cites" aria-label="Sources">')
    assert '<li id="c1" value="1" tabindex="-1"><a href="https://help.example/refunds" target="_blank" ' \
           'rel="noopener noreferrer">&lt;b&gt;Refunds&lt;/b&gt;</a>' in out
    assert '<span class="snip" title="&lt;script&gt;x&lt;/script&gt;">&lt;script&gt;x&lt;/script&gt;</span>' in out
    assert out.count("href=") == 1


def test_source_list_shows_a_title_never_a_storage_path(rendered):
    out = rendered["sources"]
    assert '<li id="c2" value="2" tabindex="-1">Setup</li>' in out
    assert '<li id="c4" value="4" tabindex="-1">Plans</li>' in out
    assert '<li id="c5" value="5" tabindex="-1">Source 5</li>' in out  # no title: its number, not its path
    assert "gs:" not in out


def test_sse_parser_handles_any_chunking(rendered):
    sse = rendered["sse"]
    assert sse["whole"] == EXPECTED_EVENTS
    assert sse["chars"] == EXPECTED_EVENTS
    bad = [i for i, events in enumerate(sse["splits"]) if events != EXPECTED_EVENTS]
    assert not bad, f"split at {bad[:5]} gave {sse['splits'][bad[0]]}"


# --- a signed user's token travels with every call that needs it (under node, fetch recorded) ------------------------
TOKEN_HARNESS = r"""
const fs = require("fs"), vm = require("vm");
const calls = [];
const saved = JSON.stringify({session_id: "s-1", saved_at: Date.now()});
const registry = new Map();
const context = {
  URL, console, JSON, Date, Number, String, Array, Object, Promise,
  HTMLElement: class {},
  customElements: { get: (n) => registry.get(n), define: (n, c) => registry.set(n, c) },
  location: { origin: "https://host.example", href: "https://host.example/" },
  localStorage: { getItem: () => saved, setItem() {}, removeItem() {} },
  sessionStorage: { getItem: () => null, setItem() {}, removeItem() {} },
  fetch: async (url, init) => {
    calls.push({url, headers: (init && init.headers) || {}, body: init && init.body ? JSON.parse(init.body) : null});
    return { ok: true, status: 200, json: async () => ({session_id: "s-1", messages: []}) };
  },
  document: { currentScript: null, readyState: "loading", baseURI: "https://host.example/", addEventListener() {},
              querySelector: () => null },
};
context.window = context;
vm.createContext(context);
vm.runInContext(fs.readFileSync(process.argv[2], "utf8"), context);
const proto = registry.get("support-chat").prototype;
const options = JSON.parse(process.argv[3]);
const widget = Object.assign(Object.create(proto), {
  gen: 0, getAttribute: (name) => options[name] || null, setBusy() {}, forget() {}, scrollDown() {},
});
// Own values shadow the getters (the script's host, the storage key).
Object.defineProperty(widget, "base", {value: "https://chat.example"});
Object.defineProperty(widget, "key", {value: "k"});
(async () => {
  await proto.resume.call(widget);
  await proto.post.call(widget, "/v1/handoff", {session_id: "s-1"});
  await proto.post.call(widget, "/v1/feedback", {session_id: "s-1", turn_id: "t-1", rating: "up"});
  process.stdout.write(JSON.stringify(calls));
})();
"""


@pytest.mark.parametrize("options, token", [({"user-token": "user-42.1900000000." + "a" * 64}, True), ({}, False)])
def test_a_signed_users_token_goes_with_the_session_hand_off_and_feedback_calls(tmp_path, options, token):
    node = shutil.which("node")
    if not node:
        pytest.skip("node is not installed")
    harness = tmp_path / "token.js"
    harness.write_text(TOKEN_HARNESS)
    result = subprocess.run([node, str(harness), str(WIDGET), json.dumps(options)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    session, handoff, feedback = json.loads(result.stdout)
    value = options.get("user-token")
    assert session["url"] == "https://chat.example/v1/sessions/s-1"  # never in the URL
    assert session["headers"].get("X-User-Token") == value
    assert handoff["url"].endswith("/v1/handoff") and handoff["body"].get("user_token") == value
    assert feedback["url"].endswith("/v1/feedback") and feedback["body"].get("user_token") == value
    assert ("user_token" in handoff["body"]) is token
