"""What a chat turn produces, in order: `session`, `delta`…, `citations`, `done` — or `error` once streaming began.

The HTTP layer writes these as Server-Sent Events (`event: <name>` + `data: <json>`) or folds them into one JSON
object (`Accept: application/json`); the service never knows which.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields

from shared.llm.links import public_url


@dataclass(frozen=True)
class Citation:
    """A numbered source shown with an answer. Customers see all of it (the stream, the Session JSON), so it never
    carries where the document is stored: a document without a public page is cited by its title alone."""

    number: int
    title: str
    url: str  # the document's public http(s) page (shared.llm.links.public_url), or ""
    snippet: str
    document_id: str

    def to_json(self) -> dict:
        return asdict(self)


def shown_citation(stored: dict, url_bases: Sequence[tuple[str, str]] = ()) -> dict:
    """A citation saved with a turn, as the Session JSON shows it: the Citation fields only, `url` http(s) or "".
    Turns saved before citations stopped naming the storage path (in `url` and `source`) get the public URL that
    PUBLIC_URL_BASES gives that path now, or none."""
    shown = {f.name: stored.get(f.name) for f in fields(Citation)}
    shown["url"] = public_url(stored.get("url"), stored.get("source"), url_bases)
    return shown


@dataclass(frozen=True)
class SessionEvent:
    session_id: str
    turn_id: str
    name = "session"

    def data(self) -> dict:
        return {"session_id": self.session_id, "turn_id": self.turn_id}


@dataclass(frozen=True)
class Delta:
    text: str
    name = "delta"

    def data(self) -> dict:
        return {"text": self.text}


@dataclass(frozen=True)
class CitationsEvent:
    citations: list[Citation] = field(default_factory=list)
    name = "citations"

    def data(self) -> dict:
        return {"citations": [c.to_json() for c in self.citations]}


@dataclass(frozen=True)
class Done:
    action: str  # answer | clarify | handoff
    confidence: float
    session_id: str
    turn_id: str
    name = "done"

    def data(self) -> dict:
        return {"action": self.action, "confidence": round(self.confidence, 3), "session_id": self.session_id,
                "turn_id": self.turn_id}


@dataclass(frozen=True)
class ErrorEvent:
    code: str
    message: str
    name = "error"

    def data(self) -> dict:
        return {"code": self.code, "message": self.message}


Event = SessionEvent | Delta | CitationsEvent | Done | ErrorEvent


def collect(events) -> dict:
    """Fold a turn's events into the ChatResponse JSON object (`Accept: application/json`). An `error` event
    becomes {"error": {...}} alongside whatever was produced before it."""
    body: dict = {"answer": "", "citations": []}
    parts: list[str] = []
    for event in events:
        if isinstance(event, Delta):
            parts.append(event.text)
        elif isinstance(event, ErrorEvent):
            body["error"] = event.data()
        else:
            body.update(event.data())
    body["answer"] = "".join(parts)
    return body
