"""The database port: the Cloud SQL connector path (with a recording stand-in for Connector, since no Cloud SQL is
reachable here) and outage handling against the real PostgreSQL."""

from __future__ import annotations

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
