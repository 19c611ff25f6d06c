"""Which PostgreSQL errors are a document's own failure (recorded, acknowledged) and which stay transient (retried).
The real server's refusals are exercised in tests/integration/test_ingestion.py; this is the classification."""

import pg8000.dbapi
import pytest

from shared.documents import _refused
from shared.errors import DocumentRejected, RejectedByDatabase


def server_error(code: str, message: str = "boom", detail: str = "") -> pg8000.dbapi.DatabaseError:
    """What pg8000 raises for an ErrorResponse: the server's fields by their one-letter codes."""
    fields = {"S": "ERROR", "V": "ERROR", "C": code, "M": message}
    if detail:
        fields["D"] = detail
    return pg8000.dbapi.DatabaseError(fields)


@pytest.mark.parametrize("code, message", [
    ("22P02", "invalid input syntax for type json"),
    ("22P05", "unsupported Unicode escape sequence"),
    ("22021", 'invalid byte sequence for encoding "UTF8": 0x00'),
    ("22003", "value out of range for type bigint"),
    ("54000", "string is too long for tsvector (1048577 bytes, max 1048575 bytes)"),
    ("54001", "stack depth limit exceeded"),
])
def test_data_exceptions_and_program_limits_are_the_documents_failure(code, message):
    with pytest.raises(RejectedByDatabase) as caught, _refused("the document's chunks"):
        raise server_error(code, message, detail="Token \"x\" is invalid.")
    assert isinstance(caught.value, DocumentRejected) and not caught.value.retryable
    assert str(caught.value) == (f"PostgreSQL refused the document's chunks: {message} (Token \"x\" is invalid.) "
                                 f"[SQLSTATE {code}]. Fix or remove that content and upload the file again")


@pytest.mark.parametrize("code", [
    "40001",  # serialization failure
    "40P01",  # deadlock detected
    "57P01",  # admin shutdown
    "57014",  # statement timeout
    "53300",  # too many connections
    "55P03",  # lock not available
    "08006",  # connection failure
    "42P01",  # undefined table: our mistake, not the document's
    "23505",  # unique violation
])
def test_other_server_errors_pass_through_unchanged(code):
    error = server_error(code)
    with pytest.raises(pg8000.dbapi.DatabaseError) as caught, _refused("the document"):
        raise error
    assert caught.value is error


def test_connection_errors_and_odd_arguments_pass_through_unchanged():
    for error in (pg8000.dbapi.InterfaceError("network error"), pg8000.dbapi.DatabaseError("not a dict"),
                  pg8000.dbapi.DatabaseError()):
        with pytest.raises(type(error)) as caught, _refused("the document"):
            raise error
        assert caught.value is error


def test_text_without_a_utf8_encoding_is_the_documents_failure():
    with pytest.raises(RejectedByDatabase, match="the document contains text that has no UTF-8 encoding"), \
            _refused("the document"):
        "refund \ud800".encode("utf-8")
