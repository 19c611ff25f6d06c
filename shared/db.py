"""Database port: a small pool of pg8000 DB-API connections to PostgreSQL.

How it connects is the only thing that differs between environments (as in genai-databases-retrieval-app):
- CLOUD_SQL_INSTANCE set: the Cloud SQL Python Connector with IAM database authentication (lazy refresh, so an idle
  instance holds no background threads);
- otherwise DATABASE_URL, a direct TCP or unix-socket connection (local stack, tests, or Cloud SQL via private IP).

Connection trouble surfaces as `DatabaseUnavailable` (retryable): an event or task that hit it is delivered again.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import select
import socket
import threading
import urllib.parse
from collections.abc import Iterator

import pg8000.dbapi

from shared.config import Settings
from shared.errors import ConfigurationError, DatabaseUnavailable

log = logging.getLogger(__name__)

# Errors that mean "the database is not reachable / the connection is gone", as opposed to a bad statement.
_CONNECTION_ERRORS = (pg8000.dbapi.InterfaceError, OSError, TimeoutError)
IDLE = b"I"  # ReadyForQuery's transaction status: idle, not in a transaction block


def _direct_connect_args(url: str, timeout: float | None = 10.0) -> dict:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("postgresql", "postgres"):
        raise ConfigurationError("DATABASE_URL must start with postgresql://")
    query = urllib.parse.parse_qs(parsed.query)
    args = {
        "user": urllib.parse.unquote(parsed.username or "postgres"),
        "database": (parsed.path or "/postgres").lstrip("/") or "postgres",
        "timeout": timeout,
    }
    if parsed.password:
        args["password"] = urllib.parse.unquote(parsed.password)
    if "host" in query:  # unix socket directory, libpq style
        args["unix_sock"] = f"{query['host'][0].rstrip('/')}/.s.PGSQL.{parsed.port or 5432}"
    else:
        args["host"] = parsed.hostname or "127.0.0.1"
        args["port"] = parsed.port or 5432
    return args


def _no_delay(conn):
    """Turn off Nagle's algorithm on a TCP connection: pg8000 writes a query's messages separately, and with Nagle
    and delayed ACKs each round trip waited tens of milliseconds (measured: a 2 ms vector query took 28 ms)."""
    sock = getattr(conn, "_usock", None)
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


class Database:
    """A thread-safe pool of connections. Use `with db.transaction() as cur:` for work that must commit together."""

    def __init__(self, settings: Settings, timeout: float | None = 10.0, pool_size: int | None = None):
        """`timeout`: seconds a direct connection waits for the server (None: no limit, for long migrations).
        `pool_size`: connections kept open (default DB_POOL_SIZE); a caller that works from N threads at once asks
        for N, or every connection beyond the pool is opened and closed per use."""
        self._settings = settings
        self._timeout = timeout
        self._pool: queue.LifoQueue = queue.LifoQueue(maxsize=max(1, pool_size or settings.db_pool_size))
        self._connector = None
        self._lock = threading.Lock()

    # -- connecting ---------------------------------------------------------------------------------------------
    def _connect(self):
        s = self._settings
        try:
            if s.cloud_sql_instance:
                return _no_delay(self._cloud_sql_connector().connect(
                    s.cloud_sql_instance, "pg8000", user=s.db_user, db=s.db_name, enable_iam_auth=True
                ))
            return _no_delay(pg8000.dbapi.connect(**_direct_connect_args(s.database_url, self._timeout)))
        except _CONNECTION_ERRORS as exc:
            raise DatabaseUnavailable(f"cannot connect to the database: {exc}") from exc

    def _cloud_sql_connector(self):
        with self._lock:
            if self._connector is None:
                # Imported here: the connector pulls in aiohttp and google-auth, which local runs never need.
                from google.cloud.sql.connector import Connector, IPTypes

                self._connector = Connector(
                    ip_type=IPTypes[self._settings.db_ip_type.upper()],
                    refresh_strategy="LAZY",
                    enable_iam_auth=True,
                )
            return self._connector

    # -- using ----------------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def connection(self) -> Iterator[pg8000.dbapi.Connection]:
        """Borrow a connection. It goes back to the pool only when its protocol state is known to be clean: the block
        ended normally, or with an error the server itself reported (pg8000 has then read up to ReadyForQuery) and
        the rollback worked. Any other error may have struck half-way through a message exchange (pg8000 raised
        UnicodeEncodeError on a lone surrogate after sending Describe and before reading its reply, so the next
        query read that reply), and such a connection is closed, never pooled."""
        conn = self._checkout()
        reusable = False
        try:
            yield conn
            reusable = True
        except _CONNECTION_ERRORS as exc:
            raise DatabaseUnavailable(f"database connection lost: {exc}") from exc
        except BaseException as exc:
            if _reported_by_server(exc):
                try:
                    conn.rollback()
                    reusable = True
                except Exception:  # noqa: BLE001 - the connection is then in no state to keep
                    log.warning("rollback after a database error failed; closing the connection")
            else:
                log.warning("closing a database connection after %s", type(exc).__name__)
            raise
        finally:
            if reusable and _is_clean(conn):
                try:
                    self._pool.put_nowait(conn)
                except queue.Full:
                    _close(conn)
            else:
                _close(conn)

    def _checkout(self):
        """A pooled connection that is still clean (an idle connection with bytes waiting was told something by the
        server, e.g. that it is shutting down: it cannot be trusted), or a new one."""
        while True:
            try:
                conn = self._pool.get_nowait()
            except queue.Empty:
                return self._connect()
            if _is_clean(conn):
                return conn
            _close(conn)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[pg8000.dbapi.Cursor]:
        """A cursor whose statements commit together when the block ends, or roll back on error."""
        with self.connection() as conn:
            cur = conn.cursor()
            try:
                yield cur
                conn.commit()
            except BaseException:
                with contextlib.suppress(Exception):
                    conn.rollback()
                raise
            finally:
                with contextlib.suppress(Exception):
                    cur.close()

    @contextlib.contextmanager
    def autocommit(self) -> Iterator[pg8000.dbapi.Cursor]:
        """A cursor outside a transaction: each statement commits on its own. One round trip for a read or a
        single-statement write, where `transaction()` adds a BEGIN and a COMMIT; use it only when the statements
        need not commit together."""
        with self.connection() as conn:
            conn.autocommit = True
            cur = conn.cursor()
            try:
                yield cur
            finally:
                conn.autocommit = False
                with contextlib.suppress(Exception):
                    cur.close()

    def close(self) -> None:
        while True:
            try:
                _close(self._pool.get_nowait())
            except queue.Empty:
                break
        if self._connector is not None:
            self._connector.close()
            self._connector = None


def _reported_by_server(exc: BaseException) -> bool:
    """True for an error the server sent (an ErrorResponse: pg8000 raises it only after reading the exchange to its
    ReadyForQuery, so nothing of it is left unread). Its first argument is the server's field dict (C = SQLSTATE)."""
    return (isinstance(exc, pg8000.dbapi.DatabaseError) and bool(exc.args) and isinstance(exc.args[0], dict)
            and "C" in exc.args[0])


def _is_clean(conn) -> bool:
    """An idle connection outside a transaction, with nothing unread on its socket."""
    if getattr(conn, "_transaction_status", IDLE) != IDLE:
        return False
    sock = getattr(conn, "_usock", None)
    if sock is None:
        return False
    try:
        if getattr(sock, "pending", lambda: 0)():  # TLS (Cloud SQL connector): bytes already decrypted
            return False
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def _close(conn) -> None:
    with contextlib.suppress(Exception):
        conn.close()
