"""Fixtures: the real local stand-ins (PostgreSQL, storage + Eventarc bridge, Cloud Tasks) started once per session,
a fresh migrated database per test, and the ingest/embed entry points served over real HTTP from
`functions_framework.create_app`, so the storage bridge and the tasks emulator call them as in production."""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from werkzeug.serving import make_server

if TYPE_CHECKING:  # imported where started: the unit tier runs without the stand-ins' packages (cloudbuild.yaml)
    from infra.stack.storage import StorageEmulator

ROOT = Path(__file__).resolve().parent.parent
logging.getLogger("gcp_storage_emulator").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def postgres():
    # Not under pytest's tmp_path: pytest makes that 0700 for root, which locks out the `pgserver` system user that
    # PostgreSQL runs as when the tests run as root.
    data_dir = tempfile.mkdtemp(prefix="pytest-postgres-")
    from infra.stack.postgres import PostgresServer

    server = PostgresServer(data_dir).start()
    yield server
    server.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def database_url(postgres):
    """A fresh, migrated database for one test."""
    from infra.migrate import apply_migrations
    from shared.config import Settings
    from shared.db import Database

    name = f"t_{uuid.uuid4().hex[:12]}"
    postgres.create_database(name)
    url = postgres.url_for(name)
    db = Database(Settings.from_env({"DATABASE_URL": url}).validate())
    apply_migrations(db)
    db.close()
    yield url


@pytest.fixture
def db(database_url):
    from shared.config import Settings
    from shared.db import Database

    database = Database(Settings.from_env({"DATABASE_URL": database_url}).validate())
    yield database
    database.close()


@pytest.fixture(scope="session")
def storage():
    from infra.stack.storage import StorageEmulator

    emulator = StorageEmulator(bucket="knowledge", min_backoff=0.05, max_backoff=0.5).start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def tasks(tmp_path_factory):
    from infra.stack.tasks import TasksEmulator

    emulator = TasksEmulator(max_retries=3, log_dir=tmp_path_factory.mktemp("tasks-logs")).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def gemini():
    """The Gemini stand-in (google-genai's wire format), accepting the key "test-key"."""
    from infra.standins.gemini_server import GeminiServer

    server = GeminiServer(api_key="test-key")
    server.start()
    yield server
    server.stop()


class FunctionServer:
    """A function's app from functions_framework.create_app, served over HTTP from a thread."""

    def __init__(self, target: str):
        from functions_framework import create_app

        app = create_app(target, str(ROOT / "functions" / target / "main.py"))
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.client = app.test_client()

    def stop(self) -> None:
        self._server.shutdown()


@dataclass
class Stack:
    """What a test drives: upload/delete through the storage emulator, read back through the stores."""

    storage: StorageEmulator
    ingest: FunctionServer
    embed: FunctionServer
    env: dict
    bucket: object = field(repr=False, default=None)

    def upload(self, name: str, data: bytes | str, content_type: str = "text/markdown", metadata=None):
        blob = self.bucket.blob(name)
        if metadata:
            blob.metadata = metadata
        blob.upload_from_string(data, content_type=content_type)
        return blob

    def delete(self, name: str) -> None:
        self.bucket.blob(name).delete()

    def uri(self, name: str) -> str:
        return f"gs://{self.storage.bucket}/{name}"

    # -- reading back ---------------------------------------------------------------------------------------------
    @property
    def services(self):
        from shared import services

        return services

    def status(self, name: str) -> dict | None:
        rows = [r for r in self.services.document_store().status() if r["source_uri"] == self.uri(name)]
        return rows[0] if rows else None

    def wait_for(self, name: str, *statuses: str, timeout: float = 20.0, generation: int | None = None) -> dict:
        """Wait until the document reaches one of `statuses` (and, if given, has seen `generation`)."""
        deadline = time.monotonic() + timeout
        row = None
        while time.monotonic() < deadline:
            row = self.status(name)
            if row and row["status"] in statuses and (generation is None or self.generation(name) >= generation):
                return row
            time.sleep(0.1)
        raise AssertionError(f"{name} did not reach {statuses} within {timeout}s; last status: {row}")

    def generation(self, name: str) -> int:
        with self.services.database().transaction() as cur:
            cur.execute("SELECT generation FROM documents WHERE source_uri = %s", (self.uri(name),))
            row = cur.fetchone()
        return row[0] if row else 0

    def chunks(self, name: str) -> list[dict]:
        with self.services.database().transaction() as cur:
            cur.execute("SELECT id, version_id, ordinal, heading_path, content, tenant FROM chunks "
                        "WHERE source_uri = %s ORDER BY ordinal", (self.uri(name),))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]

    def versions(self, name: str) -> list[dict]:
        with self.services.database().transaction() as cur:
            cur.execute("SELECT v.id, v.status, v.error, v.chunk_count, v.attempts, v.timings FROM document_versions v "
                        "JOIN documents d ON d.id = v.document_id WHERE d.source_uri = %s ORDER BY v.created_at",
                        (self.uri(name),))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]

    def vector_ids(self, tenant: str = "default", titles: bool = False) -> set[str]:
        """Every chunk vector id in the tenant's namespace, whatever the backend (and the title vectors' ids,
        `{document}#title`, with `titles=True`)."""
        from shared.documents import chunk_id, title_vector_id

        index = self.services.vector_index()
        with self.services.database().transaction() as cur:
            cur.execute("SELECT id FROM documents")
            doc_ids = [r[0] for r in cur.fetchall()]
        candidates = [chunk_id(d, i) for d in doc_ids for i in range(200)]
        if titles:
            candidates += [title_vector_id(d) for d in doc_ids]
        return index.fetch_ids(tenant, candidates)


@pytest.fixture
def make_stack(database_url, storage, tasks, monkeypatch):
    """Start ingest and embed against the emulators with extra settings: `make_stack(EMBEDDER="gemini", ...)`."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage as gcs

    from shared import services

    started: list[Stack] = []

    def start(**settings) -> Stack:
        storage.reset()
        ingest, embed = FunctionServer("ingest"), FunctionServer("embed")
        env = {
            "DATABASE_URL": database_url,
            "EMBEDDER": "hash",
            "VECTOR_BACKEND": "pgvector",
            "EMBED_URL": embed.url,
            "LOG_LEVEL": "WARNING",
            **storage.env(),
            **tasks.env(),
            **{k: str(v) for k, v in settings.items()},
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        services.reset()
        storage.add_subscriber(ingest.url)
        client = gcs.Client(project="demo-local", credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": storage.url})
        stack = Stack(storage=storage, ingest=ingest, embed=embed, env=env, bucket=client.bucket(storage.bucket))
        started.append(stack)
        return stack

    yield start
    for stack in started:
        storage.wait_idle(timeout=10)
        storage.remove_subscriber(stack.ingest.url)
        stack.ingest.stop()
        stack.embed.stop()
    services.reset()


@pytest.fixture
def stack(make_stack) -> Stack:
    return make_stack()


# --- Firestore (conversation memory) ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def firestore(tmp_path_factory):
    """The Firestore emulator, started once per test session (project `demo-test`)."""
    from infra.stack.firestore import FirestoreEmulator

    emulator = FirestoreEmulator(project="demo-test", log_dir=tmp_path_factory.mktemp("firestore-logs")).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def firestore_db(firestore, tasks, monkeypatch):
    """The emulator emptied for one test, with FIRESTORE_EMULATOR_HOST and GOOGLE_CLOUD_PROJECT pointing at it. The
    project of the stack's settings is emptied too: make_stack takes GOOGLE_CLOUD_PROJECT from the tasks emulator
    (its queue path names it), so a chat started there keeps its sessions and rate-limit counters under that one."""
    firestore.reset()
    firestore.reset(project=tasks.project)
    for key, value in firestore.env().items():
        monkeypatch.setenv(key, value)
    yield firestore
