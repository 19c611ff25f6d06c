"""Page extraction for the sync: an HTML page, or the site's own Markdown, becomes clean Markdown plus what the
crawler needs to know about it (canonical URL, links, noindex, whether it is an empty JavaScript shell).

HTML is parsed with lxml's HTML parser and walked by a converter of our own. BeautifulSoup on top of lxml spends
about 23 ms building its tree for a 30 KB docs page and markdownify another 26 ms converting it; lxml builds the
same tree in under 1 ms, and the sync must extract at least 50 pages/s on two cores. A configured CSS selector is
translated to XPath by cssselect (the translator lxml itself uses) and cached.

`Page.flags` vocabulary:
- "selector_missed": the configured selector matched nothing; markdown is "" (the caller keeps the last good text).
- "selector_invalid": the configured selector is not valid CSS; markdown is "" (see `validate_selector`).
- "javascript_shell": almost no text, a script and an empty mount point or a "needs JavaScript" notice; markdown "".
- "body_fallback": no main-content element was found, so the whole <body> minus page chrome was used.
- "decode_fallback": the bytes were valid in no declared or likely encoding; the text was guessed or bytes replaced.
- "empty_document": there was nothing to parse.
- "too_deep": the page nested too deeply to convert; its main content is kept as one paragraph of plain text.

lxml, and cssselect when a selector is given, are imported on the first extraction, not at import time.
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import logging
import re
import threading
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

logger = logging.getLogger(__name__)

__all__ = [
    "Page",
    "content_digest",
    "extract_html",
    "extract_markdown",
    "render_document",
    "validate_selector",
    "visible_length",
]


@dataclass
class Page:
    """What one fetched page says: its Markdown and the facts the crawler decides on."""

    title: str
    markdown: str  # the main content as Markdown, without front matter
    text_length: int = 0  # characters of visible text in the main content (whitespace runs count as one)
    canonical: str | None = None  # absolute, as written; the caller normalises and scopes it
    markdown_alternate: str | None = None  # absolute URL of <link rel="alternate" type="text/markdown">
    links: list[str] = field(default_factory=list)  # absolute http(s) URLs of the whole document, in order
    noindex: bool = False
    javascript_shell: bool = False
    flags: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------------------
# Public API


def extract_html(body: bytes, url: str, *, headers: dict[str, str] | None = None,
                 selector: str | None = None) -> Page:
    """Extract the main content of an HTML page as Markdown, with its title, canonical URL, links and robots facts.

    `headers` are the response headers with lower-case keys (Content-Type charset, X-Robots-Tag). `selector` is
    the site's CSS selector for the main content; without it the usual main-content elements are tried in order.
    Never raises on bad bytes or broken markup.
    """
    headers = headers or {}
    flags: list[str] = []
    text, guessed = _decode(body, headers.get("content-type", ""))
    if guessed:
        flags.append("decode_fallback")
    noindex = _robots_say_noindex(headers.get("x-robots-tag", ""))
    document = _parse(text)
    if document is None:
        return Page(title="", markdown="", noindex=noindex, flags=[*flags, "empty_document"])

    xpaths = _xpaths()
    base_url = _base_url(document, url, xpaths)
    resolver = _UrlResolver(base_url)
    head = _head_facts(document, resolver, xpaths)
    noindex = noindex or head.noindex
    links = _document_links(document, resolver, xpaths)

    root = None
    if selector:
        try:
            matches = _selector_xpath(selector)(document)
        except ValueError as exc:
            logger.debug("invalid content selector %r: %s", selector, exc)  # the flag reports it
            flags.append("selector_invalid")
        else:
            root = matches[0] if matches else None
            if root is None:
                flags.append("selector_missed")
    else:
        root = _main_content(document, xpaths)
        if root is None:
            root = _first(xpaths.body(document))
            if root is None:
                root = document
            flags.append("body_fallback")

    markdown, text_length, first_h1 = "", 0, ""
    if root is not None:
        writer = _MarkdownWriter(resolver, inside_article=bool(xpaths.in_article(root)))
        try:
            markdown, text_length = writer.convert(root)
            first_h1 = writer.first_h1
        except RecursionError:
            # libxml2 caps nesting at 256 levels, which the walk handles; this is a guard, not a path we expect.
            logger.warning("page %s nests too deeply for Markdown; keeping its plain text", url)
            plain = _squash(_text_of(root)).strip()
            markdown, text_length = _escape_text(plain), len(plain)
            flags.append("too_deep")
    if not first_h1:
        first_h1 = _squash(_text_of(_first(xpaths.h1(document)))).strip()

    javascript_shell = text_length < _SHELL_MAX_TEXT and _looks_like_javascript_shell(document, xpaths)
    if javascript_shell:
        markdown = ""
        flags.append("javascript_shell")
    return Page(
        title=_page_title(head.title, first_h1),
        markdown=markdown,
        text_length=text_length,
        canonical=head.canonical,
        markdown_alternate=head.markdown_alternate,
        links=links,
        noindex=noindex,
        javascript_shell=javascript_shell,
        flags=flags,
    )


def extract_markdown(body: bytes, url: str) -> Page:
    """A page from the site's own Markdown (a `.md` alternate, an llms.txt): front matter off, title kept.

    The title is the front matter's `title:`, else the first "# " heading; links are the absolute http(s) URLs of
    its Markdown links (images and code excluded). Markdown has no canonical link and no robots meta.
    """
    text = body.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    front_title, content = _split_front_matter(text)
    content = _tidy_markdown(content)
    prose = _FENCED_BLOCK.sub("\n", content)
    title = front_title or _first_atx_h1(prose)
    resolver = _UrlResolver(url)
    links: dict[str, None] = {}
    for match in _MARKDOWN_LINK.finditer(prose):
        href = match.group("inline") or match.group("reference") or match.group("auto")
        absolute = resolver.crawlable(href)
        if absolute:
            links[absolute] = None
    return Page(title=_squash(title).strip(), markdown=content, text_length=visible_length(content),
                links=list(links))


def render_document(title: str, source_url: str, markdown: str) -> str:
    """The object the sync writes to the knowledge bucket: a front matter block ingest reads, then the Markdown.

    Values are put on one line. ingest's front-matter parser strips quote characters from both ends of a value,
    so a title's leading or trailing ASCII quote becomes its typographic twin, which survives the round trip.
    """
    return (f"---\ntitle: {_front_matter_value(title)}\nsource_url: {_front_matter_value(source_url)}\n---\n\n"
            f"{markdown.strip()}\n")


def content_digest(markdown: str) -> str:
    """The sha256 (hex) of the Markdown with whitespace runs collapsed: equal digests mean "not changed".

    Scripts, meta tags and page chrome never reach the Markdown, so nonces, CSRF tokens and footer dates do not
    move the digest; re-indented or re-wrapped text does not either.
    """
    return hashlib.sha256(" ".join(markdown.split()).encode("utf-8")).hexdigest()


def visible_length(markdown: str) -> int:
    """Characters of readable text in a Markdown text, markup removed, whitespace runs counted as one.

    An approximation of `Page.text_length` computed from Markdown alone (for the site's own Markdown and for a
    stored document); `extract_html` counts `text_length` from the page's tree instead. Code counts as text.
    """
    text = _FENCE_LINE.sub(" ", markdown)
    text = _IMAGE_OR_LINK.sub(r"\1", text)
    text = _HTML_TAG.sub(" ", text)
    text = _TABLE_RULE.sub(" ", text)
    text = _LINE_MARKER.sub("", text)
    text = _INLINE_MARK.sub("", text)
    return len(" ".join(text.split()))


def validate_selector(selector: str) -> None:
    """Raise ValueError, naming the problem, when `selector` is not a CSS selector the extractor can apply."""
    _selector_xpath(selector)


# ---------------------------------------------------------------------------------------------------------------
# Decoding

_CHARSET_PARAMETER = re.compile(r"charset\s*=\s*[\"']?\s*([A-Za-z0-9._:-]+)", re.I)
_META_CHARSET = re.compile(rb"<meta\b[^>]*?charset\s*=\s*[\"']?\s*([A-Za-z0-9._:-]+)", re.I)
_BYTE_ORDER_MARKS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# The HTML standard decodes these labels as windows-1252, a superset that gives meaning to bytes 0x80-0x9F.
_WINDOWS_1252_LABELS = frozenset({"latin1", "latin-1", "iso-8859-1", "iso8859-1", "iso_8859-1", "l1", "us-ascii",
                                  "ascii", "cp819", "ibm819", "windows-1252", "cp1252", "x-cp1252"})


def _decode(body: bytes, content_type: str) -> tuple[str, bool]:
    """Text of the page and whether it had to be guessed: BOM, header charset, <meta> charset, UTF-8, windows-1252.

    A byte order mark comes first, as in the HTML standard's encoding sniffing: it is unambiguous, while a
    server's charset is often a default nobody set. Each candidate must decode the bytes strictly; a wrong
    declaration falls through to the next candidate.
    """
    candidates: list[str] = []
    for mark, encoding in _BYTE_ORDER_MARKS:
        if body.startswith(mark):
            candidates.append(encoding)
            break
    declared = _CHARSET_PARAMETER.search(content_type)
    if declared:
        candidates.append(declared.group(1))
    in_meta = _META_CHARSET.search(body, 0, 4096)
    if in_meta:
        label = in_meta.group(1).decode("ascii", "replace")
        # A <meta> found by an ASCII scan cannot be UTF-16 text: the standard reads such a claim as UTF-8.
        candidates.append("utf-8" if label.lower().startswith("utf-16") else label)
    candidates += ["utf-8", "cp1252"]
    for label in candidates:
        codec = _codec_name(label)
        if codec is None:
            continue
        try:
            text = body.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
        return (text[1:] if text.startswith("\ufeff") else text), False
    return _guess_decoding(body), True


@functools.lru_cache(maxsize=64)
def _codec_name(label: str) -> str | None:
    label = label.strip().lower()
    if label in _WINDOWS_1252_LABELS:
        return "cp1252"
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def _guess_decoding(body: bytes) -> str:
    """Last resort for bytes no candidate decodes: BeautifulSoup's detector, else UTF-8 with replacement."""
    try:
        from bs4 import UnicodeDammit

        guessed = UnicodeDammit(body, is_html=True).unicode_markup
    except Exception:  # a detector failure must not fail the page
        logger.debug("UnicodeDammit failed", exc_info=True)
        guessed = None
    return guessed if guessed is not None else body.decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------------------------
# Parsing and document-wide facts

_parsers = threading.local()  # an lxml parser must not be used by two threads at once


def _parse(text: str):
    """The page's <html> element, or None when there is nothing to parse."""
    from lxml import etree

    parser = getattr(_parsers, "html", None)
    if parser is None:
        # Comments and processing instructions carry no text; dropping them at parse time keeps the walk simple.
        parser = _parsers.html = etree.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True,
                                                  no_network=True)
    # NUL would end libxml2's input early; the text is re-encoded as UTF-8, which the parser is told to expect.
    data = text.replace("\x00", "").encode("utf-8", "replace")
    if not data.strip():
        return None
    try:
        return etree.fromstring(data, parser)
    except (etree.XMLSyntaxError, etree.ParserError, ValueError):
        logger.debug("unparseable HTML", exc_info=True)
        return None


class _XPaths:
    """The XPath expressions the extractor runs, compiled once per process."""

    def __init__(self):
        from lxml import etree

        self.base_href = etree.XPath("//base[@href][1]/@href")
        self.links = etree.XPath("//a[@href]")
        self.link_tags = etree.XPath("//link[@rel][@href]")
        self.robots_meta = etree.XPath(
            "//meta[translate(@name, 'ROBOTSGLE', 'robotsgle')='robots' or "
            "translate(@name, 'ROBOTSGLE', 'robotsgle')='googlebot']/@content")
        self.title = etree.XPath("(/html/head/title | //title[not(ancestor::svg)])[1]")
        self.body = etree.XPath("/html/body")
        self.h1 = etree.XPath("(//h1)[1]")
        self.in_article = etree.XPath("boolean(ancestor-or-self::article | ancestor-or-self::main)")
        self.main_candidates = [etree.XPath(expression) for expression in (
            "(//main)[1]",
            "(//*[@role='main'])[1]",
            "//article",  # only when there is exactly one
            "(//*[@id='content'])[1]",
            "(//*[@id='main-content'])[1]",
            *(f"(//*[contains(concat(' ', normalize-space(@class), ' '), ' {name} ')])[1]"
              for name in ("content", "markdown-body", "theme-doc-markdown", "article-body")),
        )]
        self.table_rows = etree.XPath("./tr | ./thead/tr | ./tbody/tr | ./tfoot/tr")
        self.nested_table = etree.XPath("boolean(.//table)")
        self.holds_page = etree.XPath("boolean(.//h1 | .//main | .//article)")
        self.holds_section = etree.XPath("boolean(.//h1 | .//h2 | .//h3 | .//h4 | .//h5 | .//h6 | .//main | "
                                         ".//article)")
        self.has_script = etree.XPath("boolean(//script)")
        self.mount_points = etree.XPath(
            "//div[@id='root' or @id='app' or @id='__next' or @id='__nuxt' or @id='___gatsby']")
        self.noscripts = etree.XPath("//noscript")


@functools.cache
def _xpaths() -> _XPaths:
    return _XPaths()


@functools.lru_cache(maxsize=256)
def _selector_xpath(selector: str):
    """The configured CSS selector as a compiled XPath (cssselect), or ValueError naming what is wrong."""
    from cssselect import HTMLTranslator, SelectorError
    from lxml import etree

    if not selector or not selector.strip():
        raise ValueError("the content selector is empty")
    try:
        expression = HTMLTranslator().css_to_xpath(selector)
        return etree.XPath(expression)
    except SelectorError as exc:
        raise ValueError(f"content selector {selector!r} is not valid CSS: {exc}") from exc
    except etree.XPathError as exc:
        raise ValueError(f"content selector {selector!r} cannot be applied: {exc}") from exc


def _first(results):
    return results[0] if results else None


def _text_of(element) -> str:
    return "".join(element.itertext()) if element is not None else ""


class _UrlResolver:
    """Resolves hrefs against the page's base URL, with a cache: a docs page repeats its sidebar's hrefs."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        scheme, netloc, *_ = urlsplit(base_url)
        self._origin = f"{scheme}://{netloc}" if scheme in ("http", "https") and netloc else ""
        self._resolved: dict[str, str] = {}

    def absolute(self, href: str) -> str:
        resolved = self._resolved.get(href)
        if resolved is None:
            resolved = self._resolved[href] = self._join(href.strip())
        return resolved

    def _join(self, href: str) -> str:
        # Shortcuts for the two commonest hrefs, each exactly what urljoin returns for them (tested), at a
        # fraction of its cost: an absolute http(s) URL, and a root-relative path without dot segments.
        if href.startswith(("https://", "http://")):
            return href
        if self._origin and href.startswith("/") and not href.startswith("//") and "/." not in href:
            return self._origin + href
        try:
            return urljoin(self.base_url, href)
        except ValueError:  # e.g. an invalid IPv6 host
            return ""

    def crawlable(self, href: str) -> str | None:
        """The absolute URL when it is http(s), else None (mailto:, javascript:, data:...)."""
        absolute = self.absolute(href)
        scheme = absolute.partition(":")[0].lower()
        return absolute if scheme in ("http", "https") else None


def _base_url(document, url: str, xpaths: _XPaths) -> str:
    base = _first(xpaths.base_href(document))
    if base and base.strip():
        try:
            return urljoin(url, base.strip())
        except ValueError:
            return url
    return url


@dataclass
class _HeadFacts:
    title: str = ""
    canonical: str | None = None
    markdown_alternate: str | None = None
    noindex: bool = False


_MARKDOWN_TYPES = frozenset({"text/markdown", "text/x-markdown"})


def _head_facts(document, resolver: _UrlResolver, xpaths: _XPaths) -> _HeadFacts:
    facts = _HeadFacts(title=_squash(_text_of(_first(xpaths.title(document)))).strip())
    for link in xpaths.link_tags(document):
        rels = link.get("rel", "").lower().split()
        href = link.get("href", "").strip()
        if not href:
            continue
        if facts.canonical is None and "canonical" in rels:
            facts.canonical = resolver.absolute(href) or None
        elif (facts.markdown_alternate is None and "alternate" in rels
              and link.get("type", "").split(";")[0].strip().lower() in _MARKDOWN_TYPES):
            facts.markdown_alternate = resolver.absolute(href) or None
    facts.noindex = any(_robots_say_noindex(content) for content in xpaths.robots_meta(document))
    return facts


_NOINDEX = re.compile(r"(?:^|[\s,:;])(?:noindex|none)(?:$|[\s,;])", re.I)


def _robots_say_noindex(directives: str) -> bool:
    """True when robots directives (a meta content or an X-Robots-Tag value) include noindex or none.

    A directive scoped to another crawler ("otherbot: noindex") counts too: erring towards not indexing a page
    costs a missing answer; indexing a page its owner hid costs trust.
    """
    return bool(directives) and _NOINDEX.search(directives) is not None


def _document_links(document, resolver: _UrlResolver, xpaths: _XPaths) -> list[str]:
    seen: dict[str, None] = {}
    for anchor in xpaths.links(document):
        if "nofollow" in anchor.get("rel", "").lower().split():
            continue
        absolute = resolver.crawlable(anchor.get("href", ""))
        if absolute:
            seen[absolute] = None
    return list(seen)


def _main_content(document, xpaths: _XPaths):
    """The first of <main>, [role=main], a single <article>, then the usual content ids and classes; else None."""
    for position, expression in enumerate(xpaths.main_candidates):
        found = expression(document)
        if position == 2:  # //article
            if len(found) == 1:
                return found[0]
            continue
        if found:
            return found[0]
    return None


_SHELL_MAX_TEXT = 200


def _looks_like_javascript_shell(document, xpaths: _XPaths) -> bool:
    """A script, and an empty mount point of a client-side framework or a noscript asking for JavaScript."""
    if not xpaths.has_script(document):
        return False
    for mount in xpaths.mount_points(document):
        if not _squash(_text_of(mount)).strip():
            return True
    return any("javascript" in _text_of(noscript).lower() for noscript in xpaths.noscripts(document))


_TITLE_SEPARATORS = re.compile(r" (?:\||-|—|–|·|::) ")


def _page_title(page_title: str, first_h1: str) -> str:
    """<title> without its site suffix when the <h1> is its first part, else the <h1>, else <title>."""
    if page_title and first_h1:
        wanted = first_h1.casefold()
        for separator in _TITLE_SEPARATORS.finditer(page_title):
            head = page_title[:separator.start()].strip()
            if head.casefold() == wanted:
                return head
    return first_h1 or page_title


# ---------------------------------------------------------------------------------------------------------------
# HTML -> Markdown

# Elements whose content is never page text.
_DROPPED_TAGS = frozenset({
    "script", "style", "noscript", "template", "svg", "math", "nav", "footer", "aside", "form", "button", "iframe",
    "object", "embed", "canvas", "video", "audio", "select", "textarea", "input", "head", "title", "meta", "link",
    "dialog", "map",
})
_DROPPED_ROLES = frozenset({"navigation", "banner", "contentinfo", "search", "complementary", "dialog"})
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_CHROME_WORDS = re.compile(
    r"\b(?:breadcrumbs?|sidebar|toc|cookies?|feedback|pagination|paginator|skiplink|skip (?:to )?(?:main )?"
    r"(?:content|link|nav)|edit (?:this )?page|table of contents)\b")
_NAME_PARTS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")

_HEADING_LEVELS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_BOLD_TAGS = frozenset({"b", "strong"})
_ITALIC_TAGS = frozenset({"i", "em", "cite", "dfn"})
_CODE_TAGS = frozenset({"code", "kbd", "samp", "tt"})
_INLINE_TAGS = frozenset({
    "a", "abbr", "b", "bdi", "bdo", "big", "br", "cite", "code", "data", "del", "dfn", "em", "font", "i", "img",
    "ins", "kbd", "label", "mark", "q", "s", "samp", "small", "span", "strike", "strong", "sub", "sup", "time", "tt",
    "u", "var", "wbr", "nobr", "picture", "source", "output", "meter", "progress", "ruby", "rt", "rp",
})
_CODE_SKIPPED_TAGS = frozenset({"button", "script", "style", "template"})
_PERMALINK_TEXTS = frozenset({"", "#", "¶", "§", "🔗", "∞", "link"})
_LANGUAGE_CLASS = re.compile(r"(?:^|\s)(?:language|lang|highlight)-([\w+#.-]+)")
_NO_LANGUAGE = frozenset({"default", "none", "nohighlight"})

_DOUBLE_SPACE = re.compile(r" {2,}")
_BACKTICK_RUN = re.compile(r"`+")
# Characters that would start Markdown syntax inside text: an escape before punctuation, a "*" that can flank
# emphasis, a "_" at a word edge (snake_case stays unescaped), a backtick, a tag-like "<", an entity-like "&",
# and the "](" that would close a link.
_TEXT_ESCAPE = re.compile(r"\\(?=[!-/:-@\[-`{-~])|(?<=\S)\*|\*(?=\S)|(?<![^\W_])_|_(?![^\W_])|`|<(?=[A-Za-z/!?])"
                          r"|&(?=#?\w+;)|\](?=\()")
_LINE_START = re.compile(r"#{1,6}|[>+\-=*]|~~~|\d{1,9}[.)]|\[(?=[^\]]*\]:)")


def _squash(text: str) -> str:
    """HTML whitespace rendering: every run of whitespace (and zero-width space) is one space."""
    if "\u200b" in text or "\ufeff" in text:
        text = text.replace("\u200b", " ").replace("\ufeff", " ")
    words = text.split()  # str.split is the fastest whitespace collapse; the edges are put back by hand
    if not words:
        return " " if text else ""
    squashed = " ".join(words)
    if text[0].isspace():
        squashed = " " + squashed
    if text[-1].isspace():
        squashed += " "
    return squashed


_ESCAPED_CHARACTERS = frozenset("\\*_`<&]")


def _escape_text(text: str) -> str:
    if _ESCAPED_CHARACTERS.isdisjoint(text):  # most text needs nothing; skip the regex
        return text
    return _TEXT_ESCAPE.sub(r"\\\g<0>", text)


def _escape_line_start(line: str) -> str:
    """Escape what would make a paragraph line a heading, list item, quote, rule or link definition."""
    match = _LINE_START.match(line)
    if match is None:
        return line
    token, end = match.group(0), match.end()
    at_word_end = end == len(line) or line[end] == " "
    if token[0].isdigit():
        return f"{line[:end - 1]}\\{line[end - 1:]}" if at_word_end else line
    if token[0] == "#":
        return f"\\{line}" if at_word_end else line
    if token in ("-", "+", "*"):
        return f"\\{line}" if at_word_end or not line.strip("-*+_ ") else line
    if token == "=":
        return f"\\{line}" if not line.strip("= ") else line
    return f"\\{line}"  # ">", "~~~", "[label]:"


@functools.lru_cache(maxsize=4096)
def _names_say_chrome(names: str) -> bool:
    """Whether an id or class attribute names page chrome (breadcrumbs, sidebar, toc, cookie banner...).

    Names are split into words at punctuation and camelCase ("tocCollapsible", "theme-doc-sidebar-container").
    """
    words = " ".join(_NAME_PARTS.findall(names)).lower()
    return _CHROME_WORDS.search(words) is not None


def _markdown_url(url: str) -> str:
    if " " in url or "(" in url or ")" in url or "<" in url or ">" in url:
        url = (url.replace(" ", "%20").replace("(", "%28").replace(")", "%29").replace("<", "%3C")
               .replace(">", "%3E"))
    return url


def _code_span(code: str) -> str:
    runs = _BACKTICK_RUN.findall(code)
    fence = "`" * (max(map(len, runs)) + 1 if runs else 1)
    padding = " " if code.startswith("`") or code.endswith("`") else ""
    return f"{fence}{padding}{code}{padding}{fence}"


def _wrap(inner: str, mark: str) -> str:
    """Emphasis around `inner` with its outer spaces moved outside the marks (CommonMark needs them inside-tight)."""
    core = inner.strip()
    if not core:
        return inner
    lead = " " if inner[0].isspace() else ""
    trail = " " if inner[-1].isspace() else ""
    return f"{lead}{mark}{core}{mark}{trail}"


class _MarkdownWriter:
    """Walks the main-content element once, skipping chrome, and writes Markdown blocks.

    Blocks are (kind, text) pairs; kinds: "para", "heading", "list", "code", "table", "quote". Text of every
    block but code is already clean (single spaces, no trailing spaces), so joining blocks with a blank line is
    the whole layout.
    """

    def __init__(self, resolver: _UrlResolver, inside_article: bool):
        self.resolver = resolver
        self.xpaths = _xpaths()
        self.article_depth = 1 if inside_article else 0
        self.table_depth = 0
        self.bold_depth = 0
        self.italic_depth = 0
        self.visible: list[str] = []  # every piece of visible text, for text_length and the <h1>
        self.first_h1 = ""

    def convert(self, root) -> tuple[str, int]:
        blocks: list[tuple[str, str]] = []
        self.container(root, blocks)
        markdown = "\n\n".join(text for _, text in blocks)
        return markdown, len(_squash("".join(self.visible)).strip())

    # -- skipping --

    def skipped(self, element, tag: str) -> bool:
        """Whether an element is page chrome or hidden, so neither it nor its content is page text."""
        if tag in _DROPPED_TAGS:
            return True
        if tag == "header" and not self.article_depth:
            return True  # the site's header; an article's own header holds its title and stays
        attributes = element.attrib
        if not attributes:
            return False
        role = attributes.get("role")
        if role and role.strip().lower() in _DROPPED_ROLES:
            return True
        if "hidden" in attributes or attributes.get("aria-hidden", "").strip().lower() == "true":
            return True
        style = attributes.get("style")
        if style and _HIDDEN_STYLE.search(style):
            return True
        if tag in _HEADING_LEVELS:
            return False
        # Names are a weaker signal than tags: a wrapper called "has-sidebar" may hold the page, and ids are
        # often slugs of a section's own heading (<section id="cookies"><h2>Cookies</h2>). Such elements stay.
        names = attributes.get("class")
        if names and _names_say_chrome(names) and not self.xpaths.holds_page(element):
            return True
        names = attributes.get("id")
        return bool(names) and _names_say_chrome(names) and not self.xpaths.holds_section(element)

    # -- text --

    def text(self, raw: str) -> str:
        if raw.isspace():  # the newlines and indentation between tags: most text nodes of a page
            self.visible.append(" ")
            return " "
        squashed = _squash(raw)
        self.visible.append(squashed)
        return _escape_text(squashed)

    # -- blocks --

    def container(self, element, out: list[tuple[str, str]]) -> None:
        """Content of a block element: runs of inline content become paragraphs, block children their blocks."""
        pieces: list[str] = []
        text, skipped = self.text, self.skipped  # bound once: this loop runs for every element of the page
        if element.text:
            pieces.append(text(element.text))
        for child in element:
            tag = child.tag
            if isinstance(tag, str) and not skipped(child, tag):
                if tag in _INLINE_TAGS:
                    pieces.append(self.inline(child, tag))
                else:
                    if pieces:
                        self.flush(pieces, out)
                        pieces = []
                    self.block(child, tag, out)
            tail = child.tail
            if tail:
                pieces.append(text(tail))
        self.flush(pieces, out)

    def flush(self, pieces: list[str], out: list[tuple[str, str]]) -> None:
        if not pieces:
            return
        if len(pieces) == 1 and pieces[0] == " ":
            return  # whitespace between two blocks
        lines = []
        for line in "".join(pieces).split("\n"):
            if "  " in line:
                line = _DOUBLE_SPACE.sub(" ", line)
            line = line.strip()
            if line:
                lines.append(_escape_line_start(line))
        if lines:
            out.append(("para", (" " if self.table_depth else "\n").join(lines)))

    def block(self, element, tag: str, out: list[tuple[str, str]]) -> None:
        level = _HEADING_LEVELS.get(tag)
        if level is not None:
            self.heading(element, level, out)
        elif tag in ("ul", "ol"):
            self.list(element, tag == "ol", out)
        elif tag == "pre":
            self.preformatted(element, out)
        elif tag == "table":
            self.table(element, out)
        elif tag == "dl":
            self.definitions(element, out)
        elif tag == "blockquote":
            self.quote(element, out)
        elif tag == "hr":
            return
        elif tag in ("article", "main"):
            self.article_depth += 1
            self.container(element, out)
            self.article_depth -= 1
        else:
            self.container(element, out)

    def heading(self, element, level: int, out: list[tuple[str, str]]) -> None:
        start = len(self.visible)
        text = _DOUBLE_SPACE.sub(" ", self.inline_children(element).replace("\n", " ")).strip()
        if not text:
            return
        if level == 1 and not self.first_h1:
            self.first_h1 = _squash("".join(self.visible[start:])).strip()
        out.append(("para" if self.table_depth else "heading", text if self.table_depth else f"{'#' * level} {text}"))

    def list(self, element, ordered: bool, out: list[tuple[str, str]]) -> None:
        items: list[list[tuple[str, str]]] = []
        for child in element:
            tag = child.tag
            if not isinstance(tag, str) or self.skipped(child, tag):
                continue
            if tag in ("ul", "ol") and items:  # a list directly inside a list belongs to the item before it
                self.list(child, tag == "ol", items[-1])
                continue
            blocks: list[tuple[str, str]] = []
            self.container(child, blocks)
            if blocks:
                items.append(blocks)
        if not items:
            return
        number = _list_start(element) if ordered else 0
        lines: list[str] = []
        for blocks in items:
            marker = f"{number}." if ordered else "-"
            number += 1
            body = blocks[0][1]
            for kind, text in blocks[1:]:
                body += ("\n" if kind == "list" else "\n\n") + text
            indent = " " * (len(marker) + 1)
            first, *rest = body.split("\n")
            lines.append(f"{marker} {first}")
            lines.extend(indent + line if line else "" for line in rest)
        out.append(("list", "\n".join(lines)))

    def preformatted(self, element, out: list[tuple[str, str]]) -> None:
        parts: list[str] = []
        _code_text(element, parts)
        code = "".join(parts).replace("\xa0", " ")
        if code.startswith("\n"):  # HTML ignores a newline right after <pre>
            code = code[1:]
        code = code.rstrip("\n")
        if not code.strip():
            return
        self.visible.append(f" {code} ")
        if self.table_depth:
            out.append(("para", _code_span(_squash(code).strip())))
            return
        runs = _BACKTICK_RUN.findall(code)
        fence = "`" * max(3, max(map(len, runs)) + 1 if runs else 0)
        out.append(("code", f"{fence}{_code_language(element)}\n{code}\n{fence}"))

    def table(self, element, out: list[tuple[str, str]]) -> None:
        rows_elements = self.xpaths.table_rows(element)
        widest = max((sum(1 for cell in row if cell.tag in ("td", "th")) for row in rows_elements), default=0)
        if widest <= 1 or self.xpaths.nested_table(element):
            self.container(element, out)  # a layout table: its cells are just blocks
            return
        rows: list[list[str]] = []
        self.table_depth += 1
        for row in rows_elements:
            cells: list[str] = []
            for cell in row:
                tag = cell.tag
                if tag not in ("td", "th") or self.skipped(cell, tag):
                    continue
                blocks: list[tuple[str, str]] = []
                self.container(cell, blocks)
                text = _DOUBLE_SPACE.sub(" ", " ".join(t for _, t in blocks).replace("\n", " ")).strip()
                cells.append(text.replace("|", "\\|"))
                cells.extend([""] * (_colspan(cell) - 1))
            if cells:
                rows.append(cells)
        self.table_depth -= 1
        if not rows:
            return
        width = max(map(len, rows))
        lines = []
        for index, cells in enumerate(rows):
            cells = cells + [""] * (width - len(cells))
            lines.append("| " + " | ".join(cells) + " |")
            if index == 0:
                lines.append("|" + "|".join(["---"] * width) + "|")
        out.append(("table", "\n".join(lines)))

    def definitions(self, element, out: list[tuple[str, str]]) -> None:
        """<dl> as "**term**: definition" paragraphs (terms of one definition joined with ", ")."""
        groups: list[tuple[list[str], list[tuple[str, str]]]] = []
        for child in _definition_children(element):
            tag = child.tag
            if not isinstance(tag, str) or self.skipped(child, tag):
                continue
            if tag == "dt":
                term = _DOUBLE_SPACE.sub(" ", self.inline_children(child).replace("\n", " ")).strip()
                if not groups or groups[-1][1]:
                    groups.append(([], []))
                if term:
                    groups[-1][0].append(term)
            else:
                if not groups:
                    groups.append(([], []))
                self.container(child, groups[-1][1])
        for terms, blocks in groups:
            label = ", ".join(f"**{term}**" for term in terms)
            leading = []
            while blocks and blocks[0][0] == "para":
                leading.append(blocks.pop(0)[1].replace("\n", " "))
            definition = " ".join(leading)
            if label and definition:
                out.append(("para", f"{label}: {definition}"))
            elif label or definition:
                out.append(("para", label or definition))
            out.extend(blocks)

    def quote(self, element, out: list[tuple[str, str]]) -> None:
        blocks: list[tuple[str, str]] = []
        self.container(element, blocks)
        if blocks:
            text = "\n\n".join(t for _, t in blocks)
            out.append(("quote", "\n".join(f"> {line}" if line else ">" for line in text.split("\n"))))

    # -- inline --

    def inline_children(self, element) -> str:
        pieces: list[str] = []
        if element.text:
            pieces.append(self.text(element.text))
        for child in element:
            tag = child.tag
            if isinstance(tag, str) and not self.skipped(child, tag):
                if tag in _INLINE_TAGS:
                    pieces.append(self.inline(child, tag))
                else:  # a block inside inline content (a card's <div> inside an <a>): its text, spaced
                    pieces.append(f" {self.block_as_inline(child, tag)} ")
            if child.tail:
                pieces.append(self.text(child.tail))
        return "".join(pieces)

    def block_as_inline(self, element, tag: str) -> str:
        if tag == "pre":
            parts: list[str] = []
            _code_text(element, parts)
            code = _squash("".join(parts)).strip()
            self.visible.append(f" {code} ")
            return _code_span(code) if code else ""
        return self.inline_children(element)

    def inline(self, element, tag: str) -> str:
        if tag == "br":
            return " " if self.table_depth else "\n"
        if tag == "img":
            alt = element.get("alt")
            return self.text(alt) if alt else ""
        if tag in _CODE_TAGS:
            code = _squash("".join(element.itertext()))
            core = code.strip()
            if not core:
                return code
            self.visible.append(code)
            lead = " " if code[0] == " " else ""
            trail = " " if code[-1] == " " else ""
            return f"{lead}{_code_span(core)}{trail}"
        if tag == "a":
            return self.link(element)
        if tag in _BOLD_TAGS:
            return self.emphasis(element, "**")
        if tag in _ITALIC_TAGS:
            return self.emphasis(element, "*")
        return self.inline_children(element)

    def emphasis(self, element, mark: str) -> str:
        bold = mark == "**"
        if (self.bold_depth if bold else self.italic_depth):  # already emphasised: marks again would close it
            return self.inline_children(element)
        if bold:
            self.bold_depth += 1
        else:
            self.italic_depth += 1
        try:
            return _wrap(self.inline_children(element), mark)
        finally:
            if bold:
                self.bold_depth -= 1
            else:
                self.italic_depth -= 1

    def link(self, element) -> str:
        href = (element.get("href") or "").strip()
        if href.startswith("#") and _squash(_text_of(element)).strip() in _PERMALINK_TEXTS:
            return ""  # a heading's permalink ("#", "¶") is not text
        inner = self.inline_children(element)
        text = _DOUBLE_SPACE.sub(" ", inner.replace("\n", " ")).strip()
        if not text:
            return ""
        if not href or href.lower().startswith(("javascript:", "data:")):
            return inner
        url = self.resolver.absolute(href)
        if not url:
            return inner
        label = text.replace("[", "\\[").replace("]", "\\]")
        lead = " " if inner[0].isspace() else ""
        trail = " " if inner[-1].isspace() else ""
        return f"{lead}[{label}]({_markdown_url(url)}){trail}"


def _code_text(element, parts: list[str]) -> None:
    """The exact text of a code block: <br> is a newline; buttons, scripts and hidden gutters are not code."""
    if element.text:
        parts.append(element.text)
    for child in element:
        tag = child.tag
        if isinstance(tag, str):
            if tag == "br":
                parts.append("\n")
            elif tag not in _CODE_SKIPPED_TAGS and child.get("aria-hidden") != "true":
                _code_text(child, parts)
        if child.tail:
            parts.append(child.tail)


def _code_language(pre) -> str:
    """The language of a code block from class="language-x" / "lang-x" / "highlight-x" on the <pre>, its <code>
    or the two elements around it, or from a data-lang attribute."""
    candidates = [pre]
    code = pre.find("code")
    if code is not None:
        candidates.append(code)
    parent = pre.getparent()
    if parent is not None:
        candidates.append(parent)
        grandparent = parent.getparent()
        if grandparent is not None:
            candidates.append(grandparent)
    for element in candidates:
        match = _LANGUAGE_CLASS.search(element.get("class") or "")
        language = match.group(1) if match else (element.get("data-lang") or element.get("data-language") or "")
        language = language.strip().lower()
        if language.startswith("source-"):  # GitHub: highlight-source-python
            language = language[len("source-"):]
        if language and language not in _NO_LANGUAGE:
            return "".join(language.split())
    return ""


def _list_start(element) -> int:
    try:
        return max(0, min(int(element.get("start", "1")), 999_999_999))
    except ValueError:
        return 1


def _colspan(cell) -> int:
    try:
        return max(1, min(int(cell.get("colspan", "1")), 50))
    except ValueError:
        return 1


def _definition_children(element):
    """Children of a <dl>, looking through the <div> wrappers HTML allows around each term group."""
    for child in element:
        if child.tag == "div":
            yield from child
        else:
            yield child


# ---------------------------------------------------------------------------------------------------------------
# Markdown sources and the stored document

_YAML_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)
_TOML_FRONT_MATTER = re.compile(r"\A\+\+\+[ \t]*\n(.*?\n)?\+\+\+[ \t]*(?:\n|\Z)", re.S)
_FRONT_MATTER_TITLE = re.compile(r"^title[ \t]*[:=][ \t]*(.*?)[ \t]*$", re.M)
_FENCED_BLOCK = re.compile(r"^[ ]{0,3}(`{3,}|~{3,})[^\n]*\n.*?(?:^[ ]{0,3}\1[`~]*[ \t]*$|\Z)", re.S | re.M)
_FENCE_LINE = re.compile(r"^[ ]{0,3}(?:`{3,}|~{3,}).*$", re.M)
_ATX_H1 = re.compile(r"^[ ]{0,3}#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$", re.M)
_LINK_TEXT = r"(?:[^\[\]\\]|\\.|\[(?:[^\[\]\\]|\\.)*\])*"
_MARKDOWN_LINK = re.compile(
    rf"(?<!!)\[{_LINK_TEXT}\]\(\s*<?(?P<inline>[^\s)>]+)>?"
    r"|^[ ]{0,3}\[[^\]]+\]:[ \t]*<?(?P<reference>[^\s>]+)>?"
    r"|<(?P<auto>https?://[^>\s]+)>",
    re.M,
)
_IMAGE_OR_LINK = re.compile(rf"!?\[({_LINK_TEXT})\]\([^)]*\)")
_HTML_TAG = re.compile(r"</?[A-Za-z][^>\n]*>")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$", re.M)
_LINE_MARKER = re.compile(r"^[ \t]*(?:#{1,6}[ \t]|>[ \t]?|[-+*][ \t]|\d{1,9}[.)][ \t])", re.M)
_INLINE_MARK = re.compile(r"\*\*|(?<!\w)[*_]|[*_](?!\w)|`|\\(?=[!-/:-@\[-`{-~])|\|")
_BLANK_RUNS = re.compile(r"\n{3,}")


def _split_front_matter(text: str) -> tuple[str, str]:
    """(title from the front matter or "", the text after it) for YAML (---) or TOML (+++) front matter."""
    match = _YAML_FRONT_MATTER.match(text) or _TOML_FRONT_MATTER.match(text)
    if match is None:
        return "", text
    title = _FRONT_MATTER_TITLE.search(match.group(1) or "")
    return (_unquote_scalar(title.group(1)) if title else ""), text[match.end():]


def _unquote_scalar(value: str) -> str:
    """A one-line YAML/TOML scalar as text: quotes removed with their escapes, a plain value's comment dropped."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("''", "'")
    if value in ("|", ">", "|-", ">-", "|+", ">+"):  # a block scalar: its lines follow; rare for a title
        return ""
    return value.split(" #", 1)[0].strip()


def _first_atx_h1(markdown: str) -> str:
    match = _ATX_H1.search(markdown)
    return match.group(1) if match else ""


def _tidy_markdown(markdown: str) -> str:
    """Outer blank lines off and 3+ blank lines collapsed, outside code fences only (code stays exact)."""
    parts: list[str] = []
    position = 0
    for fence in _FENCED_BLOCK.finditer(markdown):
        parts.append(_BLANK_RUNS.sub("\n\n", markdown[position:fence.start()]))
        parts.append(fence.group(0))
        position = fence.end()
    parts.append(_BLANK_RUNS.sub("\n\n", markdown[position:]))
    return "".join(parts).strip("\n")


_QUOTE_TWINS = {'"': ("“", "”"), "'": ("‘", "’")}


def _front_matter_value(value: str) -> str:
    value = " ".join(value.split())
    if value and value[0] in _QUOTE_TWINS:
        value = _QUOTE_TWINS[value[0]][0] + value[1:]
    if value and value[-1] in _QUOTE_TWINS:
        value = value[:-1] + _QUOTE_TWINS[value[-1]][1]
    return value
