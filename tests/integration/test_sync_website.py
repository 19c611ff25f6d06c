"""The nightly sync of a website through the real stack: a loopback docs site with switches
(infra/standins/website.py), the storage emulator and its Eventarc bridge into ingest and embed, the Cloud Tasks
emulator, PostgreSQL. Runs go step by step through SyncEngine (inline, or through a recording queue when a test
looks at how the next step is scheduled); tests/integration/test_sync_function.py drives the same through
`scrape` and the real sync queue."""

from __future__ import annotations

import dataclasses
import gzip
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from shared.sync.engine import SyncEngine
from shared.sync.sources import validate_source

TOPICS = ["refunds", "invoices", "passwords", "webhooks", "calendars", "reminders", "exports", "teams", "domains",
          "payments"]


def html(title: str, body: str, *, canonical: str | None = None, links: list[str] = (), head: str = "") -> str:
    """A docs page with the boilerplate real sites wrap content in (nav, sidebar, footer)."""
    sidebar = "".join(f'<li><a href="{link}">{link}</a></li>' for link in links)
    canon = f'<link rel="canonical" href="{canonical}">' if canonical else ""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title} | Acme Docs</title>{canon}{head}"
            f"</head><body><header><nav><a href='/'>Home</a> <a href='/docs/'>Docs</a> Pricing</nav></header>"
            f"<aside class='sidebar'><ul>{sidebar}</ul></aside><main><article><h1>{title}</h1>{body}</article></main>"
            f"<footer>© 2026 Acme Inc. All rights reserved.</footer></body></html>")


def article(topic: str, version: int = 1) -> str:
    return (f"<p>Acme {topic} guide, revision {version}. This page explains how {topic} work in the Acme dashboard "
            f"for every plan.</p><h2>Steps</h2><ol><li>Open Settings, then {topic.capitalize()}.</li><li>Choose the "
            f"option you need and press Save.</li></ol><p>Changes to {topic} apply within "
            f"{5 + TOPICS.index(topic)} minutes for all team members.</p>")


def sitemap(site, paths: list[str], lastmod: str = "2026-11-01") -> str:
    urls = "".join(f"<url><loc>{site.url}{p}</loc><lastmod>{lastmod}</lastmod></url>" for p in paths)
    return f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'


def docs_site(site, topics: list[str] = TOPICS, *, last_modified: datetime | None = None) -> list[str]:
    """/docs/ (an index linking every article) and one article per topic, listed in /sitemap.xml."""
    paths = [f"/docs/{t}.html" for t in topics]
    site.put("/docs/", html("Acme Docs", "<p>Welcome to the Acme documentation for administrators.</p>",
                            links=paths), "text/html; charset=utf-8", last_modified=last_modified)
    for topic, path in zip(topics, paths):
        site.put(path, html(f"{topic.capitalize()} guide", article(topic), canonical=site.url + path,
                            links=["/docs/"]), "text/html; charset=utf-8", last_modified=last_modified)
    site.put("/sitemap.xml", sitemap(site, ["/docs/", *paths]), "application/xml")
    site.robots = f"User-agent: *\nDisallow: /private/\nSitemap: {site.url}/sitemap.xml\n"
    return paths


class RecordingQueue:
    """The sync queue as the engine sees it, recording each successor step and when it may run."""

    def __init__(self):
        self.steps: list[tuple[int, int, datetime | None]] = []

    def enqueue_step(self, run_id, step, not_before=None, attempt=0):
        self.steps.append((run_id, step, not_before))
        return f"sync-{run_id}-{step}"


class Sync:
    """A test's handle on the sync: sources, runs, and what the bucket holds."""

    def __init__(self, stack, site):
        self.stack, self.site = stack, site
        from shared import services
        from shared.storage import ObjectStore

        self.settings = dataclasses.replace(services.get_settings(), sync_grace_runs=2, sync_retry_base_seconds=0.05)
        self.db = services.database()
        self.objects = ObjectStore(self.settings.project)

    def engine(self, queue=None, **settings) -> SyncEngine:
        return SyncEngine(dataclasses.replace(self.settings, **settings), self.db, self.objects, queue)

    def add(self, name: str = "docs", kind: str = "website", topic: str = "docs", **config):
        if kind == "website":
            config.setdefault("url", self.site.url + "/docs/")
        source = validate_source("default", name, kind, topic, config)
        SyncEngine(self.settings, self.db, self.objects).sources.add(source, replace=True)
        return source

    def run(self, name: str = "docs", **settings) -> dict:
        engine = self.engine(**settings)
        [run] = engine.start(names=[name])
        return engine.run_inline(run.id).summary()

    def bucket(self, prefix: str = "docs/") -> dict[str, int]:
        """Object name -> generation, under `prefix`."""
        return {b.name: b.generation for b in self.stack.bucket.client.list_blobs(self.stack.bucket, prefix=prefix)}

    def text(self, name: str) -> str:
        return self.stack.bucket.blob(name).download_as_bytes().decode()

    def page(self, key: str):
        from shared.sync.state import SyncState

        return SyncState(self.db).get_page("default", "docs", key)

    def events(self, key: str) -> list[str]:
        from shared.sync.state import SyncState

        return [e["event"] for e in reversed(SyncState(self.db).history("default", "docs", key))]


@pytest.fixture
def sync(make_stack, site):
    stack = make_stack(SYNC_ALLOWED_PRIVATE_HOSTS="127.0.0.1")
    return Sync(stack, site)


def counts(summary: dict, *names: str) -> dict:
    return {n: summary["counts"].get(n, 0) for n in names}


# -- first run, unchanged runs, edits ----------------------------------------------------------------------------

def test_a_first_run_writes_each_page_once_with_front_matter_and_it_becomes_searchable(sync, site):
    paths = docs_site(site)
    sync.add()
    summary = sync.run()
    assert summary["outcome"] == "complete", summary
    objects = sync.bucket()
    assert sorted(objects) == sorted(["docs/docs/index.md", *(f"docs/docs/{t}.md" for t in TOPICS)])
    assert counts(summary, "new", "changed", "writes") == {"new": 11, "changed": 0, "writes": 11}
    text = sync.text("docs/docs/refunds.md")
    assert text.startswith(f"---\ntitle: Refunds guide\nsource_url: {site.url}/docs/refunds.html\n---\n")
    assert "Changes to refunds apply within 5 minutes" in text
    assert "All rights reserved" not in text and "Pricing" not in text  # boilerplate is not content
    row = sync.stack.wait_for("docs/docs/refunds.md", "ready")
    assert row["topic"] == "docs"
    chunks = sync.stack.chunks("docs/docs/refunds.md")
    assert chunks and any("5 minutes" in c["content"] for c in chunks)
    with sync.db.transaction() as cur:
        cur.execute("SELECT url, title FROM documents WHERE source_uri = %s", (sync.stack.uri("docs/docs/refunds.md"),))
        assert tuple(cur.fetchone()) == (f"{site.url}/docs/refunds.html", "Refunds guide")
    assert len(paths) == 10


def test_an_unchanged_second_run_is_all_304_with_zero_writes(sync, site):
    docs_site(site)
    sync.add()
    sync.run()
    before = sync.bucket()
    site.clear_log()
    summary = sync.run()
    assert summary["outcome"] == "complete"
    assert counts(summary, "writes", "new", "changed", "not_modified", "unchanged") == {
        "writes": 0, "new": 0, "changed": 0, "not_modified": 11, "unchanged": 11}
    assert sync.bucket() == before
    pages = [r for r in site.requests if r.path.startswith("/docs/")]
    assert pages and {r.status for r in pages} == {304}
    assert all("if-none-match" in r.headers for r in pages)


def test_a_rotating_last_modified_and_nonces_give_zero_writes(sync, site):
    site.etags = False
    site.rotate_last_modified = True
    site.nonce = True
    docs_site(site, last_modified=datetime(2026, 11, 1, tzinfo=UTC))
    sync.add()
    sync.run()
    before = sync.bucket()
    summary = sync.run()
    assert counts(summary, "writes", "unchanged", "not_modified") == {"writes": 0, "unchanged": 11,
                                                                      "not_modified": 0}
    assert sync.bucket() == before


def test_one_edit_rewrites_exactly_one_object_and_changes_what_is_searchable(sync, site):
    docs_site(site)
    sync.add()
    sync.run()
    sync.stack.wait_for("docs/docs/refunds.md", "ready")
    before = sync.bucket()
    site.edit("/docs/refunds.html", "apply within 5 minutes", "apply within 45 minutes")
    summary = sync.run()
    after = sync.bucket()
    assert [n for n in after if after[n] != before[n]] == ["docs/docs/refunds.md"]
    assert counts(summary, "changed", "writes") == {"changed": 1, "writes": 1}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        contents = " ".join(c["content"] for c in sync.stack.chunks("docs/docs/refunds.md"))
        if "45 minutes" in contents:
            break
        time.sleep(0.2)
    assert "within 45 minutes" in contents and "within 5 minutes" not in contents
    assert sync.events(f"{site.url}/docs/refunds.html") == ["new", "changed"]


# -- one document per page ---------------------------------------------------------------------------------------

def test_redirects_and_canonical_variants_give_one_document(sync, site):
    docs_site(site, ["refunds"])
    canonical = site.url + "/docs/refunds.html"
    body = html("Refunds guide", article("refunds"), canonical=canonical)
    site.put("/docs/refunds/", body, "text/html")  # a slash variant
    site.put("/docs/refunds/index.html", body, "text/html")
    site.redirect("/docs/old-refunds", "/docs/refunds-moved")
    site.redirect("/docs/refunds-moved", "/docs/refunds.html")  # a chain
    site.put("/docs/", html("Acme Docs", "<p>Welcome to the Acme documentation for administrators.</p>", links=[
        "/docs/refunds.html", "/docs/refunds/", "/docs/refunds/index.html", "/docs/refunds.html?utm_source=mail",
        "/docs/refunds.html#steps", "/docs/old-refunds", "https://elsewhere.example.org/docs/refunds.html",
        "/docs/loop-a"]), "text/html")
    site.redirect("/docs/loop-a", "/docs/loop-b")
    site.redirect("/docs/loop-b", "/docs/loop-a")
    sync.add()
    summary = sync.run()
    assert summary["outcome"] == "complete", summary
    assert sorted(sync.bucket()) == ["docs/docs/index.md", "docs/docs/refunds.md"]
    assert summary["errors"].get("redirect_loop") == 1
    assert not any("utm_" in r.path for r in site.requests)  # tracking parameters are normalised away
    assert not any("elsewhere" in r.headers.get("host", "") for r in site.requests)


def test_an_old_url_that_now_redirects_is_a_move_not_a_new_page(sync, site):
    docs_site(site, ["refunds", "invoices"])
    sync.add()
    sync.run()
    old_object = sync.bucket()["docs/docs/refunds.md"]
    site.put("/docs/billing/refunds.html", html("Refunds guide", article("refunds"),
                                               canonical=site.url + "/docs/billing/refunds.html"), "text/html")
    site.redirect("/docs/refunds.html", "/docs/billing/refunds.html")
    site.put("/sitemap.xml", sitemap(site, ["/docs/", "/docs/billing/refunds.html", "/docs/invoices.html"]))
    summary = sync.run()
    assert counts(summary, "moved", "new", "deleted") == {"moved": 1, "new": 0, "deleted": 0}
    objects = sync.bucket()
    assert "docs/docs/refunds.md" in objects and objects["docs/docs/refunds.md"] != old_object
    assert f"source_url: {site.url}/docs/billing/refunds.html" in sync.text("docs/docs/refunds.md")
    assert len(objects) == 3


# -- politeness and safety ---------------------------------------------------------------------------------------

def test_disallowed_paths_never_appear_in_the_request_log(sync, site):
    docs_site(site, ["refunds"])
    site.put("/private/salaries.html", html("Salaries", "<p>Internal salary bands for every team.</p>"))
    site.put("/docs/", html("Acme Docs", "<p>Welcome to the Acme documentation for administrators.</p>",
                            links=["/docs/refunds.html", "/private/salaries.html", "/docs/drafts/x.html"]))
    site.robots = "User-agent: *\nDisallow: /private/\nDisallow: /docs/drafts/\n"
    sync.add(prefixes=["/"])
    summary = sync.run()
    assert not [r for r in site.requests if r.path.startswith(("/private/", "/docs/drafts/"))]
    assert summary["counts"]["blocked_by_robots"] == 2
    assert all(r.headers.get("user-agent", "").startswith("support-agent-sync/1.0") for r in site.requests)


def test_robots_txt_answering_503_means_no_fetches_and_no_deletions(sync, site):
    docs_site(site, ["refunds", "invoices"])
    sync.add()
    sync.run()
    site.remove("/docs/invoices.html")
    site.robots_status = 503
    site.clear_log()
    for _ in range(3):
        summary = sync.run()
        assert summary["outcome"] == "partial" and "robots.txt" in summary["reasons"][0]
    assert [r.path for r in site.requests] == ["/robots.txt"] * 3
    assert "docs/docs/invoices.md" in sync.bucket()


def test_robots_txt_answering_404_allows_everything(sync, site):
    docs_site(site, ["refunds"])
    site.robots = None
    sync.add()
    summary = sync.run()
    assert summary["outcome"] == "complete" and summary["counts"]["new"] == 2


def test_private_and_link_local_addresses_are_refused_unless_allowed(make_stack, site):
    stack = make_stack()  # SYNC_ALLOWED_PRIVATE_HOSTS empty: loopback is private
    sync = Sync(stack, site)
    docs_site(site, ["refunds"])
    sync.add()
    summary = sync.run()
    assert summary["outcome"] == "partial"
    assert summary["errors"].get("blocked_address", 0) >= 1 or "robots.txt" in " ".join(summary["reasons"])
    assert site.requests == [] and sync.bucket() == {}
    sync.add(allow_private_hosts=["127.0.0.1"])
    assert sync.run()["outcome"] == "complete"


@pytest.mark.parametrize("form", ["seconds", "date"])
def test_a_429_schedules_the_continuation_at_retry_after(sync, site, form):
    docs_site(site, ["refunds", "invoices"])
    sync.add()
    queue = RecordingQueue()
    engine = sync.engine(queue)
    began = datetime.now(UTC)
    wait = 120 if form == "seconds" else 300
    site.fail("/docs/refunds.html", 429, retry_after=str(wait) if form == "seconds" else
              format_datetime(began + timedelta(seconds=wait), usegmt=True))
    [run] = engine.start(names=["docs"])
    step, result = 0, engine.step(run.id, 0)
    while result["status"] == "continues" and result["not_before"] is None:
        step += 1
        result = engine.step(run.id, step)
    when = datetime.fromisoformat(result["not_before"])
    assert timedelta(seconds=wait - 5) < when - began < timedelta(seconds=wait + 10)
    assert queue.steps[-1] == (run.id, step + 1, when)  # the successor task is scheduled then; nobody sleeps
    early = engine.step(run.id, step + 1)  # delivered early anyway: the page still waits, nothing is refetched
    assert early["status"] == "continues" and datetime.fromisoformat(early["not_before"]) == when
    assert len(site.requests_for("/docs/refunds.html")) == 1
    assert engine.start(names=["docs"])[0].id == run.id  # a start meanwhile joins the run, never doubles it


def test_a_5xx_that_recovers_is_retried_and_written(sync, site):
    docs_site(site, ["refunds"])
    site.fail("/docs/refunds.html", 503, times=2)  # without Retry-After: a short backoff
    sync.add()
    summary = sync.run(sync_step_seconds=30)
    assert summary["outcome"] == "complete"
    assert "docs/docs/refunds.md" in sync.bucket()
    assert summary["counts"]["retried"] == 2


# -- deletions -----------------------------------------------------------------------------------------------------

def test_a_removed_page_is_deleted_only_after_the_grace_runs_and_a_recheck(sync, site):
    docs_site(site, ["refunds", "invoices", "passwords"])
    sync.add()
    sync.run()
    sync.stack.wait_for("docs/docs/invoices.md", "ready")
    site.remove("/docs/invoices.html")
    site.put("/sitemap.xml", sitemap(site, ["/docs/", "/docs/refunds.html", "/docs/passwords.html"]))
    first = sync.run()
    assert first["counts"].get("deleted", 0) == 0 and "docs/docs/invoices.md" in sync.bucket()
    site.clear_log()
    second = sync.run()
    assert second["counts"]["deleted"] == 1
    assert "docs/docs/invoices.md" not in sync.bucket()
    assert [r.status for r in site.requests if r.path == "/docs/invoices.html"][-1] == 404  # the re-check
    sync.stack.wait_for("docs/docs/invoices.md", "deleted")
    assert sync.events(f"{site.url}/docs/invoices.html")[-1] == "deleted"


def test_a_page_missing_from_discovery_that_still_answers_200_is_kept(sync, site):
    docs_site(site, ["refunds", "invoices"])
    sync.add(follow_links=False)
    sync.run()
    with sync.db.transaction() as cur:  # forget that this URL ever led to the page: only discovery could find it
        cur.execute("DELETE FROM sync_urls WHERE url LIKE %s", ("%invoices%",))
    site.put("/sitemap.xml", sitemap(site, ["/docs/", "/docs/refunds.html"]))
    for _ in range(3):
        summary = sync.run()
    assert summary["counts"]["hidden"] == 1 and summary["counts"].get("deleted", 0) == 0
    assert "docs/docs/invoices.md" in sync.bucket()


def test_a_site_that_goes_down_mid_run_gives_a_partial_run_no_deletions_and_the_next_run_completes(sync, site):
    docs_site(site)
    sync.add(concurrency=1)
    sync.run()
    for topic in TOPICS[5:]:
        site.remove(f"/docs/{topic}.html")  # would be deleted by complete runs
    sync.run()
    site.down_after(6)
    summary = sync.run(sync_concurrency=1)
    assert summary["outcome"] == "partial" and "stopped answering" in " ".join(summary["reasons"])
    assert summary["counts"].get("deleted", 0) == 0 and len(sync.bucket()) == 11
    site.down = False
    summary = sync.run()
    assert summary["outcome"] == "complete"
    assert summary["counts"]["deleted"] == 5 and len(sync.bucket()) == 6


def test_a_sitemap_that_shrinks_by_70_percent_withholds_deletions_and_approval_reverifies(sync, site):
    docs_site(site)
    sync.add(follow_links=False)
    sync.run()
    kept = TOPICS[:3]
    for topic in TOPICS[3:]:
        site.remove(f"/docs/{topic}.html")
    site.put("/sitemap.xml", sitemap(site, ["/docs/", *(f"/docs/{t}.html" for t in kept)]))
    sync.run()
    summary = sync.run()
    assert summary["counts"].get("deleted", 0) == 0 and summary["counts"]["withheld"] == 7
    assert len(sync.bucket()) == 11
    site.put("/docs/teams.html", html("Teams guide", article("teams")), "text/html")  # came back meanwhile
    from shared.sync.state import SyncState

    assert len(SyncState(sync.db).withheld_pages("default", "docs")) == 7
    approved = sync.engine().approve("default", "docs")
    assert approved["counts"]["deleted"] == 6 and approved["counts"]["kept"] == 1
    assert "docs/docs/teams.md" in sync.bucket() and len(sync.bucket()) == 5


def test_deletions_per_run_are_capped_and_the_rest_withheld(sync, site):
    docs_site(site)
    sync.add(max_deletes=2)
    sync.run()
    for topic in TOPICS[:4]:
        site.remove(f"/docs/{topic}.html")
    sync.run()
    summary = sync.run()
    assert counts(summary, "deleted", "withheld") == {"deleted": 2, "withheld": 2}


# -- content ------------------------------------------------------------------------------------------------------

def test_a_layout_change_that_collapses_the_text_keeps_the_last_good_version_and_flags_it(sync, site):
    docs_site(site, ["refunds"])
    sync.add()
    sync.run()
    good = sync.bucket()["docs/docs/refunds.md"]
    site.put("/docs/refunds.html", html("Refunds guide", "<p>Loading…</p>"), "text/html")
    summary = sync.run()
    assert summary["counts"]["flagged"] == 1
    assert sync.bucket()["docs/docs/refunds.md"] == good
    page = sync.page(f"{site.url}/docs/refunds.html")
    assert page.flag == "collapsed" and page.status == "active"


def test_a_javascript_shell_is_flagged_not_indexed(sync, site):
    docs_site(site, ["refunds"])
    site.put("/docs/app.html", "<!doctype html><html><head><title>App</title><script src='/app.js'></script>"
             "</head><body><div id='root'></div><noscript>You need to enable JavaScript to run this app."
             "</noscript></body></html>", "text/html")
    site.put("/sitemap.xml", sitemap(site, ["/docs/", "/docs/refunds.html", "/docs/app.html"]))
    sync.add()
    summary = sync.run()
    assert summary["counts"]["flagged"] == 1
    assert "docs/docs/app.md" not in sync.bucket()
    assert sync.page(f"{site.url}/docs/app.html").flag == "javascript_shell"


def test_the_sites_own_markdown_a_pdf_a_non_utf8_page_sitemap_index_gzip_and_text(sync, site):
    site.put("/docs/", html("Acme Docs", "<p>Welcome to the Acme documentation for administrators.</p>",
                            links=["/docs/guide.pdf"]), "text/html")
    site.put("/docs/api.html", html("API", "<p>rendered html version of the api page with words</p>",
                                    head='<link rel="alternate" type="text/markdown" href="/docs/api.md">'),
             "text/html")
    site.put("/docs/api.md", "# API reference\n\nThe Acme API accepts `POST /v1/orders` with a JSON body.\n\n"
             "```bash\ncurl -X POST https://api.acme.example/v1/orders\n```\n", "text/markdown")
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text="Acme travel policy: trains for trips under four hours.")
    site.put("/docs/guide.pdf", bytes(pdf.output()), "application/pdf")
    site.put("/docs/cafe.html", html("Café hours", "<p>The café opens at 8:00 for every visitor.</p>")
             .encode("latin-1"), "text/html; charset=iso-8859-1")
    site.put("/docs/text-only.html", html("Text sitemap", "<p>Listed only by the text sitemap file here.</p>"),
             "text/html")
    child = sitemap(site, ["/docs/api.html", "/docs/cafe.html"])
    site.put("/sitemaps/pages.xml.gz", gzip.compress(child.encode()), "application/gzip")
    site.put("/sitemaps/extra.txt", f"{site.url}/docs/text-only.html\n", "text/plain")
    site.put("/sitemap.xml", '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
             f"<sitemap><loc>{site.url}/sitemaps/pages.xml.gz</loc></sitemap>"
             f"<sitemap><loc>{site.url}/sitemaps/extra.txt</loc></sitemap></sitemapindex>", "application/xml")
    site.robots = f"User-agent: *\nSitemap: {site.url}/sitemap.xml\n"
    sync.add()
    summary = sync.run()
    assert summary["outcome"] == "complete", summary
    objects = sync.bucket()
    assert {"docs/docs/api.md", "docs/docs/guide.pdf", "docs/docs/cafe.md", "docs/docs/text-only.md"} <= set(objects)
    api = sync.text("docs/docs/api.md")
    assert "POST /v1/orders" in api and "```bash" in api and "rendered html" not in api
    assert "Café" in sync.text("docs/docs/cafe.md")
    assert sync.stack.bucket.get_blob("docs/docs/guide.pdf").content_type == "application/pdf"
    sync.stack.wait_for("docs/docs/guide.pdf", "ready")


def test_a_tiny_step_budget_reaches_the_same_end_state_as_one_long_call(make_stack, site):
    paths = docs_site(site)
    site.put("/docs/", html("Acme Docs", "<p>Welcome to the Acme documentation for administrators.</p>",
                            links=paths), "text/html")
    stack = make_stack(SYNC_ALLOWED_PRIVATE_HOSTS="127.0.0.1")
    sync = Sync(stack, site)
    sync.add()
    long = sync.run()
    long_objects = {n: sync.text(n) for n in sync.bucket()}
    with sync.db.transaction() as cur:
        cur.execute("DELETE FROM sync_sources")
    for name in list(sync.bucket()):
        stack.delete(name)
    sync.add()
    queue = RecordingQueue()
    engine = sync.engine(queue, sync_step_seconds=0.001, sync_concurrency=1)
    [run] = engine.start(names=["docs"])
    step = 0
    while engine.step(run.id, step)["status"] == "continues":
        step += 1
    short = engine.state.get_run(run.id).summary()
    assert step >= 3 and len(queue.steps) == step + 1  # step 0 was queued by start()
    assert {n: sync.text(n) for n in sync.bucket()} == long_objects
    assert counts(short, "new", "writes") == counts(long, "new", "writes")


def test_a_duplicate_step_delivery_is_a_no_op(sync, site):
    docs_site(site, ["refunds"])
    sync.add()
    queue = RecordingQueue()
    engine = sync.engine(queue)
    [run] = engine.start(names=["docs"])
    first = engine.step(run.id, 0)
    assert first["status"] in ("continues", "done")
    assert engine.step(run.id, 0) == {"run": run.id, "step": 0, "status": "duplicate"}
    while engine.step(run.id, queue.steps[-1][1])["status"] == "continues":
        pass
    writes = engine.state.get_run(run.id).counts["writes"]
    assert engine.step(run.id, 1)["status"] == "duplicate"
    assert engine.state.get_run(run.id).counts["writes"] == writes


def test_a_dry_run_reports_what_it_would_write_and_delete_and_changes_nothing(sync, site):
    docs_site(site, ["refunds", "invoices"])
    sync.add(grace_runs=1)
    sync.run()
    before = sync.bucket()
    site.edit("/docs/refunds.html", "apply within 5 minutes", "apply within 50 minutes")
    site.remove("/docs/invoices.html")
    engine = sync.engine()
    [run] = engine.start(names=["docs"], dry_run=True)
    summary = engine.run_inline(run.id).summary()
    assert counts(summary, "would_write", "would_delete", "writes", "deleted") == {
        "would_write": 1, "would_delete": 1, "writes": 0, "deleted": 0}
    assert sync.bucket() == before
    real = sync.run()
    assert counts(real, "changed", "deleted") == {"changed": 1, "deleted": 1}


def test_llms_txt_points_at_the_markdown_of_pages(sync, site):
    docs_site(site, ["refunds"])
    site.put("/llms.txt", f"# Acme docs\n\n- [Refunds]({site.url}/docs/refunds.html.md): refunds\n", "text/plain")
    site.put("/docs/refunds.html.md", "# Refunds guide\n\nFrom the Markdown: refunds within 30 days, to the card.\n",
             "text/markdown")
    sync.add()
    sync.run()
    text = sync.text("docs/docs/refunds.md")
    assert "From the Markdown: refunds within 30 days" in text and "revision 1" not in text
    assert sync.run()["counts"].get("writes", 0) == 0


def test_the_page_limit_makes_the_run_partial_and_deletes_nothing(sync, site):
    docs_site(site)
    sync.add(max_pages=4)
    summary = sync.run()
    assert summary["outcome"] == "partial" and "max_pages=4" in " ".join(summary["reasons"])
    assert len(sync.bucket()) == 4


def test_links_to_other_hosts_and_private_addresses_are_never_followed(sync, site):
    docs_site(site, ["refunds"])
    site.put("/docs/", html("Acme Docs", "<p>Welcome to the Acme documentation for administrators.</p>", links=[
        "/docs/refunds.html", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.7/admin",
        "https://elsewhere.example.org/"]), "text/html")
    sync.add()
    summary = sync.run()
    assert summary["outcome"] == "complete" and summary["errors"] == {}
    assert summary["counts"]["requests"] == len(site.requests)  # every request went to the site itself


def test_docs_behind_a_login_are_read_with_headers_from_a_secret(sync, site, monkeypatch):
    docs_site(site, ["refunds"])
    site.require_header = ("Authorization", "Bearer docs-token")
    sync.add()
    assert sync.run()["counts"].get("writes", 0) == 0  # 401 without the header
    monkeypatch.setenv("DOCS_HEADERS", '{"Authorization": "Bearer docs-token"}')
    sync.add(headers_secret="DOCS_HEADERS")
    assert sync.run()["counts"]["writes"] == 2
    with sync.db.transaction() as cur:
        cur.execute("SELECT config::text FROM sync_sources")
        assert "docs-token" not in cur.fetchone()[0]


def test_a_run_whose_task_was_lost_is_queued_again_and_a_late_duplicate_stays_harmless(sync, site):
    docs_site(site, ["refunds"])
    sync.add()
    queue = RecordingQueue()
    engine = sync.engine(queue)
    [run] = engine.start(names=["docs"])
    assert queue.steps == [(run.id, 0, None)]
    assert engine.resume_stalled(3600) == []  # not idle long enough
    assert engine.resume_stalled(0) == [run.id] and queue.steps[-1] == (run.id, 0, None)
    assert engine.step(run.id, 0)["status"] in ("continues", "done")
    assert engine.step(run.id, 0)["status"] == "duplicate"  # the original task, arriving late
