"""What the sync knows, in PostgreSQL (infra/migrations/0004_sync.sql): runs and their leases, each run's work list
(the frontier), pages with validators, content hash and object, the URLs that lead to them, and page events.

Single statements run outside a transaction (`Database.autocommit`: one round trip instead of three; a page
costs a handful of them); what must commit together runs in one.

Leases make duplicate task deliveries and overlapping runs harmless: a step runs only while it holds its run's
lease and only if its step number is the run's current one; an older number is a duplicate (a no-op), and a run
whose lease another worker holds is busy (the task is retried later).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class Run:
    id: int
    tenant: str
    source: str
    kind: str
    trigger: str
    dry_run: bool
    phase: str
    outcome: str
    reasons: list[str]
    counts: dict
    errors: dict
    state: dict
    step: int
    started_at: datetime
    finished_at: datetime | None = None
    not_before: datetime | None = None

    def summary(self) -> dict:
        return {"run": self.id, "tenant": self.tenant, "source": self.source, "kind": self.kind,
                "trigger": self.trigger, "dry_run": self.dry_run, "phase": self.phase, "outcome": self.outcome,
                "reasons": list(self.reasons), "counts": dict(self.counts), "errors": dict(self.errors),
                "started_at": self.started_at.isoformat(),
                "finished_at": self.finished_at.isoformat() if self.finished_at else None,
                "duration_s": round(((self.finished_at or self.started_at) - self.started_at).total_seconds(), 1)}


@dataclass
class Page:
    tenant: str
    source: str
    key: str
    url: str
    object_name: str
    title: str
    content_hash: str | None
    good_length: int
    generation: int | None
    status: str
    flag: str | None
    missing_runs: int
    withheld_run: int | None
    seen_run: int | None


@dataclass
class UrlState:
    url: str
    page_key: str | None
    final_url: str | None
    etag: str | None
    last_modified: str | None
    status: int | None


@dataclass
class Item:
    url: str
    kind: str
    depth: int
    attempts: int
    extra: dict = field(default_factory=dict)


_RUN_COLUMNS = ("id, tenant, source, kind, trigger, dry_run, phase, outcome, reasons, counts, errors, state, step, "
                "started_at, finished_at, not_before")
_PAGE_COLUMNS = ("tenant, source, key, url, object_name, title, content_hash, good_length, generation, status, flag, "
                 "missing_runs, withheld_run, seen_run")


def _json(value):
    return value if isinstance(value, (dict, list)) else json.loads(value or "{}")


def _run(row) -> Run:
    r = list(row)
    return Run(id=r[0], tenant=r[1], source=r[2], kind=r[3], trigger=r[4], dry_run=r[5], phase=r[6], outcome=r[7],
               reasons=list(r[8] or []), counts=_json(r[9]), errors=_json(r[10]), state=_json(r[11]), step=r[12],
               started_at=r[13], finished_at=r[14], not_before=r[15])


def _page(row) -> Page:
    return Page(*row)


class Busy(Exception):
    """Another worker holds the run's lease (or the step is not the run's next one yet): try again later."""


class SyncState:
    def __init__(self, db):
        self._db = db

    # -- runs ----------------------------------------------------------------------------------------------------
    def start_run(self, tenant: str, source: str, kind: str, trigger: str, dry_run: bool) -> tuple[Run, bool]:
        """A new run for the source, or the unfinished one (overlapping starts join it). Returns (run, created)."""
        with self._db.transaction() as cur:
            cur.execute(f"INSERT INTO sync_runs (tenant, source, kind, trigger, dry_run) VALUES (%s, %s, %s, %s, %s) "
                        f"ON CONFLICT (tenant, source) WHERE finished_at IS NULL DO NOTHING RETURNING {_RUN_COLUMNS}",
                        (tenant, source, kind, trigger, dry_run))
            row = cur.fetchone()
            if row:
                return _run(row), True
            cur.execute(f"SELECT {_RUN_COLUMNS} FROM sync_runs WHERE tenant = %s AND source = %s AND finished_at IS "
                        "NULL", (tenant, source))
            row = cur.fetchone()
        if row is None:  # finished between the two statements: start again
            return self.start_run(tenant, source, kind, trigger, dry_run)
        return _run(row), False

    def get_run(self, run_id: int) -> Run | None:
        with self._db.autocommit() as cur:
            cur.execute(f"SELECT {_RUN_COLUMNS} FROM sync_runs WHERE id = %s", (run_id,))
            row = cur.fetchone()
        return _run(row) if row else None

    def runs(self, tenant: str | None = None, source: str | None = None, limit: int = 20) -> list[Run]:
        where, args = [], []
        if tenant:
            where.append("tenant = %s")
            args.append(tenant)
        if source:
            where.append("source = %s")
            args.append(source)
        sql = f"SELECT {_RUN_COLUMNS} FROM sync_runs" + (" WHERE " + " AND ".join(where) if where else "")
        with self._db.autocommit() as cur:
            cur.execute(sql + " ORDER BY id DESC LIMIT %s", (*args, limit))
            return [_run(r) for r in cur.fetchall()]

    def stalled_runs(self, idle_seconds: float) -> list[Run]:
        """Unfinished runs nobody holds and that did nothing for `idle_seconds` (their next task was lost)."""
        with self._db.autocommit() as cur:
            cur.execute(f"SELECT {_RUN_COLUMNS} FROM sync_runs WHERE finished_at IS NULL "
                        "AND (lease_until IS NULL OR lease_until < now()) "
                        "AND updated_at < now() - make_interval(secs => %s) "
                        "AND (not_before IS NULL OR not_before < now())", (idle_seconds,))
            return [_run(r) for r in cur.fetchall()]

    def lease(self, run_id: int, step: int, owner: str, seconds: float) -> Run | None:
        """Take the run's lease for step `step`. None: a duplicate (the run finished, or moved past that step).
        Raises Busy when the step is current but another worker holds the lease, or the step is ahead."""
        with self._db.transaction() as cur:
            cur.execute(f"UPDATE sync_runs SET lease_owner = %s, lease_until = now() + make_interval(secs => %s), "
                        "updated_at = now() WHERE id = %s AND step = %s AND finished_at IS NULL "
                        "AND (lease_until IS NULL OR lease_until < now() OR lease_owner = %s) "
                        f"RETURNING {_RUN_COLUMNS}",
                        (owner, seconds, run_id, step, owner))
            row = cur.fetchone()
            if row:
                return _run(row)
            cur.execute("SELECT step, finished_at FROM sync_runs WHERE id = %s", (run_id,))
            current = cur.fetchone()
        if current is None or current[1] is not None or current[0] > step:
            return None
        raise Busy(f"run {run_id} step {step}: " + ("held by another worker" if current[0] == step
                                                     else f"the run is at step {current[0]}"))

    def save_progress(self, run: Run) -> None:
        with self._db.autocommit() as cur:
            cur.execute("UPDATE sync_runs SET phase = %s, reasons = %s, counts = %s::jsonb, errors = %s::jsonb, "
                        "state = %s::jsonb, not_before = %s, updated_at = now() WHERE id = %s",
                        (run.phase, run.reasons, json.dumps(run.counts), json.dumps(run.errors),
                         json.dumps(run.state), run.not_before, run.id))

    def advance(self, run_id: int, owner: str) -> None:
        """The step is over and its successor is queued: the next step number may run, the lease is free."""
        with self._db.autocommit() as cur:
            cur.execute("UPDATE sync_runs SET step = step + 1, lease_owner = NULL, lease_until = NULL, "
                        "updated_at = now() WHERE id = %s AND lease_owner = %s", (run_id, owner))

    def release(self, run_id: int, owner: str) -> None:
        with self._db.autocommit() as cur:
            cur.execute("UPDATE sync_runs SET lease_owner = NULL, lease_until = NULL WHERE id = %s AND "
                        "lease_owner = %s", (run_id, owner))

    def finish(self, run: Run, outcome: str) -> None:
        run.outcome, run.phase = outcome, "done"
        with self._db.transaction() as cur:
            cur.execute("UPDATE sync_runs SET phase = 'done', outcome = %s, reasons = %s, counts = %s::jsonb, "
                        "errors = %s::jsonb, state = %s::jsonb, finished_at = now(), updated_at = now(), "
                        "lease_owner = NULL, lease_until = NULL WHERE id = %s RETURNING finished_at",
                        (outcome, run.reasons, json.dumps(run.counts), json.dumps(run.errors),
                         json.dumps(run.state), run.id))
            run.finished_at = cur.fetchone()[0]
            cur.execute("DELETE FROM sync_frontier WHERE run_id = %s", (run.id,))  # the work list has served

    # -- the frontier --------------------------------------------------------------------------------------------
    def add_items(self, run_id: int, items: list[tuple[str, str, int, float]]) -> int:
        """Add (url, kind, depth, priority) items the run does not hold yet; returns how many were new."""
        if not items:
            return 0
        added = 0
        with self._db.transaction() as cur:
            for start in range(0, len(items), 500):
                batch = items[start:start + 500]
                values = ", ".join(["(%s, %s, %s, %s, %s)"] * len(batch))
                args = [v for url, kind, depth, priority in batch for v in (run_id, url, kind, depth, priority)]
                cur.execute(f"INSERT INTO sync_frontier (run_id, url, kind, depth, priority) VALUES {values} "
                            "ON CONFLICT DO NOTHING", args)
                added += cur.rowcount
        return added

    def held_items(self, run_id: int, urls: list[str]) -> set[str]:
        with self._db.autocommit() as cur:
            cur.execute("SELECT url FROM sync_frontier WHERE run_id = %s AND url = ANY(%s)", (run_id, list(urls)))
            return {r[0] for r in cur.fetchall()}

    def count_items(self, run_id: int, kind: str = "page") -> int:
        with self._db.autocommit() as cur:
            cur.execute("SELECT count(*) FROM sync_frontier WHERE run_id = %s AND kind = %s", (run_id, kind))
            return cur.fetchone()[0]

    def next_items(self, run_id: int, limit: int) -> list[Item]:
        """Pending items that may run now: sitemaps before pages, then by priority (sitemap lastmod)."""
        with self._db.autocommit() as cur:
            cur.execute("SELECT url, kind, depth, attempts FROM sync_frontier WHERE run_id = %s AND state = 'pending' "
                        "AND (not_before IS NULL OR not_before <= now()) "
                        "ORDER BY (kind = 'sitemap') DESC, priority DESC, url LIMIT %s", (run_id, limit))
            return [Item(*r) for r in cur.fetchall()]

    def waiting_until(self, run_id: int) -> datetime | None:
        """When the earliest pending item that must wait (Retry-After, backoff) may run; None when none waits."""
        with self._db.autocommit() as cur:
            cur.execute("SELECT min(not_before) FROM sync_frontier WHERE run_id = %s AND state = 'pending'",
                        (run_id,))
            return cur.fetchone()[0]

    def pending_count(self, run_id: int) -> int:
        with self._db.autocommit() as cur:
            cur.execute("SELECT count(*) FROM sync_frontier WHERE run_id = %s AND state = 'pending'", (run_id,))
            return cur.fetchone()[0]

    def finish_items(self, run_id: int, urls: list[str]) -> None:
        if not urls:
            return
        with self._db.autocommit() as cur:
            cur.execute("UPDATE sync_frontier SET state = 'done' WHERE run_id = %s AND url = ANY(%s)",
                        (run_id, list(urls)))

    def retry_item(self, run_id: int, url: str, not_before: datetime) -> None:
        """The item is tried again, not before `not_before` (a Retry-After, a backoff)."""
        with self._db.autocommit() as cur:
            cur.execute("UPDATE sync_frontier SET attempts = attempts + 1, not_before = %s WHERE run_id = %s AND "
                        "url = %s", (not_before, run_id, url))

    # -- URLs ----------------------------------------------------------------------------------------------------
    def get_url(self, tenant: str, source: str, url: str) -> UrlState | None:
        with self._db.autocommit() as cur:
            cur.execute("SELECT url, page_key, final_url, etag, last_modified, status FROM sync_urls "
                        "WHERE tenant = %s AND source = %s AND url = %s", (tenant, source, url))
            row = cur.fetchone()
        return UrlState(*row) if row else None

    def put_urls(self, tenant: str, source: str, urls: list[str], *, page_key: str | None, final_url: str | None,
                 etag: str | None, last_modified: str | None, status: int | None) -> None:
        """`put_url` for several URLs that led to the same response (a redirect's source and target), at once."""
        urls = list(dict.fromkeys(urls))
        values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(urls))
        args = [v for url in urls for v in (tenant, source, url, page_key, final_url, etag, last_modified, status)]
        with self._db.autocommit() as cur:
            cur.execute("INSERT INTO sync_urls (tenant, source, url, page_key, final_url, etag, last_modified, status) "
                        f"VALUES {values} ON CONFLICT (tenant, source, url) DO UPDATE SET "
                        "page_key = EXCLUDED.page_key, final_url = EXCLUDED.final_url, etag = EXCLUDED.etag, "
                        "last_modified = EXCLUDED.last_modified, status = EXCLUDED.status, checked_at = now()", args)

    def put_url(self, tenant: str, source: str, url: str, *, page_key: str | None, final_url: str | None,
                etag: str | None, last_modified: str | None, status: int | None) -> None:
        self.put_urls(tenant, source, [url], page_key=page_key, final_url=final_url, etag=etag,
                      last_modified=last_modified, status=status)

    def forget_urls_of(self, tenant: str, source: str, key: str) -> None:
        with self._db.autocommit() as cur:
            cur.execute("UPDATE sync_urls SET page_key = NULL, etag = NULL, last_modified = NULL "
                        "WHERE tenant = %s AND source = %s AND page_key = %s", (tenant, source, key))

    # -- pages ---------------------------------------------------------------------------------------------------
    def get_page(self, tenant: str, source: str, key: str) -> Page | None:
        with self._db.autocommit() as cur:
            cur.execute(f"SELECT {_PAGE_COLUMNS} FROM sync_pages WHERE tenant = %s AND source = %s AND key = %s",
                        (tenant, source, key))
            row = cur.fetchone()
        return _page(row) if row else None

    def lookup(self, tenant: str, source: str, key: str, digest: str, object_name: str
               ) -> tuple[Page | None, Page | None, bool]:
        """In one round trip: the page `key`, another live page of the source with content `digest` (a duplicate
        URL without a canonical link), and whether `object_name` is taken."""
        with self._db.autocommit() as cur:
            cur.execute(f"(SELECT 1, {_PAGE_COLUMNS} FROM sync_pages WHERE tenant = %s AND source = %s AND key = %s) "
                        f"UNION ALL (SELECT 2, {_PAGE_COLUMNS} FROM sync_pages WHERE tenant = %s AND source = %s AND "
                        "content_hash = %s AND key <> %s AND status = 'active' ORDER BY length(key), key LIMIT 1) "
                        f"UNION ALL (SELECT 3, {_PAGE_COLUMNS} FROM sync_pages WHERE object_name = %s LIMIT 1)",
                        (tenant, source, key, tenant, source, digest, key, object_name))
            rows = {r[0]: _page(r[1:]) for r in cur.fetchall()}
        return rows.get(1), rows.get(2), 3 in rows

    def pages(self, tenant: str, source: str, statuses: tuple[str, ...] = ("active", "flagged")) -> list[Page]:
        with self._db.autocommit() as cur:
            cur.execute(f"SELECT {_PAGE_COLUMNS} FROM sync_pages WHERE tenant = %s AND source = %s AND "
                        "status = ANY(%s) ORDER BY key", (tenant, source, list(statuses)))
            return [_page(r) for r in cur.fetchall()]

    def save_page(self, page: Page, *, changed: bool) -> None:
        with self._db.autocommit() as cur:
            cur.execute(
                f"INSERT INTO sync_pages ({_PAGE_COLUMNS}, last_seen, changed_at) VALUES "
                "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now(), CASE WHEN %s THEN now() END) "
                "ON CONFLICT (tenant, source, key) DO UPDATE SET url = EXCLUDED.url, object_name = "
                "EXCLUDED.object_name, title = EXCLUDED.title, content_hash = EXCLUDED.content_hash, good_length = "
                "EXCLUDED.good_length, generation = EXCLUDED.generation, status = EXCLUDED.status, flag = "
                "EXCLUDED.flag, missing_runs = EXCLUDED.missing_runs, withheld_run = EXCLUDED.withheld_run, seen_run = "
                "EXCLUDED.seen_run, last_seen = now(), changed_at = COALESCE(EXCLUDED.changed_at, "
                "sync_pages.changed_at)",
                (page.tenant, page.source, page.key, page.url, page.object_name, page.title, page.content_hash,
                 page.good_length, page.generation, page.status, page.flag, page.missing_runs, page.withheld_run,
                 page.seen_run, changed))

    def rename_page(self, tenant: str, source: str, old_key: str, new_key: str) -> None:
        with self._db.transaction() as cur:
            cur.execute("UPDATE sync_pages SET key = %s WHERE tenant = %s AND source = %s AND key = %s",
                        (new_key, tenant, source, old_key))
            cur.execute("UPDATE sync_urls SET page_key = %s WHERE tenant = %s AND source = %s AND page_key = %s",
                        (new_key, tenant, source, old_key))
            cur.execute("UPDATE sync_page_events SET key = %s WHERE tenant = %s AND source = %s AND key = %s",
                        (new_key, tenant, source, old_key))

    def mark_seen(self, tenant: str, source: str, keys: list[str], run_id: int) -> None:
        if not keys:
            return
        with self._db.autocommit() as cur:
            cur.execute("UPDATE sync_pages SET seen_run = %s, missing_runs = 0, withheld_run = NULL, last_seen = now() "
                        "WHERE tenant = %s AND source = %s AND key = ANY(%s)", (run_id, tenant, source, list(keys)))

    def note_seen(self, run_id: int, keys: list[str]) -> None:
        """A dry run changes no page: what it saw is kept in its own work list (kind 'seen')."""
        with self._db.autocommit() as cur:
            cur.execute("INSERT INTO sync_frontier (run_id, url, kind, state) SELECT %s, k, 'seen', 'done' "
                        "FROM unnest(%s::text[]) AS k ON CONFLICT (run_id, url) DO UPDATE SET kind = 'seen', "
                        "state = 'done'", (run_id, ["seen:" + k for k in keys]))

    _SEEN = ("(seen_run = %s OR ('seen:' || key) IN (SELECT url FROM sync_frontier WHERE run_id = %s AND "
             "kind = 'seen'))")

    def seen_count(self, tenant: str, source: str, run_id: int) -> int:
        with self._db.autocommit() as cur:
            cur.execute(f"SELECT count(*) FROM sync_pages WHERE tenant = %s AND source = %s AND {self._SEEN} "
                        "AND status <> 'deleted'", (tenant, source, run_id, run_id))
            return cur.fetchone()[0]

    def unseen_pages(self, tenant: str, source: str, run_id: int) -> list[Page]:
        with self._db.autocommit() as cur:
            cur.execute(f"SELECT {_PAGE_COLUMNS} FROM sync_pages WHERE tenant = %s AND source = %s AND status <> "
                        f"'deleted' AND seen_run IS DISTINCT FROM %s AND NOT {self._SEEN} ORDER BY key",
                        (tenant, source, run_id, run_id, run_id))
            return [_page(r) for r in cur.fetchall()]

    def count_missing(self, tenant: str, source: str, run_id: int) -> None:
        """Every page this (complete) run did not see has been missing for one more run."""
        with self._db.autocommit() as cur:
            cur.execute("UPDATE sync_pages SET missing_runs = missing_runs + 1 WHERE tenant = %s AND source = %s AND "
                        "status <> 'deleted' AND (seen_run IS NULL OR seen_run <> %s)", (tenant, source, run_id))

    def withheld_pages(self, tenant: str, source: str) -> list[Page]:
        with self._db.autocommit() as cur:
            cur.execute(f"SELECT {_PAGE_COLUMNS} FROM sync_pages WHERE tenant = %s AND source = %s AND "
                        "withheld_run IS NOT NULL AND status <> 'deleted' ORDER BY key", (tenant, source))
            return [_page(r) for r in cur.fetchall()]

    # -- events --------------------------------------------------------------------------------------------------
    def record_events(self, tenant: str, source: str, run_id: int | None, events: list[tuple[str, str, str]]) -> None:
        """(key, event, detail) rows of the audit trail."""
        if not events:
            return
        with self._db.transaction() as cur:
            for start in range(0, len(events), 500):
                batch = events[start:start + 500]
                values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(batch))
                args = [v for key, event, detail in batch for v in (tenant, source, key, run_id, event, detail[:500])]
                cur.execute("INSERT INTO sync_page_events (tenant, source, key, run_id, event, detail) "
                            f"VALUES {values}", args)

    def history(self, tenant: str, source: str, key_or_url: str, limit: int = 50) -> list[dict]:
        with self._db.transaction() as cur:
            cur.execute("SELECT COALESCE((SELECT page_key FROM sync_urls WHERE tenant = %s AND source = %s "
                        "AND url = %s), %s)", (tenant, source, key_or_url, key_or_url))
            key = cur.fetchone()[0]
            cur.execute("SELECT at, run_id, event, detail FROM sync_page_events WHERE tenant = %s AND source = %s AND "
                        "key = %s ORDER BY id DESC LIMIT %s", (tenant, source, key, limit))
            return [{"at": r[0], "run": r[1], "event": r[2], "detail": r[3], "key": key} for r in cur.fetchall()]

    def run_events(self, run_id: int, limit: int = 200) -> list[dict]:
        with self._db.autocommit() as cur:
            cur.execute("SELECT at, key, event, detail FROM sync_page_events WHERE run_id = %s ORDER BY id LIMIT %s",
                        (run_id, limit))
            return [{"at": r[0], "key": r[1], "event": r[2], "detail": r[3]} for r in cur.fetchall()]
