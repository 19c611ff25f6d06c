"""Answer generation for the chat: answerers, follow-up rewriting and citation checking.

    types.Answerer        port: stream an answer (text pieces with [n] markers) and at most one Action
      gemini.GeminiAnswerer          Gemini streaming, function calls for clarify / hand-off, retries
      extractive.ExtractiveAnswerer  offline: quotes the best passages with citations (no key needed)
    types.Rewriter        port: a follow-up message -> a standalone question for retrieval
      rewrite.RuleRewriter           deterministic rules; `needs_context` decides whether to rewrite at all
      gemini.GeminiRewriter          Gemini, falling back to the rules on any trouble
    gemini.GeminiSummarizer          shared.memory's Summarizer port, falling back to ExtractiveSummarizer
    citations.CitationFilter         drops invented [n] from a stream; records which sources were cited
    links.LinkFilter                 drops links that are neither a source's page nor named by the policies
    prompt                           the prompts (rules, policies, numbered sources, conversation)

`create_answerer(settings)`, `create_rewriter(settings)` and `create_summarizer(settings)` pick Gemini when
`settings.generation_enabled` (a key or Vertex AI), else the offline implementations. Nothing here imports
google-genai until a Gemini adapter is built.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from shared.llm.citations import CitationFilter
from shared.llm.extractive import ExtractiveAnswerer
from shared.llm.rewrite import RuleRewriter, needs_context
from shared.llm.types import (
    CLARIFY,
    HANDOFF,
    Action,
    Answerer,
    AnswerRequest,
    HistoryMessage,
    Rewrite,
    Rewriter,
    Source,
)

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.memory.summary import Summarizer

__all__ = [
    "CLARIFY", "HANDOFF", "Action", "AnswerRequest", "Answerer", "CitationFilter", "ExtractiveAnswerer",
    "HistoryMessage", "Rewrite", "Rewriter", "RuleRewriter", "Source", "create_answerer", "create_rewriter",
    "create_summarizer", "needs_context",
]  # fmt: skip


def create_answerer(settings: Settings) -> Answerer:
    """Gemini (GENERATION_MODEL) when generation is enabled, else the extractive answerer."""
    if not settings.generation_enabled:
        return ExtractiveAnswerer()
    from shared.llm.gemini import GeminiAnswerer, fast_thinking_budget

    model = settings.generation_model
    return GeminiAnswerer(_client(settings), model, thinking_budget=fast_thinking_budget(model))


def create_rewriter(settings: Settings) -> Rewriter:
    """Gemini with the rules as fallback when generation is enabled, else the rules alone."""
    rules = RuleRewriter()
    if not settings.generation_enabled:
        return rules
    from shared.llm.gemini import GeminiRewriter, fast_thinking_budget

    model = settings.generation_model
    return GeminiRewriter(_client(settings), model, rules, thinking_budget=fast_thinking_budget(model))


def create_summarizer(settings: Settings) -> Summarizer:
    """Gemini with the extractive summarizer as fallback when generation is enabled, else the extractive one."""
    from shared.memory.summary import ExtractiveSummarizer

    extractive = ExtractiveSummarizer()
    if not settings.generation_enabled:
        return extractive
    from shared.llm.gemini import GeminiSummarizer, fast_thinking_budget

    model = settings.generation_model
    return GeminiSummarizer(_client(settings), model, extractive, thinking_budget=fast_thinking_budget(model))


@functools.lru_cache(maxsize=4)
def _client(settings: Settings) -> Any:
    """One google-genai client per settings, shared by the answerer, rewriter and summarizer."""
    from shared.embeddings.gemini import make_genai_client

    return make_genai_client(settings)
