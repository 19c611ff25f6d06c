"""The conversation service behind `POST /v1/chat` and the session, feedback and hand-off routes.

    start_turn(request)  validate, verify the signed user id, rate-limit, load or create the session — every refusal
                         is an AppError raised before a byte of the response is sent (so it can be a 4xx)
    run_turn(prepared)   rewrite a follow-up -> retrieve (hybrid) -> decide (answer | clarify | handoff)
                         -> answer (Gemini or extractive) -> check citations -> save the turn; yields events and
                         never raises: a failure after streaming began is an `error` event

Decisions are structured: a request for a person, documents that do not answer the question (the answerability
gate's probability, the turn's `confidence`, below ANSWER_MIN_CONFIDENCE), the model's `hand_off_to_human` call, an
extractive answer that finds no passage answering the question, or a model reply that says the sources do not cover
the question and cites them for nothing else, end the turn with action `handoff` (the widget offers the hand-off
form, which calls POST /v1/handoff) and no citations. Small talk and attempts to change the assistant's rules get a
short line saying what it can help with (action `clarify`, no retrieval); a vague one- or two-word question whose
best documents are about different things ends with action `clarify`. Every "I don't know" is recorded as a coverage
gap. Sentences of a document that give orders to an AI assistant are removed from the sources before any answerer
sees them.

Each turn logs one `chat_turn` event when it ends, failed or not (shared/logs.py lists the events): its action
(`dont_know` for a hand-off because the documents had no answer, `error` for a failed turn), confidence, whether it
streamed, the times to the first text delta, in total and in retrieval, the model that wrote the answer
("extractive" for the quoting fallback), Gemini's token counts when it reported them, how many sources the answer
cites and the turn's HTTP status (the error's, for a failed turn). Each vote logs one `feedback` event.
"""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from shared.answerability import scope
from shared.answerability.passages import source_text
from shared.chat.events import Citation, CitationsEvent, Delta, Done, ErrorEvent, Event, SessionEvent, shown_citation
from shared.errors import AppError, BadRequest, NotFound, RateLimited
from shared.llm import (
    HANDOFF,
    Action,
    AnswerRequest,
    CitationFilter,
    ExtractiveAnswerer,
    HistoryMessage,
    Source,
)
from shared.llm.links import LinkFilter, public_url
from shared.logs import bind, collecting, log_event
from shared.memory.connection import check_tenant, utc_now
from shared.memory.signing import UserTokenRequired, UserTokensDisabled, verify_user_token
from shared.memory.store import new_turn_id

log = logging.getLogger(__name__)

DONT_KNOW = ("I couldn't find this in our documentation, and I'd rather not guess. "
             "Would you like me to connect you with a person from our team?")
HANDOFF_REQUESTED = "Of course — I can connect you with a person from our team. Use the hand-off form and they " \
                    "will get this conversation."
SMALLTALK = ("Hi! I'm the support assistant: I answer questions from our help center, with links to the articles, "
             "and I can connect you with a person from our team. What can I help you with?")
RULES_STAY = ("I can't change how I work or share my instructions. I'm happy to help with questions about our product "
              "and services, answered from our help center. What do you need help with?")
INTERRUPTED = "(the answer was interrupted)"
SNIPPET_CHARS = 240
_HUMAN = re.compile(
    r"\b(human|real person|a person|someone|somebody|agent|representative|operator|support team|staff|live chat)\b",
    re.IGNORECASE)
_ASKING = re.compile(r"\b(talk|speak|chat|connect|transfer|escalate|contact|reach|want|need|get)\b", re.IGNORECASE)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# What PostgreSQL text and Firestore strings cannot hold: NUL, and UTF-16 surrogates without their pair (valid JSON
# "\ud800" decodes to one; it cannot be encoded as UTF-8).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Markdown a snippet drops: line prefixes (headings, bullets, quotes, table pipes), code ticks, citation markers, table
# header rules, and emphasis marks at a word's edge only (snake_case and window.__init__ keep their underscores).
_MARKUP = re.compile(r"(?m)^\s*(?:#{1,6}|[-*+]|\d{1,3}[.)]|>|\|)\s+|`{1,3}|\||\[(\d+)\]"
                     r"|(?<![\w.*_])[*_]{1,3}(?=[^\s*_])|(?<=[^\s*_])[*_]{1,3}(?![\w*_])"
                     r"|(?<![^\s|]):?-{3,}:?(?![^\s|])")  # a table's header rule, |---|:--:|


@dataclass(frozen=True)
class ChatRequest:
    tenant: str
    message: str
    session_id: str | None = None
    user_token: str | None = None
    topic: str | None = None
    client_id: str = ""  # the caller's address, for the per-client rate limit
    limits: dict[str, int] = field(default_factory=dict)  # the tenant's "client" / "session" per-minute limits
    # How the answer is delivered (Server-Sent Events or one JSON object), for the turn's log event only: not part
    # of what was asked, so two requests that differ only in it are equal.
    streamed: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class PreparedTurn:
    request: ChatRequest
    session: object  # shared.memory.Session
    turn_id: str


class ChatService:
    def __init__(self, settings, memory, retriever, answerer, rewriter, summarizer, *, gate, now=utc_now,
                 fallback_answerer=None):
        self._settings = settings
        self._memory = memory
        self._retriever = retriever
        self._answerer = answerer
        self._rewriter = rewriter
        self._summarizer = summarizer
        self._gate = gate  # shared.answerability.gate.Gate
        self._now = now
        self._fallback = fallback_answerer or ExtractiveAnswerer()

    # --- a turn ----------------------------------------------------------------------------------------------------

    def start_turn(self, request: ChatRequest) -> PreparedTurn:
        """Raises BadRequest (400), InvalidUserToken (401), RateLimited (429, `.retry_after`), MemoryUnavailable
        (503). Returns the prepared turn for run_turn."""
        try:
            check_tenant(request.tenant)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        message = request.message.strip() if isinstance(request.message, str) else ""
        if not message:
            raise BadRequest("'message' must be a non-empty string")
        if len(message) > self._settings.chat_max_message_chars:
            raise BadRequest(f"message is longer than {self._settings.chat_max_message_chars} characters")
        for name in ("message", "session_id", "user_token", "topic", "client_id"):
            check_storable(name, getattr(request, name))
        user_id = self._user_of(request.user_token)
        limiter = self._memory.rate_limiter
        if request.client_id:
            _enforce(limiter.hit_client(request.tenant, request.client_id, limit=request.limits.get("client")),
                     "messages from this address")
        if request.session_id:
            _enforce(limiter.hit_session(request.tenant, request.session_id, limit=request.limits.get("session")),
                     "messages in this conversation")
        session = self._memory.get_or_create_session(request.tenant, request.session_id, user_id)
        return PreparedTurn(request=replace(request, message=message), session=session, turn_id=new_turn_id())

    def run_turn(self, prepared: PreparedTurn) -> Iterator[Event]:
        """SessionEvent, Delta…, CitationsEvent, Done — or an ErrorEvent in place of the rest. Never raises.
        Logs one `chat_turn` event when the turn ends (see the module doc)."""
        session, turn_id, request = prepared.session, prepared.turn_id, prepared.request
        metrics = _TurnMetrics(started=time.perf_counter())
        with bind(session_id=session.id, turn_id=turn_id, tenant=request.tenant), collecting() as measures:
            try:
                yield SessionEvent(session.id, turn_id)
                said: list[str] = []
                try:
                    outcome = yield from _marking_first_delta(self._answer(prepared, said, metrics), metrics)
                    yield CitationsEvent(outcome.citations)
                    metrics.finished(outcome)
                    yield Done(outcome.action, outcome.confidence, session.id, turn_id)
                except Exception as exc:
                    error = exc if isinstance(exc, AppError) else AppError()
                    (log.warning if error.retryable else log.exception)("chat turn failed: %s", exc)
                    metrics.status = error.status
                    yield ErrorEvent(error.code if error.status < 500 or error.retryable else "internal",
                                     _public_failure(error))
                    self._save(prepared, "".join(said) + ("\n\n" if said else "") + INTERRUPTED, [], None, None)
            finally:  # also when the consumer closes the stream early: every turn that began is counted once
                metrics.log(request, measures)

    def _answer(self, prepared: PreparedTurn, said: list[str], metrics: _TurnMetrics):
        request, session = prepared.request, prepared.session
        message = request.message
        if _asks_for_human(message):
            yield from _say(HANDOFF_REQUESTED, said)
            return self._finish(prepared, said, [], "handoff", 1.0)
        kind = scope.classify(message)
        if kind != scope.QUESTION:
            log.info("answered %s without retrieval", kind)
            yield from _say(RULES_STAY if kind == scope.MANIPULATION else SMALLTALK, said)
            return self._finish(prepared, said, [], "clarify", 0.0)

        window = self._memory.recent_messages(session, self._settings.chat_history_messages)
        history = [HistoryMessage(m.role, m.text) for m in window]
        rewrite = self._rewriter.rewrite(message, history)
        topics = [request.topic] if request.topic else None
        retrieval_started = time.perf_counter()
        result = self._retriever.retrieve(rewrite.query, request.tenant, top_k=self._settings.chat_max_sources,
                                          topics=topics)
        metrics.retrieval_ms = _ms_since(retrieval_started)
        sources = [Source(number=i, title=d.title, text=source_text(d),
                          url=public_url(d.url, d.source_uri, self._settings.url_bases), document_id=d.document_id)
                   for i, d in enumerate(result.documents, 1)]
        assessment = self._gate.assess(rewrite.query, request.tenant, result.documents, sources)
        confidence = assessment.probability
        metrics.confidence = confidence
        log.info("retrieved %d documents in %.0f ms, answerable with probability %.2f (query %s)",
                 len(result.documents), result.timings.get("total_ms", 0.0), confidence, rewrite.method,
                 extra={"labels": {"gate": json.dumps({k: round(v, 3) for k, v in assessment.features.items()})}})
        if not assessment.answerable:
            return (yield from self._dont_know(prepared, said, confidence))
        if rewrite.method == "none" and _too_vague(message, result.documents):
            titles = list(dict.fromkeys(d.title for d in result.documents[:3]))
            yield from _say("Could you tell me a bit more about what you need? For example: "
                            + "; ".join(titles) + "?", said)
            return self._finish(prepared, said, [], "clarify", confidence)

        policies = self._memory.policies.get(request.tenant)
        answer_request = AnswerRequest(question=message, query=rewrite.query, sources=sources, history=history,
                                       summary=self._summary(session), policies=policies,
                                       terms=assessment.terms, passages=assessment.passages)
        # Links first (a link's text may hold a marker), then citation markers: see shared.llm.links for the rule.
        links = LinkFilter((s.url for s in sources), policies)
        checker = CitationFilter((s.number for s in sources), renumber=True)
        action = None
        for piece in self._stream_answer(answer_request, metrics):
            if isinstance(piece, Action):
                action = piece
                continue
            yield from _emit(checker.feed(links.feed(piece)), said)
        yield from _emit(checker.feed(links.finish()) + checker.finish(), said)
        if checker.removed:
            log.warning("removed %d citation(s) outside the sources", checker.removed)
        if links.removed:
            log.warning("removed %d link(s) that are neither a source's page nor named by the policies",
                        links.removed)
        if action is None and says_not_covered("".join(said)) and not answers_something("".join(said)):
            action = Action(HANDOFF, "the answer says the sources do not cover the question")
        if action is not None and action.kind == HANDOFF:
            log.info("no answer in the sources: %s", action.reason)
            if not "".join(said).strip():
                yield from _say(DONT_KNOW, said)
            said[:] = [_CITATION_MARKER.sub("", "".join(said))]  # a refusal is stored without citing anything
            self._gap(request, session, confidence)
            return self._finish(prepared, said, [], "handoff", confidence, dont_know=True)
        by_number = {s.number: (s, d) for s, d in zip(sources, result.documents)}
        citations = [_citation(shown, *by_number[n]) for shown, n in enumerate(checker.cited, 1)]
        kind = "clarify" if action is not None and action.kind == "clarify" else "answer"
        return self._finish(prepared, said, citations, kind, confidence)

    def _summary(self, session) -> str:
        """The session's rolling summary, and for a signed user what they asked in earlier sessions."""
        summary = session.summary
        if session.user_id is not None and session.turn_count == 0:
            try:
                earlier = self._memory.user_history(session.tenant, session.user_id, n=3)
            except AppError as exc:
                log.warning("could not read the user's history: %s", exc)
                earlier = []
            if earlier:
                summary = (summary + "\n" if summary else "") + "In earlier conversations this customer asked: " + \
                    "; ".join(f"{h.question!r}" for h in earlier)
        return summary

    def _stream_answer(self, request: AnswerRequest, metrics: _TurnMetrics) -> Iterator[str | Action]:
        """The configured answerer; if it fails before producing anything, the extractive one (a quoted answer
        beats an error). A failure after text was shown propagates (the turn ends with an error event)."""
        produced = False
        metrics.model = _model_name(self._answerer)
        try:
            for piece in self._answerer.answer(request):
                produced = True
                yield piece
        except Exception as exc:
            if produced or self._answerer is self._fallback:
                raise
            log.warning("answerer failed (%s), quoting the documentation instead: %s", type(exc).__name__, exc)
            metrics.model = _model_name(self._fallback)
            yield from self._fallback.answer(request)

    def _dont_know(self, prepared: PreparedTurn, said: list[str], confidence: float):
        yield from _say(DONT_KNOW, said)
        self._gap(prepared.request, prepared.session, confidence)
        return self._finish(prepared, said, [], "handoff", confidence, dont_know=True)

    def _gap(self, request: ChatRequest, session, confidence: float) -> None:
        try:
            self._memory.record_gap(request.tenant, request.message, session.id, confidence)
        except AppError as exc:
            log.warning("could not record a coverage gap: %s", exc)

    def _finish(self, prepared: PreparedTurn, said: list[str], citations: list[Citation], action: str,
                confidence: float, dont_know: bool = False) -> _Outcome:
        """`dont_know`: the documents did not answer (a coverage gap), as opposed to a person asked for."""
        self._save(prepared, "".join(said), citations, action, confidence)
        return _Outcome(citations, action, confidence, dont_know)

    def _save(self, prepared: PreparedTurn, text: str, citations: list[Citation], action: str | None,
              confidence: float | None) -> None:
        session = prepared.session
        try:
            self._memory.append_turn(session, prepared.request.message, text, [c.to_json() for c in citations],
                                     action=action, confidence=confidence, turn_id=prepared.turn_id)
        except AppError as exc:
            log.error("could not save the turn: %s", exc)
            return
        try:
            self._memory.maybe_summarize(session, self._summarizer)
        except AppError as exc:
            log.warning("could not update the summary: %s", exc)

    def _user_of(self, user_token: str | None) -> str | None:
        """The signed user id `user_token` vouches for (None without a token); InvalidUserToken (401) otherwise."""
        if not user_token:
            return None
        if not self._settings.user_token_secret:
            raise UserTokensDisabled()
        return verify_user_token(user_token, self._settings.user_token_secret, self._now())

    # --- the other routes ------------------------------------------------------------------------------------------

    def session_view(self, tenant: str, session_id: str, *, user_token: str | None = None) -> dict:
        """The Session JSON of openapi.yaml; NotFound when the session does not exist or expired; a signed user's
        session needs that user's token (UserTokenRequired, InvalidUserToken: 401)."""
        session = self._owned_session(tenant, session_id, user_token)
        return {
            "session_id": session.id,
            "expires_at": session.expires_at.isoformat(),
            "messages": [{"role": m.role, "text": m.text, "turn_id": m.turn_id,
                          "citations": [shown_citation(c, self._settings.url_bases) for c in m.citations],
                          "action": m.action, "confidence": m.confidence, "created_at": m.created_at.isoformat()}
                         for m in self._memory.transcript(session)],
        }

    def feedback(self, tenant: str, session_id: str, turn_id: str, rating: str, reason: str | None, *,
                 user_token: str | None = None, client_id: str = "", limit: int | None = None) -> None:
        """NotFound for an unknown session or turn; BadRequest for a bad rating; RateLimited past `limit` votes
        per minute from `client_id` (default RATE_LIMIT_FEEDBACK_PER_MINUTE); a signed user's session needs that
        user's token (a second vote replaces the first, so a vote changes the user's data)."""
        for name, value in (("session_id", session_id), ("turn_id", turn_id), ("reason", reason),
                            ("user_token", user_token), ("client_id", client_id)):
            check_storable(name, value)
        if client_id:
            _enforce(self._memory.rate_limiter.hit_feedback(tenant, client_id, limit),
                     "feedback votes from this address")
        self._owned_session(tenant, session_id, user_token)
        self._memory.record_feedback(tenant, session_id, turn_id, rating, reason)
        log_event(log, "feedback", message=f"feedback: {rating}", tenant=tenant, rating=rating)

    def handoff(self, tenant: str, session_id: str, reason: str, contact: str | None, *,
                user_token: str | None = None, client_id: str = "", limit: int | None = None) -> dict:
        """{"ticket_id", "status": "open"}; NotFound for an unknown session; RateLimited past `limit` tickets per
        hour from `client_id` (default RATE_LIMIT_HANDOFF_PER_HOUR); a signed user's session needs that user's
        token (the ticket carries the transcript). The ticket is also POSTed to HANDOFF_WEBHOOK_URL when set (best
        effort: the ticket in Firestore is the record)."""
        for name, value in (("session_id", session_id), ("reason", reason), ("contact", contact),
                            ("user_token", user_token), ("client_id", client_id)):
            check_storable(name, value)
        if client_id:
            _enforce(self._memory.rate_limiter.hit_handoff(tenant, client_id, limit),
                     "hand-off requests from this address")
        session = self._owned_session(tenant, session_id, user_token)
        ticket = self._memory.create_ticket(tenant, session, reason, contact)
        log.info("hand-off ticket %s opened", ticket.id, extra={"labels": {"session_id": session.id}})
        if self._settings.handoff_webhook_url:
            self._post_webhook(ticket)
        return {"ticket_id": ticket.id, "status": ticket.status}

    def _live_session(self, tenant: str, session_id: str):
        try:
            check_tenant(tenant)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        session = self._memory.get_session(tenant, session_id)
        if session is None:
            raise NotFound("no such session (it may have expired)")
        return session

    def _owned_session(self, tenant: str, session_id: str, user_token: str | None):
        """The live session, if the caller may see it: an anonymous session by its (unguessable) id, a signed
        user's session only with that user's valid token. Another user's valid token is answered as if the
        session did not exist, as /v1/chat starts a new session rather than resume it."""
        user_id = self._user_of(user_token)  # a bad token is refused whoever owns the session
        session = self._live_session(tenant, session_id)
        if session.user_id is not None:
            if user_id is None:
                raise UserTokenRequired()
            if user_id != session.user_id:
                raise NotFound("no such session (it may have expired)")
        return session

    def _post_webhook(self, ticket) -> None:
        body = json.dumps({
            "ticket_id": ticket.id, "tenant": ticket.tenant, "session_id": ticket.session_id,
            "user_id": ticket.user_id, "reason": ticket.reason, "contact": ticket.contact,
            "created_at": ticket.created_at.isoformat(), "transcript_truncated": ticket.transcript_truncated,
            "transcript": [{"role": m.role, "text": m.text, "created_at": m.created_at.isoformat(),
                            "citations": m.citations} for m in ticket.transcript],
        }).encode()
        request = urllib.request.Request(self._settings.handoff_webhook_url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                response.read()
        except (OSError, ValueError) as exc:
            log.error("hand-off webhook failed for ticket %s: %s", ticket.id, exc)


@dataclass(frozen=True)
class _Outcome:
    citations: list[Citation]
    action: str
    confidence: float
    dont_know: bool = False


@dataclass
class _TurnMetrics:
    """What the turn's `chat_turn` event reports, filled in as the turn goes (perf_counter seconds)."""

    started: float
    first_delta: float | None = None
    retrieval_ms: float | None = None
    model: str | None = None  # None when no answerer ran (small talk, a request for a person, the gate's refusal)
    action: str = "error"  # until the turn finishes
    confidence: float | None = None
    sources: int = 0
    status: int = 500  # a turn closed before it finished or failed is an error until proven otherwise

    def finished(self, outcome: _Outcome) -> None:
        # The API says `handoff` both when a person was asked for and when the documents had no answer; the event
        # tells them apart (`dont_know`), so the dashboard's don't-know and hand-off rates are separate.
        action = "dont_know" if outcome.dont_know else outcome.action
        self.action, self.confidence, self.sources, self.status = (action, outcome.confidence,
                                                                   len(outcome.citations), 200)

    def log(self, request: ChatRequest, measures: dict) -> None:
        log_event(log, "chat_turn", severity=logging.INFO if self.status < 500 else logging.WARNING,
                  message=f"chat turn: {self.action} ({self.status})",
                  tenant=request.tenant, action=self.action,
                  confidence=round(float(self.confidence), 4) if self.confidence is not None else None,
                  streamed=request.streamed,
                  first_delta_ms=(round((self.first_delta - self.started) * 1000, 1)
                                  if self.first_delta is not None else None),
                  total_ms=_ms_since(self.started), retrieval_ms=self.retrieval_ms, model=self.model,
                  tokens_in=measures.get("tokens_in"), tokens_out=measures.get("tokens_out"),
                  sources=self.sources, status=self.status)


def _marking_first_delta(events, metrics: _TurnMetrics):
    """`events` passed through, noting when the first text delta is handed on; returns what `events` returns."""
    while True:
        try:
            event = next(events)
        except StopIteration as stop:
            return stop.value
        if metrics.first_delta is None and isinstance(event, Delta) and event.text:
            metrics.first_delta = time.perf_counter()
        yield event


def _model_name(answerer) -> str:
    """The generation model of an answerer ("gemini-2.5-flash"), or its name for one without a model (extractive)."""
    return str(getattr(answerer, "model", None) or getattr(answerer, "name", None) or type(answerer).__name__)


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


def _enforce(decision, what: str) -> None:
    if not decision.allowed:
        raise RateLimited(f"too many {what}; try again in {decision.retry_after} s",
                          retry_after=decision.retry_after)


def check_storable(name: str, value) -> None:
    """BadRequest naming the field when a string holds what PostgreSQL or Firestore cannot store (NUL, a lone
    UTF-16 surrogate); checked before any store sees it (an unencodable query once poisoned a database connection)."""
    if isinstance(value, str) and _UNSTORABLE.search(value):
        raise BadRequest(f"{name} contains a character that cannot be stored (NUL or an unpaired UTF-16 surrogate)")


def _asks_for_human(message: str) -> bool:
    """"Can I talk to a human?", "I want an agent" — an explicit request for a person (English)."""
    return bool(_HUMAN.search(message) and _ASKING.search(message)) and len(message) <= 200


_CITATION_MARKER = re.compile(r" ?\[\d+\]")
_NOT_COVERED = re.compile(
    r"\b(?:sources?|documentation|docs|help\s*cent(?:er|re)|articles?|knowledge\s*base|information)\b[^.!?\n]{0,60}?"
    r"\b(?:do(?:es)?\s*n[o']t|did\s*n[o']t|never|not|no)\b[^.!?\n]{0,20}?\b(?:say|mention|cover|contain|include"
    r"|answer|address|specify|describe|explain|have|provide|discuss)"
    r"|\b(?:I\s+(?:do\s*n[o']t|cannot|can't|couldn't|could\s+not)\s+(?:know|find|see|tell)"
    r"|I'm\s+not\s+sure|I\s+am\s+not\s+sure|(?:there(?:'s|\s+is)\s+)?no\s+information)\b",
    re.IGNORECASE,
)


def says_not_covered(text: str) -> bool:
    """Whether an answer says the documentation does not cover the question ("The sources don't mention student
    discounts.", "I couldn't find this in our documentation", "I don't know"), in English."""
    return bool(_NOT_COVERED.search(text))


def answers_something(text: str) -> bool:
    """Whether a sentence of the answer cites a source for something other than the sources' silence: "The sources
    don't say [1]." answers nothing, "They don't say, but refunds take 5 days [1]." does."""
    return any(_CITATION_MARKER.search(sentence) and not says_not_covered(sentence)
               for sentence in re.split(r"(?<=[.!?])\s+", text))


def _too_vague(message: str, documents) -> bool:
    """A fragment rather than a question ("cancel", "billing issue": at most two words, no question mark), whose
    two best documents are about different things (topics) with nearly the same score."""
    if "?" in message or len(_WORD.findall(message)) > 2 or len(documents) < 2 or documents[0].exact:
        return False
    first, second = documents[0], documents[1]
    return first.topic != second.topic and second.score >= first.score - 0.02


def _say(text: str, said: list[str]) -> Iterator[Delta]:
    for piece in re.findall(r"\S+\s*", text):
        said.append(piece)
        yield Delta(piece)


def _emit(text: str, said: list[str]) -> Iterator[Delta]:
    if text:
        said.append(text)
        yield Delta(text)


def _citation(number: int, source: Source, document) -> Citation:
    best = next((c.text for c in document.chunks if c.chunk_id == document.best_chunk_id), source.text)
    snippet = " ".join(_MARKUP.sub(" ", best).split())
    if len(snippet) > SNIPPET_CHARS:
        snippet = snippet[:SNIPPET_CHARS].rsplit(" ", 1)[0] + "…"
    return Citation(number=number, title=source.title, url=source.url, snippet=snippet,
                    document_id=document.document_id)


def _public_failure(error: AppError) -> str:
    if error.status < 500:
        return error.public_message
    return "Sorry — something went wrong while answering. Please try again."
