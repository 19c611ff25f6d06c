"""Gemini adapters through google-genai: the streaming answerer, the follow-up rewriter and the summarizer.

GeminiAnswerer streams `generate_content_stream` with the system instruction of prompt.py and two declared
functions (automatic function calling off, so the SDK never runs anything):

    ask_clarifying_question(question)  -> the question is yielded as text, then Action("clarify")
    hand_off_to_human(reason)          -> Action("handoff", reason)

Failures, before the first piece was yielded: 408, 429, 5xx and connection errors are retried with exponential
backoff and jitter (`max_retries` times), then raise `UpstreamUnavailable`; any other 4xx raises it at once with an
internal message that says what to check (a rejected key or an unknown model is a configuration problem). After a
piece was yielded nothing is retried — the customer has seen text — and the failure raises `UpstreamUnavailable`
for the caller to turn into an error event. A reply without text or a decision (blocked by the safety filters,
finishReason SAFETY and the like, or empty) ends with Action("handoff"); so does a reply the filters cut short.

GeminiRewriter asks for the standalone question only when `needs_context` says the message is a follow-up, in one
short non-streaming call; any failure, or an empty or overlong reply, falls back to the rule rewriter.
GeminiSummarizer folds new messages into the rolling summary, falling back likewise.

Every failed call logs a `model_error` event (operation stream, rewrite or summary): WARNING when
it is retried or a fallback answers (the chat service quotes the documentation when the answerer fails before any
text, the rewriter and summarizer have their own), ERROR when the answer had begun and the turn fails. The
answerer `note`s the token counts of the stream's last usage metadata (shared.logs) for the turn's event.

google-genai is imported inside methods only: importing this module costs nothing at cold start.
Thinking tokens count against maxOutputTokens, so every call gets `THINKING_HEADROOM_TOKENS` on top of its
answer budget unless thinking is off; `fast_thinking_budget(model)` turns it off where the model allows
(gemini-2.5-flash*): answers grounded in given sources need little reasoning, and thinking delays the first token.
"""

from __future__ import annotations

import functools
import importlib
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from shared.errors import UpstreamUnavailable
from shared.llm import prompt
from shared.llm.rewrite import needs_context
from shared.llm.types import (
    CLARIFY,
    HANDOFF,
    Action,
    Answerer,
    AnswerRequest,
    HistoryMessage,
    Rewrite,
    Rewriter,
)
from shared.logs import log_model_error, note
from shared.memory.models import Message
from shared.memory.summary import Summarizer

log = logging.getLogger(__name__)

RETRYABLE_CODES = frozenset({408, 429, 500, 502, 503, 504})
DECLINED_REASONS = frozenset({"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION"})
THINKING_HEADROOM_TOKENS = 1024  # added to the short calls' output limit when thinking stays on
DECLINED = "the model declined to answer"


def fast_thinking_budget(model: str) -> int | None:
    """0 (thinking off) for models that allow it, else None (the model's default)."""
    return 0 if model.removeprefix("models/").startswith("gemini-2.5-flash") else None


class GeminiAnswerer(Answerer):
    """Streams answers from Gemini with citations and function-call decisions (see module doc)."""

    name = "gemini"

    def __init__(self, client: Any, model: str, max_retries: int = 3, retry_base_seconds: float = 0.5, *,
                 temperature: float = 0.2, max_output_tokens: int = 2048, thinking_budget: int | None = None,
                 timeout_seconds: float = 60.0, sleep: Callable[[float], None] = time.sleep):
        self.model = model
        self.max_retries = max_retries
        self.retry_base_seconds = retry_base_seconds
        self.temperature = temperature
        self.max_output_tokens = max_output_tokens
        self.thinking_budget = thinking_budget
        self.timeout_seconds = timeout_seconds
        self._client = client
        self._sleep = sleep

    def answer(self, request: AnswerRequest) -> Iterator[str | Action]:
        """Yield text pieces as Gemini streams them, then at most one Action. Raises UpstreamUnavailable."""
        config = self._config(request)
        contents = prompt.contents(request)
        for attempt in range(self.max_retries + 1):
            reply = _Reply()
            stream = None
            try:
                stream = self._client.models.generate_content_stream(model=self.model, contents=contents,
                                                                     config=config)
                for response in stream:
                    yield from reply.take(response)
                break
            except Exception as exc:
                failure = _classify(exc, self.model)
                retryable = failure is not None and failure[0]
                log_model_error(log, "stream", exc, retryable=retryable,
                                severity=logging.ERROR if reply.started else logging.WARNING)
                if failure is None:
                    raise
                retryable, detail = failure
                if reply.started:
                    raise UpstreamUnavailable(f"Gemini stream broke after the answer began: {detail}") from exc
                if not retryable:
                    raise UpstreamUnavailable(detail) from exc
                if attempt == self.max_retries:
                    raise UpstreamUnavailable(f"Gemini still failing after {attempt + 1} attempts: {detail}") from exc
                delay = self.retry_base_seconds * (2**attempt) * (0.5 + random.random())
                log.warning("Gemini generation failed (%s); retrying in %.2fs", detail, delay)
                self._sleep(delay)
            finally:
                if stream is not None and hasattr(stream, "close"):
                    stream.close()  # frees the connection when the caller stops early
        note(tokens_in=reply.tokens_in, tokens_out=reply.tokens_out)
        action = reply.action()
        if action is not None:
            yield action

    def _config(self, request: AnswerRequest) -> Any:
        from google.genai import types

        return types.GenerateContentConfig(
            system_instruction=prompt.system_instruction(request.sources, request.policies),
            temperature=self.temperature,
            max_output_tokens=_output_limit(self.max_output_tokens, self.thinking_budget),
            tools=[_answer_tools()],
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
            thinking_config=_thinking(self.thinking_budget),
            http_options=types.HttpOptions(timeout=int(self.timeout_seconds * 1000)),
        )


class _Reply:
    """What one streamed attempt produced so far: whether text was yielded, the decision, the finish reason."""

    def __init__(self) -> None:
        self.started = False
        self.decision: Action | None = None
        self.finish_reason = ""
        self.blocked = False
        self.tokens_in: int | None = None  # the usage metadata of the last chunk that carried each count
        self.tokens_out: int | None = None

    def take(self, response: Any) -> Iterator[str]:
        """The text pieces of one streamed response; records function calls, the finish reason and token usage."""
        usage = getattr(response, "usage_metadata", None)
        if usage is not None:
            self.tokens_in = _count(getattr(usage, "prompt_token_count", None), self.tokens_in)
            self.tokens_out = _count(getattr(usage, "candidates_token_count", None), self.tokens_out)
        feedback = getattr(response, "prompt_feedback", None)
        if feedback is not None and feedback.block_reason:
            self.blocked = True
        for candidate in (response.candidates or [])[:1]:
            parts = candidate.content.parts if candidate.content and candidate.content.parts else []
            for part in parts:
                if part.thought:
                    continue
                if part.text:
                    self.started = True
                    yield part.text
                elif part.function_call is not None:
                    yield from self._call(part.function_call.name or "", part.function_call.args or {})
            if candidate.finish_reason:
                self.finish_reason = _enum_name(candidate.finish_reason)

    def _call(self, name: str, args: dict[str, Any]) -> Iterator[str]:
        if self.decision is not None:
            return  # at most one decision per answer
        if name == prompt.CLARIFY_FUNCTION:
            question = str(args.get("question") or "").strip()
            if question:
                yield f"\n\n{question}" if self.started else question
                self.started = True
            if self.started:  # a clarification the customer cannot see is no clarification
                self.decision = Action(CLARIFY)
        elif name == prompt.HANDOFF_FUNCTION:
            self.decision = Action(HANDOFF, str(args.get("reason") or "").strip() or "the model asked for a human")
        else:
            log.warning("Gemini called an undeclared function %r; ignored", name)

    def action(self) -> Action | None:
        """The Action that ends the answer: the model's decision, or a hand-off for a blocked or empty reply."""
        if self.decision is not None:
            return self.decision
        if self.blocked or self.finish_reason in DECLINED_REASONS:
            return Action(HANDOFF, DECLINED)
        if not self.started:
            return Action(HANDOFF, f"the model returned no answer ({self.finish_reason or 'no finish reason'})")
        return None


class GeminiRewriter(Rewriter):
    """Standalone questions from Gemini for follow-ups; the fallback (rules) on any trouble."""

    def __init__(self, client: Any, model: str, fallback: Rewriter, *, max_chars: int = 300,
                 max_history: int = 6, thinking_budget: int | None = None, timeout_seconds: float = 8.0):
        self.model = model
        self.max_chars = max_chars
        self.max_history = max_history
        self.thinking_budget = thinking_budget
        self.timeout_seconds = timeout_seconds
        self._client = client
        self._fallback = fallback

    def rewrite(self, message: str, history: Sequence[HistoryMessage]) -> Rewrite:
        """`Rewrite(message, "none")` without a model call when the message stands alone; else Gemini's rewrite."""
        if not needs_context(message, history):
            return Rewrite(message, "none")
        try:
            response = self._client.models.generate_content(
                model=self.model,
                contents=prompt.rewrite_contents(message, list(history)[-self.max_history :]),
                config=_short_config(prompt.REWRITE_INSTRUCTION, 128, self.thinking_budget, self.timeout_seconds),
            )
            query = _first_line(_text_of(response))
        except Exception as exc:
            log_model_error(log, "rewrite", exc, retryable=_retryable(exc, self.model))
            log.warning("Gemini rewrite failed (%s); using the fallback rewriter", _describe(exc, self.model))
            return self._fallback.rewrite(message, history)
        if not query or len(query) > self.max_chars:
            log.warning("Gemini rewrite was %s; using the fallback rewriter", "empty" if not query else "too long")
            return self._fallback.rewrite(message, history)
        return Rewrite(query, "gemini")


class GeminiSummarizer(Summarizer):
    """The rolling summary written by Gemini; the fallback summarizer on any trouble."""

    def __init__(self, client: Any, model: str, fallback: Summarizer, *, max_chars: int = 1200,
                 thinking_budget: int | None = None, timeout_seconds: float = 20.0):
        self.model = model
        self.max_chars = max_chars
        self.thinking_budget = thinking_budget
        self.timeout_seconds = timeout_seconds
        self._client = client
        self._fallback = fallback

    def summarize(self, previous_summary: str, messages: list[Message]) -> str:
        """The summary of `previous_summary` plus `messages` in at most `max_chars` (whole lines)."""
        if not messages:
            return previous_summary
        try:
            response = self._client.models.generate_content(
                model=self.model,
                contents=prompt.summary_contents(previous_summary, [(m.role, m.text) for m in messages]),
                config=_short_config(prompt.SUMMARY_INSTRUCTION, 400, self.thinking_budget, self.timeout_seconds),
            )
            summary = _text_of(response).strip()
        except Exception as exc:
            log_model_error(log, "summary", exc, retryable=_retryable(exc, self.model))
            log.warning("Gemini summary failed (%s); using the fallback summarizer", _describe(exc, self.model))
            return self._fallback.summarize(previous_summary, messages)
        if not summary:
            log.warning("Gemini summary was empty; using the fallback summarizer")
            return self._fallback.summarize(previous_summary, messages)
        return _whole_lines(summary, self.max_chars)


# --- helpers ---------------------------------------------------------------------------------------------------


@functools.cache
def _answer_tools() -> Any:
    from google.genai import types

    def declaration(name: str, description: str, parameter: str, parameter_description: str) -> Any:
        return types.FunctionDeclaration(
            name=name,
            description=description,
            parameters=types.Schema(
                type=types.Type.OBJECT,
                properties={parameter: types.Schema(type=types.Type.STRING, description=parameter_description)},
                required=[parameter],
            ),
        )

    return types.Tool(function_declarations=[
        declaration(prompt.CLARIFY_FUNCTION,
                    "Ask the customer one short question when the request is ambiguous, instead of guessing. "
                    "The question is shown to the customer as your reply.",
                    "question", "The question to ask, in the customer's language."),
        declaration(prompt.HANDOFF_FUNCTION,
                    "Offer the customer a human agent: when the sources do not contain the answer, when the "
                    "customer asks for a person, or when a business policy requires it.",
                    "reason", "Why a human should take over, in a few words (for the support team)."),
    ])  # fmt: skip


def _thinking(budget: int | None) -> Any:
    from google.genai import types

    return types.ThinkingConfig(thinking_budget=budget) if budget is not None else None


def _short_config(instruction: str, max_tokens: int, thinking_budget: int | None, timeout_seconds: float) -> Any:
    """A low-temperature, short-output config for the rewriter and the summarizer."""
    from google.genai import types

    return types.GenerateContentConfig(
        system_instruction=instruction,
        temperature=0.0,
        max_output_tokens=_output_limit(max_tokens, thinking_budget),
        thinking_config=_thinking(thinking_budget),
        http_options=types.HttpOptions(timeout=int(timeout_seconds * 1000)),
    )


def _output_limit(answer_tokens: int, thinking_budget: int | None) -> int:
    """maxOutputTokens: thinking tokens count against it, so they get headroom unless thinking is off."""
    return answer_tokens + (0 if thinking_budget == 0 else THINKING_HEADROOM_TOKENS)


def _text_of(response: Any) -> str:
    """The text parts of the first candidate, thoughts left out."""
    candidates = response.candidates or []
    if not candidates or not candidates[0].content or not candidates[0].content.parts:
        return ""
    return "".join(part.text for part in candidates[0].content.parts if part.text and not part.thought)


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    line = lines[0] if lines else ""
    if line.lower().startswith("standalone question:"):
        line = line.split(":", 1)[1].strip()
    return line.strip("\"'“”‘’`").strip()


def _whole_lines(text: str, limit: int) -> str:
    """At most `limit` characters of `text`, cut at a line end (or a word, for one long line)."""
    if len(text) <= limit:
        return text
    kept: list[str] = []
    for line in text.splitlines():
        if sum(len(k) + 1 for k in kept) + len(line) > limit:
            break
        kept.append(line)
    return "\n".join(kept) if kept else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _enum_name(value: Any) -> str:
    return str(getattr(value, "value", value) or "")


@functools.cache
def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection-level failures of the SDK's HTTP stacks (httpx2 or httpx), plus the builtin ones."""
    classes: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module in ("httpx2", "httpx"):
        try:
            classes.append(importlib.import_module(module).TransportError)
        except (ImportError, AttributeError):
            continue
    return tuple(classes)


def _classify(exc: BaseException, model: str) -> tuple[bool, str] | None:
    """(retryable, internal description) of a failed Gemini call; None when the error is not the service's."""
    from google.genai import errors

    if isinstance(exc, errors.APIError):
        detail = f"{exc.code} {exc.status or ''}: {exc.message or ''}".replace(" :", ":").strip()
        if exc.code in RETRYABLE_CODES:
            return True, f"Gemini answered {detail}"
        if _bad_credentials(exc):
            return False, (f"Gemini rejected the credentials ({detail}): a configuration problem — check "
                           "GEMINI_API_KEY, or GEMINI_VERTEXAI and the service account's roles")
        if exc.code == 404:
            return False, (f"Gemini does not serve model {model!r} ({detail}): a configuration problem — check "
                           "GENERATION_MODEL")
        return False, f"Gemini refused the request ({detail})"
    if isinstance(exc, _transport_errors()):
        return True, f"connection to Gemini failed ({type(exc).__name__}: {exc})"
    return None


def _bad_credentials(exc: Any) -> bool:
    if exc.code in (401, 403):
        return True
    text = f"{exc.message or ''} {exc.details or ''}"
    return exc.code == 400 and ("API_KEY_INVALID" in text or "API key" in text)


def _retryable(exc: BaseException, model: str) -> bool:
    """Whether a retry could help the failed call (for its model_error event)."""
    try:
        failure = _classify(exc, model)
    except ImportError:
        failure = None
    return failure is not None and failure[0]


def _count(value: Any, previous: int | None) -> int | None:
    """A token count of the usage metadata, else the one seen before (a chunk may carry only some counts)."""
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else previous


def _describe(exc: BaseException, model: str) -> str:
    try:
        failure = _classify(exc, model)
    except ImportError:
        failure = None
    return failure[1] if failure else f"{type(exc).__name__}: {exc}"
