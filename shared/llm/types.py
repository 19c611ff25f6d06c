"""Domain types of answer generation: what an answerer is given, what it yields, and the two ports.

An `Answerer` streams an answer to an `AnswerRequest` as text pieces with `[n]` citation markers that refer to the
request's numbered `Source`s, and may end with one `Action` — a structured decision (ask the customer to clarify,
hand off to a human) that is never parsed out of the answer text. A `Rewriter` turns a follow-up message into a
standalone question for retrieval.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

CLARIFY = "clarify"
HANDOFF = "handoff"


@dataclass(frozen=True)
class Source:
    """One numbered source given to an answerer: the retrieved passages of one document."""

    number: int  # 1-based, as cited "[n]"
    title: str
    text: str  # the retrieved passages of the document, in document order, joined by "\n\n"
    url: str  # the public http(s) page (shared.llm.links.public_url), "" if none: never a storage path
    document_id: str


@dataclass(frozen=True)
class HistoryMessage:
    """One earlier message of the conversation."""

    role: str  # "user" | "assistant"
    text: str


@dataclass(frozen=True)
class AnswerRequest:
    """Everything an answerer may use for one turn."""

    question: str  # as the user wrote it
    query: str  # the standalone question (rewritten follow-up) used for retrieval
    sources: Sequence[Source]
    history: Sequence[HistoryMessage] = ()  # the buffer window, oldest first
    summary: str = ""  # rolling summary of the turns before the buffer window
    policies: str = ""  # the tenant's business policies (free text an editor maintains)
    terms: Sequence = ()  # the question's salient terms with their weights (shared.answerability.terms.Term)
    passages: Sequence = ()  # the sources' units scored against the question (shared.answerability.passages)


@dataclass(frozen=True)
class Action:
    """A structured decision of the answerer: `clarify` (it asked a question back) or `handoff` (offer a human)."""

    kind: str  # "clarify" | "handoff"
    reason: str = ""


class Answerer(abc.ABC):
    """Port: write the answer to one turn."""

    name: str  # "gemini" | "extractive"

    @abc.abstractmethod
    def answer(self, request: AnswerRequest) -> Iterator[str | Action]:
        """Yield answer text pieces as they are produced (with `[n]` citation markers), and at most one Action.

        Raises `UpstreamUnavailable` when the model cannot be reached; pieces yielded before that stay valid.
        """


@dataclass(frozen=True)
class Rewrite:
    """The standalone question to retrieve with, and how it was obtained."""

    query: str
    method: str  # "none" (already standalone) | "rules" | "gemini"


class Rewriter(abc.ABC):
    """Port: turn a follow-up message into a standalone question."""

    @abc.abstractmethod
    def rewrite(self, message: str, history: Sequence[HistoryMessage]) -> Rewrite:
        """The standalone form of `message` given the earlier messages (oldest first). Never raises."""
