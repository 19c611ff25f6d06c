"""Text helpers the format parsers share: decoding, cleaning, whitespace, titles, pipe tables, list lines, short
reasons."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import PurePosixPath

from shared.errors import CorruptFile
from shared.models import Block

try:  # lxml is faster and more forgiving than the standard library's parser; python-docx brings it along
    import lxml  # noqa: F401 - only whether it is installed matters

    _HTML_PARSER = "lxml"
except ImportError:  # pragma: no cover
    _HTML_PARSER = "html.parser"


_SPACE = re.compile(r"\s+")


_ACRONYMS = {w.lower(): w for w in ("FAQ", "FAQs", "API", "PDF", "SSO", "URL", "HTML", "CSV", "SMS", "2FA", "SAML")}

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


def title_from_filename(filename: str) -> str:
    """A readable title from a file name: "billing/refund-policy.md" -> "Refund policy", "faq.csv" -> "FAQ"."""
    stem = PurePosixPath(filename.replace("\\", "/")).stem
    words = re.sub(r"[-_.\s]+", " ", stem).strip().split()
    if not words:
        return "Untitled"
    words = [_ACRONYMS.get(word.lower(), word) for word in words]
    title = " ".join(words)
    return title[:1].upper() + title[1:]


# What PostgreSQL or Firestore cannot store, or is not text at all: NUL (refused in `text` and as `\u0000` in jsonb),
# lone UTF-16 surrogates (valid in JSON as "\ud800", but no UTF-8 encoding exists, so pg8000 and Firestore's client
# cannot even send them), and the other C0 control characters and DEL (binary debris; vertical tab and form feed are
# line breaks in Word and pdftotext output). Tab, newline and carriage return stay.
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_LINE_BREAKS = frozenset("\x0b\x0c")
MAX_TITLE_CHARS = 300


def clean_text(text: str) -> str:
    """Text that PostgreSQL (text, jsonb, tsvector) and Firestore accept: NUL and other control characters dropped
    (vertical tab and form feed become newlines), each lone surrogate replaced by U+FFFD. Fast when clean."""
    if not _UNSTORABLE.search(text):
        return text
    return _UNSTORABLE.sub(_replacement, text)


def _replacement(match: re.Match) -> str:
    char = match.group()
    if "\ud800" <= char <= "\udfff":
        return "\ufffd"
    return "\n" if char in _LINE_BREAKS else ""


def clean_title(title: str) -> str:
    """A title as it is stored and cited: clean text on one line, at most MAX_TITLE_CHARS (cut at a word, with an
    ellipsis). Every chunk carries its document's title, so an unbounded one would swell every row."""
    title = _collapse(clean_text(title))
    if len(title) <= MAX_TITLE_CHARS:
        return title
    cut = title[: MAX_TITLE_CHARS - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space >= MAX_TITLE_CHARS // 2 else cut).rstrip() + "…"


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

def _first_heading(blocks: Iterable[Block], level: int) -> str:
    return next((b.text for b in blocks if b.kind == "heading" and b.level == level), "")
