"""DOCX via python-docx: paragraphs and tables in body order, heading and list styles, numbering formats."""

from __future__ import annotations

import io
import re
import zipfile

import docx
from docx.oxml.ns import qn
from docx.table import Table

from shared.errors import CorruptFile
from shared.ingest.parsers.common import _collapse, _first_heading, _list_line, _short_reason, _table_blocks
from shared.models import Block, ParsedDocument

_HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.I)
_CODE_STYLES = {"code", "source code", "html preformatted", "macro text", "plain text", "code block"}
_ORDERED_FORMATS = {"decimal", "decimalZero", "lowerLetter", "upperLetter", "lowerRoman", "upperRoman"}


def parse(data: bytes, filename: str) -> ParsedDocument:
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
