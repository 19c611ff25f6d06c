"""Sync benchmark: a docs website generated from the msdocs part of ../shared/eval/support-mix (6,114 pages, a
sitemap index with a gzipped child; infra/bench_site.py) on loopback, synced into the knowledge bucket of a throwaway
local stack (PostgreSQL, the storage emulator whose events reach `ingest`, the tasks emulator driving `embed` with
the hash embedder; its queue paused while the syncs are timed) three times:

    1. the first sync: pages/s and time (fetch, extraction, hashing, writes; no politeness delay)
    2. an unchanged second sync: time, requests, bytes, writes, and the document versions (hence chunks) it caused
    3. after editing 1% of the pages: which objects were rewritten (exactly those pages?)

    python -m infra.bench_sync ../shared/eval/support-mix [--concurrency 8] [--no-ingest]

The sync runs in this process (SyncEngine steps inline, as `make sync ARGS="run --inline"` does); the stack's
functions run in their own processes and compete for the same CPUs, as in `make dev`.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
import tempfile
import time
from pathlib import Path

from infra.stack.local import ROOT

log = logging.getLogger("bench_sync")


class SiteProcess:
    """The benchmark website in a process of its own, as a real site is: its serving does not compete with the
    sync for this interpreter's GIL. Commands go over a pipe (edit pages, read and clear its request log)."""

    def __init__(self, corpus: Path):
        import multiprocessing

        self._conn, child = multiprocessing.Pipe()
        self._process = multiprocessing.get_context("fork").Process(target=self._serve, args=(corpus, child),
                                                                     daemon=True)
        self._process.start()
        self.url, self.pages = self._conn.recv()

    @staticmethod
    def _serve(corpus: Path, conn) -> None:
        from infra.bench_site import build_site

        bench = build_site(corpus)
        bench.site.start()
        conn.send((bench.url, len(bench.pages)))
        while True:
            command, *args = conn.recv()
            if command == "edit":
                conn.send(bench.edit(*args))
            elif command == "log":
                conn.send((len(bench.site.requests), bench.site.bytes_sent))
            elif command == "clear":
                bench.site.clear_log()
                conn.send(None)
            else:
                bench.site.stop()
                conn.send(None)
                return

    def call(self, *command):
        self._conn.send(command)
        return self._conn.recv()

    def stop(self) -> None:
        self.call("stop")
        self._process.join(timeout=10)


def bucket_generations(client, bucket: str, prefix: str) -> dict[str, int]:
    return {b.name: int(b.generation) for b in client.list_blobs(bucket, prefix=prefix)}


def versions_since(db, moment) -> tuple[int, int]:
    """Document versions recorded after `moment`, and the chunks they make."""
    with db.transaction() as cur:
        cur.execute("SELECT count(*), coalesce(sum(chunk_count), 0) FROM document_versions WHERE created_at > %s",
                    (moment,))
        count, chunks = cur.fetchone()
    return int(count), int(chunks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path, nargs="?", default=ROOT.parent / "shared" / "eval" / "support-mix")
    parser.add_argument("--concurrency", type=int, default=8, help="pages fetched and extracted at once")
    parser.add_argument("--edit", type=float, default=0.01, help="fraction of pages edited before the third sync")
    parser.add_argument("--no-ingest", action="store_true", help="no ingest subscriber: the sync alone")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the stack's processes on the way out
    logging.basicConfig(level="WARNING", format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    log.setLevel("INFO")

    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    from infra.stack.local import LocalStack
    from shared.config import Settings
    from shared.db import Database
    from shared.storage import ObjectStore
    from shared.sync.engine import SyncEngine, utcnow
    from shared.sync.sources import validate_source

    began = time.perf_counter()
    bench = SiteProcess(args.corpus)
    pages = bench.pages
    log.info("site with %d pages built in %.1f s at %s", pages, time.perf_counter() - began, bench.url)

    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp, \
            LocalStack(Path(tmp), persistent=False, firestore=False, demo=False,
                       settings={"EMBEDDER": "hash", "LOG_LEVEL": "WARNING"}) as stack:
        import os

        os.environ.setdefault("STORAGE_EMULATOR_HOST", stack.storage.url)
        if args.no_ingest:
            stack.storage.remove_subscriber(stack.urls["ingest"])
        # Ingest records a version for every object written (so re-embedding is counted), but the embed queue is
        # paused: embedding 6,000 new documents takes this machine much longer than the syncs, and would be timed
        # with them. It resumes at the end.
        stack.tasks.client().pause_queue(name=stack.tasks.queue_path)
        settings = dataclasses.replace(Settings.from_env(stack.env()).validate(), sync_concurrency=args.concurrency,
                                       sync_step_seconds=3600.0)
        db = Database(settings, pool_size=args.concurrency + 2)
        engine = SyncEngine(settings, db, ObjectStore(settings.project))
        config = {"url": bench.url + "/", "max_pages": 20_000, "concurrency": args.concurrency,
                  "follow_links": True}
        engine.sources.add(validate_source(settings.default_tenant, "msdocs", "website", "msdocs", config))
        client = storage.Client(project=settings.project, credentials=AnonymousCredentials(),
                                client_options={"api_endpoint": stack.storage.url})

        def sync(label: str) -> dict:
            bench.call("clear")
            sent_before = bench.call("log")[1]
            started = time.perf_counter()
            [run] = engine.start(names=["msdocs"])
            summary = engine.run_inline(run.id).summary()
            summary["seconds"] = time.perf_counter() - started
            requests, sent = bench.call("log")
            summary["site_requests"] = requests
            summary["site_bytes"] = sent - sent_before
            c = summary["counts"]
            log.info("%s: %s in %.1f s; new %s, changed %s, unchanged %s (304: %s), writes %s, requests %s, "
                     "bytes %s, errors %s %s", label, summary["outcome"], summary["seconds"], c.get("new", 0),
                     c.get("changed", 0), c.get("unchanged", 0), c.get("not_modified", 0), c.get("writes", 0),
                     summary["site_requests"], summary["site_bytes"], c.get("errors", 0), summary["errors"])
            return summary

        first = sync("first sync")
        written = first["counts"].get("writes", 0)
        prefix = "msdocs/"
        before = bucket_generations(client, stack.storage.bucket, prefix)
        try:
            stack.storage.wait_idle(timeout=900)  # ingest has every event before the unchanged sync is timed
        except Exception as exc:  # noqa: BLE001 - measured anyway, with the reason printed
            log.warning("ingest had not received every event of the first sync: %s", exc)
        mark = utcnow()
        second = sync("unchanged second sync")
        time.sleep(5)  # events of any write would reach ingest within this
        versions, chunks = versions_since(db, mark)
        after = bucket_generations(client, stack.storage.bucket, prefix)
        rewritten_unchanged = [n for n in after if after[n] != before.get(n)]

        edited = bench.call("edit", args.edit, 7)
        third = sync(f"after editing {len(edited)} pages")
        final = bucket_generations(client, stack.storage.bucket, prefix)
        rewritten = sorted(n for n in final if final[n] != after.get(n))
        with db.transaction() as cur:
            cur.execute("SELECT url, object_name FROM sync_pages WHERE source = 'msdocs'")
            object_of = dict(cur.fetchall())
        expected = sorted(object_of.get(bench.url + p, f"? {p}") for p in edited)
        stack.tasks.client().resume_queue(name=stack.tasks.queue_path)
        db.close()
    bench.stop()

    print()
    print(f"sync benchmark ({pages} pages from {args.corpus.name}/msdocs, concurrency {args.concurrency}, "
          f"{'no ingest' if args.no_ingest else 'ingest running, embed queue paused'})")
    print(f"  first sync:      {first['seconds']:.1f} s, {written} pages written, "
          f"{written / first['seconds']:.1f} pages/s, {first['site_requests']} requests, "
          f"{first['site_bytes'] / 1e6:.1f} MB, outcome {first['outcome']}")
    s = second["counts"]
    print(f"  unchanged sync:  {second['seconds']:.1f} s, {second['site_requests']} requests "
          f"({s.get('not_modified', 0)} answered 304), {second['site_bytes'] / 1e6:.2f} MB, "
          f"{s.get('writes', 0)} writes, {len(rewritten_unchanged)} objects rewritten, {versions} document versions "
          f"({chunks} chunks) to re-embed")
    exact = rewritten == expected
    print(f"  after editing {len(edited)} pages ({args.edit:.0%}): {third['seconds']:.1f} s, "
          f"{third['counts'].get('changed', 0)} changed, {len(rewritten)} objects rewritten, "
          f"{'exactly the edited pages' if exact else 'NOT exactly the edited pages'}")
    if not exact:
        print(f"    edited but not rewritten: {sorted(set(expected) - set(rewritten))[:10]}")
        print(f"    rewritten but not edited: {sorted(set(rewritten) - set(expected))[:10]}")
    return 0 if exact and s.get("writes", 0) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
