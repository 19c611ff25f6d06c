"""HTML via BeautifulSoup (lxml when available): boilerplate dropped, <main>/<article> preferred, structure kept."""

from __future__ import annotations

import re

from bs4 import BeautifulSoup
from bs4.element import NavigableString, PreformattedString, Tag

from shared.ingest.parsers.common import (
    _SPACE,
    _collapse,
    _collapse_lines,
    _first_heading,
    _list_line,
    _table_blocks,
    decode_text,
)
from shared.ingest.parsers.limits import ParseLimits
from shared.models import Block, ParsedDocument

try:  # lxml is faster and more forgiving than the standard library's parser; python-docx brings it along
    import lxml  # noqa: F401 - only whether it is installed matters

    _HTML_PARSER = "lxml"
except ImportError:  # pragma: no cover
    _HTML_PARSER = "html.parser"


_DROPPED_TAGS = ("script", "style", "nav", "header", "footer", "aside", "form", "noscript", "svg", "template",
                 "iframe", "button", "select", "textarea", "canvas", "object", "head")
_HEADING_TAGS = {f"h{n}": n for n in range(1, 7)}
_INLINE_TAGS = {"a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "del", "dfn", "em", "font", "i", "ins",
                "kbd", "label", "mark", "q", "s", "samp", "small", "span", "strong", "sub", "sup", "time", "u",
                "var", "img", "wbr", "br"}
_BLOCK_TAGS = ["p", "div", "ul", "ol", "table", "pre", "section", "article", "blockquote", "dl", "figure",
               "h1", "h2", "h3", "h4", "h5", "h6"]
_TITLE_SEPARATOR = re.compile(r"^\s*[|\-–—·:»]")
# Every element begins with "<" and a letter (implied ones, like a missing <tbody>, are few): counting these is an
# upper bound on the tags BeautifulSoup will build, at C speed, before it builds any (each costs about 1 KB).
_START_TAG = re.compile(r"<[A-Za-z]")


def parse(data: bytes, filename: str, limits: ParseLimits = ParseLimits()) -> ParsedDocument:
    markup = decode_text(data)
    check_tag_count(markup, limits, "the HTML file")
    soup = _soup(markup)
    page_title = _collapse(soup.title.get_text()) if soup.title else ""
    _drop_boilerplate(soup)
    root = _content_root(soup)
    walker = _HtmlWalker()
    walker.walk(root)
    walker.flush()
    return ParsedDocument(title=_html_title(page_title, walker.blocks), blocks=walker.blocks)


def check_tag_count(markup: str, limits: ParseLimits, what: str) -> None:
    """Refuse markup with more start tags than MAX_DOCUMENT_ELEMENTS before BeautifulSoup builds any."""
    if markup.count("<") > limits.max_elements:  # a cheaper upper bound first
        tags = sum(1 for _ in _START_TAG.finditer(markup))
        if tags > limits.max_elements:
            raise limits.too_many_elements(what, "tags", tags)


def _soup(markup: str) -> BeautifulSoup:
    return BeautifulSoup(markup, _HTML_PARSER)


def _drop_boilerplate(soup) -> None:
    """Remove page chrome and hidden elements so only the article's text remains."""
    for tag in soup.find_all(_DROPPED_TAGS):
        # An article's own <header> usually holds its <h1>: keep it; the site header goes.
        if tag.name == "header" and tag.find_parent(["article", "main"]) is not None:
            continue
        tag.decompose()
    for tag in soup.find_all(_is_hidden):
        tag.decompose()


def _is_hidden(tag) -> bool:
    if tag.get("aria-hidden") == "true" or tag.get("role") == "navigation" or tag.has_attr("hidden"):
        return True
    style = tag.get("style")
    return bool(style) and "display:none" in style.replace(" ", "").lower()


def _content_root(soup):
    """<main> (or role=main) when present, else a single <article>, else the body: the article, not the site."""
    main = soup.find("main") or soup.find(attrs={"role": "main"})
    if main is not None:
        return main
    articles = soup.find_all("article")
    if len(articles) == 1:
        return articles[0]
    return soup.body or soup


def _html_title(page_title: str, blocks: list[Block]) -> str:
    h1 = _first_heading(blocks, level=1)
    # "Refunds | Brightwave Help" -> "Refunds": the site name adds nothing to a chunk's heading path.
    if h1 and page_title.startswith(h1) and _TITLE_SEPARATOR.match(page_title[len(h1):]):
        return h1
    return page_title or h1


def _html_fragment_blocks(markup: str) -> list[Block]:
    """Blocks of an HTML snippet (raw HTML inside Markdown)."""
    soup = _soup(markup)
    _drop_boilerplate(soup)
    walker = _HtmlWalker()
    walker.walk(soup.body or soup)
    walker.flush()
    return walker.blocks


class _HtmlWalker:
    """Walks the element tree in document order; loose inline text is gathered into paragraphs."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self._inline: list[str] = []

    def flush(self) -> None:
        text = _collapse_lines("".join(self._inline))
        self._inline.clear()
        if text:
            self.blocks.append(Block("paragraph", text))

    def walk(self, element) -> None:
        for child in element.children:
            if isinstance(child, NavigableString):
                if not isinstance(child, PreformattedString):  # comments, doctype, CDATA
                    self._inline.append(_SPACE.sub(" ", str(child)))
                continue
            if not isinstance(child, Tag):
                continue
            name = child.name
            if name == "br":
                self._inline.append("\n")
                continue
            if name in _INLINE_TAGS and child.find(_BLOCK_TAGS) is None:
                self._inline.append(_html_inline(child))
                continue
            self.flush()
            if name in _HEADING_TAGS:
                # Docs sites append permalink anchors ("¶", "#") to headings.
                text = _collapse(_html_inline(child)).rstrip("¶#🔗 ")
                self.blocks.append(Block("heading", text, level=_HEADING_TAGS[name]))
            elif name == "p":
                self.blocks.append(Block("paragraph", _collapse_lines(_html_inline(child))))
            elif name in ("ul", "ol"):
                lines: list[str] = []
                _html_list(child, 0, lines)
                self.blocks.append(Block("list", "\n".join(lines)))
            elif name == "pre":
                self.blocks.append(Block("code", child.get_text().strip("\n").rstrip(), info=_code_language(child)))
            elif name == "table":
                self.blocks.extend(_html_table(child))
            elif name == "dl":
                self.blocks.append(Block("list", _html_definitions(child)))
            elif name != "hr":
                self.walk(child)
                self.flush()


def _html_inline(element) -> str:
    """Text of an element as inline content: <br> is a line break, <code> keeps backticks, images are dropped."""
    parts: list[str] = []
    for child in element.children:
        if isinstance(child, NavigableString):
            if not isinstance(child, PreformattedString):
                parts.append(_SPACE.sub(" ", str(child)))
        elif child.name == "br":
            parts.append("\n")
        elif child.name == "img":
            continue
        elif child.name == "code":
            parts.append(f"`{_collapse(child.get_text())}`")
        else:
            inner = _html_inline(child)
            # Block-level children inside inline context still separate words.
            parts.append(inner if child.name in _INLINE_TAGS else f" {inner} ")
    return "".join(parts)


def _html_list(element, depth: int, lines: list[str]) -> None:
    ordered = element.name == "ol"
    try:
        number = int(element.get("start") or 1)
    except ValueError:
        number = 1
    for item in element.find_all("li", recursive=False):
        parts: list[str] = []
        nested: list = []
        _split_list_item(item, parts, nested)
        text = _collapse("".join(parts))
        if text:
            lines.append(_list_line(depth, f"{number}." if ordered else "-", text))
        number += 1
        for child in nested:
            _html_list(child, depth + 1 if text else depth, lines)


def _split_list_item(element, parts: list[str], nested: list) -> None:
    """Separate an <li>'s own text from the lists nested in it (at any depth)."""
    for child in element.children:
        if isinstance(child, NavigableString):
            if not isinstance(child, PreformattedString):
                parts.append(str(child))
        elif child.name in ("ul", "ol"):
            nested.append(child)
        elif child.name in ("br", "p", "div", "pre"):
            parts.append(" ")
            _split_list_item(child, parts, nested)
            parts.append(" ")
        elif child.name == "code":
            parts.append(f"`{_collapse(child.get_text())}`")
        elif child.name != "img":
            _split_list_item(child, parts, nested)


def _code_language(pre) -> str:
    code = pre.find("code")
    for element in (pre, code):
        for css_class in (element.get("class") or []) if element is not None else []:
            for prefix in ("language-", "lang-"):
                if css_class.startswith(prefix):
                    return css_class[len(prefix):]
    return ""


def _html_table(table) -> list[Block]:
    rows: list[list[str]] = []
    for row in table.find_all("tr"):
        if row.find_parent("table") is not table:  # a row of a nested table
            continue
        rows.append([_collapse(_html_inline(cell)) for cell in row.find_all(["th", "td"], recursive=False)])
    blocks = []
    caption = table.find("caption")
    if caption is not None and _collapse(caption.get_text()):
        blocks.append(Block("paragraph", _collapse(caption.get_text())))
    return blocks + _table_blocks(rows)


def _html_definitions(dl) -> str:
    """<dl> as a list: "- term: definition"."""
    lines: list[str] = []
    term = ""
    for element in dl.find_all(["dt", "dd"]):
        if element.find_parent("dl") is not dl:
            continue
        text = _collapse(_html_inline(element))
        if element.name == "dt":
            if term:
                lines.append(f"- {term}")
            term = text
        elif text:
            lines.append(f"- {term}: {text}" if term else f"- {text}")
            term = ""
    if term:
        lines.append(f"- {term}")
    return "\n".join(lines)
