"""Bounds on what a file may expand to while it is parsed, so that a small hostile upload fails fast, in bounded
memory, instead of costing an instance.

    bound (setting)                      checked, as early and as cheaply as possible
    expanded bytes (MAX_EXPANDED_BYTES)  DOCX: the zip directory's uncompressed sizes (in total, per XML part, and
                                         each member's compression ratio) before anything is decompressed, then
                                         each member inflated in pieces against its declared size;
                                         PDF: each content stream's decoded size (pypdf's own limits) and the
                                         decoded page contents together, page by page
    pages (MAX_PDF_PAGES)                the page tree's declared /Count, then the tree as it is walked
    elements (MAX_DOCUMENT_ELEMENTS)     DOCX paragraphs and table cells, HTML tags (in Markdown too), Markdown
                                         and text lines, Markdown syntax tokens, CSV rows, JSON values, PDF text
                                         operations, blocks: counted before the slow part of a parser wherever a
                                         cheap count exists, else while reading
    characters (MAX_DOCUMENT_CHARS)      the decoded text of text formats before parsing; PDF and DOCX text while
                                         it is extracted; every document's blocks after parsing

Beyond a bound a parser raises `DocumentTooLarge`, whose message names the bound and the setting and tells the
editor to split the file. The chunk count (MAX_CHUNKS_PER_DOCUMENT) is checked by ingest after parsing.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import dataclass

from shared.errors import CorruptFile, DocumentTooLarge

# A zip member that inflates more than this many times over is a zip bomb, not an office document: Word's XML parts
# compress about 10-30:1, python-docx's output for a long table of identical cells about 200:1, and deflate cannot
# exceed about 1,030:1 (the 300 MB bomb: 1,011:1). Small members (under 1 MiB inflated) are not checked.
MAX_COMPRESSION_RATIO = 500
_RATIO_CHECKED_ABOVE = 1 << 20
# An FAQ sheet is two or three levels deep; JSON nested deeper than this is not one.
MAX_JSON_DEPTH = 32
_PIECE = 64 * 1024
_SPLIT = "split it into smaller files"


@dataclass(frozen=True)
class ParseLimits:
    """What one file may expand to. The defaults are the settings' defaults (shared/config.py)."""

    max_chars: int = 4_000_000
    max_elements: int = 100_000
    max_expanded_bytes: int = 100 * 1024 * 1024
    max_pages: int = 2_000

    @classmethod
    def from_settings(cls, settings) -> ParseLimits:
        return cls(max_chars=settings.max_document_chars, max_elements=settings.max_document_elements,
                   max_expanded_bytes=settings.max_expanded_bytes, max_pages=settings.max_pdf_pages)

    @property
    def max_xml_part_bytes(self) -> int:
        """A DOCX XML part becomes an lxml tree several times its size in memory: each gets a quarter of the
        expanded-bytes bound."""
        return self.max_expanded_bytes // 4

    def too_many_chars(self, what: str, chars: int | None = None) -> DocumentTooLarge:
        amount = f"{chars:,} characters of text" if chars is not None else \
            f"more than {self.max_chars:,} characters of text"
        return DocumentTooLarge(f"{what} has {amount}; the limit is {self.max_chars:,} (MAX_DOCUMENT_CHARS): {_SPLIT}")

    def too_many_elements(self, what: str, kind: str, count: int | None = None, scale: int = 1) -> DocumentTooLarge:
        limit = self.max_elements * scale
        amount = f"{count:,}" if count is not None else f"more than {limit:,}"
        setting = "MAX_DOCUMENT_ELEMENTS" if scale == 1 else f"{scale} x MAX_DOCUMENT_ELEMENTS"
        return DocumentTooLarge(f"{what} has {amount} {kind}; the limit is {limit:,} ({setting}): {_SPLIT}")

    def too_many_pages(self, pages: int | None = None) -> DocumentTooLarge:
        amount = f"{pages:,}" if pages is not None else f"more than {self.max_pages:,}"
        return DocumentTooLarge(f"the PDF has {amount} pages; the limit is {self.max_pages:,} (MAX_PDF_PAGES): "
                                f"{_SPLIT}")

    def too_many_bytes(self, what: str, size: int | None = None, how: str = "") -> DocumentTooLarge:
        amount = f"{size:,} bytes" if size is not None else f"more than {self.max_expanded_bytes:,} bytes"
        return DocumentTooLarge(f"{what} expands to {amount}{how}; the limit is {self.max_expanded_bytes:,} "
                                f"(MAX_EXPANDED_BYTES): {_SPLIT}")


class Budget:
    """Counts what a parser has produced so far and raises `DocumentTooLarge` the moment a bound is passed.

    The first overrun is also kept (`exceeded`) and raised again by `check()`: a library that swallows exceptions
    raised from its callbacks (pypdf does, inside form XObjects) cannot make the parser forget it.
    """

    def __init__(self, limits: ParseLimits, what: str, kind: str = "elements", scale: int = 1):
        """`kind` names what add_elements counts; `scale`: how many of them one element of the limit stands for
        (Markdown tokens are lighter than an HTML tag, two to an element)."""
        self.limits = limits
        self.what = what
        self.kind = kind
        self.scale = scale
        self.chars = 0
        self.elements = 0
        self.exceeded: DocumentTooLarge | None = None

    def add_chars(self, count: int) -> None:
        self.chars += count
        if self.chars > self.limits.max_chars:
            self._raise(self.limits.too_many_chars(self.what))

    def add_elements(self, count: int = 1) -> None:
        self.elements += count
        if self.elements > self.limits.max_elements * self.scale:
            self._raise(self.limits.too_many_elements(self.what, self.kind, scale=self.scale))

    def fail(self, error: DocumentTooLarge) -> None:
        self._raise(error)

    def check(self) -> None:
        if self.exceeded is not None:
            raise self.exceeded

    def _raise(self, error: DocumentTooLarge) -> None:
        if self.exceeded is None:
            self.exceeded = error
        raise self.exceeded


def check_text_size(text: str, limits: ParseLimits, what: str, kind: str = "lines") -> None:
    """A text format's decoded characters and lines, counted before any parsing (both are C-speed counts)."""
    if len(text) > limits.max_chars:
        raise limits.too_many_chars(what, len(text))
    lines = text.count("\n") + 1
    if lines > limits.max_elements:
        raise limits.too_many_elements(what, kind, lines)


def check_zip_directory(data: bytes, limits: ParseLimits, what: str = "the DOCX file") -> None:
    """Refuse a zip archive by what its central directory says it inflates to, before anything is decompressed;
    then make sure no member inflates beyond what the directory declares.

    The second step matters because the directory can lie: asked for a whole member (as python-docx asks), Python's
    zipfile inflates all the compressed data there is and only then cuts it to the declared size and finds the CRC
    wrong, so a 150 KB member declared as 2 KB still cost 130 MB of memory. Here each member is inflated in 64 KB
    pieces and counted, which costs a little CPU (~0.2 s per 100 MB) and no memory.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            if len(members) > limits.max_elements:
                raise limits.too_many_elements(what, "zip members", len(members))
            _check_declared_sizes(members, limits, what)
            for member in members:
                _check_inflated_size(archive, member, what)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, NotImplementedError, ValueError, EOFError,
            OSError) as exc:
        raise CorruptFile(f"{what} is damaged or truncated (its zip archive cannot be read)") from exc


def _check_declared_sizes(members: list[zipfile.ZipInfo], limits: ParseLimits, what: str) -> None:
    total = 0
    for member in members:
        size = member.file_size
        total += size
        if size > _RATIO_CHECKED_ABOVE and size > MAX_COMPRESSION_RATIO * max(member.compress_size, 1):
            ratio = size // max(member.compress_size, 1)
            raise DocumentTooLarge(
                f"{what} part {member.filename} inflates {ratio:,} times over ({size:,} bytes from "
                f"{member.compress_size:,}); more than {MAX_COMPRESSION_RATIO}:1 is refused as a zip bomb. "
                "Save the document again from your editor, or split it into smaller files")
        if member.filename.lower().endswith((".xml", ".rels")) and size > limits.max_xml_part_bytes:
            raise DocumentTooLarge(
                f"{what} part {member.filename} is {size:,} bytes of XML once unzipped; the limit is "
                f"{limits.max_xml_part_bytes:,} (a quarter of MAX_EXPANDED_BYTES): {_SPLIT}")
    if total > limits.max_expanded_bytes:
        raise limits.too_many_bytes(what, total, " once unzipped")


def _check_inflated_size(archive: zipfile.ZipFile, member: zipfile.ZipInfo, what: str) -> None:
    inflated = 0
    with archive.open(member) as stream:
        while piece := stream.read(_PIECE):
            inflated += len(piece)
            if inflated > member.file_size:
                break
    # zipfile cuts a member at its declared size and then finds the CRC wrong (BadZipFile, raised by the read
    # above); a member shorter than declared is caught here.
    if inflated != member.file_size:
        raise CorruptFile(f"{what} is damaged: part {member.filename} does not match its zip directory entry")
