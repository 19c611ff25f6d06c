"""Structured log events (shared/logs.py): an event's fields land top-level in the JSON line with their JSON types,
never over the record's own keys; None and non-finite numbers stay out; `collecting`/`note` carry measures up."""

import json
import logging
import math

from shared import logs
from shared.logs import JsonFormatter, bind, collecting, log_event, log_model_error, note


class Lines(logging.Handler):
    """The JSON lines a logger writes, formatted as on stderr and parsed back."""

    def __init__(self):
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))

    @property
    def entries(self) -> list[dict]:
        return [json.loads(line) for line in self.lines]


def capture(name: str) -> tuple[logging.Logger, Lines]:
    logger = logging.getLogger(name)
    handler = Lines()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger, handler


def test_event_fields_are_top_level_with_their_json_types():
    logger, lines = capture("tests.obs.types")
    log_event(logger, "chat_turn", message="chat turn: answer", tenant="acme", total_ms=812.5, sources=2,
              streamed=True, tokens_in=None, ratio=math.nan, tags=["a", 1])
    [entry] = lines.entries
    assert entry["event"] == "chat_turn" and entry["severity"] == "INFO" and entry["message"] == "chat turn: answer"
    assert entry["tenant"] == "acme"
    assert isinstance(entry["total_ms"], float) and entry["total_ms"] == 812.5
    assert isinstance(entry["sources"], int) and entry["sources"] == 2
    assert entry["streamed"] is True
    assert entry["tags"] == ["a", 1]
    assert "tokens_in" not in entry  # None is dropped
    assert "ratio" not in entry  # NaN would make the line invalid JSON (Cloud Logging would keep it as text)
    assert "NaN" not in lines.lines[0]


def test_fields_cannot_overwrite_the_records_own_keys():
    logger, lines = capture("tests.obs.reserved")
    logs.set_trace("105445aa7843bc8bf206b12000100000/1;o=1", "proj")
    with bind(function="chat"):
        # log_event's own parameters keep `severity` and `message` out of the fields; the formatter guards the rest
        # (and any record built with extra={"fields": ...}).
        logger.warning("feedback: up", extra={"event": "feedback", "fields": {
            "severity": "DEBUG", "message": "spoofed", "time": "never", "logger": "x", "labels": {"a": 1},
            "trace": "t", "event": "other", "stack_trace": "no", "logging.googleapis.com/labels": {"b": "2"},
            "logging.googleapis.com/trace": "projects/p/traces/x", "rating": "up"}})
    [entry] = lines.entries
    assert entry["severity"] == "WARNING" and entry["message"] == "feedback: up" and entry["event"] == "feedback"
    assert entry["logger"] == "tests.obs.reserved" and entry["time"].endswith("Z")
    assert entry["logging.googleapis.com/labels"] == {"function": "chat"}
    assert entry["logging.googleapis.com/trace"] == "projects/proj/traces/105445aa7843bc8bf206b12000100000"
    assert "labels" not in entry and "trace" not in entry and "stack_trace" not in entry
    assert entry["rating"] == "up"  # an ordinary field still lands


def test_a_plain_record_has_no_event_key_and_objects_become_text():
    logger, lines = capture("tests.obs.plain")
    logger.info("plain %s", "line")
    log_event(logger, "sync_run", when=object.__new__(type("Stamp", (), {"__str__": lambda self: "stamp"})))
    plain, event = lines.entries
    assert plain["message"] == "plain line" and "event" not in plain
    assert event["message"] == "sync_run" and event["when"] == "stamp"


def test_model_error_fields():
    class APIError(Exception):
        code = 503

    logger, lines = capture("tests.obs.model")
    log_model_error(logger, "embed", APIError("overloaded"), retryable=True)
    log_model_error(logger, "stream", ConnectionError("reset"), retryable=True, severity=logging.ERROR)
    retried, failed = lines.entries
    assert (retried["event"], retried["severity"], retried["provider"], retried["operation"]) == (
        "model_error", "WARNING", "gemini", "embed")
    assert (retried["code"], retried["error"], retried["retryable"]) == (503, "APIError", True)
    assert (failed["severity"], failed["code"], failed["error"]) == ("ERROR", 0, "ConnectionError")
    assert "overloaded" not in lines.lines[0]  # the exception's text may hold a prompt: only its class is logged


def test_note_records_into_the_enclosing_collection_only():
    note(tokens_in=5)  # outside a collection: nothing to record into, and no error
    with collecting() as outer:
        note(tokens_in=10, tokens_out=None)
        with collecting() as inner:
            note(tokens_out=3)
        note(tokens_in=12)
    assert outer == {"tokens_in": 12} and inner == {"tokens_out": 3}
