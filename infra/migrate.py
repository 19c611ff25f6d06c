"""Apply the numbered SQL migrations in infra/migrations, idempotently.

    python -m infra.migrate            # uses DATABASE_URL or CLOUD_SQL_INSTANCE, like the functions
    python -m infra.migrate --status   # list applied and pending migrations
    python -m infra.migrate --grant USER [USER ...]   # then give these database users the functions' privileges
    python -m infra.migrate --vector-dimension 768   # pgvector: fix the dimension and build its index as the owner

Each file runs in its own transaction and is recorded in `schema_migrations`; a file already recorded is skipped,
and a file whose content changed after it was applied is reported as an error (write a new migration instead).
An advisory lock keeps two concurrent runs (two deploys, two test workers) from applying the same file twice.

In Cloud SQL the migrations run as the deployer's IAM database user, which owns the schema; `--grant` gives each
function's IAM database user what the code needs and nothing more: read and write rows (no DDL, no ownership), now
and on the tables later migrations create (default privileges of the migrating user).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import pathlib
import re
import sys

from shared.config import Settings
from shared.db import Database

log = logging.getLogger("infra.migrate")

MIGRATIONS_DIR = pathlib.Path(__file__).with_name("migrations")
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_LOCK_KEY = 7_240_001  # arbitrary, constant: the advisory lock of this command


def migration_files(directory: pathlib.Path = MIGRATIONS_DIR) -> list[tuple[int, pathlib.Path]]:
    files = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise SystemExit(f"migration file {path.name} must be named NNNN_lower_case_name.sql")
        files.append((int(match.group(1)), path))
    numbers = [n for n, _ in files]
    if len(set(numbers)) != len(numbers):
        raise SystemExit("two migration files share a number")
    return files


def apply_migrations(db: Database, directory: pathlib.Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; return the names applied (empty when up to date)."""
    applied_now = []
    with db.connection() as conn:
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            cur.execute("SELECT version, checksum FROM schema_migrations")
            done = dict(cur.fetchall())
            for number, path in migration_files(directory):
                sql = path.read_text()
                checksum = hashlib.sha256(sql.encode()).hexdigest()
                if number in done:
                    if done[number] != checksum:
                        raise SystemExit(f"{path.name} changed after it was applied; add a new migration instead")
                    continue
                conn.autocommit = False
                try:
                    cur.execute(sql)
                    cur.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (number, path.name, checksum),
                    )
                    conn.commit()
                except Exception:
                    conn.rollback()
                    raise
                finally:
                    conn.autocommit = True
                log.info("applied migration %s", path.name)
                applied_now.append(path.name)
        finally:
            cur.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
            conn.autocommit = False
    return applied_now


_ROLE_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,63}$")


def grant_privileges(db: Database, users: list[str]) -> None:
    """Give each database user DML on every table and sequence in `public`, now and for tables created later by the
    user running this (the migrations' owner). Idempotent."""
    with db.connection() as conn:
        conn.autocommit = True
        cur = conn.cursor()
        try:
            for user in users:
                if not _ROLE_NAME.match(user):
                    raise SystemExit(f"--grant: {user!r} is not a database user name")
                role = '"' + user.replace('"', '""') + '"'
                defaults = "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT"
                for statement in (
                    f"GRANT USAGE ON SCHEMA public TO {role}",
                    f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
                    f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}",
                    f"{defaults} SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}",
                    f"{defaults} USAGE, SELECT, UPDATE ON SEQUENCES TO {role}",
                ):
                    cur.execute(statement)
                log.info("granted the functions' privileges to %s", user)
        finally:
            conn.autocommit = False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--status", action="store_true", help="list applied and pending migrations, change nothing")
    parser.add_argument("--vector-dimension", type=int, metavar="N",
                        help="VECTOR_BACKEND=pgvector: build the vector index for N dimensions now (the functions' "
                        "users cannot create indexes)")
    parser.add_argument("--grant", nargs="+", metavar="USER", default=[],
                        help="database users (the functions' IAM users) to give row privileges after migrating")
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(message)s")
    db = Database(Settings.from_env().validate(), timeout=None)  # a backfill may take minutes
    try:
        if args.status:
            with db.connection() as conn:
                cur = conn.cursor()
                cur.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
                done = set()
                if cur.fetchone()[0]:
                    cur.execute("SELECT version FROM schema_migrations")
                    done = {row[0] for row in cur.fetchall()}
            for number, path in migration_files():
                print(f"{'applied' if number in done else 'pending'}  {path.name}")
            return 0
        applied = apply_migrations(db)
        print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else "; up to date"))
        if args.vector_dimension:
            from shared.vectors.pgvector import PgVectorIndex

            PgVectorIndex(db).prepare(args.vector_dimension)
            print(f"vector index ready for {args.vector_dimension} dimensions")
        if args.grant:
            grant_privileges(db, args.grant)
            print(f"granted row privileges to {len(args.grant)} user(s)")
        return 0
    finally:
        db.close()


if __name__ == "__main__":
    sys.exit(main())
