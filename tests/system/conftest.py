"""The deployment the system tests check: the one SYSTEM_CHAT_URL names, or else the local stack started here.

Nothing is imported from the product unless the local stack has to be started, so against a deployment this tier
needs pytest and httpx only (see test_system_deployment.py for how to run it).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Answered by infra/sample_kb/billing/refunds.md, the one document the local stack is given.
DEFAULT_QUESTION = "How long does a refund take to reach my card?"
SAMPLE_DOCUMENT = "billing/refunds.md"
LOCAL_ORIGIN = "https://help.system-test.example"
PRIVATE_FUNCTIONS = ("ingest", "embed", "scrape")  # as in test_system_deployment.py


@dataclass(frozen=True)
class Target:
    """Where the tests send their requests, and what they may assume of it."""

    chat_url: str
    question: str
    origin: str | None = None
    site_key: str | None = None
    private_urls: dict[str, str] = field(default_factory=dict)  # function -> URL; only a deployment's are private
    local: bool = False

    def body(self, **fields) -> dict:
        """A request body with the site key the deployment needs (when it has a tenant registry)."""
        return {**({"site_key": self.site_key} if self.site_key else {}), **fields}

    def headers(self, **extra: str) -> dict[str, str]:
        return {**({"Origin": self.origin} if self.origin else {}), **extra}


def _deployment_target() -> Target:
    return Target(
        chat_url=os.environ["SYSTEM_CHAT_URL"].rstrip("/"),
        question=os.environ.get("SYSTEM_QUESTION") or DEFAULT_QUESTION,
        origin=os.environ.get("SYSTEM_ORIGIN") or None,
        site_key=os.environ.get("SYSTEM_SITE_KEY") or None,
        private_urls={name: os.environ[f"SYSTEM_{name.upper()}_URL"].rstrip("/") for name in PRIVATE_FUNCTIONS
                      if os.environ.get(f"SYSTEM_{name.upper()}_URL")},
    )


def _wait_until_indexed(stack, name: str, timeout: float) -> None:
    """Wait until the document the storage bridge handed to ingest has been embedded (status `ready`)."""
    from shared.config import Settings
    from shared.db import Database
    from shared.documents import DocumentStore

    db = Database(Settings.from_env(stack.env()).validate())
    uri = f"gs://{stack.storage.bucket}/{name}"
    status = None
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = next((r["status"] for r in DocumentStore(db).status() if r["source_uri"] == uri), None)
            if status in ("ready", "failed"):
                break
            time.sleep(0.2)
    finally:
        db.close()
    if status != "ready":
        logs = {n: p.log_tail() for n, p in stack.functions.items() if n in ("ingest", "embed")}
        raise RuntimeError(f"{name} was not indexed within {timeout:g} s (status {status}); logs: {logs}")


@pytest.fixture(scope="session")
def target():
    """SYSTEM_CHAT_URL's deployment; without it, the local stack (as `make dev` runs it, on free ports, in a scratch
    directory, without the demo site) holding the sample document the default question is answered from."""
    if os.environ.get("SYSTEM_CHAT_URL"):
        yield _deployment_target()
        return

    import urllib.request

    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    from infra.stack.local import DEFAULT_PORTS, LocalStack
    from infra.stack.processes import free_port

    # Not under pytest's tmp_path: PostgreSQL may run as another user, who cannot enter it (tests/conftest.py).
    data_dir = Path(tempfile.mkdtemp(prefix="system-test-local-"))
    stack = LocalStack(data_dir, persistent=False, demo=False,
                       settings={"EMBEDDER": "local", "LOG_LEVEL": "WARNING", "CHAT_ALLOWED_ORIGINS": LOCAL_ORIGIN},
                       ports={name: free_port() for name in DEFAULT_PORTS})
    try:
        stack.start()
        # The models load in embed and chat while the document travels: bucket -> ingest -> tasks -> embed.
        urllib.request.urlopen(stack.urls["chat"] + "/healthz?warm=1", timeout=120).close()
        client = storage.Client(project="demo-local", credentials=AnonymousCredentials(),
                                client_options={"api_endpoint": stack.storage.url})
        client.bucket(stack.storage.bucket).blob(SAMPLE_DOCUMENT).upload_from_filename(
            str(ROOT / "infra" / "sample_kb" / SAMPLE_DOCUMENT), content_type="text/markdown")
        _wait_until_indexed(stack, SAMPLE_DOCUMENT, timeout=90)
        yield Target(chat_url=stack.urls["chat"], question=os.environ.get("SYSTEM_QUESTION") or DEFAULT_QUESTION,
                     origin=LOCAL_ORIGIN, local=True)
    finally:
        stack.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
