"""Operator commands of the nightly sync, against DATABASE_URL / CLOUD_SQL_INSTANCE (locally: `make sync ARGS=...`,
which sources .local/stack.env).

    python -m infra.sync run [SOURCE ...] [--tenant T] [--dry-run] [--inline] [--no-wait]
        start a run of every enabled source (or those named) and wait for the runs to finish, printing their
        summaries; the steps run on the sync queue (`scrape`), or in this process with --inline
    python -m infra.sync runs [--source S] [--limit 20]          the newest runs and their counts
    python -m infra.sync show RUN                                 one run: counts, reasons, page events
    python -m infra.sync history SOURCE URL|KEY                   a page's history (new, changed, moved, ...)
    python -m infra.sync withheld SOURCE                          deletions held back (cap, sharp fall)
    python -m infra.sync approve SOURCE                           re-verify the withheld deletions and delete
                                                                  the pages still gone
    python -m infra.sync sources list                             the sources of every tenant
    python -m infra.sync sources add NAME --kind website --topic docs --url https://docs.example.com/
                         [--config '{"max_pages": 500}'] [--paused]
    python -m infra.sync sources add --file sources.json          a JSON list of {name, kind, topic, config}
    python -m infra.sync sources update NAME --config '{...}'      change settings (merged into the old ones)
    python -m infra.sync sources pause|resume|show NAME
    python -m infra.sync sources remove NAME [--keep-documents]   remove it and (unless kept) its documents

Every command takes --tenant (default DEFAULT_TENANT).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from shared.config import Settings
from shared.db import Database

COUNT_COLUMNS = ("discovered", "unchanged", "not_modified", "new", "changed", "moved", "deleted", "withheld",
                 "flagged", "blocked_by_robots", "errors", "requests", "bytes")


def _table(rows: list[dict], columns: list[str]) -> str:
    from infra.kb import _table as table

    return table(rows, columns)


def build_engine(settings: Settings, db: Database, inline: bool = False):
    from shared.storage import ObjectStore
    from shared.sync.engine import SyncEngine
    from shared.tasks import SyncQueue

    return SyncEngine(settings, db, ObjectStore(settings.project), None if inline else SyncQueue(settings))


def run_text(summary: dict) -> str:
    """A run as an operator reads it: one line of outcome, one of counts, the reasons and errors."""
    counts = summary["counts"]
    head = (f"run {summary['run']} {summary['tenant']}/{summary['source']} ({summary['kind']}"
            f"{', dry run' if summary['dry_run'] else ''}): {summary['outcome']} in {summary['duration_s']} s")
    line = ", ".join(f"{name.replace('_', ' ')} {counts.get(name, 0)}" for name in COUNT_COLUMNS)
    extra = {k: v for k, v in counts.items() if k not in COUNT_COLUMNS}
    lines = [head, "  " + line]
    if extra:
        lines.append("  also: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(extra.items())))
    if summary["errors"]:
        lines.append("  errors by class: " + ", ".join(f"{k} {v}" for k, v in sorted(summary["errors"].items())))
    for reason in summary["reasons"]:
        lines.append(f"  partial: {reason} (nothing deleted)")
    return "\n".join(lines)


def wait_for(engine, run_ids: list[int], timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    pending = set(run_ids)
    while pending and time.monotonic() < deadline:
        for run_id in list(pending):
            run = engine.state.get_run(run_id)
            if run is None or run.finished_at is not None:
                pending.discard(run_id)
        if pending:
            time.sleep(0.5)
    runs = [engine.state.get_run(r) for r in run_ids]
    return [r.summary() for r in runs if r is not None]


def _sources(args, settings: Settings, db: Database, parser) -> int:
    from shared.sync.sources import SourceStore, validate_source

    store = SourceStore(db)
    tenant = args.tenant or settings.default_tenant
    action = args.action
    if action == "list":
        rows = [{"tenant": s.tenant, "name": s.name, "kind": s.kind, "topic": s.topic,
                 "state": "paused" if s.paused else "enabled",
                 "where": s.config.get("url") or f"s3://{s.config.get('bucket')}/{s.config.get('prefix', '')}"}
                for s in store.list(args.tenant)]
        print(_table(rows, ["tenant", "name", "kind", "topic", "state", "where"]))
        return 0
    if action == "add" and args.file:
        definitions = json.loads(Path(args.file).read_text())
        if not isinstance(definitions, list):
            parser.error("--file must hold a JSON list of sources")
        for d in definitions:
            source = validate_source(d.get("tenant", tenant), d.get("name"), d.get("kind"), d.get("topic"),
                                     d.get("config", {}), d.get("paused", False))
            store.add(source, replace=True)
            print(f"source {source.name} ({source.kind}) saved in tenant {source.tenant}")
        return 0
    if not args.name:
        parser.error(f"sources {action} needs a source NAME")
    if action == "add":
        config = json.loads(args.config) if args.config else {}
        if args.url:
            config["url"] = args.url
        if not args.kind or not args.topic:
            parser.error("sources add needs --kind and --topic")
        source = store.add(validate_source(tenant, args.name, args.kind, args.topic, config, args.paused))
        print(f"added {source.kind} source {source.name} in tenant {tenant}; its objects go under "
              f"{source.object_prefix}")
        print(json.dumps(source.config, indent=2))
    elif action == "update":
        old = store.get(tenant, args.name)
        config = {**old.config, **(json.loads(args.config) if args.config else {})}
        if args.url:
            config["url"] = args.url
        if old.kind == "website" and (args.url or "url" in json.loads(args.config or "{}")):
            config.pop("hosts", None)
            config.pop("prefixes", None)  # derived from the new URL unless given again
        source = store.add(validate_source(tenant, args.name, old.kind, old.topic, config, old.paused), replace=True)
        print(f"updated source {source.name}")
        print(json.dumps(source.config, indent=2))
    elif action in ("pause", "resume"):
        store.set_paused(tenant, args.name, action == "pause")
        print(f"source {args.name} {'paused' if action == 'pause' else 'enabled'}")
    elif action == "show":
        print(json.dumps(store.get(tenant, args.name).summary(), indent=2))
    elif action == "remove":
        removed = build_engine(settings, db, inline=True).remove_source(tenant, args.name, args.keep_documents)
        print(f"removed source {args.name}" + ("" if args.keep_documents else
                                               f" and deleted its {removed} object(s) from the bucket"))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenant", help="tenant id (default DEFAULT_TENANT)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="sync now")
    run.add_argument("names", nargs="*", metavar="SOURCE")
    run.add_argument("--dry-run", action="store_true", help="report what would be written and deleted")
    run.add_argument("--inline", action="store_true", help="run the steps in this process, not on the queue")
    run.add_argument("--no-wait", action="store_true", help="start the runs and return")
    run.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the runs")
    runs = sub.add_parser("runs", help="recent runs")
    runs.add_argument("--source")
    runs.add_argument("--limit", type=int, default=20)
    show = sub.add_parser("show", help="one run and its page events")
    show.add_argument("run_id", type=int)
    history = sub.add_parser("history", help="a page's history")
    history.add_argument("source")
    history.add_argument("page", help="the page's URL or key")
    withheld = sub.add_parser("withheld", help="deletions held back")
    withheld.add_argument("source")
    approve = sub.add_parser("approve", help="re-verify and carry out withheld deletions")
    approve.add_argument("source")
    sources = sub.add_parser("sources", help="add, list, change, pause and remove sources")
    sources.add_argument("action", choices=["list", "add", "update", "pause", "resume", "show", "remove"])
    sources.add_argument("name", nargs="?")
    sources.add_argument("--kind", choices=["website", "feed", "s3"])
    sources.add_argument("--topic")
    sources.add_argument("--url")
    sources.add_argument("--config", help="JSON object of settings (see shared/sync/sources.py)")
    sources.add_argument("--file", help="JSON list of source definitions")
    sources.add_argument("--paused", action="store_true")
    sources.add_argument("--keep-documents", action="store_true", help="remove: leave its objects in the bucket")
    args = parser.parse_args(argv)

    settings = Settings.from_env().validate()
    db = Database(settings, pool_size=max(settings.db_pool_size, settings.sync_concurrency + 2))
    tenant = args.tenant or settings.default_tenant
    try:
        if args.command == "sources":
            return _sources(args, settings, db, parser)
        engine = build_engine(settings, db, inline=getattr(args, "inline", False))
        if args.command == "run":
            started = engine.start(tenant=tenant, names=args.names or None, trigger="operator",
                                   dry_run=args.dry_run)
            if not started:
                print("no enabled source (add one: python -m infra.sync sources add ...)")
                return 0
            for r in started:
                print(f"run {r.id}: {r.tenant}/{r.source} ({r.kind}) started" + (" (dry run)" if r.dry_run else ""))
            if args.no_wait:
                return 0
            if args.inline:
                summaries = [engine.run_inline(r.id).summary() for r in started]
            else:
                summaries = wait_for(engine, [r.id for r in started], args.timeout)
            for summary in summaries:
                print(run_text(summary))
                if summary["dry_run"]:
                    events = engine.state.run_events(summary["run"], limit=200)
                    for e in events:
                        if e["event"].startswith("would_"):
                            print(f"  {e['event'].replace('would_', 'would ')}: {e['key']} ({e['detail']})")
            return 0 if all(s["outcome"] != "running" for s in summaries) else 1
        if args.command == "runs":
            rows = []
            for r in engine.state.runs(tenant, args.source, args.limit):
                s = r.summary()
                rows.append({"run": r.id, "source": r.source, "started": r.started_at.strftime("%m-%d %H:%M:%S"),
                             "outcome": r.outcome + (" (dry)" if r.dry_run else ""), "s": s["duration_s"],
                             **{k: s["counts"].get(k, 0) for k in ("discovered", "unchanged", "new", "changed",
                                                                  "deleted", "withheld", "errors")},
                             "why": "; ".join(r.reasons)})
            print(_table(rows, ["run", "source", "started", "outcome", "s", "discovered", "unchanged", "new",
                                "changed", "deleted", "withheld", "errors", "why"]))
        elif args.command == "show":
            run = engine.state.get_run(args.run_id)
            if run is None:
                print(f"no run {args.run_id}", file=sys.stderr)
                return 1
            print(run_text(run.summary()))
            events = engine.state.run_events(args.run_id)
            print(_table([{**e, "at": e["at"].strftime("%H:%M:%S")} for e in events],
                         ["at", "event", "key", "detail"]))
        elif args.command == "history":
            events = engine.state.history(tenant, args.source, args.page)
            print(_table([{**e, "at": e["at"].strftime("%Y-%m-%d %H:%M:%S")} for e in events],
                         ["at", "run", "event", "detail"]))
        elif args.command == "withheld":
            pages = engine.state.withheld_pages(tenant, args.source)
            print(_table([{"key": p.key, "object": p.object_name, "missing_runs": p.missing_runs,
                           "withheld_in_run": p.withheld_run} for p in pages],
                         ["key", "object", "missing_runs", "withheld_in_run"]))
        elif args.command == "approve":
            summary = engine.approve(tenant, args.source)
            print(run_text(summary))
    finally:
        db.close()
    return 0


def run(argv: list[str] | None = None) -> int:
    from infra import kb

    try:
        return kb.run(argv, command=main)
    except json.JSONDecodeError as exc:
        print(f"error: --config is not valid JSON: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(run())
