"""The rolling summary of a session: a `Summarizer` folds the messages not yet covered into the previous summary.

`ExtractiveSummarizer` is the deterministic default (no model call): it keeps each question the customer asked and the
first sentence of each answer, one line each, and trims the oldest lines to stay within a character budget. A Gemini
summarizer can implement the same port later.
"""

from __future__ import annotations

import abc
import re

from shared.memory.models import Message

_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
_SPACES = re.compile(r"\s+")


class Summarizer(abc.ABC):
    """Port: fold new messages into a summary."""

    @abc.abstractmethod
    def summarize(self, previous_summary: str, messages: list[Message]) -> str:
        """The summary of everything `previous_summary` covered plus `messages` (oldest first)."""


class ExtractiveSummarizer(Summarizer):
    """Keeps the customer's questions and the first sentence of each answer, newest kept when trimming."""

    def __init__(self, max_chars: int = 1200, max_line_chars: int = 240):
        if not 0 < max_line_chars <= max_chars:
            raise ValueError("max_line_chars must be positive and at most max_chars")
        self.max_chars = max_chars
        self.max_line_chars = max_line_chars

    def summarize(self, previous_summary: str, messages: list[Message]) -> str:
        """Previous lines plus one line per new message, the oldest lines dropped beyond `max_chars`."""
        lines = [line for line in previous_summary.splitlines() if line.strip()]
        for message in messages:
            text = _SPACES.sub(" ", message.text).strip()
            if not text:
                continue
            if message.role == "user":
                lines.append("Customer asked: " + self._clip(text))
            else:
                lines.append("Assistant: " + self._clip(_SENTENCE_END.split(text, maxsplit=1)[0]))
        return self._newest_within_budget(lines)

    def _clip(self, text: str) -> str:
        return text if len(text) <= self.max_line_chars else text[: self.max_line_chars - 1].rstrip() + "…"

    def _newest_within_budget(self, lines: list[str]) -> str:
        kept: list[str] = []
        size = 0
        for line in reversed(lines):
            if size + len(line) + (1 if kept else 0) > self.max_chars:
                break
            kept.append(line)
            size += len(line) + (1 if len(kept) > 1 else 0)
        return "\n".join(reversed(kept))
