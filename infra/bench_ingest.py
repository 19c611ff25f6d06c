"""Ingestion benchmark through the real path: files are uploaded to the storage emulator, the Eventarc bridge calls
`ingest`, Cloud Tasks calls `embed`, chunks land in PostgreSQL and vectors in the index — every function in its own
functions-framework process, exactly as `make dev` runs them.

    python -m infra.bench_ingest                         # the msdocs part of ../shared/eval/support-mix (6,114 docs)
    python -m infra.bench_ingest --limit 500 --embedder hash

Prints documents/s and chunks/s for the whole path, and where the time of the embed step went. Nothing is kept:
the stack runs in a temporary directory. The figures depend on the machine; record them with its core count.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from infra.stack.local import ROOT, LocalStack

DEFAULT_CORPUS = ROOT.parent / "shared" / "eval" / "support-mix" / "corpus.jsonl.gz"


def load_documents(corpus: Path, prefix: str, limit: int | None) -> list[tuple[str, bytes, str]]:
    """(object name, Markdown bytes, title) for each document whose id starts with `prefix`."""
    opener = gzip.open if corpus.suffix == ".gz" else open
    docs = []
    with opener(corpus, "rt", encoding="utf-8") as lines:
        for line in lines:
            doc = json.loads(line)
            if not doc["_id"].startswith(prefix):
                continue
            path = doc["_id"].removeprefix(prefix).replace(":", "/").lstrip("/")
            name = f"msdocs/{path if path.endswith('.md') else path + '.md'}"
            # The title travels in front matter, as an editor's Markdown file carries it.
            title = (doc.get("title") or "").replace("\n", " ").strip()
            text = f"---\ntitle: {title}\n---\n{doc['text']}" if title else doc["text"]
            docs.append((name, text.encode(), title))
            if limit and len(docs) >= limit:
                break
    return docs


def progress(db) -> dict[str, float]:
    """Versions per status, ready chunks, and the summed stage timings of ready versions."""
    with db.transaction() as cur:
        cur.execute("SELECT status, count(*), coalesce(sum(chunk_count), 0) FROM document_versions GROUP BY status")
        rows = cur.fetchall()
        counts = {status: n for status, n, _ in rows}
        counts["chunks"] = sum(int(c) for status, _, c in rows if status == "ready")
        cur.execute(
            "SELECT coalesce(sum((timings->>'embed_ms')::float), 0), coalesce(sum((timings->>'chunk_ms')::float), 0), "
            "coalesce(sum((timings->>'index_ms')::float), 0), coalesce(sum((timings->>'parse_ms')::float), 0), "
            "coalesce(sum(embedded_count), 0) FROM document_versions WHERE status = 'ready'"
        )
        embed_ms, chunk_ms, index_ms, parse_ms, embedded = cur.fetchone()
    counts.update(embed_ms=embed_ms, chunk_ms=chunk_ms, index_ms=index_ms, parse_ms=parse_ms, embedded=embedded)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--prefix", default="msdocs:", help="document id prefix to ingest")
    parser.add_argument("--limit", type=int, help="ingest at most this many documents")
    parser.add_argument("--embedder", default=os.environ.get("EMBEDDER", "local"), help="local | gemini | hash")
    parser.add_argument("--timeout", type=float, default=4 * 3600,
                        help="stop waiting after this many seconds and print the figures so far")
    args = parser.parse_args(argv)
    logging.basicConfig(level="WARNING", format="%(asctime)s %(name)s: %(message)s")
    # SIGTERM would skip the `with` block's cleanup and leave PostgreSQL and the emulators running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    docs = load_documents(args.corpus, args.prefix, args.limit)
    size = sum(len(d[1]) for d in docs)
    print(f"corpus: {len(docs)} documents, {size / 1e6:.1f} MB, embedder={args.embedder}, cpus={os.cpu_count()}")

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp, \
            LocalStack(Path(tmp), persistent=False, firestore=False,
                       settings={"EMBEDDER": args.embedder, "LOG_LEVEL": "WARNING"}) as stack:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        client = storage.Client(project="demo-local", credentials=AnonymousCredentials(),
                                client_options={"api_endpoint": stack.storage.url})
        bucket = client.bucket(stack.storage.bucket)

        def upload(doc):
            name, data, _ = doc
            bucket.blob(name).upload_from_string(data, content_type="text/markdown")

        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(upload, docs))
        uploaded = time.perf_counter() - started
        print(f"uploaded in {uploaded:.1f} s")

        from shared.config import Settings
        from shared.db import Database

        db = Database(Settings.from_env({"DATABASE_URL": stack.postgres.url}).validate())
        last_report = 0.0
        while True:
            state = progress(db)
            done = state.get("ready", 0) + state.get("failed", 0)
            now = time.perf_counter() - started
            if done >= len(docs):
                break
            if now - last_report >= 15:
                print(f"  {now:6.0f} s  ready {state.get('ready', 0):5d}  failed {state.get('failed', 0):3d}  "
                      f"chunks {state['chunks']:6d}", flush=True)
                last_report = now
            if now > args.timeout:
                print(f"timed out after {now:.0f} s: the figures below are for the documents finished so far",
                      file=sys.stderr)
                break
            time.sleep(1)
        elapsed = time.perf_counter() - started
        done = state.get("ready", 0) + state.get("failed", 0)
        db.close()

    total_stage = state["embed_ms"] + state["chunk_ms"] + state["index_ms"] + state["parse_ms"] or 1
    print(f"\ningested {state.get('ready', 0)} documents ({state.get('failed', 0)} failed) into {state['chunks']} chunks "
          f"in {elapsed:.1f} s")
    print(f"  documents/s  {done / elapsed:8.1f}")
    print(f"  chunks/s     {state['chunks'] / elapsed:8.1f}")
    print(f"  embedded     {int(state['embedded'])} chunks (the rest came from the embedding cache)")
    print("  stage share  " + "  ".join(f"{k.removesuffix('_ms')} {100 * state[k] / total_stage:.0f}%"
                                        for k in ("parse_ms", "chunk_ms", "embed_ms", "index_ms")))
    return 0 if done >= len(docs) else 1


if __name__ == "__main__":
    sys.exit(main())
