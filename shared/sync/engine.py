"""The sync service: turns each configured source into files in the knowledge bucket, written only when the content
changed and deleted only when the source really removed them; ingest does the rest (versions, chunks, vectors).

A run goes through three phases, each done in budgeted steps (Cloud Tasks on the sync queue, `SYNC_STEP_SECONDS`
each, a successor task for the rest):

    discover   robots.txt, sitemaps, start page (website) · the feed · the bucket listing (s3) -> the work list
    fetch      conditional GETs; the content hash decides what changed; writes of what did
    finalize   deletions, only after a complete discovery: a page missing for `grace_runs` complete runs and
               confirmed gone by a direct re-check (404/410/noindex), at most `max_deletes` per run (the rest
               withheld for `approve`), none when the page count fell sharply

A run is `complete` when nothing limited its discovery, else `partial` with its reasons (robots.txt or a sitemap
failed, the start page was not 200, the site went down, the run's time ran out, too many errors); a partial run
deletes nothing. Each finished run logs one `sync_run` event (shared/logs.py lists the events): its status (the
run's outcome: complete, partial, failed), every counter of the run under the engine's own names (the main ones
always, 0 when nothing was counted), and its duration; the labels `job`, `tenant`, `source`, `run`, `outcome` stay
for the readers of the labels.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone

from shared.logs import log_event
from shared.sync.sources import Source, SourceStore
from shared.sync.state import Busy, Page, Run, SyncState

log = logging.getLogger(__name__)

COLLAPSE_RATIO = 0.2  # new text under 20% of the last good length: a broken layout, not an edit


@dataclass
class Content:
    """What a source item turned into: the bytes to store and what decides whether they changed."""

    key: str  # page identity
    url: str  # live URL (citations)
    title: str
    data: bytes
    content_type: str
    extension: str  # .md, .pdf, or the S3 object's own
    digest: str
    text_length: int
    slug: str  # object path below the source's prefix, without extension
    flag: str | None = None  # javascript_shell, selector_missed: not indexed


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# The counters every sync_run event carries (0 when the run counted none), in the summary message's order.
SUMMARY_COUNTERS = ("discovered", "unchanged", "new", "changed", "moved", "deleted", "withheld", "blocked_by_robots",
                    "errors")


class StepContext:
    """One step's view of its run: counters, the deadline, and the writes (per-key locks: two URLs of one page
    processed at once in the thread pool must not both write)."""

    def __init__(self, engine: SyncEngine, source: Source, run: Run, deadline: float):
        self.engine, self.source, self.run, self.deadline = engine, source, run, deadline
        self.counts: Counter = Counter()
        self.errors: Counter = Counter()
        self._events: list[tuple[str, str, str]] = []
        self._seen: list[str] = []
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}

    @property
    def state(self) -> SyncState:
        return self.engine.state

    def time_left(self) -> float:
        return self.deadline - time.monotonic()

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counts[name] += n

    def error(self, error_class: str) -> None:
        with self._lock:
            self.errors[error_class] += 1
            self.counts["errors"] += 1

    def event(self, key: str, event: str, detail: str = "") -> None:
        with self._lock:
            self._events.append((key, event, detail))

    def key_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def flush(self) -> None:
        """Seen pages, counters into the run, events into the audit trail."""
        self.flush_seen()
        with self._lock:
            events, self._events = self._events, []
            for name, n in self.counts.items():
                self.run.counts[name] = self.run.counts.get(name, 0) + n
            for name, n in self.errors.items():
                self.run.errors[name] = self.run.errors.get(name, 0) + n
            self.counts.clear()
            self.errors.clear()
        self.state.record_events(self.source.tenant, self.source.name, self.run.id, events)

    def incomplete(self, reason: str) -> None:
        if reason not in self.run.reasons:
            self.run.reasons.append(reason)

    # -- seeing and writing pages ----------------------------------------------------------------------------------
    def seen(self, key: str) -> None:
        """The page is still there (unchanged, or not readable this time): recorded with the next `flush_seen`."""
        with self._lock:
            self._seen.append(key)

    def flush_seen(self) -> None:
        """Record the pages seen so far (one statement per batch of fetches instead of one per page)."""
        with self._lock:
            keys, self._seen = self._seen, []
        if not keys:
            return
        if self.run.dry_run:
            self.state.note_seen(self.run.id, keys)
        else:
            self.state.mark_seen(self.source.tenant, self.source.name, keys, self.run.id)

    def store(self, content: Content) -> tuple[str, str]:
        """Write `content` if it changed. Returns (what happened, the key of the page it belongs to): new | changed |
        unchanged | duplicate (another URL of a page already handled, or the same content as another page) |
        flagged. The quality gate keeps the last good version of a page whose text vanished or collapsed."""
        source, run = self.source, self.run
        with self.key_lock(content.key):
            page, twin, taken = self.state.lookup(source.tenant, source.name, content.key, content.digest,
                                                  self._plain_name(content))
            live = page is not None and page.status != "deleted"
            if live and page.seen_run == run.id and page.content_hash == content.digest:
                self.count("duplicate_urls")
                return "duplicate", content.key
            if content.flag:
                return self._flag(page, content, content.flag, taken), content.key
            if content.text_length == 0 or (live and page.good_length
                                            and content.text_length < COLLAPSE_RATIO * page.good_length):
                return self._flag(page, content, "collapsed" if live and page.good_length else "empty",
                                  taken), content.key
            if not live:
                if twin is not None:  # the same content at another URL without a canonical link: one document
                    self.count("duplicate_urls")
                    self.seen(twin.key)
                    return "duplicate", twin.key
            if live and page.status == "active" and page.content_hash == content.digest and page.url == content.url:
                self.count("unchanged")
                if page.flag and not run.dry_run:  # good again after a flagged fetch
                    page.flag, page.seen_run, page.missing_runs, page.withheld_run = None, run.id, 0, None
                    self.state.save_page(page, changed=False)
                    self.event(content.key, "restored", "the content is good again")
                else:
                    self.seen(content.key)
                return "unchanged", content.key
            name = page.object_name if page else self._object_name(content, taken)
            return self._write(page if live else None, content, name), content.key

    def _plain_name(self, content: Content) -> str:
        return f"{self.source.object_prefix}{content.slug}{content.extension}"

    def _object_name(self, content: Content, taken: bool) -> str:
        """Its plain name, or with a hash of its key when another page has that name (two keys, one slug)."""
        if not taken:
            return self._plain_name(content)
        import hashlib

        digest = hashlib.sha1(content.key.encode()).hexdigest()[:8]
        return f"{self.source.object_prefix}{content.slug}-{digest}{content.extension}"

    def _write(self, page: Page | None, content: Content, object_name: str) -> str:
        """Write the object under `object_name` (a page keeps its name, also when it comes back after a
        deletion)."""
        source, run = self.source, self.run
        kind = "new" if page is None or page.generation is None else "changed"
        name = object_name
        if run.dry_run:
            self.count("would_write")
            self.count(kind)
            self.event(content.key, f"would_{kind}", name)
            self.seen(content.key)
            return kind
        metadata = {"tenant": source.tenant, "source_url": content.url, "sync_source": source.name}
        if content.title and content.extension != ".md":  # a Markdown document carries its title in front matter
            metadata["title"] = content.title
        generation = self.engine.objects.upload(self.engine.bucket, name, content.data, content.content_type, metadata)
        self.state.save_page(Page(source.tenant, source.name, content.key, content.url, name, content.title,
                                  content.digest, content.text_length, generation, "active", None, 0, None, run.id),
                             changed=True)
        self.count(kind)
        self.count("writes")
        self.count("bytes_written", len(content.data))
        self.event(content.key, kind, f"{name} generation {generation}")
        return kind

    def _flag(self, page: Page | None, content: Content, flag: str, taken: bool) -> str:
        """Not indexed; a page that had a good version keeps it (and is not deleted for this)."""
        self.count("flagged")
        self.event(content.key, "flagged", flag)
        if self.run.dry_run:
            self.seen(content.key)
            return "flagged"
        if page is None or page.status == "deleted":
            self.state.save_page(Page(self.source.tenant, self.source.name, content.key, content.url,
                                      page.object_name if page else self._object_name(content, taken), content.title,
                                      None,
                                      0, None, "flagged", flag, 0, None, self.run.id), changed=False)
        else:
            page.flag, page.seen_run, page.missing_runs, page.withheld_run = flag, self.run.id, 0, None
            self.state.save_page(page, changed=False)
        return "flagged"

    def move(self, old_key: str, new_key: str) -> bool:
        """An old URL that now redirects: the page keeps its object under its new identity. False when the new
        identity is a page already (then the old one is an ordinary missing page)."""
        source = self.source
        if old_key == new_key or self.run.dry_run:
            return False
        with self.key_lock(new_key):
            if self.state.get_page(source.tenant, source.name, new_key) is not None:
                return False
            old = self.state.get_page(source.tenant, source.name, old_key)
            if old is None or old.status == "deleted":
                return False
            self.state.rename_page(source.tenant, source.name, old_key, new_key)
        self.count("moved")
        self.event(new_key, "moved", f"from {old_key}")
        return True


class SyncEngine:
    """Starts runs, runs their steps, approves withheld deletions. `queue` is the sync queue (None: steps run
    inline, one after the other, as `make sync ARGS=--inline` and some tests do)."""

    def __init__(self, settings, db, objects, queue=None, *, handlers=None):
        self.settings = settings
        self.db = db
        self.objects = objects
        self.queue = queue
        self.bucket = settings.knowledge_bucket
        self.state = SyncState(db)
        self.sources = SourceStore(db)
        self._handlers = handlers

    # -- starting ------------------------------------------------------------------------------------------------
    def start(self, *, tenant: str | None = None, names: list[str] | None = None, trigger: str = "operator",
              dry_run: bool = False) -> list[Run]:
        """A run for every enabled source (of `tenant`, or named), joining one that is already running. Also
        re-queues runs whose next task was lost."""
        sources = [s for s in self.sources.list(tenant) if not s.paused or names]
        if names:
            missing = set(names) - {s.name for s in sources}
            if missing:
                from shared.errors import NotFound

                raise NotFound(f"no sync source named {', '.join(sorted(missing))}")
            sources = [s for s in sources if s.name in names]
        runs = []
        for source in sources:
            run, created = self.state.start_run(source.tenant, source.name, source.kind, trigger, dry_run)
            if created:
                self._schedule(run.id, 0, None)
            runs.append(run)
        self.resume_stalled(max(600.0, 3 * self.settings.sync_step_seconds))
        return runs

    def resume_stalled(self, idle_seconds: float) -> list[int]:
        """Queue again the current step of every unfinished run that nobody holds and that did nothing for
        `idle_seconds` (its task was lost: a queue purged, an emulator restarted). Harmless if the task was only
        late: the step number and the lease make the second delivery a no-op."""
        resumed = []
        for run in self.state.stalled_runs(idle_seconds):
            log.warning("sync run %s had no step for %.0f s: queueing step %s again", run.id, idle_seconds, run.step)
            self._schedule(run.id, run.step, None, attempt=int(time.time()))
            resumed.append(run.id)
        return resumed

    def _schedule(self, run_id: int, step: int, not_before: datetime | None, attempt: int = 0) -> None:
        if self.queue is not None:
            self.queue.enqueue_step(run_id, step, not_before, attempt=attempt)

    def run_inline(self, run_id: int, *, wait: bool = True) -> Run:
        """Every step of a run in this process (waiting out Retry-After), until it is done."""
        while True:
            run = self.state.get_run(run_id)
            if run is None or run.finished_at is not None:
                return run
            if run.not_before and wait:
                delay = (run.not_before - utcnow()).total_seconds()
                if delay > 0:
                    time.sleep(min(delay, 3600))
            self.step(run_id, run.step, schedule=False)

    # -- one step ------------------------------------------------------------------------------------------------
    def step(self, run_id: int, step: int, *, schedule: bool = True) -> dict:
        """Run step `step` of the run: a no-op for a duplicate delivery; Busy when another worker holds it."""
        owner = uuid.uuid4().hex
        budget = self.settings.sync_step_seconds
        run = self.state.lease(run_id, step, owner, budget + 120)
        if run is None:
            return {"run": run_id, "step": step, "status": "duplicate"}
        try:
            source = self.sources.get(run.tenant, run.source)
        except Exception:  # noqa: BLE001 - the source was removed while its run waited
            run.reasons.append("source removed")
            self.state.finish(run, "failed")
            self._log_summary(run)
            return {"run": run_id, "step": step, "status": "done", "outcome": "failed"}
        ctx = StepContext(self, source, run, time.monotonic() + budget)
        handler = self.handler(source, ctx)
        run.not_before = None
        try:
            if (utcnow() - run.started_at).total_seconds() > self.settings.sync_run_max_seconds \
                    and run.phase != "finalize":
                ctx.incomplete("the run's time budget ran out "
                               f"(SYNC_RUN_MAX_SECONDS={self.settings.sync_run_max_seconds:g})")
                run.phase = "finalize"
            if run.phase == "discover" and handler.discover() and run.phase == "discover":
                run.phase = "fetch"  # discovery is done (a listing that ran out of time says False: it goes on)
            if run.phase == "fetch":  # at least one batch per step, then as many as the budget allows
                run.not_before = handler.fetch()
            if run.phase == "finalize":
                self._finalize(handler, ctx)
        except Exception:
            ctx.flush()
            self.state.save_progress(run)
            self.state.release(run_id, owner)
            raise
        finally:
            handler.close()
        ctx.flush()
        if run.phase == "done":
            return {"run": run_id, "step": step, "status": "done", "outcome": run.outcome}
        self.state.save_progress(run)
        if schedule:
            self._schedule(run_id, step + 1, run.not_before)
        self.state.advance(run_id, owner)
        return {"run": run_id, "step": step, "status": "continues", "phase": run.phase,
                "not_before": run.not_before.isoformat() if run.not_before else None}

    def handler(self, source: Source, ctx: StepContext):
        from shared.sync.listings import FeedSource, S3Source
        from shared.sync.website import WebsiteSource

        handlers = self._handlers or {"website": WebsiteSource, "feed": FeedSource, "s3": S3Source}
        return handlers[source.kind](ctx)

    # -- finalize: deletions ---------------------------------------------------------------------------------------
    def max_deletes(self, source: Source, total: int) -> int:
        if source.get("max_deletes") is not None:
            return source.get("max_deletes")
        if self.settings.sync_max_deletes:
            return self.settings.sync_max_deletes
        return max(10, total // 10)

    def _finalize(self, handler, ctx: StepContext) -> None:
        run, source, state = ctx.run, ctx.source, self.state
        tenant, name = source.tenant, source.name
        ctx.flush_seen()
        seen = state.seen_count(tenant, name, run.id)
        run.counts["seen"] = seen
        complete = not run.reasons
        if complete:
            unseen = state.unseen_pages(tenant, name, run.id)
            grace = source.get("grace_runs") or self.settings.sync_grace_runs
            due = [p for p in unseen if p.missing_runs + 1 >= grace]
            run.counts["missing"] = len(unseen)
            held = seen + len(unseen)
            shrunk = bool(unseen) and seen < (1 - self.settings.sync_shrink_limit) * held
            if run.dry_run:
                self._would_delete(handler, ctx, [] if shrunk else due)
            else:
                state.count_missing(tenant, name, run.id)
                if shrunk and due:
                    ctx.count("withheld", len(due))
                    for page in due:
                        self._withhold(ctx, page, f"this run saw {seen} of the {held} pages it holds")
                    run.state["withheld_reason"] = f"this run saw {seen} of the {held} pages it holds"
                elif due:
                    self._delete_due(handler, ctx, due, self.max_deletes(source, held))
        ctx.flush()
        outcome = "complete" if complete else "partial"
        self.state.finish(run, outcome)
        run.finished_at = run.finished_at or utcnow()
        self._log_summary(run)

    def _would_delete(self, handler, ctx: StepContext, due: list[Page]) -> None:
        for page in due:
            verdict, detail = handler.recheck(page)
            if verdict == "gone":
                ctx.count("would_delete")
                ctx.event(page.key, "would_delete", detail)

    def _withhold(self, ctx: StepContext, page: Page, why: str) -> None:
        page.withheld_run = ctx.run.id
        page.missing_runs += 1
        self.state.save_page(page, changed=False)
        ctx.event(page.key, "withheld", why)

    def _delete_due(self, handler, ctx: StepContext, due: list[Page], cap: int) -> None:
        deleted = 0
        for page in due:
            if deleted >= cap:
                ctx.count("withheld")
                self._withhold(ctx, page, f"over this run's deletion cap ({cap})")
                continue
            verdict, detail = handler.recheck(page)
            if verdict == "gone":
                self.delete_page(ctx, page, detail)
                deleted += 1
            elif verdict == "present":
                ctx.count("hidden")
                ctx.event(page.key, "kept", f"missing from discovery but {detail}")
            else:
                ctx.error("recheck")
                ctx.event(page.key, "kept", f"re-check failed: {detail}")

    def delete_page(self, ctx: StepContext, page: Page, detail: str) -> None:
        if page.generation is not None or page.status == "active":
            self.objects.delete(self.bucket, page.object_name)
        page.status, page.withheld_run, page.content_hash = "deleted", None, None
        self.state.save_page(page, changed=True)
        self.state.forget_urls_of(page.tenant, page.source, page.key)
        ctx.count("deleted")
        ctx.event(page.key, "deleted", detail)

    def _log_summary(self, run: Run) -> None:
        summary = run.summary()
        counts = {**dict.fromkeys(SUMMARY_COUNTERS, 0), **summary["counts"]}
        message = ("sync {}/{} run {} {} in {:.1f} s: discovered {}, unchanged {}, new {}, changed {}, moved {}, "
                   "deleted {}, withheld {}, blocked by robots {}, errors {}{}").format(
            run.tenant, run.source, run.id, run.outcome, summary["duration_s"],
            *(counts[name] for name in SUMMARY_COUNTERS), f" ({'; '.join(run.reasons)})" if run.reasons else "")
        fields = {"tenant": run.tenant, "source": run.source, "run": str(run.id), "status": run.outcome,
                  "kind": run.kind, "trigger": run.trigger, "dry_run": bool(run.dry_run),
                  "duration_s": float(summary["duration_s"])}
        # The counters under the engine's names; one that shares a name with a field above cannot replace it.
        fields.update({name: int(n) for name, n in counts.items() if name not in fields and isinstance(n, int)})
        log_event(log, "sync_run", message=message,
                  labels={"job": "sync", "tenant": run.tenant, "source": run.source, "run": str(run.id),
                          "outcome": run.outcome},
                  **fields)

    # -- approving withheld deletions ------------------------------------------------------------------------------
    def approve(self, tenant: str, name: str) -> dict:
        """Re-verify every withheld deletion of the source now (never replay the old list): a page still gone is
        deleted, one that came back is kept."""
        source = self.sources.get(tenant, name)
        run, _ = self.state.start_run(tenant, name, source.kind, "approve", False)
        if run.trigger != "approve":
            from shared.errors import BadRequest

            raise BadRequest(f"a run of {name} is in progress (run {run.id}); approve when it has finished")
        ctx = StepContext(self, source, run, time.monotonic() + 3600)
        handler = self.handler(source, ctx)
        try:
            for page in self.state.withheld_pages(tenant, name):
                verdict, detail = handler.recheck(page)
                if verdict == "gone":
                    self.delete_page(ctx, page, f"approved: {detail}")
                else:
                    page.withheld_run = None
                    self.state.save_page(page, changed=False)
                    ctx.count("kept")
                    ctx.event(page.key, "kept", f"approval re-check: {detail}")
        finally:
            handler.close()
        ctx.flush()
        self.state.finish(run, "complete")
        self._log_summary(run)
        return run.summary()

    def remove_source(self, tenant: str, name: str, keep_documents: bool = False) -> int:
        """Remove a source; its objects are deleted too (ingest then forgets their documents) unless kept."""
        source = self.sources.get(tenant, name)
        removed = 0
        if not keep_documents:
            for page in self.state.pages(tenant, name, ("active", "flagged")):
                if page.generation is not None and self.objects.delete(self.bucket, page.object_name):
                    removed += 1
        self.sources.remove(source.tenant, source.name)
        return removed


__all__ = ["Busy", "Content", "StepContext", "SyncEngine"]
