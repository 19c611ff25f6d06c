"""Structured logs Cloud Logging can read: one JSON object per line on stderr.

Each record carries `severity`, `message`, `logging.googleapis.com/trace` (from the request's
X-Cloud-Trace-Context) and `logging.googleapis.com/labels` (function, document, version, session...).
Labels are bound per request with `bind(...)`; no message text or personal data at INFO.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time

_labels: contextvars.ContextVar[dict] = contextvars.ContextVar("log_labels", default={})
_trace: contextvars.ContextVar[str] = contextvars.ContextVar("log_trace", default="")
_configured = False

_SEVERITY = {"DEBUG": "DEBUG", "INFO": "INFO", "WARNING": "WARNING", "ERROR": "ERROR", "CRITICAL": "CRITICAL"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "severity": _SEVERITY.get(record.levelname, "DEFAULT"),
            "message": record.getMessage(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "logger": record.name,
        }
        labels = {**_labels.get(), **getattr(record, "labels", {})}
        if labels:
            entry["logging.googleapis.com/labels"] = {k: str(v) for k, v in labels.items()}
        if trace := _trace.get():
            entry["logging.googleapis.com/trace"] = trace
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


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
