"""`python -m infra.migrate --grant`: a function's database user may read and write rows, and nothing more."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit, urlunsplit

import pg8000.dbapi
import pytest

from infra.migrate import grant_privileges
from shared.db import _direct_connect_args


def _as_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    netloc = user + "@" + parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
def function_user(db):
    name = f"fn_{uuid.uuid4().hex[:8]}"
    with db.autocommit() as cur:
        cur.execute(f'CREATE ROLE "{name}" LOGIN')
    return name


def test_granted_user_reads_and_writes_rows_but_cannot_change_the_schema(database_url, db, function_user):
    grant_privileges(db, [function_user])
    grant_privileges(db, [function_user])  # idempotent: a second deploy grants again without error
    conn = pg8000.dbapi.connect(**_direct_connect_args(_as_user(database_url, function_user)))
    try:
        cur = conn.cursor()
        cur.execute("INSERT INTO sync_sources (tenant, name, kind, topic, config) VALUES ('default', 'g', 'website',"
                    " 'docs', '{}')")
        cur.execute("SELECT count(*) FROM sync_sources")
        assert cur.fetchone()[0] == 1
        conn.commit()
        with pytest.raises(pg8000.dbapi.DatabaseError, match="permission denied|must be owner"):
            cur.execute("DROP TABLE sync_sources")
        conn.rollback()
        with pytest.raises(pg8000.dbapi.DatabaseError, match="permission denied"):
            cur.execute("CREATE TABLE intruder (id int)")
        conn.rollback()
    finally:
        conn.close()


def test_tables_created_by_later_migrations_are_granted_too(database_url, db, function_user):
    grant_privileges(db, [function_user])
    with db.autocommit() as cur:
        cur.execute("CREATE TABLE later_table (id serial PRIMARY KEY, note text)")
    conn = pg8000.dbapi.connect(**_direct_connect_args(_as_user(database_url, function_user)))
    try:
        cur = conn.cursor()
        cur.execute("INSERT INTO later_table (note) VALUES ('x') RETURNING id")  # the sequence is granted too
        assert cur.fetchone()[0] == 1
        conn.commit()
    finally:
        conn.close()


def test_an_ungranted_user_reads_nothing(database_url, function_user):
    conn = pg8000.dbapi.connect(**_direct_connect_args(_as_user(database_url, function_user)))
    try:
        with pytest.raises(pg8000.dbapi.DatabaseError, match="permission denied"):
            conn.cursor().execute("SELECT count(*) FROM sync_sources")
    finally:
        conn.close()


def test_a_user_name_that_is_not_a_name_is_refused(db):
    with pytest.raises(SystemExit, match="not a database user name"):
        grant_privileges(db, ['x"; DROP TABLE documents; --'])


def _as_function_user(database_url: str, user: str):
    from shared.config import Settings
    from shared.db import Database

    return Database(Settings.from_env({"DATABASE_URL": _as_user(database_url, user)}).validate())


def test_pgvector_needs_its_index_built_by_the_owner_before_a_function_user_writes(database_url, db, function_user):
    """VECTOR_BACKEND=pgvector in Cloud SQL: `--vector-dimension` builds the index as the schema's owner; without it,
    the first upsert by a function's user would need to create that index, which its privileges refuse."""
    from shared.models import VectorRecord
    from shared.vectors.pgvector import PgVectorIndex

    grant_privileges(db, [function_user])
    as_function = _as_function_user(database_url, function_user)
    try:
        with pytest.raises(Exception, match="must be owner|permission denied"):
            PgVectorIndex(as_function).upsert("default", [VectorRecord("c1", [0.1, 0.2, 0.3])])

        PgVectorIndex(db).prepare(3)
        index = PgVectorIndex(as_function)
        index.upsert("default", [VectorRecord("c1", [0.1, 0.2, 0.3])])
        assert [m.id for m in index.query("default", [0.1, 0.2, 0.3], top_k=1)] == ["c1"]
    finally:
        as_function.close()
