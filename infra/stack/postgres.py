"""Cloud SQL stand-in: a real PostgreSQL 16 with pgvector, from the `pgserver` wheel, reachable over TCP.

pgserver's own `get_server()` starts postgres on a unix socket only and keeps a cross-process handle registry with
its own atexit clean-up. We want a TCP port (pg8000 and the functions connect like to any server) and a lifetime we
control, so we use only its building blocks: the bundled binaries through its `initdb`/`pg_ctl` wrappers (they run
them as the system user `pgserver` when we are root, because postgres refuses to run as root) and its permission
helpers. The server is started straight away with `pg_ctl start -o "-h 127.0.0.1 -p PORT -k ''"`: TCP on loopback
only and no unix socket, so no socket file can clash with another server.

Data lives in `data_dir` (the PGDATA directory), so a second `make dev` finds its databases again; tests pass a
temporary directory. The log is `data_dir/server.log`.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import platform
import re
import subprocess
import time
import warnings
from pathlib import Path

import pg8000.dbapi
import psutil

from infra.stack.processes import LOCALHOST, PortTakenError, run_with_free_port, wait_until

with warnings.catch_warnings():
    # pgserver computes a per-user runtime directory at import time (and warns when XDG_RUNTIME_DIR is unset);
    # we never use it.
    warnings.simplefilter("ignore")
    import pgserver
    from pgserver import utils as pgserver_utils
    from pgserver._commands import POSTGRES_BIN_PATH

logger = logging.getLogger(__name__)

DEFAULT_DATABASE = "knowledge"
SUPERUSER = "postgres"  # created by initdb; trust authentication, as on a developer machine
_SYSTEM_USER_WHEN_ROOT = "pgserver"  # the account pgserver's helpers create to run postgres when we are root
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_binaries_prepared = False


class PostgresServer:
    """PostgreSQL 16 + pgvector on 127.0.0.1:`port`, data kept in `data_dir`.

    `start()` creates the cluster if needed, the database `knowledge` with the `vector` extension, and returns when
    the server answers SQL. `stop()` shuts it down and waits until the postmaster is gone.
    """

    def __init__(self, data_dir: Path | str, port: int | None = None, *, start_timeout: float = 30.0) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.log_path = self.data_dir / "server.log"
        self._requested_port = port
        self._start_timeout = start_timeout
        self.port: int | None = None
        self._run_as = _SYSTEM_USER_WHEN_ROOT if _is_root() else None

    # --- lifecycle -----------------------------------------------------------------------------------------------

    def start(self) -> PostgresServer:
        """Start the server (no-op if this object already started it) and create the default database."""
        if self.port is not None:
            return self
        began = time.monotonic()
        self._prepare_data_dir()
        self._stop_leftover_server()
        self.port = run_with_free_port(self._start_on, self._requested_port)
        atexit.register(self.stop)
        self.create_database(DEFAULT_DATABASE)
        logger.info("postgres ready on %s:%d in %.1f s (data: %s)", LOCALHOST, self.port,
                    time.monotonic() - began, self.data_dir)
        return self

    def stop(self) -> None:
        """Shut the server down (fast mode: open transactions roll back) and wait until the postmaster exits."""
        if self.port is None:
            return
        atexit.unregister(self.stop)
        postmaster = _postmaster_pid(self.data_dir)
        try:
            self._pg_ctl(["-w", "-t", "30", "-m", "fast", "stop"], timeout=60)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
            logger.warning("pg_ctl stop failed (%s); killing the postmaster", err)
            _kill_postmaster(postmaster)
        if postmaster is not None:
            wait_until(lambda: not _is_alive(postmaster), 15, f"postmaster {postmaster} to exit")
        logger.info("postgres on port %d stopped", self.port)
        self.port = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- for clients ---------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """`postgresql://postgres@127.0.0.1:PORT/knowledge`."""
        return self.url_for(DEFAULT_DATABASE)

    def url_for(self, database: str) -> str:
        self._require_started()
        return f"postgresql://{SUPERUSER}@{LOCALHOST}:{self.port}/{database}"

    def env(self) -> dict[str, str]:
        """What the functions need to connect directly (see shared/config.py)."""
        return {"DATABASE_URL": self.url}

    def connect(self, database: str = DEFAULT_DATABASE) -> pg8000.dbapi.Connection:
        """A new pg8000 connection over TCP; the caller closes it."""
        self._require_started()
        return pg8000.dbapi.connect(user=SUPERUSER, host=LOCALHOST, port=self.port, database=database, timeout=30)

    def create_database(self, name: str) -> str:
        """Create database `name` (if missing) with the `vector` extension; return its URL.

        Tests use this for an isolated database each; names are plain identifiers (lower case, digits, `_`).
        """
        _check_identifier(name)
        admin = self.connect("postgres")
        try:
            admin.autocommit = True  # CREATE DATABASE cannot run inside a transaction
            cursor = admin.cursor()
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            admin.close()
        conn = self.connect(name)
        try:
            conn.cursor().execute("CREATE EXTENSION IF NOT EXISTS vector")
            conn.commit()
        finally:
            conn.close()
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop database `name` if it exists, disconnecting its sessions."""
        _check_identifier(name)
        admin = self.connect("postgres")
        try:
            admin.autocommit = True
            admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            admin.close()

    # --- internals -----------------------------------------------------------------------------------------------

    def _start_on(self, port: int) -> None:
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        try:
            self._pg_ctl(
                [
                    "-w", "-t", str(int(self._start_timeout)),
                    "-l", str(self.log_path),
                    # forwarded to postgres: listen on loopback TCP only, no unix socket
                    "-o", f"-h {LOCALHOST} -p {port} -k ''",
                    "start",
                ],
                timeout=self._start_timeout + 15,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
            new_log = _read_from(self.log_path, log_offset)
            if "could not bind" in new_log or "Address already in use" in new_log:
                raise PortTakenError(f"port {port} is in use; postgres log:\n{new_log[-2000:]}") from err
            raise RuntimeError(f"postgres did not start ({err}); log {self.log_path}:\n{new_log[-3000:]}") from err
        self.port = port
        try:
            wait_until(lambda: self._answers_from_our_data_dir(port), 10, f"postgres on {LOCALHOST}:{port}")
        except BaseException:
            self.port = None
            raise

    def _answers_from_our_data_dir(self, port: int) -> bool:
        # pg_ctl already waited for "ready"; this proves that the server on the port is the one on our data dir.
        try:
            conn = pg8000.dbapi.connect(user=SUPERUSER, host=LOCALHOST, port=port, database="postgres", timeout=5)
        except (pg8000.dbapi.InterfaceError, pg8000.dbapi.DatabaseError, OSError):
            return False
        try:
            cursor = conn.cursor()
            cursor.execute("SHOW data_directory")
            served = Path(cursor.fetchone()[0]).resolve()
        finally:
            conn.close()
        if served != self.data_dir:
            raise RuntimeError(f"port {port} is served by a postgres on {served}, not {self.data_dir}")
        return True

    def _prepare_data_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._run_as:
            _prepare_for_system_user(self.data_dir, self._run_as)
        if not (self.data_dir / "PG_VERSION").exists():
            logger.info("initialising a new cluster in %s", self.data_dir)
            # C.UTF-8 gives full-text search Unicode character classes whatever the developer's LANG is.
            locale = ["--locale=C.UTF-8"] if _has_c_utf8_locale() else ["--no-locale"]
            pgserver.initdb(["--auth=trust", "--encoding=UTF8", *locale, "-U", SUPERUSER],
                            pgdata=self.data_dir, **self._user_kwargs(), timeout=120)

    def _stop_leftover_server(self) -> None:
        # A postmaster can outlive its owner (make dev killed with SIGKILL). Two servers cannot share a data
        # directory, and we want it on our port, so stop it first.
        pid = _postmaster_pid(self.data_dir)
        if pid is None or not _is_alive(pid):
            return
        logger.warning("stopping a postgres (pid %d) left running on %s", pid, self.data_dir)
        try:
            self._pg_ctl(["-w", "-t", "30", "-m", "fast", "stop"], timeout=60)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            _kill_postmaster(pid)
        wait_until(lambda: not _is_alive(pid), 15, f"leftover postmaster {pid} to exit")

    def _pg_ctl(self, args: list[str], timeout: float) -> str:
        if self._run_as:
            # Something may have locked an ancestor again meanwhile (pytest resets /tmp/pytest-of-<user> to 0700
            # whenever a session starts); pg_ctl reads postmaster.pid through the full path.
            pgserver_utils.ensure_prefix_permissions(self.data_dir)
        return pgserver.pg_ctl(args, pgdata=self.data_dir, **self._user_kwargs(), timeout=timeout)

    def _user_kwargs(self) -> dict:
        # Passed through pgserver's wrappers to subprocess.run: drop root's uid, gid and supplementary groups.
        if not self._run_as:
            return {}
        import pwd

        entry = pwd.getpwnam(self._run_as)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _require_started(self) -> None:
        if self.port is None:
            raise RuntimeError("PostgresServer is not started; call start() first")


def _is_root() -> bool:
    return platform.system() != "Windows" and os.geteuid() == 0


def _prepare_for_system_user(data_dir: Path, user: str) -> None:
    """Let the unprivileged `user` run the bundled binaries and own `data_dir` (pgserver's own recipe)."""
    global _binaries_prepared
    import stat

    entry = pgserver_utils.ensure_user_exists(user)
    # Every ancestor of the data directory must be traversable by that user (this adds o+rx to them).
    pgserver_utils.ensure_prefix_permissions(data_dir)
    os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    reachable = subprocess.run(["test", "-w", str(data_dir), "-a", "-x", str(data_dir)],
                               user=entry.pw_uid, group=entry.pw_gid, extra_groups=[], check=False)
    if reachable.returncode != 0:
        raise PermissionError(
            f"postgres runs as the system user {user!r} (we are root) and cannot reach {data_dir}. Use a data "
            f"directory whose parents stay traversable (pytest re-locks /tmp/pytest-of-<user> to 0700 whenever a "
            f"session starts, so prefer tempfile.mkdtemp() there)."
        )
    if not _binaries_prepared:
        bin_dir = POSTGRES_BIN_PATH
        pgserver_utils.ensure_prefix_permissions(bin_dir)
        readable = stat.S_IRGRP | stat.S_IROTH
        pgserver_utils.ensure_folder_permissions(bin_dir, readable | stat.S_IXGRP | stat.S_IXOTH)
        pgserver_utils.ensure_folder_permissions(bin_dir.parent / "lib", readable)
        _binaries_prepared = True


def _has_c_utf8_locale() -> bool:
    try:
        listed = subprocess.run(["locale", "-a"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return any(name.lower() in ("c.utf8", "c.utf-8") for name in listed.split())


def _postmaster_pid(data_dir: Path) -> int | None:
    """The pid in `postmaster.pid` (first line), or None when there is no (readable) file."""
    try:
        first_line = (data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
        return int(first_line)
    except (FileNotFoundError, ValueError):
        return None


def _is_alive(pid: int) -> bool:
    # The postmaster is re-parented to PID 1 when pg_ctl exits; if that init does not reap, a zombie remains.
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _kill_postmaster(pid: int | None) -> None:
    """Immediate shutdown (SIGQUIT), then SIGKILL for the postmaster and its backends."""
    if pid is None:
        return
    try:
        postmaster = psutil.Process(pid)
        backends = postmaster.children(recursive=True)
        postmaster.send_signal(3)  # SIGQUIT: postgres' "immediate shutdown"
        _, alive = psutil.wait_procs([postmaster], timeout=5)
        for proc in [*alive, *backends]:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
    except psutil.NoSuchProcess:
        pass


def _read_from(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def _check_identifier(name: str) -> None:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"database name {name!r} must be a plain lower-case identifier")
