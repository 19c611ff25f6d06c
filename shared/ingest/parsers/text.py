"""Plain text: paragraphs by blank lines, list items kept as lists, underlined or ALL-CAPS headings.
Also the fallback layout for PDF pages."""

from __future__ import annotations

import re

from shared.ingest.parsers.common import _collapse, _list_line, decode_text
from shared.ingest.parsers.limits import ParseLimits, check_text_size
from shared.models import Block, ParsedDocument

_LIST_ITEM = re.compile(r"^(\s*)(?:([-*+•‣◦▪●○■–])|(\d{1,3})[.)])\s+(\S.*)$")
_UNDERLINE = re.compile(r"^\s*(={3,}|-{3,})\s*$")
_RULE = re.compile(r"^\s*([-=*_~#])\1{2,}\s*$")
_SENTENCE_END = re.compile(r"[.!?:;)\"'”’]$")


def parse(data: bytes, filename: str, limits: ParseLimits = ParseLimits()) -> ParsedDocument:
    text = decode_text(data)
    check_text_size(text, limits, "the text file")
    blocks = plain_text_blocks(text)
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
