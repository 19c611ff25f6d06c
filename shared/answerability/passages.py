"""The passages of the sources, scored by how well each answers the question: what the gate measures and what the
extractive answerer quotes.

    source_text(document)     what an answerer is given of a retrieved document: its passages in document order,
                              without the sentences that give orders to an AI assistant, cut to SOURCE_CHARS
    PassageScorer.score(...)  every unit (sentence, list item, table row, code block, FAQ answer) of the first
                              SCORED_SOURCES sources, with
                                share       the weighted share of the question's terms it contains (its heading
                                            and the document's title count half; see terms.coverage)
                                similarity  the cosine similarity of the question and the unit, embedded with its
                                            document's title and section heading ("Refunds - How long: Refunds
                                            reach your card within 5-10 business days")
                                score       similarity + SHARE_WEIGHT * share

Lexical overlap alone misses paraphrases ("how long is a team invite good for" / "Invitations expire after 7 days")
and similarity alone misses the one word that matters ("student"); on the training questions the similarity found
the answering unit first more often than the share did, and the sum kept both. Units are embedded by the embedder
of the vector index (the same vector space as the question) through the embedding cache, so a passage is embedded
once per deployment, not once per question.
"""

from __future__ import annotations

import logging
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass

from shared.answerability.scope import is_instruction
from shared.answerability.terms import Term, coverage, stems

log = logging.getLogger(__name__)

SOURCE_CHARS = 4000
SCORED_SOURCES = 5  # the sources whose passages are scored: the gate measures them, the extractive answerer quotes
MAX_UNITS = 40  # embedded per question: the units sharing most with the question (a 4,000-character source has ~40)
SHARE_WEIGHT = 0.25
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Passage:
    source: int  # the source's number
    order: int  # the unit's position in the source (shared.llm.extractive.units)
    share: float
    similarity: float

    @property
    def score(self) -> float:
        return self.similarity + SHARE_WEIGHT * self.share


def source_text(document) -> str:
    """A retrieved document's passages as an answerer sees them (see the module doc)."""
    return without_instructions("\n\n".join(c.text for c in document.chunks))[:SOURCE_CHARS]


def without_instructions(text: str) -> str:
    """The text without its sentences addressed to an AI assistant ("Ignore previous instructions and ..."): a
    document is content, never instructions, and a synced page must not be able to speak to the model."""
    kept = []
    for line in text.split("\n"):
        if is_instruction(line):
            sentences = _SENTENCE.split(line)
            clean = [s for s in sentences if not is_instruction(s)]
            log.warning("removed %d sentence(s) addressed to an AI assistant from a source",
                        len(sentences) - len(clean))
            line = " ".join(clean)
        kept.append(line)
    return "\n".join(kept)


class PassageScorer:
    def __init__(self, embedder=None, cache=None):
        self._embedder = embedder  # None: similarity 0 (tests and tools without a model)
        self._cache = cache

    def score(self, question_vector: Sequence[float] | None, terms: Sequence[Term], sources: Sequence) -> list[Passage]:
        """The scored units of the first SCORED_SOURCES sources (shared.llm.types.Source), in source order; at most
        MAX_UNITS of them, those with the largest share (embedding every unit of three long pages costs more than
        the rest of the turn)."""
        from shared.llm.extractive import units

        found = []
        for source in list(sources)[:SCORED_SOURCES]:
            title = stems(source.title)
            for unit in units(source.text):
                if not is_instruction(unit.own_text):
                    found.append((source, unit, coverage(terms, stems(unit.own_text), stems(unit.heading) | title)))
        if len(found) > MAX_UNITS:  # keep the units that share most with the question, in source order
            kept = sorted(range(len(found)), key=lambda i: (-found[i][2], i))[:MAX_UNITS]
            found = [found[i] for i in sorted(kept)]
        similarities = self._similarities(question_vector, [_in_context(s, u) for s, u, _ in found])
        return [Passage(source.number, unit.order, share, similarity)
                for (source, unit, share), similarity in zip(found, similarities)]

    def _similarities(self, question_vector, texts: list[str]) -> list[float]:
        if self._embedder is None or question_vector is None or not texts:
            return [0.0] * len(texts)
        vectors = self._embedder.embed_documents(texts, cache=self._cache).vectors
        return [sum(map(operator.mul, question_vector, vector)) for vector in vectors]


def _in_context(source, unit) -> str:
    """The unit as it is embedded: after its title and heading, a table row as "header: cell" pairs."""
    context = " - ".join(part for part in (source.title.strip(), unit.heading.strip()) if part)
    text = _row_as_pairs(unit.text) if unit.kind == "table" else unit.text
    return f"{context}: {text}" if context else text


def _row_as_pairs(table: str) -> str:
    """"| Code | Meaning |\n|---|---|\n| `BW-4012` | Timed out |" -> "Code: BW-4012; Meaning: Timed out"."""
    lines = table.splitlines()
    if len(lines) < 3:
        return table
    header, row = (_cells(line) for line in (lines[0], lines[-1]))
    if len(header) != len(row):
        return table
    return "; ".join(f"{name}: {value}" for name, value in zip(header, row) if value)


def _cells(line: str) -> list[str]:
    return [cell.strip().strip("`*") for cell in line.strip().strip("|").split("|")]
