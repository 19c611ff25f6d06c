"""`make dev`: the whole system on local stand-ins, no keys needed.

Starts the local stack (infra/stack/local.py) with its data under .local/, writes .local/stack.env, uploads the
sample knowledge base (infra/sample_kb/) the first time, prints what runs where (first the demo site: a fake company
site with the chat widget, infra/demo/), and runs until Ctrl-C, which stops every process it started. A function
process that dies meanwhile is restarted, with a log line, after a backoff; one that keeps crashing is left down
after a few attempts, with an error that quotes its log (infra.stack.processes.Supervisor).
"""

from __future__ import annotations

import logging
import mimetypes
import os
import signal
import sys
import threading
from pathlib import Path

from infra.stack.local import DEFAULT_PORTS, ROOT, LocalStack, preferred_port
from infra.standins.website import serve_sample_site

SAMPLE_KB = ROOT / "infra" / "sample_kb"
_NOT_CONTENT = {"README.md", "build_binaries.py"}


def sample_files() -> list[tuple[str, Path]]:
    return [(str(p.relative_to(SAMPLE_KB)), p) for p in sorted(SAMPLE_KB.rglob("*"))
            if p.is_file() and p.name not in _NOT_CONTENT and "__pycache__" not in p.parts]


def upload_sample_kb(stack: LocalStack) -> int:
    """Upload the sample files the bucket does not hold yet (a second `make dev` reuses what is there)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="demo-local", credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": stack.storage.url})
    bucket = client.bucket(stack.storage.bucket)
    existing = {blob.name for blob in client.list_blobs(bucket)}
    uploaded = 0
    for name, path in sample_files():
        if name in existing:
            continue
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        bucket.blob(name).upload_from_filename(str(path), content_type=content_type)
        uploaded += 1
    return uploaded


def warm_up(stack: LocalStack) -> None:
    """Load the embedding model in `embed` and `chat` now, not on the first upload or the first question."""
    import urllib.request

    for function in ("embed", "chat"):
        try:
            urllib.request.urlopen(stack.urls[function] + "/healthz?warm=1", timeout=120).close()
        except OSError as exc:
            logging.getLogger("dev").warning("could not warm the %s function: %s", function, exc)


def requeue_interrupted(stack: LocalStack) -> int:
    """The tasks emulator forgets its queue when it stops: enqueue again what a previous run left unfinished."""
    from infra.kb import requeue_unfinished
    from shared.config import Settings
    from shared.db import Database

    settings = Settings.from_env(stack.env()).validate()
    db = Database(settings)
    try:
        return requeue_unfinished(db, settings)
    finally:
        db.close()


def reconcile_at_start(stack: LocalStack) -> str:
    """Events lost while the stack was down (an upload that ingest could not record) are found by comparing the bucket
    with the database, as the nightly scrape run does in production."""
    from infra.kb import build_reconciler
    from shared.config import Settings
    from shared.db import Database

    os.environ.setdefault("STORAGE_EMULATOR_HOST", stack.storage.url)  # read by the storage client itself
    settings = Settings.from_env(stack.env()).validate()
    db = Database(settings)
    try:
        summary = build_reconciler(settings, db).run().summary()
    except Exception as exc:  # noqa: BLE001 - make dev goes on; `make status` and `kb reconcile` tell more
        return f"reconciliation failed: {exc}"
    finally:
        db.close()
    return f"reconciled the bucket with the database: ingested {summary['ingested']}, deleted {summary['deleted']}"


def serve_docs_site(data_dir: Path, stopping: threading.Event):
    """The sample company's docs website, served from .local/docs-site/ (a copy of infra/sample_site/site/ made on
    the first run): edit, add or delete a page there and the site changes at once; `make sync` then brings the
    change into the knowledge base."""
    import shutil

    from infra.standins.website import SAMPLE_SITE

    directory = data_dir / "docs-site"
    if not directory.exists():
        shutil.copytree(SAMPLE_SITE, directory)
    site = serve_sample_site(preferred_port(DEFAULT_PORTS["docs_site"]), directory=directory)

    def follow():
        known = site.follow_dir(directory)
        while not stopping.wait(1.0):
            try:
                known = site.follow_dir(directory, known)
            except OSError as exc:  # a file being written: the next round reads it whole
                logging.getLogger("dev").debug("docs site: %s", exc)

    threading.Thread(target=follow, name="docs-site", daemon=True).start()
    return site, directory


def sample_sources(site_url: str) -> list[dict]:
    """The sample company's docs website and its add-ons feed, as sync sources (what an operator would add)."""
    return [
        {"name": "site", "kind": "website", "topic": "docs", "config": {"url": f"{site_url}/docs/"}},
        {"name": "addons", "kind": "feed", "topic": "addons",
         "config": {"url": f"{site_url}/feeds/addons.json", "items_path": "addons", "title_field": "name"}},
    ]


def sync_at_start(stack: LocalStack, site_url: str) -> str:
    """Register the sample sources (again: the site's port may have changed) and start a sync run of each; the
    steps run on the sync queue through `scrape`, as the nightly run does."""
    from shared.config import Settings
    from shared.db import Database
    from shared.storage import ObjectStore
    from shared.sync.engine import SyncEngine
    from shared.sync.sources import validate_source
    from shared.tasks import SyncQueue

    settings = Settings.from_env(stack.env()).validate()
    db = Database(settings)
    try:
        engine = SyncEngine(settings, db, ObjectStore(settings.project), SyncQueue(settings))
        for d in sample_sources(site_url):
            engine.sources.add(validate_source(settings.default_tenant, d["name"], d["kind"], d["topic"],
                                               d["config"]), replace=True)
        engine.resume_stalled(0)  # the tasks emulator forgot its queue when it stopped
        runs = engine.start(trigger="operator")
    except Exception as exc:  # noqa: BLE001 - make dev goes on; `make sync` tells more
        return f"could not start the first sync: {exc}"
    finally:
        db.close()
    return "started sync runs " + ", ".join(f"{r.source} (run {r.id})" for r in runs) + "; `make sync ARGS=runs` " \
        "shows how they went"


def summary(stack: LocalStack, env_file: Path, site=None) -> str:
    s = stack
    rows = [
        ("chat", s.urls["chat"], "HTTPS function the widget calls"),
        ("ingest", s.urls["ingest"], "CloudEvents from the storage bridge"),
        ("embed", s.urls["embed"], "Cloud Tasks target"),
        ("scrape", s.urls["scrape"], "nightly sync (Cloud Scheduler) and its steps (Cloud Tasks)"),
        ("postgres", s.postgres.url, "Cloud SQL stand-in (pgvector)"),
        ("storage", f"{s.storage.url}  bucket '{s.storage.bucket}'", "Cloud Storage emulator + Eventarc bridge"),
        ("tasks", s.tasks.host, f"Cloud Tasks emulator, queue '{s.tasks.queue}'"),
    ]
    if s.firestore:
        rows.insert(4, ("firestore", s.firestore.host, "Firestore emulator"))
    if site is not None:
        rows.append(("docs site", f"{site.url}/docs/", "the sample company's docs website (.local/docs-site/), "
                     "synced by make sync"))
    demo = []
    if s.demo:  # first and apart: the one URL a newcomer needs
        demo = [("demo", f"{s.demo.url}/", "open this: a fake company site with the chat widget"),
                ("", f"{s.demo.url}/inline.html", "the widget inline, on a help-centre page"), None]
    width = max(len(r[1]) for r in [*demo, *rows] if r)
    lines = [f"  {r[0]:<10}{r[1]:<{width + 2}}{r[2]}" if r else "" for r in [*demo, *rows]]
    return "\n".join(["", "Local stack is running:", "", *lines, "",
                      f"  environment: source {env_file.relative_to(ROOT)}",
                      f"  logs:        {s.log_dir.relative_to(ROOT)}/",
                      "  status:      make status", "", "Ctrl-C stops everything.", ""])


def main() -> int:
    logging.basicConfig(level="INFO", format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("gcp_storage_emulator").setLevel(logging.WARNING)  # one line per request otherwise
    data_dir = ROOT / ".local"
    stack = LocalStack(data_dir, restart_functions=True)  # a function that dies is restarted, not the end of make dev
    site = None
    stopping = threading.Event()
    # Both handled explicitly: a shell may start us with SIGINT ignored (background jobs), and SIGTERM skips atexit.
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    try:
        stack.start()  # a Ctrl-C during start-up: the handler sets `stopping`, and the loop below exits at once
        env_file = data_dir / "stack.env"
        stack.write_env_file(env_file)
        threading.Thread(target=warm_up, args=(stack,), daemon=True).start()
        requeued = requeue_interrupted(stack)
        logging.getLogger("dev").info(reconcile_at_start(stack))
        uploaded = upload_sample_kb(stack)
        logging.getLogger("dev").info("uploaded %d sample file(s) from infra/sample_kb; requeued %d unfinished "
                                      "version(s)", uploaded, requeued)
        site, _ = serve_docs_site(data_dir, stopping)
        logging.getLogger("dev").info(sync_at_start(stack, site.url))
        print(summary(stack, env_file, site), flush=True)
        while not stopping.wait(1):  # the supervisor's thread restarts functions that die
            pass
    except KeyboardInterrupt:
        pass
    finally:
        logging.getLogger("dev").info("stopping the local stack ...")  # never print: stdout may be a dead pipe
        if site is not None:
            site.stop()
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
