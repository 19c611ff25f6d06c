"""Structure-aware chunking: a ParsedDocument's blocks become ChunkDrafts that fit the embedding model's window.

    chunk_document(document, max_tokens=256, overlap_tokens=32) -> [ChunkDraft]

How a document is cut:
- Sections. Every heading opens a section; a chunk carries its section's heading path (title, H1, H2, ...) as
  context and its body as text, and never mixes two sections of the same or a higher level. A heading equal to the
  one before it (the usual H1 repeating the title) appears once in the path.
- Packing. A section's blocks are packed in order up to `max_tokens`, counting the heading path too, since the
  embedded text is path + body.
- Tiny sections. A chunk still under a quarter of `max_tokens` when a *subsection* of its section starts takes the
  subsection in, with the subsection's heading inline as a Markdown heading, rather than leaving a one-sentence
  chunk behind. The chunk keeps the parent's path, which is true of everything in it. A heading at the same or a
  higher level always starts a new chunk.
- Atomic blocks. Code and tables are never cut unless one alone is too big: code then splits on line boundaries
  (each part fenced again), tables on row boundaries with the header row repeated in each part. A paragraph too big
  splits at sentence boundaries, then words; a list between items.
- Overlap. A chunk that continues the section of the chunk before starts with up to `overlap_tokens` of that
  chunk's trailing prose (whole sentences or list items when possible). There is none across sections, none after
  code or tables, none inside FAQ answers.
- FAQ blocks. One chunk per question/answer pair: path (title, [category,] question), text = the answer; an
  over-long answer splits into several chunks with the same path.

Deterministic, and linear in the document's length: token counts are computed once per piece and added up, which
never undercounts (see tokens.py); each finished chunk is then counted exactly once more for its `token_count`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

from shared.ingest.tokens import count_tokens, split_sentences, split_to_tokens
from shared.models import Block, ChunkDraft, ParsedDocument

MIN_MAX_TOKENS = 16
_PATH_SEPARATOR = " > "  # as ChunkDraft.embedding_text joins the path
_TINY_FRACTION = 4  # a chunk under max_tokens / 4 may take in a following subsection
_PROSE = ("paragraph", "list")


def chunk_document(document: ParsedDocument, max_tokens: int = 256, overlap_tokens: int = 32) -> list[ChunkDraft]:
    """Cut a parsed document into ordered chunks whose embedding text (path + body) is at most max_tokens.

    Raises ValueError for limits that leave no room for text (max_tokens < 16, negative overlap, or an overlap
    that is not smaller than max_tokens).
    """
    if max_tokens < MIN_MAX_TOKENS:
        raise ValueError(f"max_tokens must be at least {MIN_MAX_TOKENS}")
    if not 0 <= overlap_tokens < max_tokens:
        raise ValueError("overlap_tokens must be between 0 and max_tokens - 1")
    packer = _Packer(max_tokens, overlap_tokens)
    for section in _sections(document):
        packer.add_section(section)
    return packer.finish()


# --------------------------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------------------------


@dataclass
class _Section:
    id: int
    path: tuple[str, ...]
    level: int  # heading level; 0 for the text before the first heading
    heading: str
    ancestors: frozenset[int]
    blocks: list[Block] = field(default_factory=list)


def _sections(document: ParsedDocument) -> list[_Section]:
    """Split the blocks at headings; each section knows its heading path and its enclosing sections."""
    title = _clean(document.title)
    root = _Section(0, _dedupe((title,)), 0, "", frozenset())
    sections = [root]
    stack: list[_Section] = []  # open headings, outermost first
    for block in document.blocks:
        if block.kind != "heading":
            (stack[-1] if stack else root).blocks.append(block)
            continue
        heading = _clean(block.text)
        if not heading:
            continue
        level = min(max(block.level, 1), 6)
        while stack and stack[-1].level >= level:
            stack.pop()
        path = _dedupe((title, *(s.heading for s in stack), heading))
        ancestors = frozenset([0, *(s.id for s in stack)])
        section = _Section(len(sections), path, level, heading, ancestors)
        sections.append(section)
        stack.append(section)
    return sections


def _clean(text: str) -> str:
    return " ".join(text.split())


def _dedupe(path: tuple[str, ...]) -> tuple[str, ...]:
    """Drop empty entries and an entry equal to the one before it (the H1 that repeats the title)."""
    kept: list[str] = []
    for part in path:
        if part and (not kept or kept[-1].casefold() != part.casefold()):
            kept.append(part)
    return tuple(kept)


def _path_tokens(path: tuple[str, ...] | list[str]) -> int:
    return count_tokens(_PATH_SEPARATOR.join(path)) if path else 0


def _fit_path(path: tuple[str, ...], max_tokens: int) -> tuple[str, ...]:
    """Keep a heading path to at most half the window: drop middle headings, then shorten the rest."""
    limit = max_tokens // 2
    if _path_tokens(path) <= limit:
        return path
    parts = list(path)
    while len(parts) > 2 and _path_tokens(parts) > limit:
        del parts[1]  # keep the title and the innermost heading, the most telling context
    if _path_tokens(parts) > limit:
        # Each separator costs one token; share what is left between the parts.
        share = max(1, (limit - (len(parts) - 1)) // len(parts))
        parts = [split_to_tokens(part, share)[0] for part in parts]
    return tuple(parts)


# --------------------------------------------------------------------------------------------------------------
# Units: pieces of blocks that each fit a chunk
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Unit:
    text: str
    tokens: int
    kind: str  # a block kind, "heading" for an inline subsection heading, or "overlap"
    section: int
    block: int  # index of the source block within the document, to recognise continuations


def _block_units(block: Block, budget: int, prose_budget: int, section: int, index: int) -> list[_Unit]:
    """A block as one unit when it fits `budget`, else as pieces. Prose pieces are cut to `prose_budget`, leaving
    room for the overlap the next chunk starts with."""
    whole = _fenced(block.text, block.info) if block.kind == "code" else block.text
    tokens = count_tokens(whole)  # the common case counts a block once
    if tokens <= budget:
        parts = [(whole, tokens)]
    else:
        if block.kind == "code":
            texts = _code_parts(block, budget)
        elif block.kind == "table":
            texts = _table_parts(block.text, budget)
        elif block.kind == "list":
            texts = _list_parts(block.text, prose_budget)
        else:
            texts = split_to_tokens(block.text, prose_budget)
        parts = [(text, count_tokens(text)) for text in texts]
    return [_Unit(text, tokens, block.kind, section, index) for text, tokens in parts if text.strip()]


def _fenced(code: str, language: str) -> str:
    return f"```{language}\n{code}\n```"


def _code_parts(block: Block, budget: int) -> list[str]:
    """An oversized code block cut between lines, each part fenced again (unless the window is too small to
    afford fences)."""
    fence_tokens = count_tokens(_fenced("", block.info))
    fenced = fence_tokens <= budget // 2
    line_budget = budget - fence_tokens if fenced else budget
    lines: list[str] = []
    for line in block.text.split("\n"):
        # A single line longer than a chunk (minified code, a key) is the only thing cut inside a line.
        lines.extend([line] if count_tokens(line) <= line_budget else split_to_tokens(line, line_budget))
    parts = _pack_lines(lines, line_budget)
    return [_fenced(part, block.info) for part in parts] if fenced else parts


def _table_parts(table: str, budget: int) -> list[str]:
    """An oversized table cut between rows, the header row repeated in each part."""
    lines = table.split("\n")
    header, rows = lines[:2], lines[2:]
    header_tokens = count_tokens("\n".join(header))
    if len(header) < 2 or header_tokens > budget // 2:
        # A header too big to repeat: fall back to plain row packing rather than starving every part.
        header, header_tokens = [], 0
        rows = lines
    row_budget = budget - header_tokens
    pieces: list[str] = []
    for row in rows:
        pieces.extend([row] if count_tokens(row) <= row_budget else split_to_tokens(row, row_budget))
    return ["\n".join([*header, part]) for part in _pack_lines(pieces, row_budget)]


def _list_parts(text: str, budget: int) -> list[str]:
    """Split a list between top-level items (an item keeps its nested lines), then inside items if need be."""
    items: list[str] = []
    for line in text.split("\n"):
        if items and line.startswith(" "):
            items[-1] += "\n" + line
        else:
            items.append(line)
    pieces: list[str] = []
    for item in items:
        if count_tokens(item) <= budget:
            pieces.append(item)
        else:
            pieces.extend(line for sub in item.split("\n") for line in
                          ([sub] if count_tokens(sub) <= budget else split_to_tokens(sub, budget)))
    return _pack_lines(pieces, budget)


def _pack_lines(lines: list[str], budget: int) -> list[str]:
    """Greedily join lines with newlines into parts of at most `budget` tokens (counts add up, never undercount)."""
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for line in lines:
        tokens = count_tokens(line)
        if current and used + tokens > budget:
            parts.append("\n".join(current))
            current, used = [], 0
        current.append(line)
        used += tokens
    if current:
        parts.append("\n".join(current))
    return parts


def _overlap(unit: _Unit, limit: int) -> str:
    """Up to `limit` tokens of the end of a prose unit: whole sentences (or list lines), else trailing words."""
    if limit <= 0 or unit.kind not in _PROSE:
        return ""
    segments = unit.text.split("\n") if unit.kind == "list" else split_sentences(unit.text)
    taken: list[str] = []
    used = 0
    for segment in reversed(segments):
        tokens = count_tokens(segment)
        if used + tokens > limit:
            break
        taken.append(segment)
        used += tokens
    if taken:
        return ("\n" if unit.kind == "list" else " ").join(reversed(taken))
    words: list[str] = []
    for word in reversed(segments[-1].split() if segments else []):
        tokens = count_tokens(word)
        if used + tokens > limit:
            break
        words.append(word)
        used += tokens
    return " ".join(reversed(words))


# --------------------------------------------------------------------------------------------------------------
# Packing units into chunks
# --------------------------------------------------------------------------------------------------------------


class _Packer:
    """Packs units into chunks section by section; owns the open chunk and the finished ones."""

    def __init__(self, max_tokens: int, overlap_tokens: int) -> None:
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens
        self.chunks: list[ChunkDraft] = []
        self.block_index = 0
        # The open chunk.
        self.section: _Section | None = None
        self.path: tuple[str, ...] = ()
        self.budget = 0
        self.units: list[_Unit] = []
        self.used = 0
        self.pending: list[_Unit] = []  # inline headings of subsections the open chunk is taking in
        self.last: _Unit | None = None  # the previous chunk's last unit, source of the overlap

    def add_section(self, section: _Section) -> None:
        path = _fit_path(section.path, self.max_tokens)
        budget = self.max_tokens - _path_tokens(path)
        prose_budget = max(budget - self.overlap_tokens, budget // 2)
        heading = self._absorbable_heading(section)
        if heading is None:
            self._flush()
        else:
            # Kept until the subsection's first unit shows whether it fits; an empty subsection passes its
            # heading on to its own first subsection.
            self.pending.append(heading)
        for block in section.blocks:
            index = self.block_index
            self.block_index += 1
            if block.kind == "faq":
                self._flush()
                self._add_faq(block, path)
                continue
            for unit in _block_units(block, budget, prose_budget, section.id, index):
                if self.pending and self._fits(*self.pending, unit):
                    for pending in self.pending:
                        self._append(pending)
                elif self.pending or not self._fits(unit):
                    self._flush()
                    self._open(section, path, budget, unit)
                self.pending = []
                self._append(unit)

    def finish(self) -> list[ChunkDraft]:
        self._flush()
        return self.chunks

    def _absorbable_heading(self, section: _Section) -> _Unit | None:
        """The inline heading to add when the open, still tiny chunk may take this subsection in; else None."""
        if (self.section is None or not self.units or self.section.id not in section.ancestors
                or self.used >= self.max_tokens // _TINY_FRACTION):
            return None
        text = "#" * section.level + " " + section.heading
        return _Unit(text, count_tokens(text), "heading", section.id, -1)

    def _fits(self, *units: _Unit) -> bool:
        return bool(self.units) and self.used + sum(u.tokens for u in units) <= self.budget

    def _open(self, section: _Section, path: tuple[str, ...], budget: int, first: _Unit) -> None:
        """Start a chunk for `first`; continuing the previous chunk's section, begin with its trailing prose."""
        self.section, self.path, self.budget = section, path, budget
        last = self.last
        if last is not None and last.section == first.section:
            overlap = _overlap(last, min(self.overlap_tokens, budget - first.tokens))
            if overlap:
                self._append(_Unit(overlap, count_tokens(overlap), "overlap", last.section, last.block))

    def _append(self, unit: _Unit) -> None:
        self.units.append(unit)
        self.used += unit.tokens

    def _flush(self) -> None:
        if self.units:
            content = [u for u in self.units if u.kind != "overlap"]
            self._emit(self.path, _join(self.units))
            self.last = content[-1] if content else None
        self.units, self.used, self.section, self.pending = [], 0, None, []

    def _add_faq(self, block: Block, section_path: tuple[str, ...]) -> None:
        path = _fit_path(_dedupe((*section_path, _clean(block.info))), self.max_tokens)
        budget = self.max_tokens - _path_tokens(path)
        for part in split_to_tokens(block.text, budget) if count_tokens(block.text) > budget else [block.text]:
            self._emit(path, part)
        self.last = None  # no overlap out of an answer

    def _emit(self, path: tuple[str, ...], text: str) -> None:
        text = text.strip()
        if not text:
            return
        draft = ChunkDraft(ordinal=len(self.chunks), heading_path=path, text=text, token_count=0)
        self.chunks.append(replace(draft, token_count=count_tokens(draft.embedding_text)))


def _join(units: list[_Unit]) -> str:
    """Units joined by blank lines; an overlap running on into the rest of its own block is joined as that block
    would be (a space inside a paragraph, a newline inside a list)."""
    parts = [units[0].text]
    for previous, unit in itertools.pairwise(units):
        continues = previous.kind == "overlap" and previous.block == unit.block
        parts.append(("\n" if unit.kind == "list" else " ") if continues else "\n\n")
        parts.append(unit.text)
    return "".join(parts)
