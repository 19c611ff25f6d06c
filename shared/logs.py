"""Structured logs Cloud Logging can read: one JSON object per line on stderr.

Each record carries `severity`, `message`, `logging.googleapis.com/trace` (from the request's
X-Cloud-Trace-Context) and `logging.googleapis.com/labels` (function, document, version, session...).
Labels are bound per request with `bind(...)`; no message text or personal data at INFO.

Events (`log_event(logger, "chat_turn", total_ms=812.5, ...)`) put their fields at the top level of the line, so
Cloud Logging keeps them in `jsonPayload` with their JSON types (numbers stay numbers for log-based distribution
metrics); a field never replaces one of the record's own keys (RESERVED) and a None field is left out.
`collecting()` and `note(...)` let code deep in a call (the Gemini answerer's token counts) add measures to the
event its caller logs at the end. The events, the contract with the log-based metrics of the monitoring:

    chat_turn       chat, one per turn (failed ones too): tenant, action, confidence, streamed, first_delta_ms,
                    total_ms, retrieval_ms, model, tokens_in, tokens_out, sources, status
    feedback        chat, one per vote: tenant, rating
    ingest_version  ingest and embed, one per version outcome: tenant, stage, outcome, reason (failures), document_id,
                    bytes, chunks, duration_ms
    sync_run        scrape, one per finished sync run: tenant, source, run, status, the run's counters, duration_s
    reconcile       scrape, one per reconciliation: the summary's keys (objects, documents, ingested, deleted, ...)
    model_error     any function, one per failed Gemini call: provider, operation, code, error, retryable
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import math
import sys
import time
from collections.abc import Iterator

_labels: contextvars.ContextVar[dict] = contextvars.ContextVar("log_labels", default={})
_trace: contextvars.ContextVar[str] = contextvars.ContextVar("log_trace", default="")
_measures: contextvars.ContextVar[dict | None] = contextvars.ContextVar("log_measures", default=None)
_configured = False

TRACE_KEY = "logging.googleapis.com/trace"
LABELS_KEY = "logging.googleapis.com/labels"
# Keys of the record itself: an event field of the same name is dropped, never written over them (a field called
# "severity" would change how Cloud Logging files the line).
RESERVED = frozenset({"severity", "message", "time", "logger", "labels", "trace", "stack_trace", "event",
                      TRACE_KEY, LABELS_KEY})

_SEVERITY = {"DEBUG": "DEBUG", "INFO": "INFO", "WARNING": "WARNING", "ERROR": "ERROR", "CRITICAL": "CRITICAL"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: severity, message, time, logger, labels, trace, an event's fields, stack trace."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "severity": _SEVERITY.get(record.levelname, "DEFAULT"),
            "message": record.getMessage(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "logger": record.name,
        }
        labels = {**_labels.get(), **getattr(record, "labels", {})}
        if labels:
            entry[LABELS_KEY] = {k: str(v) for k, v in labels.items()}
        if trace := _trace.get():
            entry[TRACE_KEY] = trace
        event = getattr(record, "event", None)
        if isinstance(event, str) and event:
            entry["event"] = event
        for key, value in (getattr(record, "fields", None) or {}).items():
            if key not in RESERVED and (value := _json_value(value)) is not None:
                entry[key] = value
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _json_value(value):
    """A field as JSON keeps it: None stays out; NaN and infinities (which json.dumps would write as bare NaN, making
    the line unparseable, so Cloud Logging would keep it as text) stay out too; anything else JSON lacks is text."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple, dict)):
        return value
    return str(value)


def log_event(logger: logging.Logger, event: str, *, severity: int = logging.INFO, message: str = "",
              labels: dict | None = None, exc_info=None, **fields) -> None:
    """Log one structured event: `event` and `fields` become top-level keys of the JSON line (jsonPayload.*)."""
    extra: dict = {"event": event, "fields": fields}
    if labels:
        extra["labels"] = labels
    logger.log(severity, message or event, extra=extra, exc_info=exc_info)


def log_model_error(logger: logging.Logger, operation: str, exc: BaseException, *, retryable: bool,
                    severity: int = logging.WARNING, provider: str = "gemini") -> None:
    """The `model_error` event of one failed model call: the HTTP status the service answered (0 without one, e.g.
    a connection failure), the exception's class and whether a retry can help. WARNING when the call is retried or
    a fallback answers instead, ERROR when the turn or batch fails."""
    code = getattr(exc, "code", None)
    log_event(logger, "model_error", severity=severity,
              message=f"{provider} {operation} failed: {type(exc).__name__}",
              provider=provider, operation=operation,
              code=code if isinstance(code, int) and not isinstance(code, bool) else 0,
              error=type(exc).__name__, retryable=bool(retryable))


@contextlib.contextmanager
def collecting() -> Iterator[dict]:
    """Gather the measures `note(...)` records inside the block (in this context) into the dict it yields."""
    measures: dict = {}
    token = _measures.set(measures)
    try:
        yield measures
    finally:
        _measures.reset(token)


def note(**measures) -> None:
    """Record measures for the enclosing `collecting()` block (the latest value of a name wins); a no-op outside one."""
    target = _measures.get()
    if target is not None:
        target.update({k: v for k, v in measures.items() if v is not None})


def setup_logging(function: str, level: str = "INFO") -> None:
    """Install the JSON handler on the root logger once per process."""
    global _configured
    if _configured:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("urllib3", "httpx", "httpcore", "google.auth", "sentence_transformers"):
        logging.getLogger(noisy).setLevel("WARNING")
    _labels.set({"function": function})
    _configured = True


@contextlib.contextmanager
def bind(**labels):
    """Add labels to every record logged inside the block (per request; thread- and context-safe)."""
    token = _labels.set({**_labels.get(), **{k: v for k, v in labels.items() if v is not None}})
    try:
        yield
    finally:
        _labels.reset(token)


def set_trace(header: str | None, project: str) -> None:
    """Take the trace id from an `X-Cloud-Trace-Context: TRACE/SPAN;o=1` header."""
    if header:
        _trace.set(f"projects/{project}/traces/{header.split('/')[0]}")
