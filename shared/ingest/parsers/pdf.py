"""PDF via pypdf: headings from font sizes, paragraphs from vertical gaps, running headers and page numbers dropped.

Bounded as it is read: pages by the page tree's declared /Count before the tree is walked, and by pypdf's own
page-tree limit while it is; each stream's decompression by pypdf's output limits (set per parse, a quarter of
MAX_EXPANDED_BYTES); the decoded page contents together, page by page; and the content operations and extracted
characters through pypdf's visitors, as they happen."""

from __future__ import annotations

import io
import itertools
import math
import re
import statistics
from collections import Counter
from dataclasses import dataclass

from pypdf import PdfReader, apply_configuration
from pypdf.errors import LimitReachedError

from shared.errors import CorruptFile, DocumentTooLarge, EmptyDocument
from shared.ingest.parsers.common import _collapse, _first_heading, _short_reason
from shared.ingest.parsers.limits import Budget, ParseLimits
from shared.ingest.parsers.text import _LIST_ITEM, _SENTENCE_END, _line_group_blocks, plain_text_blocks
from shared.models import Block, ParsedDocument

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


# One element of MAX_DOCUMENT_ELEMENTS stands for this many content stream operations: a page of text is a few
# thousand (moves, fonts, strings), so the default allows two million (a few seconds of pypdf).
_OPERATIONS_PER_ELEMENT = 20


def parse(data: bytes, filename: str, limits: ParseLimits = ParseLimits()) -> ParsedDocument:
    if b"%PDF-" not in data[:1024]:
        raise CorruptFile("not a PDF file (no %PDF header)")
    if data.rfind(b"%%EOF") == -1:
        raise CorruptFile("the PDF is truncated (no end-of-file marker); upload it again")
    try:
        with apply_configuration(**_pypdf_limits(limits)):
            return _parse(data, limits)
    except LimitReachedError as exc:
        raise DocumentTooLarge(f"the PDF is beyond what we read safely ({_short_reason(exc)}): split it into "
                               "smaller files") from exc


def _pypdf_limits(limits: ParseLimits) -> dict:
    """pypdf's own resource limits (a context variable: this parse only), tightened to ours."""
    per_stream = limits.max_expanded_bytes // 4
    return {
        "zlib_maximum_output_length": per_stream,
        "lzw_maximum_output_length": per_stream,
        "run_length_maximum_output_length": per_stream,
        "brotli_maximum_output_length": per_stream,
        "array_based_stream_maximum_output_length": per_stream,
        "stream_decoding_work_maximum_length": 4 * per_stream,
        # Every node of the page tree it visits (a tree can list one page a million times in a few kilobytes).
        "page_tree_maximum_entries": 2 * limits.max_pages + 1_000,
    }


def _parse(data: bytes, limits: ParseLimits) -> ParsedDocument:
    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        _decrypt_without_password(reader)
    declared = _declared_page_count(reader)
    if declared > limits.max_pages:
        raise limits.too_many_pages(declared)
    pages = list(reader.pages)  # the walk is bounded by page_tree_maximum_entries
    if len(pages) > limits.max_pages:
        raise limits.too_many_pages(len(pages))
    if not pages:
        raise CorruptFile("the PDF has no pages")
    budget = Budget(limits, "the PDF", kind="content operations", scale=_OPERATIONS_PER_ELEMENT)
    decoded = 0
    page_lines = []
    for number, page in enumerate(pages):
        decoded += _decoded_contents_size(page)
        if decoded > limits.max_expanded_bytes:
            raise limits.too_many_bytes("the PDF", how=" of page content once decompressed")
        page_lines.append(_pdf_page_lines(page, number, budget))
    lines = _drop_running_headers(page_lines)
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


def _decoded_contents_size(page) -> int:
    """Bytes of the page's content streams once decoded. Decoded here once: pypdf keeps the result for the text
    extraction that follows. A stream that cannot be decoded counts 0 here and fails (or not) in extraction, as
    before."""
    try:
        contents = page.get_contents()
        return len(contents.get_data()) if contents is not None else 0
    except LimitReachedError:
        raise
    except Exception:
        return 0


def _declared_page_count(reader) -> int:
    """The page tree's /Count, read before the tree is walked; 0 when it is missing or not a number (the walk,
    bounded by pypdf's page-tree limit, then counts)."""
    try:
        count = reader.trailer["/Root"]["/Pages"]["/Count"]
        return int(count) if isinstance(count, (int, float)) else 0
    except Exception:  # a broken page tree: pypdf's recovery reads what it can
        return 0


def _pdf_title(reader, blocks: list[Block]) -> str:
    metadata = reader.metadata
    title = _collapse(str(metadata.title or "")) if metadata is not None else ""
    if title and not _FILE_LIKE_TITLE.search(title):
        return title
    return _first_heading(blocks, level=1)


def _pdf_page_lines(page, page_number: int, budget: Budget) -> list[_PdfLine]:
    """The page's text lines with the size, height and boldness of their type, from pypdf's text visitor.
    Operations and characters are counted into `budget` as pypdf reaches them."""
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

    def count(operator, operands, cm, tm) -> None:
        budget.add_elements()

    def visit(text, cm, tm, font_dict, font_size) -> None:
        budget.add_chars(len(text))
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

    page.extract_text(visitor_text=visit, visitor_operand_before=count)
    budget.check()  # pypdf swallows what a visitor raises inside a form XObject
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
