"""The offline answerer: quotes the passages of the sources that answer the question, with citations, and says it
is quoting — or, when none does, that it does not know.

For deployments without a Gemini key. Deterministic: the same request always gives the same answer.

    Here is what our documentation says:

    From **Refunds**:
    You can ask for a refund within 30 days of purchase. Refunds reach your card within 5 business days. [1]

    From **Plans and pricing**:
    - Pro: 20 EUR per month [2]

How: each source's text is cut into units — sentences of paragraphs, list items, whole code blocks, table rows
(under their header) and FAQ answers (headings and front matter are left out) — and each unit is scored by the share
of the question's salient terms it contains, each term weighted by how rare it is in the knowledge base
(`AnswerRequest.terms`, from the answerability gate; without them every content word weighs 1), matched by stem; a
term only the unit's section heading or the document's title contains counts half (see shared.answerability.terms).
With the gate's scored passages (`AnswerRequest.passages`: similarity to the question plus a quarter of the share),
a unit answers when it scores at least MIN_SCORE and within MARGIN of the best unit; without them, when it covers at
least MIN_SHARE of the question and RELATIVE of what its source's best unit covers. The best answering unit of each
of the first `max_sources` sources that have one is taken (a lead-in ending in ":" with the block it leads into),
then the other answering units, best first, while they fit in `max_chars` of quoted text; within a source the units
keep their document order. A run of sentences from one paragraph, each list item and each code block or table is
followed by its source's `[n]`. A sentence that gives orders to an AI assistant ("Ignore previous instructions ...")
is never quoted. The answer streams a few words per piece.

No unit answers (or no sources): nothing is said and `Action("handoff", ...)` ends the turn; the chat service says it
does not know and offers a person.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from shared.answerability.scope import is_instruction
from shared.answerability.terms import coverage, question_terms, stems
from shared.llm.types import HANDOFF, Action, Answerer, AnswerRequest, Source

INTRO = "Here is what our documentation says:"
WORDS_PER_PIECE = 4
# With the gate's scored passages (score = similarity + 0.25 * share): a unit answers when it scores at least
# MIN_SCORE and within MARGIN of the best one.
MIN_SCORE = 0.35
MARGIN = 0.15
# Without them (no knowledge base at hand): a third of the question's term weight (a question may ask two things),
# and RELATIVE of the best unit of its source.
MIN_SHARE = 0.33
RELATIVE = 0.6

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[*_]?[A-Z0-9])")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")
_ORDERED = re.compile(r"^\s*\d{1,3}[.)]\s+")
_HEADING = re.compile(r"^#{1,6}\s")
_FENCE = re.compile(r"^\s*(```|~~~)")
_FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.DOTALL)
_PIECE = re.compile(r"\S+\s*")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}")


@dataclass(frozen=True)
class Unit:
    kind: str  # "sentence" | "item" | "code" | "table"
    text: str
    block: int  # which block of the source it comes from
    order: int  # position in the source
    heading: str = ""  # the heading of its section, if the text has one

    @property
    def own_text(self) -> str:
        """What the unit itself says: a table row without the header it carries."""
        return self.text.rsplit("\n", 1)[-1] if self.kind == "table" else self.text


@dataclass
class _Pick:
    source: Source
    units: list[Unit]


@dataclass
class _Candidate:
    """A source, its units, and those that answer the question, best first."""

    source: Source
    units: list[Unit]
    ranked: list[tuple[float, Unit]]

    @classmethod
    def of(cls, source: Source, scores) -> _Candidate:
        found = units(source.text)
        scored = [(score, unit) for unit in found
                  if not is_instruction(unit.own_text) and (score := scores(source, unit)) is not None]
        return cls(source, found, sorted(scored, key=lambda pair: (-pair[0], pair[1].order)))


@dataclass
class _Scoring:
    """How units are scored for one request: by the gate's scored passages when it has them, else by their share of
    the question's terms. `score(source, unit)` is None for a unit that is no candidate; `floor(best, source_best)`
    is the least score that answers, given the best unit's score overall and in its source."""

    passages: dict
    terms: list

    @classmethod
    def of(cls, request: AnswerRequest) -> _Scoring:
        if request.passages:
            return cls({(p.source, p.order): p.score for p in request.passages}, [])
        return cls({}, list(request.terms) or question_terms(f"{request.query} {request.question}", None))

    def score(self, source: Source, unit: Unit) -> float | None:
        if self.passages:
            return self.passages.get((source.number, unit.order))
        return unit_share(unit, self.terms, stems(source.title)) or None

    def floor(self, best: float, source_best: float) -> float:
        if self.passages:
            return max(MIN_SCORE, best - MARGIN)
        return max(MIN_SHARE, RELATIVE * source_best)


class ExtractiveAnswerer(Answerer):
    """Quotes the sentences, list items, code, table rows and FAQ answers of the sources that answer the question."""

    name = "extractive"

    def __init__(self, max_sources: int = 3, max_chars: int = 700):
        if max_sources < 1 or max_chars < 80:
            raise ValueError("max_sources must be at least 1 and max_chars at least 80")
        self.max_sources = max_sources
        self.max_chars = max_chars

    def answer(self, request: AnswerRequest) -> Iterator[str | Action]:
        """Yield the quoted answer a few words at a time, or only a hand-off when no passage answers."""
        sources = [s for s in request.sources if s.text.strip()]
        picks = self._select(sources, _Scoring.of(request)) if sources else []
        if not picks:
            yield Action(HANDOFF, "no passage of the documentation answers the question")
            return
        yield from _pieces(_render(picks))

    def _select(self, sources: list[Source], scoring: _Scoring) -> list[_Pick]:
        """The units to quote, per source in source order, each source's units in document order."""
        candidates = [_Candidate.of(source, scoring.score) for source in sources]
        best = max((c.ranked[0][0] for c in candidates if c.ranked), default=0.0)
        for candidate in candidates:
            if candidate.ranked:
                least = scoring.floor(best, candidate.ranked[0][0])
                candidate.ranked = [pair for pair in candidate.ranked if pair[0] >= least - 1e-9]
        candidates = [c for c in candidates if c.ranked][: self.max_sources]
        budget = self.max_chars
        chosen: dict[int, dict[int, Unit]] = {c.source.number: {} for c in candidates}

        def take(candidate: _Candidate, unit: Unit, clip: bool = False) -> bool:
            nonlocal budget
            taken = chosen[candidate.source.number]
            group = [u for u in _with_what_it_leads_into(unit, candidate.units) if u.order not in taken]
            cost = sum(len(u.text) + 1 for u in group)  # + 1: the space or line break that joins it
            if cost > budget and len(group) > 1 and unit.order not in taken:  # a whole list that does not fit
                group, cost = [unit], len(unit.text) + 1
            if cost > budget and clip and len(group) == 1:
                group = [_clipped(unit, budget - 1)]
                cost = len(group[0].text) + 1
            if not group or cost > budget:
                return False
            taken.update((u.order, u) for u in group)
            budget -= cost
            return True

        for index, candidate in enumerate(candidates):  # first the best unit of every source that fits
            for _, unit in candidate.ranked:
                if take(candidate, unit, clip=index == 0) or index == 0:
                    break
        rest = sorted(
            ((score, c.source.number, unit.order, c, unit) for c in candidates for score, unit in c.ranked),
            key=lambda item: (-item[0], item[1], item[2]),
        )
        for *_, candidate, unit in rest:  # then the other answering units, best first, while they fit
            take(candidate, unit)
        return [_Pick(c.source, [chosen[c.source.number][order] for order in sorted(chosen[c.source.number])])
                for c in candidates if chosen[c.source.number]]


def unit_share(unit: Unit, terms: Sequence, title_stems: set[str] = frozenset()) -> float:
    """The weighted share of the question's terms the unit contains (its heading and the title count half)."""
    return coverage(terms, stems(unit.own_text), stems(unit.heading) | title_stems)


def _with_what_it_leads_into(unit: Unit, units: list[Unit]) -> list[Unit]:
    """The unit, and when it is a lead-in ("You can request a refund if:") the block that follows it; a step of a
    numbered list brings the whole list and its lead-in (a procedure is answered by all of its steps)."""
    if unit.kind == "item" and _ORDERED.match(unit.text):
        steps = [u for u in units if u.block == unit.block]
        before = units[steps[0].order - 1] if steps[0].order > 0 else None
        return ([before] if before is not None and before.text.endswith(":") else []) + steps
    if not unit.text.endswith(":") or unit.order + 1 >= len(units):
        return [unit]
    following = units[unit.order + 1].block
    return [unit, *(u for u in units[unit.order + 1 :] if u.block == following)]


def units(text: str) -> list[Unit]:
    """Sentences, list items, code blocks and tables of a source's text, in order; headings left out."""
    units: list[Unit] = []
    block = 0
    heading = ""
    paragraph: list[str] = []
    item: list[str] = []
    code: list[str] | None = None
    table: list[str] = []

    def add(kind: str, content: str) -> None:
        content = content.strip()
        if content and all(u.text != content for u in units):  # overlapping passages repeat text
            units.append(Unit(kind, content, block, len(units), heading))

    def flush() -> None:
        nonlocal block
        if paragraph:
            for sentence in _SENTENCE_END.split(" ".join(line.strip() for line in paragraph)):
                add("sentence", sentence)
            paragraph.clear()
        if item:
            add("item", "\n".join(item))
            item.clear()
        if table:
            if len(table) > 3 and _TABLE_RULE.match(table[1]):
                for row in table[2:]:  # each row its own unit, under the header: the matching rows get quoted
                    add("table", "\n".join([table[0], table[1], row]))
            else:
                add("table", "\n".join(table))
            table.clear()
        block += 1

    for line in _FRONT_MATTER.sub("", text, count=1).splitlines():
        if code is not None:
            code.append(line)
            if _FENCE.match(line):
                add("code", "\n".join(code))
                code = None
                block += 1
            continue
        if _FENCE.match(line):
            flush()
            code = [line]
        elif not line.strip() or _HEADING.match(line):
            flush()
            if line.strip():
                heading = line.lstrip("#").strip()
        elif line.lstrip().startswith("|"):
            if not table:
                flush()
            table.append(line.rstrip())
        elif _LIST_ITEM.match(line):
            if paragraph or table:
                flush()
            if item:
                add("item", "\n".join(item))
                item.clear()
            item.append(line.rstrip())
        elif item and line.startswith((" ", "\t")):
            item.append(line.rstrip())  # an item's continuation line
        else:
            if item or table:
                flush()
            paragraph.append(line)
    if code is not None:  # an unclosed fence: close it so the quote renders
        add("code", "\n".join([*code, code[0].strip()[:3]]))
    flush()
    return units


def _clipped(unit: Unit, limit: int) -> Unit:
    """The unit cut to at most `limit` characters: at a word for prose, at a line (fence closed) for code."""
    if unit.kind == "code":
        lines = unit.text.splitlines()
        fence = lines[0].strip()[:3]
        kept = [lines[0]]
        for line in lines[1:-1]:
            if sum(len(k) + 1 for k in kept) + len(line) + 1 + len(fence) + 1 > limit:
                break
            kept.append(line)
        text = "\n".join([*kept, fence])
    else:
        text = unit.text[: limit - 1].rsplit(None, 1)[0].rstrip(" ,;:") + "…"
    return Unit(unit.kind, text, unit.block, unit.order)


def _render(picks: list[_Pick]) -> str:
    """The intro line, then per source its title and its quotes, each followed by [n]."""
    parts = [INTRO]
    for pick in picks:
        title = pick.source.title.strip() or pick.source.url or f"Source {pick.source.number}"
        parts.append(f"From **{title}**:\n" + _quotes(pick.units, f"[{pick.source.number}]"))
    return "\n\n".join(parts)


def _quotes(units: list[Unit], marker: str) -> str:
    """Runs of consecutive sentences joined as prose, list items one per line, code and tables as blocks; each
    followed by the marker (on a line of its own after a block, so the block still renders)."""
    quotes: list[tuple[str, str]] = []  # (kind, text)
    run: list[Unit] = []
    for unit in [*_merge_table_rows(units), None]:
        if unit is not None and unit.kind == "sentence" and (
            not run or (run[-1].block == unit.block and run[-1].order == unit.order - 1)
        ):
            run.append(unit)
            continue
        if run:
            quotes.append(("sentence", " ".join(u.text for u in run) + f" {marker}"))
            run = [unit] if unit is not None and unit.kind == "sentence" else []
            if run:
                continue
        if unit is None:
            break
        if unit.kind == "sentence":
            run = [unit]
        elif unit.kind == "item":
            quotes.append(("item", f"{unit.text} {marker}"))
        else:
            quotes.append((unit.kind, f"{unit.text}\n\n{marker}"))
    text = quotes[0][1]
    for (previous, _), (kind, quote) in zip(quotes, quotes[1:]):
        text += ("\n" if previous == kind == "item" else "\n\n") + quote
    return text


def _merge_table_rows(units: list[Unit]) -> list[Unit]:
    """Rows picked from one table (each carries the header) become one table again: the header once, then the rows."""
    merged: list[Unit] = []
    for unit in units:
        previous = merged[-1] if merged else None
        if (previous is not None and unit.kind == previous.kind == "table" and unit.block == previous.block
                and unit.text.split("\n", 2)[:2] == previous.text.split("\n", 2)[:2]):
            merged[-1] = Unit("table", previous.text + "\n" + unit.text.split("\n", 2)[2], unit.block,
                               unit.order, unit.heading)
        else:
            merged.append(unit)
    return merged


def _pieces(text: str) -> Iterator[str]:
    """The text in pieces of a few words (whitespace kept), so it streams like a model's answer."""
    words = _PIECE.findall(text)
    for start in range(0, len(words), WORDS_PER_PIECE):
        yield "".join(words[start : start + WORDS_PER_PIECE])
