import json
import logging

from shared.logs import JsonFormatter, bind, set_trace


def render(record_message: str, **extra) -> dict:
    record = logging.LogRecord("shared.test", logging.WARNING, __file__, 1, record_message, (), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return json.loads(JsonFormatter().format(record))


def test_one_json_object_with_severity_labels_and_trace():
    set_trace("105445aa7843bc8bf206b12000100000/1;o=1", "proj")
    with bind(function="ingest", document_id="d1", session_id=None):
        entry = render("embed skipped", labels={"outcome": "skipped"})
    assert entry["severity"] == "WARNING" and entry["message"] == "embed skipped"
    assert entry["logging.googleapis.com/trace"] == "projects/proj/traces/105445aa7843bc8bf206b12000100000"
    assert entry["logging.googleapis.com/labels"] == {"function": "ingest", "document_id": "d1", "outcome": "skipped"}


def test_labels_do_not_leak_out_of_the_block():
    with bind(document_id="d1"):
        pass
    assert "document_id" not in render("x").get("logging.googleapis.com/labels", {})
