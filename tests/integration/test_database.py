"""The database port: the Cloud SQL connector path (with a recording stand-in for Connector, since no Cloud SQL is
reachable here) and outage handling against the real PostgreSQL."""

from __future__ import annotations

import time

import pg8000.dbapi
import pytest

from shared.config import Settings
from shared.db import Database, _direct_connect_args
from shared.errors import DatabaseUnavailable


def test_cloud_sql_instance_connects_through_the_connector_with_iam_auth(database_url, monkeypatch):
    import google.cloud.sql.connector as connector_module

    calls = {}

    class RecordingConnector:
        def __init__(self, **options):
            calls["options"] = options

        def connect(self, instance, driver, **kwargs):
            calls["connect"] = (instance, driver, kwargs)
            return pg8000.dbapi.connect(**_direct_connect_args(database_url))  # the real database behind it

        def close(self):
            calls["closed"] = True

    monkeypatch.setattr(connector_module, "Connector", RecordingConnector)
    settings = Settings.from_env({"CLOUD_SQL_INSTANCE": "proj:europe-west1:kb", "DB_USER": "embed-sa@proj.iam",
                                  "DB_NAME": "knowledge", "DB_IP_TYPE": "private"}).validate()
    db = Database(settings)
    with db.transaction() as cur:
        cur.execute("SELECT count(*) FROM documents")
        assert cur.fetchone()[0] == 0
    db.close()

    assert calls["connect"] == ("proj:europe-west1:kb", "pg8000",
                                {"user": "embed-sa@proj.iam", "db": "knowledge", "enable_iam_auth": True})
    assert calls["options"]["refresh_strategy"] == "LAZY" and calls["options"]["enable_iam_auth"] is True
    assert calls["options"]["ip_type"].name == "PRIVATE" and calls["closed"]


def test_unreachable_database_is_a_retryable_error():
    db = Database(Settings.from_env({"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"}).validate())
    with pytest.raises(DatabaseUnavailable) as caught:
        with db.transaction() as cur:
            cur.execute("SELECT 1")
    assert caught.value.retryable and caught.value.status == 503


def test_a_failed_statement_rolls_back_and_the_connection_is_reused(db):
    with pytest.raises(pg8000.dbapi.DatabaseError):
        with db.transaction() as cur:
            cur.execute("INSERT INTO ingest_events (event_id, event_type, tenant, source_uri, outcome) "
                        "VALUES ('e1', 't', 'default', 'gs://b/x', 'recorded')")
            cur.execute("SELECT * FROM no_such_table")
    with db.transaction() as cur:
        cur.execute("SELECT count(*) FROM ingest_events")
        assert cur.fetchone()[0] == 0  # the insert was rolled back


def test_connections_turn_off_nagles_algorithm(db):
    import socket

    with db.connection() as conn:
        assert conn._usock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def _pooled(db) -> list:
    return list(db._pool.queue)


def test_a_parameter_pg8000_cannot_encode_never_leaves_a_desynchronised_connection_in_the_pool(db):
    # pg8000 sends Parse/Sync and Describe/Sync, then fails to encode a lone surrogate while building Bind, with the
    # Describe's reply still unread on the socket. Pooled, that connection answered every later query with the reply
    # meant for the one before (the chat outage: each question read another's rows).
    with db.transaction() as cur:
        cur.execute("SELECT 1")
    first = _pooled(db)[0]
    with pytest.raises(UnicodeEncodeError):
        with db.transaction() as cur:
            cur.execute("SELECT %s::text", ("refund \ud800",))
    assert first not in _pooled(db)  # closed, not pooled
    for n in range(5):
        with db.transaction() as cur:
            cur.execute("SELECT %s::int, %s::text", (n, f"q{n}"))
            assert [list(r) for r in cur.fetchall()] == [[n, f"q{n}"]]


def test_an_error_in_the_callers_code_closes_the_connection_but_a_server_error_keeps_it(db):
    with db.transaction() as cur:
        cur.execute("SELECT 1")
    kept = _pooled(db)[0]
    with pytest.raises(pg8000.dbapi.DatabaseError):
        with db.transaction() as cur:
            cur.execute("SELECT 1/0")  # 22012, reported by the server: the exchange was read to its end
    assert _pooled(db) == [kept]
    with pytest.raises(KeyError):
        with db.transaction() as cur:
            cur.execute("SELECT 1")
            raise KeyError("a bug between two statements")  # it cannot be told apart from one inside pg8000
    assert _pooled(db) == []
    with db.transaction() as cur:
        cur.execute("SELECT 2")
        assert cur.fetchone() == [2]


def test_a_pooled_connection_with_unread_bytes_is_never_handed_out(db):
    from shared.db import _is_clean

    with db.connection() as conn:
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("LISTEN poke")
        conn.autocommit = False
    listening = _pooled(db)[0]
    with db.transaction() as cur:  # the same connection, reused while clean
        cur.execute("SELECT 1")
    assert _pooled(db) == [listening]
    # A notification arrives on the idle connection: bytes nobody asked for (as a server's shutdown notice would).
    other = Database(db._settings)
    with other.transaction() as cur:
        cur.execute("NOTIFY poke, 'x'")
    other.close()
    deadline = time.monotonic() + 5
    while _is_clean(listening) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _is_clean(listening)
    with db.transaction() as cur:
        cur.execute("SELECT 3")
        assert cur.fetchone() == [3]
    assert listening not in _pooled(db)
