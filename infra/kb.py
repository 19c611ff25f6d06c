"""Knowledge-base admin commands, run against DATABASE_URL / CLOUD_SQL_INSTANCE (locally: `source .local/stack.env`).

    python -m infra.kb status [--status failed] [--tenant default]   one line per document: status, chunks, error
    python -m infra.kb events [--limit 20]                           the newest ingest events and their outcomes
    python -m infra.kb requeue [--failed]                             enqueue again every version that did not finish
                                                                      (after the queue gave up, or a local restart)
    python -m infra.kb gaps [--tenant default] [--limit 20]           questions the assistant could not answer
                                                                      (Firestore coverage gaps), most asked first
    python -m infra.kb titles [--tenant default]                      add the title vector to documents indexed
                                                                      before the indexer wrote them (after upgrading)
    python -m infra.kb reconcile [--dry-run] [--tenant t]             compare the bucket with the database: ingest
                             [--max-deletes N]                        objects whose event was lost, delete documents
                                                                      whose object is gone (re-checked, capped)
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

from shared.config import Settings
from shared.db import Database
from shared.documents import DocumentStore


def _table(rows: list[dict], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    text = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [min(60, max(len(c), *(len(t[i]) for t in text))) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v[:w].ljust(w) if i < len(columns) - 1 else v for i, (v, w) in enumerate(zip(t, widths)))
              for t in text]
    return "\n".join(lines)


def requeue_unfinished(db: Database, settings: Settings, include_failed: bool = False) -> int:
    """Create a fresh embed task for every latest version that is pending, queued or embedding (and failed ones
    that have parsed content, if asked). Safe to run any time: embedding a version twice changes nothing."""
    from shared.tasks import EmbedQueue

    store = DocumentStore(db)
    statuses = ("pending", "queued", "embedding") + (("failed",) if include_failed else ())
    queue = EmbedQueue(settings)
    attempt = int(time.time())  # a new task name: Cloud Tasks keeps used names for a while
    count = 0
    for version_id, tenant in store.unfinished_versions(statuses):
        version = store.get_version(version_id, with_blocks=False)
        if version.status == "failed":
            if store.get_version(version_id).blocks is None:
                continue  # the file itself was rejected: nothing to embed
        queue.enqueue(version_id, tenant, attempt=attempt)
        # A fresh allowance of embed calls (EMBED_MAX_CALLS); what is already embedded stays in the cache.
        store.set_status(version_id, "queued", embed_calls=0, stalled_calls=0)
        count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    status = sub.add_parser("status", help="document status")
    status.add_argument("--status", help="only this status (pending, queued, embedding, ready, failed, deleted)")
    status.add_argument("--tenant")
    events = sub.add_parser("events", help="recent ingest events")
    events.add_argument("--limit", type=int, default=20)
    requeue = sub.add_parser("requeue", help="enqueue unfinished versions again")
    requeue.add_argument("--failed", action="store_true", help="also retry versions that failed while embedding")
    titles = sub.add_parser("titles", help="add missing title vectors (documents indexed by an older version)")
    titles.add_argument("--tenant")
    reconcile = sub.add_parser("reconcile", help="ingest what the bucket has and the database lacks; delete "
                               "documents whose object is gone")
    reconcile.add_argument("--dry-run", action="store_true", help="report what would change, change nothing")
    reconcile.add_argument("--tenant", help="only this tenant's objects and documents")
    reconcile.add_argument("--max-deletes", type=int, help="deletions allowed in this run (default "
                           "RECONCILE_MAX_DELETES)")
    gaps = sub.add_parser("gaps", help="questions the assistant could not answer, most asked first")
    gaps.add_argument("--tenant")
    gaps.add_argument("--limit", type=int, default=20)
    args = parser.parse_args(argv)

    settings = Settings.from_env().validate()
    if args.command == "gaps":
        print(_gaps_table(settings, args.tenant or settings.default_tenant, args.limit))
        return 0
    db = Database(settings)
    try:
        if args.command == "titles":
            tenant = args.tenant or settings.default_tenant
            added = _indexer(settings, db).add_missing_title_vectors(tenant)
            print(f"added {added} title vector(s) in tenant {tenant}")
        elif args.command == "reconcile":
            if args.max_deletes is not None and args.max_deletes < 0:
                parser.error("--max-deletes must be at least 0")
            report = build_reconciler(settings, db).run(tenant=args.tenant, dry_run=args.dry_run,
                                                   max_deletes=args.max_deletes)
            print(reconcile_text(report))
            return 1 if report.count("error") else 0
        elif args.command == "requeue":
            print(f"requeued {requeue_unfinished(db, settings, include_failed=args.failed)} version(s)")
        elif args.command == "status":
            rows = DocumentStore(db).status(tenant=args.tenant, status=args.status)
            print(_table(rows, ["status", "chunk_count", "topic", "source_uri", "error"]))
        else:
            with db.transaction() as cur:
                cur.execute("SELECT received_at, event_type, outcome, source_uri, generation, detail "
                            "FROM ingest_events ORDER BY received_at DESC LIMIT %s", (args.limit,))
                names = [d[0] for d in cur.description]
                rows = [dict(zip(names, r)) for r in cur.fetchall()]
            for r in rows:
                r["event_type"] = r["event_type"].rsplit(".", 1)[-1]
                r["received_at"] = r["received_at"].strftime("%H:%M:%S")
            print(_table(rows, ["received_at", "event_type", "outcome", "source_uri", "generation", "detail"]))
    finally:
        db.close()
    return 0


def _indexer(settings: Settings, db: Database):
    from shared.embeddings import create_embedder
    from shared.embeddings.cache import EmbeddingCache
    from shared.ingest.indexer import Indexer
    from shared.vectors import create_vector_index

    return Indexer(settings, DocumentStore(db), create_embedder(settings), EmbeddingCache(db),
                   create_vector_index(settings, db))


def build_reconciler(settings: Settings, db: Database):
    from shared.ingest.pipeline import IngestService
    from shared.ingest.reconcile import Reconciler
    from shared.storage import ObjectStore
    from shared.tasks import EmbedQueue
    from shared.vectors import create_vector_index

    store, objects = DocumentStore(db), ObjectStore(settings.project)
    ingest = IngestService(settings, store, objects, EmbedQueue(settings), create_vector_index(settings, db))
    return Reconciler(settings, store, objects, ingest)


def reconcile_text(report) -> str:
    """What `kb reconcile` prints: what it found, what it did, and the counts."""
    s = report.summary()
    scope = f"tenant {report.tenant}" if report.tenant else "all tenants"
    head = f"listed {s['objects']} object(s) in gs://{s['bucket']} and {s['documents']} document(s) ({scope})"
    rows = [{"action": a.kind, "reason": a.reason, "source_uri": a.source_uri, "tenant": a.tenant,
             "outcome": a.outcome, "detail": a.detail} for a in report.actions]
    table = _table(rows, ["action", "reason", "source_uri", "tenant", "outcome", "detail"]) if rows \
        else "nothing to do: the database agrees with the bucket"
    tail = (f"ingested {s['ingested']}, deleted {s['deleted']}, withheld {s['withheld']}, kept {s['kept']}, "
            f"errors {s['errors']}" + (" (dry run: nothing changed)" if report.dry_run else ""))
    return "\n".join([head, table, tail])


def _gaps_table(settings: Settings, tenant: str, limit: int) -> str:
    from shared.memory import MemoryStore

    gaps = MemoryStore.from_settings(settings).list_gaps(tenant, limit)
    rows = [{"count": g.count, "last_seen": g.last_seen.strftime("%Y-%m-%d %H:%M"),
             "top_score": "" if g.top_score is None else f"{g.top_score:.2f}", "question": g.question} for g in gaps]
    return _table(rows, ["count", "last_seen", "top_score", "question"])


def run(argv: list[str] | None = None, command=None) -> int:
    """Run `command` (this module's `main` by default) and turn an AppError into a message and exit code 1."""
    from shared.errors import AppError

    try:
        return (command or main)(argv)
    except AppError as exc:
        print(f"error: {exc}" + (" (is `make dev` running, and .local/stack.env sourced?)"
                                 if exc.code == "database_unavailable" else ""), file=sys.stderr)
        return 1


if __name__ == "__main__":
    # `kb status | head` ends quietly, like any Unix filter. Only as a command: in a process that also serves HTTP
    # (the tests call run()), a client gone mid-write must be an error, not the end of the process.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(run())
