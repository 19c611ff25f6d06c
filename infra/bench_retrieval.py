"""Retrieval benchmark on any BEIR-layout directory, through the real code: the real chunker, PostgreSQL full-text,
the configured vector index (VECTOR_BACKEND) and embedder (EMBEDDER).

    python -m infra.bench_retrieval ../shared/eval/support-mix --queries queries.dev.jsonl --qrels qrels.dev.tsv

Documents are indexed once into a persistent PostgreSQL under `.local/bench-retrieval/` (or DATABASE_URL with
--database-url), with embeddings cached by content hash, so a rerun takes seconds. Queries are ranked per leg —
keyword, vector, hybrid — at the document level (a document scores as its best chunk; the qrels name documents), and
nDCG@10, Recall@10 and MRR@10 are printed per `metadata.split` and overall, with per-query latency p50/p95.

The hybrid ranking is the product's own `shared.retrieval.hybrid.Retriever` (the one chat uses); the keyword and
vector rankings are its two legs before fusion. Latency is per query, as chat sees it (the hybrid figure includes
embedding the question, both legs, the identifier lookup and fusion).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import defaultdict
from pathlib import Path

from infra.eval.beir import Document, load_corpus, load_qrels, load_queries
from infra.eval.metrics import mrr_at, ndcg_at, percentile, recall_at
from shared.config import Settings
from shared.db import Database
from shared.documents import DocumentStore, document_id
from shared.errors import DocumentRejected
from shared.models import content_hash

ROOT = Path(__file__).resolve().parent.parent
TENANT = "bench"
CANDIDATES = 100  # chunks per leg before grouping by document
TOP_K = 10  # documents the hybrid returns (with their text), as the metrics @10 need; chat asks for fewer


def source_uri(doc: Document) -> str:
    return f"beir://{doc.id}"


def as_markdown(doc: Document) -> bytes:
    title = doc.title.replace("\n", " ").strip()
    return (f"---\ntitle: {title}\n---\n{doc.text}" if title else doc.text).encode()


def index_corpus(docs: list[Document], store: DocumentStore, indexer, settings, embedder, cache) -> tuple[int, int]:
    """Record and index every document that is not indexed with this content yet; return (indexed, skipped).

    The chunks of all pending documents are embedded first, sorted by length, in large slabs (padding is what makes a
    transformer slow on short texts); indexing then finds every vector in the cache. The result is the same as
    indexing document by document, only faster."""
    from shared.ingest.chunker import chunk_document
    from shared.ingest.parsers import parse_document

    pending, skipped = [], 0
    for doc in docs:
        data = as_markdown(doc)
        doc_id, digest = document_id(TENANT, source_uri(doc)), content_hash(data)
        existing = store.get_document(doc_id)
        if existing and existing.live_version_id:
            live = store.get_version(existing.live_version_id, with_blocks=False)
            if live and live.content_hash == digest:
                skipped += 1
                continue
        try:
            parsed = parse_document(data, "document.md", "text/markdown")
        except DocumentRejected:
            continue
        pending.append((doc, doc_id, digest, data, parsed))

    texts = sorted({d.embedding_text for *_, parsed in pending
                    for d in chunk_document(parsed, settings.chunk_max_tokens, settings.chunk_overlap_tokens)}, key=len)
    slab = 2048
    for start in range(0, len(texts), slab):
        embedder.embed_documents(texts[start : start + slab], cache=cache)
        print(f"  embedded {min(start + slab, len(texts))}/{len(texts)} chunk texts", flush=True)

    for number, (doc, doc_id, digest, data, parsed) in enumerate(pending, 1):
        version = store.record_version(doc_id=doc_id, tenant=TENANT, source_uri=source_uri(doc), url="",
                                       topic=doc.id.split(":", 1)[0], title=parsed.title, generation=1,
                                       content_hash=digest, content_type="text/markdown", size_bytes=len(data),
                                       blocks=parsed.blocks, status="queued")
        indexer.index_version(version.id)
        if number % 500 == 0:
            print(f"  indexed {number}/{len(pending)}", flush=True)
    return len(pending), skipped


def rank_documents(hits, beir_ids: dict[str, str]) -> list[str]:
    """Document ranking from chunk hits (best first): a document ranks by its best chunk."""
    return list(dict.fromkeys(beir_ids[h.document_id] for h in hits if h.document_id in beir_ids))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", type=Path, help="a BEIR-layout directory")
    parser.add_argument("--corpus", default="corpus.jsonl.gz", help="corpus file name in the directory")
    parser.add_argument("--queries", default="queries.jsonl", help="queries file name in the directory")
    parser.add_argument("--qrels", default="qrels.tsv", help="qrels file name in the directory")
    parser.add_argument("--limit-docs", type=int, help="index only the first N documents (a smoke run)")
    parser.add_argument("--database-url", help="use this database instead of a local one under .local/")
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".local" / "bench-retrieval")
    parser.add_argument("--dump", type=Path, help="write every query's per-leg chunk hits here (JSON lines)")
    args = parser.parse_args(argv)
    logging.basicConfig(level="WARNING")

    server = None
    if args.database_url:
        url = args.database_url
    else:
        from infra.stack.postgres import PostgresServer

        server = PostgresServer(args.data_dir).start()
        url = server.url
    try:
        return run(args, url)
    finally:
        if server is not None:
            server.stop()


def run(args, url: str) -> int:
    import os

    from infra.migrate import apply_migrations
    from shared.embeddings import create_embedder
    from shared.embeddings.cache import EmbeddingCache
    from shared.ingest.indexer import Indexer
    from shared.retrieval.hybrid import Retriever
    from shared.retrieval.keyword import KeywordSearch
    from shared.retrieval.vector import VectorSearch
    from shared.vectors import create_vector_index

    settings = Settings.from_env({**os.environ, "DATABASE_URL": url}).validate()
    migrator = Database(settings, timeout=None)  # a migration's backfill may take minutes on a large index
    apply_migrations(migrator)
    migrator.close()
    db = Database(settings)
    store, embedder, index = DocumentStore(db), create_embedder(settings), create_vector_index(settings, db)
    cache = EmbeddingCache(db)
    indexer = Indexer(settings, store, embedder, cache, index)

    docs = list(load_corpus(args.directory / args.corpus))[: args.limit_docs]
    queries = load_queries(args.directory / args.queries)
    qrels = load_qrels(args.directory / args.qrels)
    wanted = {d.id for d in docs}
    queries = [q for q in queries if q.id in qrels and any(doc in wanted for doc in qrels[q.id])]
    print(f"{len(docs)} documents, {len(queries)} judged queries, embedder {embedder.key}, index {index.name}")

    started = time.perf_counter()
    indexed, skipped = index_corpus(docs, store, indexer, settings, embedder, cache)
    if added := indexer.add_missing_title_vectors(TENANT):
        print(f"  added {added} title vectors to documents indexed without them", flush=True)
    print(f"indexing: {indexed} indexed, {skipped} unchanged, {time.perf_counter() - started:.1f} s")

    beir_ids = {document_id(TENANT, source_uri(d)): d.id for d in docs}
    # Questions are embedded as chat embeds them (create_embedder(for_queries=True): one CPU thread for the local model).
    questions = create_embedder(settings, for_queries=True)
    if hasattr(questions, "runtime"):
        print(f"questions embedded by the {questions.runtime} runtime")
    retriever = Retriever(db, KeywordSearch(db), VectorSearch(db, questions, index), candidates=CANDIDATES)
    retriever.retrieve("warm-up question", TENANT)  # load the model, fill the statistics caches
    scores = defaultdict(lambda: defaultdict(list))  # split -> "leg metric" -> values
    latency = defaultdict(list)
    dump = args.dump.open("w") if args.dump else None
    for query in queries:
        result = retriever.retrieve(query.text, TENANT, top_k=TOP_K)
        latency["keyword"].append(result.timings["keyword_ms"])
        latency["vector"].append(result.timings["vector_ms"])
        latency["hybrid"].append(result.timings["total_ms"])
        rankings = {
            "keyword": rank_documents(result.keyword_hits, beir_ids),
            "vector": rank_documents(result.vector_hits, beir_ids),
            "hybrid": [beir_ids[d.document_id] for d in result.documents if d.document_id in beir_ids],
        }
        if dump:
            dump.write(json.dumps({"id": query.id, "split": query.split, "text": query.text, "identifiers":
                                   result.identifiers, **{leg: [[beir_ids.get(h.document_id), h.chunk_id, h.score]
                                                               for h in hits] for leg, hits in
                                                         (("keyword", result.keyword_hits),
                                                          ("vector", result.vector_hits),
                                                          ("exact", result.exact_hits))}}) + "\n")
        relevant = qrels[query.id]
        for leg, ranking in rankings.items():
            for split in (query.split or "all", "ALL") if query.split else ("ALL",):
                scores[split][f"{leg} ndcg"].append(ndcg_at(ranking, relevant))
                scores[split][f"{leg} recall"].append(recall_at(ranking, relevant))
                scores[split][f"{leg} mrr"].append(mrr_at(ranking, relevant))
    if dump:
        dump.close()

    print(f"\n{'split':<22}{'n':>5}  " + "  ".join(f"{leg:>22}" for leg in ("keyword", "vector", "hybrid")))
    print(f"{'':<22}{'':>5}  " + "  ".join(f"{'nDCG@10 R@10 MRR@10':>22}" for _ in range(3)))
    for split in sorted(scores, key=lambda s: (s == "ALL", s)):
        row = scores[split]
        n = len(row["keyword ndcg"])
        cells = ["{:>6.3f} {:>6.3f} {:>6.3f}".format(*(sum(row[f"{leg} {m}"]) / n for m in ("ndcg", "recall", "mrr")))
                 for leg in ("keyword", "vector", "hybrid")]
        print(f"{split:<22}{n:>5}  " + "  ".join(f"{c:>22}" for c in cells))
    print("\nlatency per query, first pass (ms; caches cold after a start): " + "  ".join(
        f"{leg} p50 {percentile(v, 50):.1f} p95 {percentile(v, 95):.1f}" for leg, v in latency.items()))
    # A running service has its index in memory: time a second pass, as chat sees it once warm.
    warm = defaultdict(list)
    by_split = defaultdict(list)  # hybrid, warm: a forum post of 100 words is not a chat question of 10
    for query in queries:
        timings = retriever.retrieve(query.text, TENANT, top_k=TOP_K).timings
        for leg, key in (("keyword", "keyword_ms"), ("vector", "vector_ms"), ("hybrid", "total_ms")):
            warm[leg].append(timings[key])
        by_split[query.split or "all"].append((timings["total_ms"], len(query.text.split())))
    print("latency per query, second pass (ms; warm, as a running chat instance): " + "  ".join(
        f"{leg} p50 {percentile(v, 50):.1f} p95 {percentile(v, 95):.1f}" for leg, v in warm.items()))
    if len(by_split) > 1:
        print("hybrid, second pass, per split: " + "  ".join(
            f"{split} (median {percentile([w for _, w in rows], 50):.0f} words) p50 "
            f"{percentile([t for t, _ in rows], 50):.1f} p95 {percentile([t for t, _ in rows], 95):.1f}"
            for split, rows in sorted(by_split.items())))
    db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
