"""The whole local topology, as `make dev` and the ingest benchmark run it:

    PostgreSQL + pgvector (migrated) · Firestore emulator · Cloud Storage emulator ──Eventarc bridge──▶ ingest
    Cloud Tasks emulator ──▶ embed · chat and scrape · each function a functions-framework process
    the demo site (infra/demo: a fake company site embedding the chat widget) ──▶ chat

Functions run exactly as deployed code runs (their own processes, configured only by environment variables).
Every service listens on 127.0.0.1 only.
"""

from __future__ import annotations

import logging
import os
import shlex
import socket
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from infra.demo.server import DemoSite
from infra.stack.firestore import FirestoreEmulator
from infra.stack.postgres import PostgresServer
from infra.stack.processes import LOCALHOST, ManagedProcess, Supervisor, free_port, wait_until
from infra.stack.storage import StorageEmulator
from infra.stack.tasks import TasksEmulator

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ("chat", "ingest", "embed", "scrape")

# Documented default ports (README); a port that is taken is replaced by a free one, and .local/stack.env tells.
DEFAULT_PORTS = {
    "chat": 8081, "ingest": 8082, "embed": 8083, "scrape": 8084,
    "firestore": 8085, "storage": 9023, "tasks": 9090, "postgres": 54329, "demo": 8080, "docs_site": 8086,
}

# Settings a developer may set in their shell; passed through to the functions.
_PASS_THROUGH_PREFIXES = ("EMBED", "GEMINI_", "VECTOR_", "PINECONE_", "CHUNK_", "MAX_", "LOG_LEVEL", "DEFAULT_TENANT",
                          "LOCAL_EMBEDDING", "SYNC_")


def preferred_port(port: int) -> int:
    """`port` if nothing listens on it, else a free one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOCALHOST, port))
            return port
        except OSError:
            return free_port()


class LocalStack:
    def __init__(self, data_dir: Path, *, persistent: bool = True, firestore: bool = True, demo: bool = True,
                 settings: dict[str, str] | None = None, ports: dict[str, int] | None = None,
                 restart_functions: bool = False, supervisor_options: dict[str, float] | None = None):
        """`restart_functions`: a function process that dies is restarted (with a log line, backoff and a cap:
        `Supervisor`, tuned by `supervisor_options`) instead of staying down; `make dev` asks for it."""
        self.data_dir = Path(data_dir).resolve()
        self.log_dir = self.data_dir / "logs"
        self._persistent = persistent
        self._want_firestore = firestore
        self._want_demo = demo
        self._settings = dict(settings or {})
        self._ports = {**DEFAULT_PORTS, **(ports or {})}
        self.postgres: PostgresServer | None = None
        self.firestore: FirestoreEmulator | None = None
        self.storage: StorageEmulator | None = None
        self.tasks: TasksEmulator | None = None
        self.functions: dict[str, ManagedProcess] = {}
        self.urls: dict[str, str] = {}
        self.demo: DemoSite | None = None
        self._restart_functions = restart_functions
        self._supervisor_options = dict(supervisor_options or {})
        self.supervisor: Supervisor | None = None

    # -- lifecycle --------------------------------------------------------------------------------------------------
    def start(self) -> LocalStack:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.postgres = PostgresServer(self.data_dir / "postgres", port=preferred_port(self._ports["postgres"])).start()
        self._migrate()
        if self._want_firestore:
            self.firestore = FirestoreEmulator(port=preferred_port(self._ports["firestore"]), log_dir=self.log_dir).start()
        self.storage = StorageEmulator(port=preferred_port(self._ports["storage"]),
                                       data_dir=self.data_dir / "storage" if self._persistent else None).start()
        self.tasks = TasksEmulator(port=preferred_port(self._ports["tasks"]), log_dir=self.log_dir).start()
        for name in FUNCTIONS:
            self.urls[name] = f"http://{LOCALHOST}:{preferred_port(self._ports[name])}"
        if self._want_demo:
            self.demo = DemoSite(self.urls["chat"], port=preferred_port(self._ports["demo"])).start()
            self._allow_origin(self.demo.origin)
        for name in FUNCTIONS:
            self._start_function(name)
        for name in FUNCTIONS:
            wait_until(lambda n=name: self._answers(n), 60, f"function {name}")
        self.storage.add_subscriber(self.urls["ingest"])
        if self._restart_functions:
            self.supervisor = Supervisor(self.functions, **self._supervisor_options).start()
        return self

    def stop(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()  # first: nothing may be restarted while we stop it
        if self.demo is not None:
            self.demo.stop()
        if self.storage is not None:
            self.storage.stop()
        # In parallel: each server takes a few seconds to drain its workers.
        stoppable = [*self.functions.values(), *(s for s in (self.tasks, self.firestore, self.postgres) if s)]
        with ThreadPoolExecutor(len(stoppable) or 1) as pool:
            list(pool.map(lambda service: service.stop(), stoppable))

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- configuration ----------------------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        """Every variable a client or a function needs to use the stack."""
        env = {"GOOGLE_CLOUD_PROJECT": "demo-local", "DATABASE_URL": self.postgres.url}
        if self.firestore:
            env.update(self.firestore.env())
        env.update(self.storage.env())
        env.update(self.tasks.env())
        env["EMBED_URL"] = self.urls["embed"]
        env.update({f"{name.upper()}_URL": url for name, url in self.urls.items()})
        # The local stack's websites (the sample docs site, benchmark sites) are on loopback, which the sync
        # otherwise refuses (SSRF protection).
        env["SYNC_ALLOWED_PRIVATE_HOSTS"] = os.environ.get("SYNC_ALLOWED_PRIVATE_HOSTS", LOCALHOST)
        return env

    def function_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_PASS_THROUGH_PREFIXES)}
        env.update({k: v for k, v in os.environ.items() if k.startswith(_PASS_THROUGH_PREFIXES)})
        env.update(self.env())
        env.update(self._settings)
        env["PYTHONPATH"] = str(ROOT)
        env.setdefault("THREADS", "8")
        # Callers reach the functions directly (no front end appends their address): X-Forwarded-For is theirs to
        # write, so the rate limits use the peer address.
        env.setdefault("TRUSTED_PROXY_HOPS", "0")
        return env

    def write_env_file(self, path: Path) -> None:
        lines = ["# Written by `make dev`: `source` this file to use the local stack with the Google client libraries."]
        lines += [f"export {key}={shlex.quote(value)}" for key, value in sorted(self.env().items())]
        path.write_text("\n".join(lines) + "\n")

    # -- internals --------------------------------------------------------------------------------------------------
    def _migrate(self) -> None:
        from infra.migrate import apply_migrations
        from shared.config import Settings
        from shared.db import Database

        db = Database(Settings.from_env({"DATABASE_URL": self.postgres.url}).validate())
        try:
            applied = apply_migrations(db)
            log.info("migrations: %s", ", ".join(applied) if applied else "up to date")
        finally:
            db.close()

    def _allow_origin(self, origin: str) -> None:
        """Let a browser on `origin` call chat: added to CHAT_ALLOWED_ORIGINS (yours, or the default list) when the
        list does not hold it already (the default allows the demo site on its default port, 8080)."""
        from shared.config import Settings

        allowed = Settings.from_env(self.function_env()).allowed_origins
        wanted = {origin, origin.replace(f"//{LOCALHOST}:", "//localhost:")}
        if "*" not in allowed and not wanted <= allowed:
            self._settings["CHAT_ALLOWED_ORIGINS"] = ",".join(sorted(allowed | wanted))

    def _start_function(self, name: str) -> None:
        port = self.urls[name].rsplit(":", 1)[1]
        argv = [sys.executable, "-m", "functions_framework", "--target", name,
                "--source", str(ROOT / "functions" / name / "main.py"), "--host", LOCALHOST, "--port", port]
        process = ManagedProcess(name, argv, log_dir=self.log_dir, env=self.function_env(), cwd=ROOT)
        process.start()
        self.functions[name] = process

    def _answers(self, name: str) -> bool:
        self.functions[name].check_alive()
        try:
            urllib.request.urlopen(self.urls[name] + "/healthz", timeout=1).close()
        except urllib.error.HTTPError:
            pass  # any HTTP answer means the server is up (cloud-event functions refuse a GET)
        except (urllib.error.URLError, OSError):
            return False
        return True
