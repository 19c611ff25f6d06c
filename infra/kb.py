"""Knowledge-base admin commands, run against DATABASE_URL / CLOUD_SQL_INSTANCE (locally: `source .local/stack.env`).

    python -m infra.kb status [--status failed] [--tenant default]   one line per document: status, chunks, error
    python -m infra.kb events [--limit 20]                           the newest ingest events and their outcomes
"""

from __future__ import annotations

import argparse
import sys

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    status = sub.add_parser("status", help="document status")
    status.add_argument("--status", help="only this status (pending, queued, embedding, ready, failed, deleted)")
    status.add_argument("--tenant")
    events = sub.add_parser("events", help="recent ingest events")
    events.add_argument("--limit", type=int, default=20)
    args = parser.parse_args(argv)

    db = Database(Settings.from_env().validate())
    try:
        if args.command == "status":
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


if __name__ == "__main__":
    sys.exit(main())
