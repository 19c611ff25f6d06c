"""DOCX via python-docx: paragraphs and tables in body order, heading and list styles, numbering formats.

Bounded before it is read: the zip directory's sizes and ratios (limits.check_zip_directory) before anything is
inflated, then the body's paragraphs and table cells (counted by lxml) before python-docx walks them, then the text as
it is gathered."""

from __future__ import annotations

import io
import re
import zipfile

import docx
from docx.oxml.ns import nsmap, qn
from docx.table import Table
from lxml import etree

from shared.errors import CorruptFile
from shared.ingest.parsers.common import _collapse, _first_heading, _list_line, _short_reason, _table_blocks
from shared.ingest.parsers.limits import Budget, ParseLimits, check_zip_directory
from shared.models import Block, ParsedDocument

_HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.I)
_CODE_STYLES = {"code", "source code", "html preformatted", "macro text", "plain text", "code block"}
_ORDERED_FORMATS = {"decimal", "decimalZero", "lowerLetter", "upperLetter", "lowerRoman", "upperRoman"}
# python-docx's Paragraph.text in one XPath query compiled once, instead of one per paragraph and one per run, each
# compiled anew (three quarters of the time a document of many short paragraphs took). The same elements, in the
# same order, turned into text by python-docx's own element classes (str(): a w:t's text, "\t" for a tab, ...).
_RUN_CONTENT = etree.XPath(
    "(w:r | w:hyperlink/w:r)/*[self::w:br or self::w:cr or self::w:noBreakHyphen or self::w:ptab or self::w:t "
    "or self::w:tab]", namespaces=nsmap)


_WHAT = "the DOCX file"


def parse(data: bytes, filename: str, limits: ParseLimits = ParseLimits()) -> ParsedDocument:
    if not data.startswith(b"PK\x03\x04"):
        raise CorruptFile("not a DOCX file (it is not a zip archive)")
    check_zip_directory(data, limits, _WHAT)
    try:
        document = docx.Document(io.BytesIO(data))
    except zipfile.BadZipFile as exc:  # also a member that inflates beyond the size its directory entry declares
        raise CorruptFile("the DOCX file is damaged or truncated (its zip archive cannot be read)") from exc
    except Exception as exc:
        raise CorruptFile(f"not a readable DOCX file ({_short_reason(exc)})") from exc
    # Counted before the walk. (Not with XPath: a union of two descendant axes is quadratic in libxml2, 6 s for
    # 60,000 elements.)
    elements = sum(1 for _ in document.element.body.iter(qn("w:p"), qn("w:tc")))
    if elements > limits.max_elements:
        raise limits.too_many_elements(_WHAT, "paragraphs and table cells", elements)
    builder = _DocxBlocks(_numbering_formats(document), _StyleNames(document), Budget(limits, _WHAT))
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


def _paragraph_text(paragraph) -> str:
    return _runs_text(paragraph._p)


def _runs_text(p) -> str:
    """Paragraph.text of python-docx, for a w:p element: its runs' and hyperlinks' text."""
    return "".join(str(element) for element in _RUN_CONTENT(p))


def _int(value: str | None, default: int) -> int:
    try:
        return max(int(value), 1) if value is not None else default
    except ValueError:
        return default


class _StyleNames:
    """Paragraph style id -> style name, resolved once per id. python-docx resolves a paragraph's style anew each
    time, with XPath queries over every style: 80% of the time a file of many short paragraphs took (the issue's
    3.5 KB DOCX of 300,000 empty paragraphs: ~140 s)."""

    def __init__(self, document) -> None:
        self._document = document
        self._names: dict[str | None, str] = {}

    def of(self, paragraph) -> str:
        style_id = paragraph._p.style  # the w:pStyle value, None for the default style
        name = self._names.get(style_id)
        if name is None:
            style = paragraph.style
            name = self._names[style_id] = (style.name if style is not None else "") or ""
        return name


class _DocxBlocks:
    """Builds blocks from body paragraphs and tables in order, grouping runs of list and code paragraphs."""

    def __init__(self, numbering: dict[tuple[str, str], str], styles: _StyleNames, budget: Budget) -> None:
        self.blocks: list[Block] = []
        self.title_paragraph = ""
        self._numbering = numbering
        self._styles = styles
        self._budget = budget
        self._list: list[str] = []
        self._counters: dict[int, tuple[bool, int]] = {}  # depth -> (ordered, last number)
        self._code: list[str] = []

    def add_paragraph(self, paragraph) -> None:
        style = self._styles.of(paragraph)
        lowered = style.lower()
        raw = _paragraph_text(paragraph)
        self._budget.add_chars(len(raw))
        if lowered in _CODE_STYLES:
            self._flush_list()
            self._code.append(raw.rstrip())
            return
        self._flush_code()
        text = _collapse(raw)
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
        """A table's rows of cell texts, read from the XML directly: python-docx's rows, cells and cell text cost
        XPath queries whose price grew with the document (a 6,000-row table took 14 s)."""
        self.flush()
        rows = []
        above: dict[int, str] = {}  # grid column -> text of the cell a vertical merge continues
        for tr in table._tbl.iterchildren(qn("w:tr")):
            cells, column = [], 0
            for tc in tr.iterchildren(qn("w:tc")):
                properties = tc.find(qn("w:tcPr"))
                span_el = properties.find(qn("w:gridSpan")) if properties is not None else None
                merge_el = properties.find(qn("w:vMerge")) if properties is not None else None
                if merge_el is not None and merge_el.get(qn("w:val"), "continue") == "continue":
                    text = above.get(column, "")  # a vertically merged cell shows its first row's text
                else:
                    text = "\n".join(_runs_text(p) for p in tc.iterchildren(qn("w:p")))
                    self._budget.add_chars(len(text))
                above[column] = text
                cells.append(_collapse(text))  # a horizontally merged cell is one w:tc: kept once
                column += _int(span_el.get(qn("w:val")) if span_el is not None else None, 1)
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
