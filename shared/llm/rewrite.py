"""Follow-up detection and the rule-based rewriter (no model call).

`needs_context(message, history)` is True only when there is an earlier user message and this one leans on it:

- it opens with a connective or an ellipsis: "and ...", "also ...", "what about ...", "how about ...", "but ...",
  "so ...", "then ...", "ok and ...";
- it contains an anaphor whose antecedent is not in the message itself: "that", "it", "this", "they", "them",
  "those", "these", "its", "their", "there", "that one", "the same" — except the dummy "it" ("is it possible to
  ...") and existential "there" ("is there a fee?"), "that" introducing a clause ("told that the ..."), and a
  pronoun that follows a clause with two or more content words ("I forgot my password, how do I reset it?");
- or it is very short: at most five words, at most three of them content words ("refunds?", "for the annual
  plan?"), and neither a complete question (four words or more opening with a question word or auxiliary: "How do I
  cancel?") nor only a greeting or thanks.

The rules are English. Messages in other scripts never count as short (a word count means nothing without spaces),
so in other languages only an English-looking connective or pronoun makes a message a follow-up.

`RuleRewriter` builds the standalone query deterministically: the message without its opening connective and
greeting words, with its first anaphor replaced by the key words of the most recent user question (the others
dropped), or with those key words appended when it has no anaphor. Key words are the question's content words,
without question words, pronouns and generic verbs ("get", "do", "make", ...). A previous question that was itself
a follow-up is first resolved the same way against the messages before it. Example:
"How do I get a refund?" then "and how long does that take?" -> "how long does refund take".
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from shared.llm.types import HistoryMessage, Rewrite, Rewriter
from shared.text import ANAPHORS, GENERIC_VERBS, STOP_WORDS, WORD, content_words

_CLAUSE_BREAK = re.compile(r"[,;:.!?]|\b(?:and|but|because|since|so|when|if|although|while)\b")
_LETTER = re.compile(r"[^\W\d_]")

_CONNECTIVE_OPENINGS = (
    ("what", "about"), ("how", "about"), ("what", "if"), ("and",), ("also",), ("but",), ("so",), ("then",), ("or",),
    ("plus",), ("same",), ("as", "well"),
)  # fmt: skip
_QUESTION_OPENINGS = frozenset(
    """how what why when where who whom whose which can could do does did is are was were will would should shall
    may might have has i i'm i've my""".split()
)
_GREETINGS = frozenset(
    """hi hello hey hiya thanks thank you thx ty cheers ok okay great cool perfect nice good morning afternoon evening
    bye goodbye yes no yeah yep nope sure alright awesome got it understood please""".split()
)
_THANKS = frozenset({"thanks", "thank", "thx", "ty", "cheers"})
_THANKS_TAIL = frozenset({"so", "very", "much", "a", "lot", "again", "for", "the", "your", "help", "all"})
_DUMMY_IT = re.compile(
    r"\b(?:is|was|will|would|isn't|wasn't)\s+it\s+(?:possible|necessary|ok|okay|safe|true|free|normal|required|"
    r"allowed|better|best|worth|hard|easy)\b|\bit(?:'s|\s+is|\s+was)\s+(?:possible|necessary|ok|okay|safe|true|"
    r"free|normal|required|allowed|better|best|worth|hard|easy)\b|\bit\s+(?:says|said|seems|looks\s+like)\b"
)
_BE = frozenset({"is", "are", "was", "were", "be", "been", "isn't", "aren't", "wasn't", "weren't"})
_EXISTENTIAL_AFTER = _BE | {"will", "would", "has", "have", "should", "must", "might", "may", "could", "can", "seems",
                            "seem", "there's", "there're"}
_CLAUSE_SUBJECTS = frozenset({"i", "you", "we", "he", "she", "they", "my", "your", "our", "the", "a", "an", "it",
                              "there", "his", "her", "their", "this", "these", "those", "some", "all", "no"})
_AUXILIARIES = _BE | {"do", "does", "did", "will", "would", "can", "could", "should", "doesn't", "don't", "didn't",
                      "won't", "what's", "how's", "like", "about", "for", "of", "with", "on", "in"}
_TIME_NOUNS = frozenset({"morning", "afternoon", "evening", "week", "weekend", "month", "year", "time", "quarter",
                         "season", "summer", "winter", "spring", "autumn", "fall"})
_ONE_DETERMINERS = frozenset({"that", "this", "which", "other", "same", "first", "second", "last", "new", "old",
                              "cheaper", "cheapest", "bigger", "smaller", "better", "previous", "latter", "former"})
_MAX_KEY_WORDS = 6
_SHORT_WORDS = 5  # a "very short" message has at most this many words


def needs_context(message: str, history: Sequence[HistoryMessage]) -> bool:
    """True when `message` depends on an earlier user message of `history` to be understood (see module doc)."""
    if _previous_user_index(history, len(history)) is None:
        return False
    tokens = _tokens(message)
    body = tokens[_greeting_length(tokens):]
    if not body:
        return False  # only a greeting or thanks
    if _opening_connective(body):
        return True
    if _unresolved_anaphor(message, tokens) is not None:
        return True
    return _is_short(message, body)


class RuleRewriter(Rewriter):
    """Deterministic rewriting: the follow-up plus the key words of the previous question (see module doc)."""

    def __init__(self, max_depth: int = 3):
        self.max_depth = max_depth  # how many follow-ups in a row are resolved

    def rewrite(self, message: str, history: Sequence[HistoryMessage]) -> Rewrite:
        """`Rewrite(message, "none")` when the message stands alone, else the rule-built query ("rules")."""
        if not needs_context(message, history):
            return Rewrite(message, "none")
        return Rewrite(self._standalone(message, history, len(history), self.max_depth), "rules")

    def _standalone(self, message: str, history: Sequence[HistoryMessage], end: int, depth: int) -> str:
        """`message` resolved against the user messages in history[:end]."""
        previous_index = _previous_user_index(history, end)
        if previous_index is None:
            return message.strip()
        previous = history[previous_index].text
        if depth > 1 and needs_context(previous, history[:previous_index]):
            previous = self._standalone(previous, history, previous_index, depth - 1)
        return _combine(message, key_words(previous, _MAX_KEY_WORDS))


_Token = tuple[str, int]  # a lower-cased word and where it starts in the message


def _tokens(message: str) -> list[_Token]:
    return [(m.group().lower().replace("’", "'"), m.start()) for m in WORD.finditer(message)]


def _combine(message: str, key_words: list[str]) -> str:
    """The message's words, opening greeting and connective dropped, with the key words put in (see module doc)."""
    tokens = _tokens(message)
    skip = _greeting_length(tokens)
    while connective := _opening_connective(tokens[skip:]):  # "and what about ..."
        skip += len(connective)
    anaphor = _unresolved_anaphor(message, tokens)
    body = [word for word, _ in tokens]
    stems = {_stem(w) for w in body}
    key_words = [w for w in key_words if _stem(w) not in stems]
    if anaphor is not None and anaphor[0] >= skip:
        at, span = anaphor
        rest = [w for w in body[at + span :] if w not in ANAPHORS]
        result = body[skip:at] + key_words + rest
    else:
        result = [w for w in body[skip:] if w not in ANAPHORS] + key_words
    return " ".join(result) or message.strip()


def key_words(text: str, limit: int | None = None) -> list[str]:
    """The content words of `text` without generic verbs ("get", "make"), pronouns and numbers, de-duplicated."""
    key: list[str] = []
    for word in content_words(text):
        if word not in GENERIC_VERBS and word not in ANAPHORS and word not in key and not word.isdigit():
            key.append(word)
    return key[:limit]


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _previous_user_index(history: Sequence[HistoryMessage], end: int) -> int | None:
    for index in range(end - 1, -1, -1):
        if history[index].role == "user" and history[index].text.strip():
            return index
    return None


def _greeting_length(tokens: list[_Token]) -> int:
    """How many of the opening words are greetings, thanks or acknowledgements ("ok", "thanks so much", "yes")."""
    n, thanked = 0, False
    while n < len(tokens) and (tokens[n][0] in _GREETINGS or (thanked and tokens[n][0] in _THANKS_TAIL)):
        thanked = thanked or tokens[n][0] in _THANKS
        n += 1
    return n


def _opening_connective(tokens: list[_Token]) -> tuple[str, ...] | None:
    opening_words = tuple(word for word, _ in tokens[:2])
    for opening in _CONNECTIVE_OPENINGS:
        if opening_words[: len(opening)] == opening:
            return opening
    return None


def _unresolved_anaphor(message: str, tokens: list[_Token]) -> tuple[int, int] | None:
    """(index, length in words) of the first anaphor whose antecedent is not in the message itself, or None."""
    dummy_it = bool(_DUMMY_IT.search(message.lower().replace("’", "'")))
    words_ = [word for word, _ in tokens]
    for index, word in enumerate(words_):
        before = words_[index - 1] if index else ""
        after = words_[index + 1] if index + 1 < len(words_) else ""
        if word == "same" and before == "the":
            found = (index - 1, 2)
        elif word in ("one", "ones") and before in _ONE_DETERMINERS:
            found = (index - 1, 2)
        elif word not in ANAPHORS or (word == "it" and dummy_it):
            continue
        elif word == "there" and (before in _BE or after in _EXISTENTIAL_AFTER):
            continue  # "is there a fee?", "there is a fee"
        elif word == "that" and after in _CLAUSE_SUBJECTS and before and before not in _AUXILIARIES:
            continue  # "told that the ...": introduces a clause
        elif word == "this" and after in _TIME_NOUNS:
            continue  # "this month"
        else:
            found = (index, 1)
        if not _antecedent_in_message(message, tokens[found[0]][1]):
            return found
    return None


def _antecedent_in_message(message: str, position: int) -> bool:
    """True when a clause before the one at `position` has two or more content words to refer to."""
    breaks = [m.start() for m in _CLAUSE_BREAK.finditer(message.lower(), 0, position)]
    if not breaks:
        return False
    earlier = content_words(message[: breaks[-1]])
    return len([w for w in earlier if w not in GENERIC_VERBS]) >= 2


def _is_short(message: str, body: list[_Token]) -> bool:
    """At most five words (three content words), not a complete question, in a Latin-script message."""
    letters = _LETTER.findall(message)
    if not letters or sum(c.isascii() for c in letters) < 0.9 * len(letters):
        return False  # another script: word counts mean nothing here
    words_ = [word for word, _ in body]
    if len(words_) > _SHORT_WORDS or (len(words_) >= 4 and words_[0] in _QUESTION_OPENINGS):
        return False  # a sentence, or a complete question
    return len([w for w in words_ if w not in STOP_WORDS]) <= 3
