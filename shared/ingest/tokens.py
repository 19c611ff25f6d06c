"""Token counting without a tokenizer: a fast, slightly conservative estimate of WordPiece/SentencePiece counts.

The chunker must keep every chunk inside the embedding model's window (all-MiniLM-L6-v2: 256 word pieces), but
loading a real tokenizer in every Cloud Function would cost a dependency and a slow cold start. Instead the text is
cut into the pieces a BERT-style pre-tokenizer sees (letter runs, digit runs, single CJK characters, single
punctuation marks) and each piece is weighted by how many word pieces such a piece costs on average, times a margin.

The weights come from a least-squares fit against the real all-MiniLM-L6-v2 tokenizer on passages of help-center
articles and support answers (the support-mix corpus) and of Python source code. With the margin, on held-out
passages the estimate is 1.15x the real count for prose (below it for <1% of passages, by at most 3%) and 1.10x
for code (below it for ~6%, by at most ~11%). Short titles vary more. Non-English Latin-script text is undercounted
(~0.85x): an English vocabulary splits it finely. CJK characters count one each, as in BERT.

Weights are per piece and summed before rounding up, so the count of a text joined from parts with whitespace is
never more than the sum of the parts' counts: a chunk packed by adding up its parts' counts stays within budget.
"""

from __future__ import annotations

import functools
import math
import re

# CJK characters are one piece each (BERT splits them); they are kept out of letter runs.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_PIECE = re.compile(rf"[^\W\d_{_CJK}]+|\d+|[{_CJK}]|\S")
_CAMEL_HUMP = re.compile(r"[a-z][A-Z]")

_MARGIN = 1.06
# Word pieces per ASCII letter run of length n (index n). Common short words are one piece; longer and rarer
# words (and code identifiers) break into several.
_LETTER_RUN = (0.0, 1.0, 0.95, 1.0, 1.0, 1.35, 1.35, 1.25, 1.3, 1.45, 1.45, 2.0, 2.0, 2.5, 2.5)
_LONG_RUN_CHARS_PER_PIECE = 4.5  # beyond the table: n / 4.5 + 0.5
_CAMEL_HUMP_WEIGHT = 1.2  # "SharePoint" -> share, ##point: each hump adds about a piece
# Punctuation is always one piece, but underscores and brackets come with code, whose identifiers split finely:
# weighting them a little carries that cost without having to recognise code.
_PUNCTUATION = {**dict.fromkeys("_", 1.4), **dict.fromkeys("()[]{}", 1.2), **dict.fromkeys(".,:;!?'\"-", 1.1)}
_MAX_WEIGHT_PER_CHAR = 1.5 * _MARGIN  # bounds any string's count by its length, for hard cuts

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])|\n+")


@functools.lru_cache(maxsize=1 << 16)
def _piece_weight(piece: str) -> float:
    n = len(piece)
    first = piece[0]
    if first.isdigit():
        # Short numbers and years are single pieces; long numbers split into pairs and triples.
        weight = 0.9 if n <= 2 else 1.25 if n <= 4 else 0.75 * n
    elif not first.isalpha():
        weight = _PUNCTUATION.get(piece, 1.0)
    elif not piece.isascii():
        # Accented and non-Latin words are poorly covered by an English vocabulary: about two characters a piece.
        weight = 1.0 if n == 1 else max(1.0, n / 2)
    else:
        weight = _LETTER_RUN[n] if n < len(_LETTER_RUN) else n / _LONG_RUN_CHARS_PER_PIECE + 0.5
        if not (piece.islower() or piece.isupper()):
            weight += _CAMEL_HUMP_WEIGHT * len(_CAMEL_HUMP.findall(piece))
    return weight * _MARGIN


def count_tokens(text: str) -> int:
    """Estimate how many word pieces `text` costs an embedding model, erring slightly on the high side."""
    return math.ceil(sum(map(_piece_weight, _PIECE.findall(text))))


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences (and lines); good enough for chunk boundaries, not for linguistics."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def split_to_tokens(text: str, max_tokens: int) -> list[str]:
    """Cut `text` into consecutive pieces of at most `max_tokens` each.

    Prefers sentence boundaries, then word boundaries; a single word longer than the limit (a URL, a key) is cut
    by characters into pieces of its own. Pieces are packed greedily, so all but the last are close to the limit.
    Whitespace between the words of a piece is normalised to single spaces.
    """
    if max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    stripped = text.strip()
    if not stripped:
        return []
    if count_tokens(stripped) <= max_tokens:
        return [stripped]
    pieces: list[tuple[str, int, bool]] = []  # (text, tokens, a fragment of a word that must stand alone)
    for sentence in split_sentences(stripped):
        tokens = count_tokens(sentence)
        if tokens <= max_tokens:
            pieces.append((sentence, tokens, False))
            continue
        for word in sentence.split():
            tokens = count_tokens(word)
            if tokens <= max_tokens:
                pieces.append((word, tokens, False))
            else:
                pieces.extend((fragment, count_tokens(fragment), True) for fragment in _cut_word(word, max_tokens))
    return _pack(pieces, max_tokens)


def _cut_word(word: str, max_tokens: int) -> list[str]:
    """Cut a word into the longest runs of characters that fit (binary search from a length known to fit)."""
    # No character costs more than _MAX_WEIGHT_PER_CHAR, so this many characters always fit.
    safe = max(1, int(max_tokens / _MAX_WEIGHT_PER_CHAR))
    fragments: list[str] = []
    start = 0
    while start < len(word):
        fits, too_long = min(safe, len(word) - start), len(word) - start + 1
        while too_long - fits > 1:
            middle = (fits + too_long) // 2
            if count_tokens(word[start : start + middle]) <= max_tokens:
                fits = middle
            else:
                too_long = middle
        fragments.append(word[start : start + fits])
        start += fits
    return fragments


def _pack(pieces: list[tuple[str, int, bool]], max_tokens: int) -> list[str]:
    """Greedily join counted pieces with spaces into runs of at most max_tokens. Adding up the pieces' counts
    keeps this linear and never undercounts the joined text. Word fragments are never joined to anything: a space
    would change the word."""
    packed: list[str] = []
    current: list[str] = []
    current_tokens = 0
    for piece, tokens, alone in pieces:
        if current and (alone or current_tokens + tokens > max_tokens):
            packed.append(" ".join(current))
            current, current_tokens = [], 0
        if alone:
            packed.append(piece)
            continue
        current.append(piece)
        current_tokens += tokens
    if current:
        packed.append(" ".join(current))
    return packed
