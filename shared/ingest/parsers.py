"""Turn an uploaded file into a `ParsedDocument`: clean text with its structure kept, as a list of `Block`s.

    parse_document(data, filename, content_type=None) -> ParsedDocument

    format     extensions            library              title taken from (else derived from the file name)
    Markdown   .md .markdown         markdown-it-py       front matter `title:`, else the first H1
    HTML       .html .htm            BeautifulSoup        <title> (or the first <h1> when <title> is "H1 | Site")
    text       .txt                  -                    a "Title / =====" first line
    PDF        .pdf                  pypdf                metadata /Title, else the first top-level heading
    DOCX       .docx                 python-docx          core properties title, else a Title / Heading 1 paragraph
    FAQ sheet  .csv .json            csv, json            the JSON "title" key

The parser is picked by extension first, then by content type. Bad input never escapes as a library exception:
it becomes `UnsupportedFile`, `CorruptFile` or `EmptyDocument` with a short reason an editor can act on.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import json
import math
import re
import statistics
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

import docx
from bs4 import BeautifulSoup
from bs4.element import NavigableString, PreformattedString, Tag
from docx.oxml.ns import qn
from docx.table import Table
from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode
from pypdf import PdfReader

from shared.errors import CorruptFile, DocumentRejected, EmptyDocument, UnsupportedFile
from shared.models import Block, ParsedDocument

try:  # lxml is faster and more forgiving than the standard library's parser; python-docx brings it along
    import lxml  # noqa: F401

    _HTML_PARSER = "lxml"
except ImportError:  # pragma: no cover
    _HTML_PARSER = "html.parser"

# --------------------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------------------

_FORMAT_BY_EXTENSION = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".txt": "text",
    ".pdf": "pdf",
    ".docx": "docx",
    ".csv": "csv",
    ".json": "json",
}
_FORMAT_BY_CONTENT_TYPE = {
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/plain": "text",
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "text/csv": "csv",
    "application/json": "json",
}
_FORMAT_LABEL = {"markdown": "Markdown", "html": "HTML", "text": "text file", "pdf": "PDF", "docx": "DOCX",
                 "csv": "CSV", "json": "JSON"}


def parse_document(data: bytes, filename: str, content_type: str | None = None) -> ParsedDocument:
    """Parse a file's bytes into a title and structural blocks.

    Raises UnsupportedFile for a format we do not read (or a sheet without question/answer fields), CorruptFile
    for a file that cannot be read, EmptyDocument for a file without text. Never raises anything else for bad input.
    """
    fmt = detect_format(filename, content_type)
    if not data or not data.strip():
        raise EmptyDocument("the file is empty")
    try:
        document = _PARSERS[fmt](data, filename)
    except DocumentRejected:
        raise
    except RecursionError as exc:
        raise CorruptFile(f"{_FORMAT_LABEL[fmt]} is nested too deeply to read") from exc
    except Exception as exc:  # a library choking on malformed input: the file is the problem, not us
        raise CorruptFile(f"{_FORMAT_LABEL[fmt]} could not be read ({_short_reason(exc)})") from exc
    blocks = [block for block in document.blocks if block.text.strip()]
    if not any(block.kind != "heading" for block in blocks):
        raise EmptyDocument(f"the {_FORMAT_LABEL[fmt]} has no text (besides headings, if any)")
    return ParsedDocument(title=document.title or title_from_filename(filename), blocks=blocks)


def detect_format(filename: str, content_type: str | None = None) -> str:
    """The parser to use: by extension when we know it, else by content type; UnsupportedFile otherwise."""
    extension = PurePosixPath(filename.replace("\\", "/")).suffix.lower()
    if extension in _FORMAT_BY_EXTENSION:
        return _FORMAT_BY_EXTENSION[extension]
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime in _FORMAT_BY_CONTENT_TYPE:
        return _FORMAT_BY_CONTENT_TYPE[mime]
    supported = ", ".join(sorted(_FORMAT_BY_EXTENSION))
    what = f"'{extension}'" if extension else f"(no extension, content type '{mime or 'unknown'}')"
    raise UnsupportedFile(f"unsupported file type {what}; supported: {supported}")


_ACRONYMS = {w.lower(): w for w in ("FAQ", "FAQs", "API", "PDF", "SSO", "URL", "HTML", "CSV", "SMS", "2FA", "SAML")}


def title_from_filename(filename: str) -> str:
    """A readable title from a file name: "billing/refund-policy.md" -> "Refund policy", "faq.csv" -> "FAQ"."""
    stem = PurePosixPath(filename.replace("\\", "/")).stem
    words = re.sub(r"[-_.\s]+", " ", stem).strip().split()
    if not words:
        return "Untitled"
    words = [_ACRONYMS.get(word.lower(), word) for word in words]
    title = " ".join(words)
    return title[:1].upper() + title[1:]


def decode_text(data: bytes) -> str:
    """Decode a text file: UTF-8 (with or without BOM), UTF-16 with BOM, else cp1252, else Latin-1.

    NUL bytes in anything but UTF-16 mean a binary file under a text name: CorruptFile.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return _normalise_newlines(data.decode("utf-16"))
        except UnicodeDecodeError as exc:
            raise CorruptFile("text is not valid UTF-16") from exc
    if b"\x00" in data:
        raise CorruptFile("this looks like a binary file, not text (it contains NUL bytes)")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return _normalise_newlines(data.decode(encoding))
        except UnicodeDecodeError:
            continue
    return _normalise_newlines(data.decode("latin-1"))


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _short_reason(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    reason = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return reason[:160]


# --------------------------------------------------------------------------------------------------------------
# Text helpers shared by the formats
# --------------------------------------------------------------------------------------------------------------

_SPACE = re.compile(r"\s+")


def _collapse(text: str) -> str:
    """Collapse runs of whitespace (including non-breaking spaces) to one space."""
    return _SPACE.sub(" ", text).strip()


def _collapse_lines(text: str) -> str:
    """Collapse whitespace within each line, keep deliberate line breaks, drop empty lines."""
    lines = (_collapse(line) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def _pipe_table(rows: list[list[str]]) -> str:
    """Render rows as a Markdown pipe table; the first row is the header."""
    width = max(len(row) for row in rows)
    cells = [[_collapse(c).replace("|", "\\|") for c in row] + [""] * (width - len(row)) for row in rows]
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + " --- |" * width]
    lines += ["| " + " | ".join(row) + " |" for row in cells[1:]]
    return "\n".join(lines)


def _table_blocks(rows: list[list[str]]) -> list[Block]:
    """A table block from rows of cell texts; a one-cell "table" (a layout box) is just a paragraph."""
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        return []
    if len(rows) == 1 and len(rows[0]) == 1:
        return [Block("paragraph", _collapse(rows[0][0]))]
    return [Block("table", _pipe_table(rows))]


def _list_line(depth: int, marker: str, text: str) -> str:
    return "  " * depth + marker + " " + text


# --------------------------------------------------------------------------------------------------------------
# Markdown (markdown-it-py)
# --------------------------------------------------------------------------------------------------------------

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)(?:^---|^\.\.\.)[ \t]*$\n?", re.S | re.M)
_FRONT_MATTER_LINE = re.compile(r"^([A-Za-z_][\w-]*)[ \t]*:[ \t]*(.*)$")


def _parse_markdown(data: bytes, filename: str) -> ParsedDocument:
    meta, body = split_front_matter(decode_text(data))
    tree = SyntaxTreeNode(_markdown_parser().parse(body))
    blocks: list[Block] = []
    _markdown_blocks(tree.children, blocks)
    title = meta.get("title") or _first_heading(blocks, level=1)
    return ParsedDocument(title=_collapse(title), blocks=blocks)


@functools.cache
def _markdown_parser():
    """One parser per process, reused while the instance is warm: building it costs more than parsing an article."""
    return MarkdownIt("commonmark").enable("table")


def split_front_matter(text: str) -> tuple[dict[str, str], str]:
    """Split a leading `---` block of simple `key: value` lines off a Markdown text (no YAML library needed)."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    meta: dict[str, str] = {}
    for line in match.group(1).splitlines():
        pair = _FRONT_MATTER_LINE.match(line)
        if pair:
            meta[pair.group(1).lower()] = pair.group(2).strip().strip("\"'")
    if not meta:  # a leading thematic break followed by prose, not front matter
        return {}, text
    return meta, text[match.end():]


def _first_heading(blocks: Iterable[Block], level: int) -> str:
    return next((b.text for b in blocks if b.kind == "heading" and b.level == level), "")


def _markdown_blocks(nodes, blocks: list[Block]) -> None:
    for node in nodes:
        kind = node.type
        if kind == "heading":
            blocks.append(Block("heading", _collapse(_markdown_inline(node)), level=int(node.tag[1])))
        elif kind == "paragraph":
            blocks.append(Block("paragraph", _collapse_lines(_markdown_inline(node))))
        elif kind in ("bullet_list", "ordered_list"):
            lines: list[str] = []
            _markdown_list(node, 0, lines)
            blocks.append(Block("list", "\n".join(lines)))
        elif kind in ("fence", "code_block"):
            language = node.info.split()[0] if kind == "fence" and node.info.strip() else ""
            blocks.append(Block("code", node.content.rstrip("\n"), info=language))
        elif kind == "table":
            rows = [[_collapse(_markdown_inline(cell)) for cell in row.children]
                    for section in node.children for row in section.children]
            blocks.extend(_table_blocks(rows))
        elif kind == "html_block":
            blocks.extend(_html_fragment_blocks(node.content))
        elif kind == "blockquote":
            _markdown_blocks(node.children, blocks)
        # hr and anything unknown carry no text


def _markdown_inline(node) -> str:
    """Readable text of a node's inline content: link text kept, images dropped, `code` kept with backticks."""
    parts: list[str] = []
    for child in node.children:
        kind = child.type
        if kind == "text":
            parts.append(child.content)
        elif kind == "code_inline":
            parts.append(f"`{child.content}`")
        elif kind == "softbreak":
            parts.append(" ")
        elif kind == "hardbreak":
            parts.append("\n")
        elif kind == "html_inline":
            parts.append("\n" if child.content[:3].lower() == "<br" else "")  # other inline tags carry no text
        elif kind == "image":
            continue
        else:  # inline wrapper, link, em, strong, s: keep the text inside
            parts.append(_markdown_inline(child))
    return "".join(parts)


def _markdown_list(node, depth: int, lines: list[str]) -> None:
    ordered = node.type == "ordered_list"
    number = int(node.attrs.get("start", 1) or 1) if ordered else 0
    for item in node.children:
        texts, nested = [], []
        for child in item.children:
            if child.type in ("bullet_list", "ordered_list"):
                nested.append(child)
            elif child.type in ("fence", "code_block"):
                texts.append(_collapse(child.content))
            else:
                texts.append(_collapse(_markdown_inline(child) if child.type == "paragraph" else _node_text(child)))
        text = " ".join(t for t in texts if t)
        if text:
            lines.append(_list_line(depth, f"{number}." if ordered else "-", text))
        number += 1
        for child in nested:
            _markdown_list(child, depth + 1 if text else depth, lines)


def _node_text(node) -> str:
    if node.type == "inline":
        return _markdown_inline(node)
    return " ".join(_node_text(child) for child in node.children) or node.content


# --------------------------------------------------------------------------------------------------------------
# HTML (BeautifulSoup)
# --------------------------------------------------------------------------------------------------------------

_DROPPED_TAGS = ("script", "style", "nav", "header", "footer", "aside", "form", "noscript", "svg", "template",
                 "iframe", "button", "select", "textarea", "canvas", "object", "head")
_HEADING_TAGS = {f"h{n}": n for n in range(1, 7)}
_INLINE_TAGS = {"a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "del", "dfn", "em", "font", "i", "ins",
                "kbd", "label", "mark", "q", "s", "samp", "small", "span", "strong", "sub", "sup", "time", "u",
                "var", "img", "wbr", "br"}
_BLOCK_TAGS = ["p", "div", "ul", "ol", "table", "pre", "section", "article", "blockquote", "dl", "figure",
               "h1", "h2", "h3", "h4", "h5", "h6"]
_TITLE_SEPARATOR = re.compile(r"^\s*[|\-–—·:»]")


def _parse_html(data: bytes, filename: str) -> ParsedDocument:
    soup = _soup(decode_text(data))
    page_title = _collapse(soup.title.get_text()) if soup.title else ""
    _drop_boilerplate(soup)
    root = _content_root(soup)
    walker = _HtmlWalker()
    walker.walk(root)
    walker.flush()
    return ParsedDocument(title=_html_title(page_title, walker.blocks), blocks=walker.blocks)


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


# --------------------------------------------------------------------------------------------------------------
# Plain text (also the fallback layout for PDF pages without positions)
# --------------------------------------------------------------------------------------------------------------

_LIST_ITEM = re.compile(r"^(\s*)(?:([-*+•‣◦▪●○■–])|(\d{1,3})[.)])\s+(\S.*)$")
_UNDERLINE = re.compile(r"^\s*(={3,}|-{3,})\s*$")
_RULE = re.compile(r"^\s*([-=*_~#])\1{2,}\s*$")
_SENTENCE_END = re.compile(r"[.!?:;)\"'”’]$")


def _parse_text(data: bytes, filename: str) -> ParsedDocument:
    blocks = plain_text_blocks(decode_text(data))
    title = blocks[0].text if blocks and blocks[0].kind == "heading" and blocks[0].level == 1 else ""
    return ParsedDocument(title=title, blocks=blocks)


def plain_text_blocks(text: str, laid_out: bool = False) -> list[Block]:
    """Blocks of plain text: paragraphs split on blank lines, list-like lines kept as lists.

    A typed text file also gets headings ("Title / =====" underlines, short ALL-CAPS lines) and needs list
    continuation lines indented. Text `laid_out` from a page (PDF) has neither headings nor indentation but
    hyphenated line ends, so it is de-hyphenated and an item runs on until a line ends a sentence.
    """
    blocks: list[Block] = []
    for group in re.split(r"\n[ \t]*\n", text.expandtabs(4)):
        lines = [line.rstrip() for line in group.split("\n") if line.strip()]
        if lines:
            blocks.extend(_line_group_blocks(lines, laid_out))
    return blocks


def _line_group_blocks(lines: list[str], laid_out: bool) -> list[Block]:
    """Blocks of one run of non-blank lines: headings, paragraphs (wrapped lines joined) and lists."""
    typed = not laid_out  # a typed text file marks headings and rules by hand
    blocks: list[Block] = []
    prose: list[str] = []
    items = _ListBuilder()

    def flush() -> None:
        if prose:
            blocks.append(Block("paragraph", _join_lines(prose, laid_out)))
            prose.clear()
        if items.lines:
            blocks.append(Block("list", items.text()))
            items.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        underline = _UNDERLINE.match(lines[i + 1]) if typed and i + 1 < len(lines) else None
        item = _LIST_ITEM.match(line)
        if typed and _RULE.match(line):
            flush()
            i += 1
            continue
        if underline and not item and len(line.strip()) <= 120 and not line.rstrip().endswith("."):
            flush()
            blocks.append(Block("heading", _collapse(line), level=1 if underline.group(1)[0] == "=" else 2))
            i += 2
            continue
        if typed and not prose and not items.lines and _is_caps_heading(line):
            blocks.append(Block("heading", _collapse(line), level=2))
        elif item:
            if prose:
                flush()
            items.add(item)
        elif items.lines and (line[:1].isspace() or (laid_out and not _SENTENCE_END.search(items.last_text()))):
            items.extend_last(line, laid_out)  # an item's wrapped continuation line
        else:
            if items.lines:
                flush()
            prose.append(line)
        i += 1
    flush()
    return blocks


def _is_caps_heading(line: str) -> bool:
    text = line.strip()
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 2 and len(text) <= 80 and text.isupper() and not text.endswith((".", ",", ";"))


def _join_lines(lines: list[str], dehyphenate: bool) -> str:
    """Join wrapped lines into one paragraph; with dehyphenate, "exam-" + "ple" becomes "example"."""
    text = lines[0].strip()
    for line in lines[1:]:
        text = _join_two(text, line.strip(), dehyphenate)
    return _collapse(text)


def _join_two(left: str, right: str, dehyphenate: bool) -> str:
    if dehyphenate and len(left) > 1 and left.endswith("-") and left[-2].isalpha() and right[:1].islower():
        return left[:-1] + right
    return f"{left} {right}"


class _ListBuilder:
    """Accumulates list lines, turning each line's indentation into a nesting depth."""

    def __init__(self) -> None:
        self.lines: list[list] = []  # [depth, marker, text]
        self._indents: list[int] = []

    def add(self, match: re.Match) -> None:
        indent = len(match.group(1))
        while self._indents and indent < self._indents[-1]:
            self._indents.pop()
        if not self._indents or indent > self._indents[-1]:
            self._indents.append(indent)
        marker = f"{int(match.group(3))}." if match.group(3) else "-"
        self.lines.append([len(self._indents) - 1, marker, match.group(4).strip()])

    def extend_last(self, line: str, dehyphenate: bool) -> None:
        self.lines[-1][2] = _join_two(self.lines[-1][2], line.strip(), dehyphenate)

    def last_text(self) -> str:
        return self.lines[-1][2]

    def text(self) -> str:
        return "\n".join(_list_line(depth, marker, _collapse(text)) for depth, marker, text in self.lines)

    def clear(self) -> None:
        self.lines.clear()
        self._indents.clear()


# --------------------------------------------------------------------------------------------------------------
# PDF (pypdf)
# --------------------------------------------------------------------------------------------------------------

# "7", "- 7 -", "7 of 12", "Page 7", "... | Page 7 of 12": page numbering, when found on a page's first or last lines.
_PAGE_NUMBER = re.compile(r"^[-–\s]*\d+[-–\s]*((of|/)\s*\d+)?$|\bpage\s+\d+(\s*(of|/)\s*\d+)?\s*$", re.I)
_FILE_LIKE_TITLE = re.compile(r"(^microsoft (word|powerpoint) - )|(\.(docx?|pdf|pptx?|odt|rtf)$)|^untitled", re.I)


@dataclass
class _PdfLine:
    text: str
    size: float  # rendered font size in points
    y: float  # baseline height on the page; larger is higher
    page: int
    bold: bool


def _parse_pdf(data: bytes, filename: str) -> ParsedDocument:
    if b"%PDF-" not in data[:1024]:
        raise CorruptFile("not a PDF file (no %PDF header)")
    if data.rfind(b"%%EOF") == -1:
        raise CorruptFile("the PDF is truncated (no end-of-file marker); upload it again")
    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        _decrypt_without_password(reader)
    pages = list(reader.pages)
    if not pages:
        raise CorruptFile("the PDF has no pages")
    lines = _drop_running_headers([_pdf_page_lines(page, number) for number, page in enumerate(pages)])
    if not any(line.text.strip() for line in lines):
        raise EmptyDocument("PDF has no extractable text (scanned image?)")
    blocks = _pdf_blocks(lines)
    return ParsedDocument(title=_pdf_title(reader, blocks), blocks=blocks)


def _decrypt_without_password(reader) -> None:
    """Many PDFs are "encrypted" only to restrict printing, with an empty user password: those we can read."""
    try:
        decrypted = reader.decrypt("")
    except Exception as exc:  # e.g. AES without the optional crypto dependency
        raise CorruptFile(f"the PDF is encrypted and cannot be opened ({_short_reason(exc)})") from exc
    if not decrypted:
        raise CorruptFile("the PDF is protected with a password; upload an unprotected copy")


def _pdf_title(reader, blocks: list[Block]) -> str:
    metadata = reader.metadata
    title = _collapse(str(metadata.title or "")) if metadata is not None else ""
    if title and not _FILE_LIKE_TITLE.search(title):
        return title
    return _first_heading(blocks, level=1)


def _pdf_page_lines(page, page_number: int) -> list[_PdfLine]:
    """The page's text lines with the size, height and boldness of their type, from pypdf's text visitor."""
    lines: list[_PdfLine] = []
    current: list[str] = []
    style: dict = {}

    def end_line() -> None:
        text = _collapse("".join(current))
        if text:
            lines.append(_PdfLine(text, style.get("size", 0.0), style.get("y", 0.0), page_number,
                                  style.get("bold", False)))
        current.clear()
        style.clear()

    def visit(text, cm, tm, font_dict, font_size) -> None:
        segments = text.split("\n")
        for index, segment in enumerate(segments):
            if index:
                end_line()
            if not segment.strip():
                current.append(segment)
                continue
            size = (font_size or 0) * math.hypot(tm[2], tm[3]) * math.hypot(cm[2], cm[3])
            bold = "bold" in str((font_dict or {}).get("/BaseFont", "")).lower()
            if not style:
                style.update(y=cm[1] * tm[4] + cm[3] * tm[5] + cm[5], size=size, bold=bold)
            else:
                style["size"] = max(style["size"], size)
                style["bold"] = style["bold"] and bold
            current.append(segment)

    page.extract_text(visitor_text=visit)
    end_line()
    return lines


def _drop_running_headers(pages: list[list[_PdfLine]]) -> list[_PdfLine]:
    """Drop page numbers and lines repeated at the top or bottom of most pages (running headers and footers)."""
    def key(line: _PdfLine) -> str:
        # Running headers are short; long lines at a page edge are body text, however often they repeat.
        return re.sub(r"\d+", "#", line.text.lower()) if len(line.text) <= 100 else ""

    edges = Counter()
    for lines in pages:
        edges.update({key(line) for line in lines[:2] + lines[-2:]} - {""})
    repeated = {k for k, n in edges.items() if n >= 2 and n >= 0.6 * len(pages)}
    kept: list[_PdfLine] = []
    for lines in pages:
        edge_ids = {id(line) for line in lines[:2] + lines[-2:]}
        kept.extend(line for line in lines if id(line) not in edge_ids or not key(line)
                    or not (key(line) in repeated or _PAGE_NUMBER.search(line.text)))
    return kept


def _pdf_blocks(lines: list[_PdfLine]) -> list[Block]:
    """Group lines into headings (larger or bold type) and paragraphs/lists (split at vertical gaps)."""
    if len(lines) > 1 and len({round(line.y) for line in lines}) == 1:
        # No usable positions: fall back to reading the text as plain text.
        return plain_text_blocks("\n".join(line.text for line in lines), laid_out=True)
    body_size = _body_font_size(lines)
    levels = _heading_levels(lines, body_size)
    bold_level = min(max(levels.values(), default=0) + 1, 6)
    leading = _typical_leading(lines)
    blocks: list[Block] = []
    group: list[_PdfLine] = []
    group_level = 0

    def flush() -> None:
        if group and group_level:
            blocks.append(Block("heading", _collapse(" ".join(line.text for line in group)), level=group_level))
        elif group:
            blocks.extend(_line_group_blocks([line.text for line in group], laid_out=True))
        group.clear()

    previous: _PdfLine | None = None
    for line in lines:
        level = _line_heading_level(line, levels, bold_level, body_size)
        if previous is None or level != group_level or _starts_new_group(previous, line, leading):
            flush()
            group_level = level
        group.append(line)
        previous = line
    flush()
    return blocks


def _body_font_size(lines: list[_PdfLine]) -> float:
    weights = Counter()
    for line in lines:
        weights[round(line.size * 2) / 2] += len(line.text)
    return weights.most_common(1)[0][0]


def _heading_levels(lines: list[_PdfLine], body_size: float) -> dict[float, int]:
    """Font sizes clearly larger than the body text, largest first, become heading levels 1, 2, 3..."""
    sizes = sorted({round(line.size * 2) / 2 for line in lines if line.size >= body_size * 1.15
                    and len(line.text) <= 150}, reverse=True)
    return {size: min(index + 1, 6) for index, size in enumerate(sizes)}


def _line_heading_level(line: _PdfLine, levels: dict[float, int], bold_level: int, body_size: float) -> int:
    level = levels.get(round(line.size * 2) / 2, 0)
    if level:
        return level
    # A short, wholly bold line at body size reads as the lowest heading level ("Step 2: Connect your calendar").
    if line.bold and len(line.text) <= 80 and not line.text.endswith((".", ",", ";")) \
            and abs(line.size - body_size) < 0.6 and not _LIST_ITEM.match(line.text):
        return bold_level
    return 0


def _typical_leading(lines: list[_PdfLine]) -> float:
    gaps = [a.y - b.y for a, b in itertools.pairwise(lines)
            if a.page == b.page and abs(a.size - b.size) < 0.5 and a.y - b.y > 0]
    return statistics.median(gaps) if gaps else 14.0


def _starts_new_group(previous: _PdfLine, line: _PdfLine, leading: float) -> bool:
    if line.page != previous.page:
        # A paragraph runs on across a page break unless the last line ended a sentence.
        return bool(_SENTENCE_END.search(previous.text))
    gap = previous.y - line.y
    return gap > leading * 1.4 or gap < -1 or abs(line.size - previous.size) >= 1


# --------------------------------------------------------------------------------------------------------------
# DOCX (python-docx)
# --------------------------------------------------------------------------------------------------------------

_HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.I)
_CODE_STYLES = {"code", "source code", "html preformatted", "macro text", "plain text", "code block"}
_ORDERED_FORMATS = {"decimal", "decimalZero", "lowerLetter", "upperLetter", "lowerRoman", "upperRoman"}


def _parse_docx(data: bytes, filename: str) -> ParsedDocument:
    if not data.startswith(b"PK\x03\x04"):
        raise CorruptFile("not a DOCX file (it is not a zip archive)")
    try:
        document = docx.Document(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise CorruptFile("the DOCX file is damaged or truncated (its zip archive cannot be read)") from exc
    except Exception as exc:
        raise CorruptFile(f"not a readable DOCX file ({_short_reason(exc)})") from exc
    builder = _DocxBlocks(_numbering_formats(document))
    for item in document.iter_inner_content():  # paragraphs and tables in body order
        if isinstance(item, Table):
            builder.add_table(item)
        else:
            builder.add_paragraph(item)
    builder.flush()
    title = _collapse(document.core_properties.title or "") or builder.title_paragraph \
        or _first_heading(builder.blocks, level=1)
    return ParsedDocument(title=title, blocks=builder.blocks)


def _numbering_formats(document) -> dict[tuple[str, str], str]:
    """(numId, ilvl) -> number format ("bullet", "decimal", ...) from the numbering part, when there is one."""
    try:
        numbering = document.part.numbering_part.element
    except (KeyError, NotImplementedError, AttributeError):
        return {}
    abstract: dict[str, dict[str, str]] = {}
    for definition in numbering.findall(qn("w:abstractNum")):
        levels = {}
        for level in definition.findall(qn("w:lvl")):
            fmt = level.find(qn("w:numFmt"))
            levels[level.get(qn("w:ilvl"))] = fmt.get(qn("w:val")) if fmt is not None else "bullet"
        abstract[definition.get(qn("w:abstractNumId"))] = levels
    formats = {}
    for num in numbering.findall(qn("w:num")):
        ref = num.find(qn("w:abstractNumId"))
        for ilvl, fmt in abstract.get(ref.get(qn("w:val")) if ref is not None else "", {}).items():
            formats[(num.get(qn("w:numId")), ilvl)] = fmt
    return formats


class _DocxBlocks:
    """Builds blocks from body paragraphs and tables in order, grouping runs of list and code paragraphs."""

    def __init__(self, numbering: dict[tuple[str, str], str]) -> None:
        self.blocks: list[Block] = []
        self.title_paragraph = ""
        self._numbering = numbering
        self._list: list[str] = []
        self._counters: dict[int, tuple[bool, int]] = {}  # depth -> (ordered, last number)
        self._code: list[str] = []

    def add_paragraph(self, paragraph) -> None:
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        lowered = style.lower()
        if lowered in _CODE_STYLES:
            self._flush_list()
            self._code.append(paragraph.text.rstrip())
            return
        self._flush_code()
        text = _collapse(paragraph.text)
        if not text:
            return
        heading = _HEADING_STYLE.match(style)
        level = 1 if lowered == "title" else min(max(int(heading.group(1)), 1), 6) if heading else 0
        if level:  # checked before lists: numbered headings carry numbering too
            self._flush_list()
            if lowered == "title":
                self.title_paragraph = self.title_paragraph or text
            self.blocks.append(Block("heading", text, level=level))
            return
        list_info = self._list_info(paragraph, style)
        if list_info is not None:
            self._add_list_item(text, *list_info)
            return
        self._flush_list()
        self.blocks.append(Block("paragraph", text))

    def add_table(self, table) -> None:
        self.flush()
        rows = []
        for row in table.rows:
            cells, seen = [], set()
            for cell in row.cells:
                if id(cell._tc) in seen:  # a horizontally merged cell repeats: keep it once
                    continue
                seen.add(id(cell._tc))
                cells.append(_collapse(cell.text))
            rows.append(cells)
        if rows:
            self.blocks.extend(_table_blocks(rows))

    def flush(self) -> None:
        self._flush_code()
        self._flush_list()

    def _list_info(self, paragraph, style: str) -> tuple[int, bool] | None:
        """(depth, ordered) for a list paragraph, None otherwise. python-docx has no public numbering API."""
        num_pr = paragraph._p.find(qn("w:pPr") + "/" + qn("w:numPr"))
        if num_pr is not None:
            ilvl_el, num_el = num_pr.find(qn("w:ilvl")), num_pr.find(qn("w:numId"))
            ilvl = ilvl_el.get(qn("w:val")) if ilvl_el is not None else "0"
            num_id = num_el.get(qn("w:val")) if num_el is not None else ""
            if num_id != "0":  # numId 0 explicitly switches numbering off
                fmt = self._numbering.get((num_id, ilvl))
                ordered = fmt in _ORDERED_FORMATS if fmt else "number" in style.lower()
                return int(ilvl or 0), ordered
        if style.lower().startswith("list"):
            depth = int(style[-1]) - 1 if style[-1:].isdigit() else 0
            return max(depth, 0), "number" in style.lower()
        return None

    def _add_list_item(self, text: str, depth: int, ordered: bool) -> None:
        self._flush_code()
        for deeper in [d for d in self._counters if d > depth]:
            del self._counters[deeper]  # a sub-list restarts its numbering
        was_ordered, number = self._counters.get(depth, (ordered, 0))
        number = number + 1 if was_ordered == ordered else 1
        self._counters[depth] = (ordered, number)
        marker = f"{number}." if ordered else "-"
        self._list.append(_list_line(depth, marker, text))

    def _flush_list(self) -> None:
        if self._list:
            self.blocks.append(Block("list", "\n".join(self._list)))
        self._list, self._counters = [], {}

    def _flush_code(self) -> None:
        if any(line.strip() for line in self._code):
            self.blocks.append(Block("code", "\n".join(self._code).strip("\n")))
        self._code = []


# --------------------------------------------------------------------------------------------------------------
# FAQ sheets (CSV, JSON)
# --------------------------------------------------------------------------------------------------------------

_QUESTION_FIELDS = ("question", "q", "title", "query")
_ANSWER_FIELDS = ("answer", "a", "response", "reply")
_CATEGORY_FIELDS = ("category", "topic", "section")
_JSON_LIST_KEYS = ("faqs", "questions", "items")


def _parse_csv(data: bytes, filename: str) -> ParsedDocument:
    text = decode_text(data)
    header = text.split("\n", 1)[0]
    # The header row names the columns and rarely contains a delimiter by accident: count there.
    delimiter = max((",", ";", "\t"), key=header.count) if header else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise CorruptFile(f"the CSV could not be read ({exc})") from exc
    return _faq_document(rows, list(reader.fieldnames or []), title="")


def _parse_json(data: bytes, filename: str) -> ParsedDocument:
    try:
        payload = json.loads(decode_text(data))
    except json.JSONDecodeError as exc:
        raise CorruptFile(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    title = ""
    items = payload
    if isinstance(payload, dict):
        keys = {str(key).lower(): key for key in payload}
        if "title" in keys and isinstance(payload[keys["title"]], str):
            title = payload[keys["title"]]
        list_key = next((keys[k] for k in _JSON_LIST_KEYS if k in keys), None)
        if list_key is None:
            raise UnsupportedFile("JSON is not an FAQ sheet: expected a list of question/answer objects or "
                                  f"{{\"faqs\": [...]}}; found keys: {_names(payload)}")
        items = payload[list_key]
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise UnsupportedFile("JSON is not an FAQ sheet: expected a list of objects with question and answer fields")
    columns = list(dict.fromkeys(str(key) for item in items for key in item))
    return _faq_document(items, columns, title=_collapse(title))


def _faq_document(rows: list[dict], columns: list[str], title: str) -> ParsedDocument:
    """One faq block per question/answer pair, with a level-2 heading whenever the category changes."""
    names = {_field_key(name) for name in columns if name is not None}
    if names.isdisjoint(_QUESTION_FIELDS) or names.isdisjoint(_ANSWER_FIELDS):
        raise UnsupportedFile("not an FAQ sheet: need a question column (question, q, title or query) and an answer "
                              f"column (answer, a, response or reply); found: {_names(columns) or 'no columns'}")
    blocks: list[Block] = []
    current_category = None
    for row in rows:
        # Looked up per row: JSON objects in one file may spell their keys differently.
        fields = {_field_key(key): value for key, value in row.items() if key is not None}
        question = _faq_cell(_first_field(fields, _QUESTION_FIELDS))
        answer = _faq_cell(_first_field(fields, _ANSWER_FIELDS), keep_lines=True)
        if not question or not answer:
            continue
        category = _faq_cell(_first_field(fields, _CATEGORY_FIELDS))
        if category and category != current_category:
            blocks.append(Block("heading", category, level=2))
        current_category = category or current_category
        blocks.append(Block("faq", answer, info=question))
    return ParsedDocument(title=title, blocks=blocks)


def _first_field(fields: dict, aliases: tuple[str, ...]):
    return next((fields[alias] for alias in aliases if fields.get(alias) not in (None, "")), None)


def _field_key(name: str) -> str:
    return str(name).strip().lstrip("\ufeff").strip().lower()


def _faq_cell(value, keep_lines: bool = False) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    text = _normalise_newlines(str(value))
    return _collapse_lines(text) if keep_lines else _collapse(text)


def _names(columns: Iterable) -> str:
    names = [repr(str(c)) for c in columns if c is not None and str(c).strip()]
    return ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")


_PARSERS: dict[str, Callable[[bytes, str], ParsedDocument]] = {
    "markdown": _parse_markdown,
    "html": _parse_html,
    "text": _parse_text,
    "pdf": _parse_pdf,
    "docx": _parse_docx,
    "csv": _parse_csv,
    "json": _parse_json,
}
