"""Is a message a question for the help center at all? Small talk and attempts to change the assistant's rules are
answered without retrieval, and sentences of a document that give the assistant orders are never passed on.

    classify(message)        "smalltalk" (greetings, thanks, "who are you", a joke or a poem), "manipulation"
                             (ignore your instructions, reveal your prompt, you are now ..., act as ...), else
                             "question"
    is_instruction(text)     a sentence addressed to an AI assistant ("Ignore all previous instructions and ...",
                             "SYSTEM: you are now ...", "AI assistants reading this must ...")

English rules, deliberately narrow: a message is small talk only when nothing in it asks about the product ("Hi, how
do I reset my password?" is a question), and manipulation only when it names the assistant's instructions, prompt
or role. A miss costs little: the gate then decides on retrieval, and the sources stay content, never instructions.
"""

from __future__ import annotations

import re

from shared.text import STOP_WORDS, words

SMALLTALK = "smalltalk"
MANIPULATION = "manipulation"
QUESTION = "question"

_GREETING_WORDS = frozenset(
    """hi hello hey hiya howdy yo greetings good morning afternoon evening day night thanks thank you thx ty cheers
    bye goodbye see later ok okay great cool perfect nice awesome wonderful brilliant excellent sure alright fine
    got it understood please there much lot so very again all for the help helpful appreciate appreciated anyone
    anybody today doing
    yes no yeah yep nope lol haha wow""".split()
)
_RULES = r"(?:instructions?|rules|guidelines|directives|prompts?|programming|restrictions|guardrails)"
_MANIPULATION = re.compile(
    r"\b(?:ignore|disregard|forget|override|bypass)\s+(?:(?:all|any|your|the|previous|prior|above|earlier|these"
    r"|system|safety|original|of)\s+){1,4}" + _RULES + r"\b"
    r"|\b(?:reveal|show|print|repeat|output|display|tell|give|share|leak|dump)\b[^.?!\n]{0,30}?\b(?:your|the)\s+"
    r"(?:(?:full|entire|exact|original|hidden|secret|initial|internal)\s+)*(?:system\s+(?:prompt|message)|prompt)\b"
    r"|\b(?:reveal|print|repeat|output|dump|leak)\b[^.?!\n]{0,30}?\byour\s+"
    r"(?:instructions|rules|guidelines|configuration)\b"
    r"|\bsystem\s+prompt\b|\b(?:you\s+are|you're)\s+now\b|\bfrom\s+now\s+on\b[^.?!\n]{0,40}\byou\b"
    r"|\byou\s+(?:will|must|should|shall)?\s*(?:act|behave|respond)\s+as\b|\bact\s+as\s+if\s+you\b"
    r"|\bpretend\s+(?:to\s+be|you(?:'re|\s+are))\b|\bjailbreak|\bdeveloper\s+mode\b|(?-i:\bDAN\b)"
    r"|\brole-?play\b|\bnew\s+(?:instructions|persona)\b|\bdo\s+anything\s+now\b",
    re.IGNORECASE,
)
# Small talk that opens the message, with nothing about the product after it ("Who are you?", "What can you do?").
_SMALLTALK_OPENING = re.compile(
    r"^\W*(?:how\s+are\s+you|how's\s+it\s+going|what's\s+up|who\s+(?:are|made|built)\s+you|what\s+are\s+you"
    r"|are\s+you\s+(?:a\s+|an\s+)?(?:bot|robot|human|ai|real|person|machine)|what(?:'s|\s+is)\s+your\s+name"
    r"|what\s+can\s+you\s+do|how\s+can\s+you\s+help(?:\s+me)?|can\s+we\s+be\s+friends|i\s+love\s+you"
    r"|do\s+you\s+have\s+feelings|good\s+bot|bad\s+bot)\b",
    re.IGNORECASE,
)
# Requests for entertainment, whatever they are about ("Write me a short poem about calendars").
_ENTERTAINMENT = re.compile(
    r"\b(?:tell|write|compose|make\s+up|sing|recite)\b[^.?!\n]{0,20}?\b(?:jokes?|poems?|haiku|limerick|songs?"
    r"|story|stories|riddles?|rap|sonnet|fun\s+facts?)\b",
    re.IGNORECASE,
)
# A document's sentence addressed to a model: the order itself, or a role marker opening a line.
_ADDRESSED = re.compile(
    r"^\s*(?:system|assistant|ai|llm|chatbot)\s*:|\b(?:ai|llm|language\s+models?|chatbots?|assistants?)\b"
    r"[^.?!\n]{0,40}\b(?:must|should|shall|are\s+instructed\s+to)\b",
    re.IGNORECASE | re.MULTILINE,
)


def classify(message: str) -> str:
    """SMALLTALK, MANIPULATION or QUESTION (see the module doc)."""
    if _MANIPULATION.search(message):
        return MANIPULATION
    if _ENTERTAINMENT.search(message):
        return SMALLTALK
    opening = _SMALLTALK_OPENING.match(message)
    rest = words(message[opening.end():] if opening else message)
    if (opening or rest) and all(w in _GREETING_WORDS or w in STOP_WORDS for w in rest):
        return SMALLTALK
    return QUESTION


def is_instruction(text: str) -> bool:
    """Whether a sentence of a document gives orders to an AI assistant (see the module doc)."""
    return bool(_MANIPULATION.search(text) or _ADDRESSED.search(text))
