"""What a chat turn produces, in order: `session`, `delta`…, `citations`, `done` — or `error` once streaming began.

The HTTP layer writes these as Server-Sent Events (`event: <name>` + `data: <json>`) or folds them into one JSON
object (`Accept: application/json`); the service never knows which.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Citation:
    """A numbered source shown with an answer."""

    number: int
    title: str
    url: str  # the page URL when known, else the source path
    source: str  # where the document came from (gs://bucket/path or the crawled URL)
    snippet: str
    document_id: str

    def to_json(self) -> dict:
        return asdict(self)


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
