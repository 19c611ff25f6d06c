"""Words of English text as the rule-based parts of the chat see them: lower-cased, stop words known.

Shared by the follow-up rewriter, the answerability gate and the extractive answerer, which must agree on what a
word is.
"""

from __future__ import annotations

import re

WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")

STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between both
    but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each few for from
    further had hadn't has hasn't have haven't having he her here hers herself him himself his how i i'd i'll i'm
    i've if in into is isn't it it's its itself just let's me might more most must mustn't my myself no nor not of
    off on once only or other ought our ours ourselves out over own same shall she should shouldn't some such than
    that that's the their theirs them themselves then there there's these they they'd they'll they're they've this
    those through to too under until up very was wasn't we we'd we'll we're we've were weren't what what's when
    when's where where's which while who who's whom why why's will with won't would wouldn't you you'd you'll you're
    you've your yours yourself yourselves also please much many ok okay yes yeah hi hello hey thanks thank""".split()
)

# Pronouns that point back ("how long does that take?").
ANAPHORS = frozenset({"that", "it", "this", "they", "them", "those", "these", "its", "their", "theirs", "there"})
# Verbs and nouns that say what a question does, not what it is about.
GENERIC_VERBS = frozenset(
    """get gets getting got do does doing did done make makes making made have has having need needs want wants
    know tell use see find go going help like able way thing things something anything""".split()
)


def words(text: str) -> list[str]:
    """Lower-cased words, apostrophes kept inside words ("don't", "l'espagne")."""
    return [w.replace("’", "'") for w in WORD.findall(text.lower())]


def content_words(text: str) -> list[str]:
    """The words of `text` that are not stop words, in order."""
    return [w for w in words(text) if w not in STOP_WORDS]
