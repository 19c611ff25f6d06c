"""Fixtures for the browser tests: Debian's Chromium driven by Playwright against the real local stack.

Once per module: a migrated database on the session's PostgreSQL, the storage and tasks emulators with ingest and
embed (EMBEDDER=local) serving them as in tests/integration/test_chat.py, part of the sample knowledge base ingested
through that path, the chat function as its own functions-framework process (as `make dev` runs it), and the demo
site (infra/demo) whose origin chat allows. Once per test: a fresh browser context (so a fresh localStorage, so a new
conversation), a screenshot of the final state in test-artifacts/browser/<test>.png and, when the test fails, the
page's console next to it.

Without Chromium the tests skip with the command that installs it; under CI=true they fail instead.
"""

from __future__ import annotations

import os
import shutil
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from infra.demo.server import DemoSite
from infra.stack import browser as chromium
from infra.stack.prerequisites import in_ci
from infra.stack.processes import LOCALHOST, ManagedProcess, free_port, wait_until
from tests.conftest import FunctionServer

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
SAMPLE_KB = ROOT / "infra" / "sample_kb"
KB = ["billing/refunds.md", "account/reset-password.md", "troubleshooting/error-codes.md",
      "integrations/webhooks.md", "integrations/google-calendar.md"]

# A document a hostile (or careless) editor uploaded: markup and script in its text, title and source URL. The
# made-up word "quokkaform" makes a question find it and nothing else.
MARKUP_NAME = "troubleshooting/pasted-markup.txt"
MARKUP_TITLE = 'Pasted <b>markup</b> <img src=x onerror="window.__pwned=2">'
MARKUP_URL = "javascript:window.__pwned=3"
MARKUP_TEXT = """\
The quokkaform description field shows text exactly as you typed it. If you paste markup such as \
<img src=x onerror="window.__pwned=1"> or <script>window.__pwned=1</script> into the quokkaform field, Brightwave \
shows the characters themselves and never runs them.

To format a quokkaform description, use the bold and italic buttons of the editor instead of HTML.
"""
MARKUP_QUESTION = "What happens when I paste markup into the quokkaform field?"

ANSWER_TIMEOUT_MS = 30_000


def help_url(name: str) -> str:
    """Where the (fictional) help centre publishes a sample article: the citation links point there."""
    return "https://help.brightwave.example/" + name.rsplit(".", 1)[0]


# --- the stack -------------------------------------------------------------------------------------------------------
@dataclass
class ChatProcess:
    """The chat function in a functions-framework process of its own, as `make dev` runs it."""

    name: str
    env: dict[str, str]
    url: str = ""
    process: ManagedProcess | None = field(default=None, repr=False)

    def start_on(self, port: int) -> ChatProcess:
        self.url = f"http://{LOCALHOST}:{port}"
        argv = [sys.executable, "-m", "functions_framework", "--target", "chat",
                "--source", str(ROOT / "functions" / "chat" / "main.py"), "--host", LOCALHOST, "--port", str(port)]
        env = {**os.environ, **self.env, "PYTHONPATH": str(ROOT), "THREADS": "8"}
        self.process = ManagedProcess(self.name, argv, log_dir=ARTIFACTS / "logs", env=env, cwd=ROOT, stop_timeout=4)
        self.process.start()
        wait_until(self._answers, 60, f"the {self.name} function on {self.url}")
        return self

    def warm(self) -> None:
        """Load the embedding model now, not on the first question (the first answer would take seconds)."""
        urllib.request.urlopen(self.url + "/healthz?warm=1", timeout=120).close()

    def _answers(self) -> bool:
        self.process.check_alive()
        try:
            urllib.request.urlopen(self.url + "/healthz", timeout=1).close()
        except (urllib.error.URLError, OSError):
            return False
        return True

    def stop(self) -> None:
        if self.process:
            self.process.stop()


@dataclass
class WidgetStack:
    """What the tests drive: the demo site (pages pointing at `chat`) and the stores to check."""

    site: DemoSite
    chat: ChatProcess
    env: dict[str, str]

    def page_url(self, page: str = "") -> str:
        return f"{self.site.url}/{page}"

    def firestore(self):
        """A Firestore client of the chat's project on the emulator (FIRESTORE_EMULATOR_HOST is set meanwhile)."""
        from google.cloud import firestore

        return firestore.Client(project=self.env["GOOGLE_CLOUD_PROJECT"])

    def tenant(self):
        return self.firestore().collection("tenants").document("default")


def _upload_and_wait(bucket, services, storage) -> None:
    uris = []
    for name in KB:
        blob = bucket.blob(name)
        blob.metadata = {"source_url": help_url(name)}  # published on a help site, as the scraper records it
        blob.upload_from_string((SAMPLE_KB / name).read_bytes(), content_type="text/markdown")
        uris.append(f"gs://{storage.bucket}/{name}")
    blob = bucket.blob(MARKUP_NAME)
    blob.metadata = {"title": MARKUP_TITLE, "source_url": MARKUP_URL}
    blob.upload_from_string(MARKUP_TEXT, content_type="text/plain")
    uris.append(f"gs://{storage.bucket}/{MARKUP_NAME}")

    def all_ready() -> bool:
        rows = {r["source_uri"]: r["status"] for r in services.document_store().status()}
        failed = [uri for uri in uris if rows.get(uri) == "failed"]
        assert not failed, f"ingestion failed for {failed}"
        return all(rows.get(uri) == "ready" for uri in uris)

    wait_until(all_ready, 180, "the test documents to be ingested", interval=0.2)


@pytest.fixture(scope="module")
def widget_stack(require_browser, postgres, storage, tasks, firestore) -> Iterator[WidgetStack]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage as gcs

    from infra.migrate import apply_migrations
    from shared import services
    from shared.config import Settings
    from shared.db import Database

    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # screenshots and logs of this run only
    name = f"browser_{uuid.uuid4().hex[:10]}"
    postgres.create_database(name)
    database_url = postgres.url_for(name)
    db = Database(Settings.from_env({"DATABASE_URL": database_url}).validate())
    apply_migrations(db)
    db.close()

    storage.reset()
    ingest, embed = FunctionServer("ingest"), FunctionServer("embed")
    env = {
        "DATABASE_URL": database_url,
        "EMBEDDER": "local",
        "VECTOR_BACKEND": "pgvector",
        "EMBED_URL": embed.url,
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_CLIENT_PER_MINUTE": "600",  # every test's browser is the same client, 127.0.0.1
        **storage.env(),
        **firestore.env(),
        **tasks.env(),  # last: its GOOGLE_CLOUD_PROJECT names the queue; Firestore accepts any project
    }
    chat_port = free_port()
    site = DemoSite(f"http://{LOCALHOST}:{chat_port}").start()
    env["CHAT_ALLOWED_ORIGINS"] = site.origin
    chat = ChatProcess("chat", env)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        services.reset()
        storage.add_subscriber(ingest.url)
        try:
            with ThreadPoolExecutor(1) as pool:  # chat starts (and loads its model) while the documents are ingested
                starting = pool.submit(lambda: (chat.start_on(chat_port), chat.warm()))
                client = gcs.Client(project="demo-local", credentials=AnonymousCredentials(),
                                    client_options={"api_endpoint": storage.url})
                _upload_and_wait(client.bucket(storage.bucket), services, storage)
                starting.result(timeout=180)
            yield WidgetStack(site=site, chat=chat, env=env)
        finally:
            chat.stop()
            site.stop()
            storage.wait_idle(timeout=10)
            storage.remove_subscriber(ingest.url)
            ingest.stop()
            embed.stop()
            services.reset()


# --- the browser -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def require_browser() -> None:
    """Skip (fail under CI=true) when Chromium or Playwright is missing, before anything is started."""
    reason = chromium.missing_reason()
    if reason is None:
        return
    if in_ci():
        pytest.fail(f"CI=true and the browser tests cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser(require_browser):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium.executable(), args=chromium.LAUNCH_ARGS)
        yield launched
        launched.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


class Console:
    """Everything the page said: console messages, uncaught errors, failed requests."""

    def __init__(self, page) -> None:
        self.lines: list[str] = []
        page.on("console", lambda m: self.lines.append(f"console.{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.lines.append(f"pageerror: {e}"))
        page.on("requestfailed", lambda r: self.lines.append(f"requestfailed: {r.method} {r.url} {r.failure}"))

    @property
    def errors(self) -> list[str]:
        return [line for line in self.lines if line.startswith(("pageerror", "console.error"))]


@dataclass
class Browsing:
    """One test's browser. `new_page()` opens a tab in the test's context (tabs share localStorage, so the saved
    conversation); `new_page(fresh=True)` one in a context of its own. Every page is screenshot at the end."""

    browser: object
    options: dict
    contexts: list = field(default_factory=list)
    pages: list = field(default_factory=list)
    consoles: list[Console] = field(default_factory=list)

    def new_page(self, fresh: bool = False):
        if fresh or not self.contexts:
            context = self.browser.new_context(**self.options)
            context.set_default_timeout(10_000)
            self.contexts.append(context)
        page = self.contexts[-1].new_page()
        self.pages.append(page)
        self.consoles.append(Console(page))
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


def _open_context(browser, request, **options) -> Iterator[Browsing]:
    browsing = Browsing(browser, {"viewport": {"width": 1280, "height": 800}, **options})
    try:
        yield browsing
    finally:
        _save_artifacts(request, browsing)
        browsing.close()


def _save_artifacts(request, browsing: Browsing) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
    failed = getattr(request.node, "report_call", None) is not None and request.node.report_call.failed
    for n, page in enumerate(browsing.pages):
        suffix = "" if n == 0 else f"-{n + 1}"
        try:
            if not page.is_closed():
                page.screenshot(path=str(ARTIFACTS / f"{name}{suffix}.png"))
        except Exception as exc:  # noqa: BLE001  (a crashed page must not hide the test's own failure)
            browsing.consoles[n].lines.append(f"(screenshot failed: {exc})")
        if failed:
            lines = browsing.consoles[n].lines or ["(the page logged nothing)"]
            (ARTIFACTS / f"{name}{suffix}.console.log").write_text("\n".join(lines) + "\n")


@pytest.fixture
def browsing(browser, request) -> Iterator[Browsing]:
    """A fresh desktop browser context (1280x800) for one test."""
    yield from _open_context(browser, request)


@pytest.fixture
def mobile_browsing(browser, request) -> Iterator[Browsing]:
    """A fresh phone-sized context (375x667, touch) for one test."""
    yield from _open_context(browser, request, viewport={"width": 375, "height": 667}, device_scale_factor=2,
                             is_mobile=True, has_touch=True)


@pytest.fixture(scope="module")
def gemini_chat(widget_stack) -> Iterator[tuple[ChatProcess, object, DemoSite]]:
    """A second chat process answering with "Gemini" (the stand-in, scripted by the test, streaming slowly), and a
    demo site of its own pointing at it."""
    from infra.standins.gemini_server import GeminiServer

    gemini = GeminiServer(api_key="test-key", chunk_delay=0.25)
    gemini.start()
    port = free_port()
    site = DemoSite(f"http://{LOCALHOST}:{port}").start()
    env = {**widget_stack.env, "GEMINI_API_KEY": "test-key", "GEMINI_BASE_URL": gemini.url,
           "CHAT_ALLOWED_ORIGINS": site.origin}
    chat = ChatProcess("chat-gemini", env)
    try:
        chat.start_on(port)
        chat.warm()
        yield chat, gemini, site
    finally:
        chat.stop()
        site.stop()
        gemini.stop()


@pytest.fixture(scope="module")
def registry_chat(widget_stack) -> Iterator[tuple[ChatProcess, DemoSite, str]]:
    """A chat process with the tenant registry (TENANT_REGISTRY=firestore), a demo site of its own, and the site key
    of the tenant "default" (whose documents the stack ingested), registered with that site's origin only."""
    from shared.errors import BadRequest
    from shared.memory.connection import FirestoreConnection, utc_now
    from shared.tenants import TenantAdmin

    port, site_port = free_port(), free_port()
    origin = f"http://{LOCALHOST}:{site_port}"
    with pytest.MonkeyPatch.context() as patch:
        for key, value in widget_stack.env.items():
            patch.setenv(key, value)
        admin = TenantAdmin(FirestoreConnection(widget_stack.env["GOOGLE_CLOUD_PROJECT"]), now=utc_now)
        try:
            tenant = admin.add("default", [origin])
        except BadRequest:  # registered by an earlier module against the same emulator
            admin.edit_origins("default", add=[origin])
            tenant = admin.rotate_key("default")
    site = DemoSite(f"http://{LOCALHOST}:{port}", port=site_port, site_key=tenant.site_key).start()
    env = {**widget_stack.env, "TENANT_REGISTRY": "firestore", "TENANT_CACHE_SECONDS": "0",
           "CHAT_ALLOWED_ORIGINS": "http://unused.invalid"}
    chat = ChatProcess("chat-registry", env)
    try:
        chat.start_on(port)
        chat.warm()
        yield chat, site, tenant.site_key
    finally:
        chat.stop()
        site.stop()

