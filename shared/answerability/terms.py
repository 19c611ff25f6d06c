"""A question's salient terms, weighted by how rare they are in the knowledge base, and how much of them a text covers.

    question_terms(question, frequencies)   the terms that carry the question's content: words that are not stop
                                            words, generic verbs, pronouns or the frame of a question ("how long",
                                            "how much"), each with its weight (inverse document frequency in the
                                            tenant's chunks), whether the knowledge base knows it, whether it is
                                            written like a name or code
    stems(text)                             the Snowball English stems of a text's content words
    coverage(terms, text_stems, ...)        the weighted share of the terms a text contains (0..1)

Words are matched by their Snowball English stem ("connecting", "connection" -> "connect"), the stemmer of
PostgreSQL's `english` configuration, so a term the full-text index knows is one a passage is matched on. Weights
use the full-text statistics the keyword leg keeps (`KeywordSearch.term_frequencies`): a word in half the chunks
("brightwave", "booking") weighs little, one in a single chunk a lot, one the knowledge base never mentions the most.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from shared.retrieval.hybrid import find_identifiers
from shared.text import ANAPHORS, GENERIC_VERBS, STOP_WORDS, words

# Words that frame a support question rather than say what it is about: the rewriter's generic verbs and more.
GENERIC = GENERIC_VERBS | frozenset(
    """using possible someone anyone somebody work works working please question questions happen happens
    wondering wonder ask asking try trying take takes taking took offer offers provide provides""".split()
)
# After "how": "how long", "how much", "how many", "how often" ask for a quantity; the word names no topic.
_QUANTITY = frozenset({"long", "much", "many", "often", "soon", "far", "quickly", "fast"})
# A capitalised word inside a sentence (also before a possessive: "Calendly's"), and iCloud, CamelCase or ALLCAPS.
_WRITTEN_AS_NAME = re.compile(r"(?<![.!?:]\s)(?<!^)\b[A-Z][a-z0-9]+\b|\b[a-z]+[A-Z]\w*|\b[A-Z]{2,}\b")


@dataclass(frozen=True)
class Term:
    word: str  # lower-cased, as written
    stem: str  # Snowball English stem: what texts are matched on
    weight: float  # inverse document frequency in the knowledge base
    known: bool  # some chunk of the knowledge base contains it
    name: bool  # a name, a code or a word rare in English (Salesforce, SSO, BW-4012, zapier, waitlist)


@functools.cache
def common_words() -> frozenset[str]:
    """Common English words (common_words.txt: whole words of a WordPiece vocabulary)."""
    path = Path(__file__).with_name("common_words.txt")
    return frozenset(line.strip() for line in path.read_text().splitlines() if line and not line.startswith("#"))


def is_name(word: str, written_as_name: bool) -> bool:
    """Whether a word names something specific: written like a name or code in the question, or a word of letters
    that general English rarely uses (brands, products, jargon: "zapier", "hipaa", "waitlist")."""
    if written_as_name:
        return True
    common = common_words()
    return word.isalpha() and not (word in common or stem(word) in common or word.removesuffix("s") in common)


@functools.cache
def _stemmer():
    import snowballstemmer

    return snowballstemmer.stemmer("english")


@functools.lru_cache(maxsize=50_000)
def stem(word: str) -> str:
    return _stemmer().stemWord(word.replace("'", ""))


def stems(text: str) -> set[str]:
    """The stems of the content words of `text` (numbers kept: "30", "4012")."""
    return {stem(word) for word in words(text) if word not in STOP_WORDS}


def idf(df: int, chunks: int) -> float:
    """BM25's inverse document frequency; a word no chunk contains gets the largest weight (df 0)."""
    return math.log(1 + (chunks - df + 0.5) / (df + 0.5))


def question_terms(question: str, frequencies: Callable[[str], tuple[int, dict[str, int]]] | None) -> list[Term]:
    """The question's salient terms, each once, in order. `frequencies(question)` returns (chunks in the knowledge
    base, {lower-cased word: chunks containing it}); without it (no knowledge base at hand) every word weighs 1 and
    counts as known."""
    tokens = [word.removesuffix("'s") for word in words(question)]
    names = {w.lower() for text, _ in find_identifiers(question) for w in words(text)}
    names |= {match.group(0).lower() for match in _WRITTEN_AS_NAME.finditer(question.strip())}
    chunks, df = frequencies(question) if frequencies is not None else (0, {})
    terms: dict[str, Term] = {}
    for index, word in enumerate(tokens):
        if word in STOP_WORDS or word in GENERIC or word in ANAPHORS or len(word) < 2 and not word.isdigit():
            continue
        if word in _QUANTITY and index > 0 and tokens[index - 1] == "how":
            continue
        if word.isdigit() and len(word) < 2:
            continue
        key = stem(word)
        if key in terms:
            continue
        if frequencies is None:
            terms[key] = Term(word, key, 1.0, True, is_name(word, word in names))
        else:
            count = df.get(word, 0)
            terms[key] = Term(word, key, idf(count, max(chunks, 1)), count > 0, is_name(word, word in names))
    return list(terms.values())


def coverage(terms: Sequence[Term], text_stems: set[str], context_stems: Iterable[str] = ()) -> float:
    """The weighted share of `terms` whose stem `text_stems` contains; a term only the text's context has (its
    section heading, its document's title) counts half."""
    total = sum(t.weight for t in terms)
    if not total:
        return 0.0
    context = set(context_stems)
    got = sum(t.weight if t.stem in text_stems else 0.5 * t.weight if t.stem in context else 0.0 for t in terms)
    return got / total
