"""The conversation service behind `POST /v1/chat` and the session, feedback and hand-off routes.

    start_turn(request)  validate, verify the signed user id, rate-limit, load or create the session — every refusal
                         is an AppError raised before a byte of the response is sent (so it can be a 4xx)
    run_turn(prepared)   rewrite a follow-up -> retrieve (hybrid) -> decide (answer | clarify | handoff)
                         -> answer (Gemini or extractive) -> check citations -> save the turn; yields events and
                         never raises: a failure after streaming began is an `error` event
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from shared.chat.events import Event


@dataclass(frozen=True)
class ChatRequest:
    tenant: str
    message: str
    session_id: str | None = None
    user_token: str | None = None
    topic: str | None = None
    client_id: str = ""  # the caller's address, for the per-client rate limit


class ChatService:  # implementation in progress (issue #3)
    def start_turn(self, request: ChatRequest):
        """Raises BadRequest (400), InvalidUserToken (401), RateLimited (429, `.retry_after`), MemoryUnavailable
        (503). Returns an opaque prepared turn for run_turn."""
        raise NotImplementedError

    def run_turn(self, prepared) -> Iterator[Event]:
        """SessionEvent, Delta…, CitationsEvent, Done — or an ErrorEvent in place of the rest. Never raises."""
        raise NotImplementedError

    def session_view(self, tenant: str, session_id: str) -> dict:
        """The Session JSON of openapi.yaml; NotFound when the session does not exist or expired."""
        raise NotImplementedError

    def feedback(self, tenant: str, session_id: str, turn_id: str, rating: str, reason: str | None) -> None:
        """NotFound for an unknown session or turn; BadRequest for a bad rating."""
        raise NotImplementedError

    def handoff(self, tenant: str, session_id: str, reason: str, contact: str | None) -> dict:
        """{"ticket_id", "status": "open"}; NotFound for an unknown session."""
        raise NotImplementedError
