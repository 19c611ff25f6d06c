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
it becomes `UnsupportedFile`, `CorruptFile` or `EmptyDocument` with a short reason an editor can act on, or
`DocumentTooLarge` when the file expands beyond a bound of `ParseLimits` (see limits.py: each parser checks its own
as early as it can). Every parser's output then goes through one place, `_finish`: text cleaned of what PostgreSQL
and Firestore cannot store (`clean_text`), the title bounded (`clean_title`), the blocks and their characters counted.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from pathlib import PurePosixPath

from shared.errors import CorruptFile, DocumentRejected, EmptyDocument, UnsupportedFile
from shared.ingest.parsers.common import _short_reason, clean_text, clean_title, decode_text, title_from_filename
from shared.ingest.parsers.limits import ParseLimits
from shared.models import ParsedDocument

__all__ = ["ParseLimits", "clean_text", "clean_title", "decode_text", "detect_format", "parse_document",
           "title_from_filename"]


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
_DEFAULT_LIMITS = ParseLimits()


def parse_document(data: bytes, filename: str, content_type: str | None = None,
                   limits: ParseLimits = _DEFAULT_LIMITS) -> ParsedDocument:
    """Parse a file's bytes into a title and structural blocks of clean text.

    Raises UnsupportedFile for a format we do not read (or a sheet without question/answer fields), CorruptFile
    for a file that cannot be read, EmptyDocument for a file without text, DocumentTooLarge for a file that expands
    beyond `limits`. Never raises anything else for bad input.
    """
    fmt = detect_format(filename, content_type)
    if not data or not data.strip():
        raise EmptyDocument("the file is empty")
    try:
        document = _parser(fmt)(data, filename, limits)
    except DocumentRejected:
        raise
    except RecursionError as exc:
        raise CorruptFile(f"{_FORMAT_LABEL[fmt]} is nested too deeply to read") from exc
    except Exception as exc:  # a library choking on malformed input: the file is the problem, not us
        raise CorruptFile(f"{_FORMAT_LABEL[fmt]} could not be read ({_short_reason(exc)})") from exc
    return _finish(document, fmt, filename, limits)


def _finish(document: ParsedDocument, fmt: str, filename: str, limits: ParseLimits) -> ParsedDocument:
    """What every parser's output goes through: text cleaned (clean_text), empty blocks dropped, blocks and
    characters counted against the limits, the title cleaned and bounded (clean_title)."""
    what = f"the {_FORMAT_LABEL[fmt]}"
    if len(document.blocks) > limits.max_elements:
        raise limits.too_many_elements(what, "blocks", len(document.blocks))
    blocks, chars = [], 0
    for block in document.blocks:
        text, info = clean_text(block.text), clean_text(block.info)
        if not text.strip():
            continue
        chars += len(text) + len(info)
        blocks.append(block if text is block.text and info is block.info
                      else dataclasses.replace(block, text=text, info=info))
    if chars > limits.max_chars:
        raise limits.too_many_chars(what, chars)
    if not any(block.kind != "heading" for block in blocks):
        raise EmptyDocument(f"the {_FORMAT_LABEL[fmt]} has no text (besides headings, if any)")
    return ParsedDocument(title=clean_title(document.title) or title_from_filename(filename), blocks=blocks)


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


# format -> (module, function): a module is imported on first use, so an instance loads only the libraries of
# the formats it actually sees (pypdf, python-docx and BeautifulSoup are not small).
_PARSERS = {
    "markdown": ("markdown", "parse"),
    "html": ("html", "parse"),
    "text": ("text", "parse"),
    "pdf": ("pdf", "parse"),
    "docx": ("docx", "parse"),
    "csv": ("faq", "parse_csv"),
    "json": ("faq", "parse_json"),
}


def _parser(fmt: str) -> Callable[[bytes, str, ParseLimits], ParsedDocument]:
    module, function = _PARSERS[fmt]
    return getattr(importlib.import_module(f"shared.ingest.parsers.{module}"), function)
