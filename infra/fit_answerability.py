"""Fit the answerability gate (shared/answerability/model.json) on labelled questions, and choose its threshold.

    python -m infra.fit_answerability                      # the shipped fit: training file + support-mix dev
    python -m infra.fit_answerability --training my.jsonl --no-support-mix --out my-model.json

Data (neither is what `make bench-answers` reports as held-out):
- `--training` (default infra/answers/train-sample-kb.jsonl and train-typical.jsonl, written by two people who had not
  seen the benchmark's questions, with the near-duplicates of those removed): questions about the sample knowledge
  base, labelled answerable or not, in the benchmark's format. The sample knowledge base is indexed here by the real
  parser, chunker, embedder and vector index into a PostgreSQL under .local/answerability/ (EMBEDDER, VECTOR_BACKEND
  apply). A team refits for its own knowledge base by writing such a file about its documents and pointing
  --kb-database-url at its database (with --tenant).
- support-mix dev, counterfactual (../shared/eval/support-mix, indexed by `make bench-retrieval`): every dev query
  as it is (answerable: its relevant documents are in the index) and with them hidden from retrieval (unanswerable).

Each question is retrieved by the product's Retriever and measured by the gate's own `features`; a logistic
regression (L2-regularised, Newton's method, NumPy) is fitted with each data set weighing the same in total, and the
threshold is the lowest probability at which the answers given are at least `--target-precision` answerable on the
training data (precision = answerable among the answered). The coefficients, the threshold and how they were
obtained are written to `--out`; copy the threshold into ANSWER_MIN_CONFIDENCE's default when shipping a new fit.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from infra.eval.answers import TRAINING_FILES, SampleIndex, auroc, hidden_retriever, load_questions, sources_of
from shared.answerability.gate import DEFAULT_MODEL, FEATURES, Gate, Model

ROOT = Path(__file__).resolve().parent.parent
SUPPORT_MIX = ROOT.parent / "shared" / "eval" / "support-mix"
L2 = 0.001


def sample_rows(settings, db, questions, tenant: str) -> list[dict]:
    """Feature rows of questions about a knowledge base already indexed in `db` for `tenant`."""
    retriever, gate = _retriever(settings, db)
    rows = []
    for question in questions:
        result = retriever.retrieve(question.q, tenant, top_k=settings.chat_max_sources)
        _, _, signals = gate.measure(question.q, tenant, result.documents, sources_of(result.documents))
        rows.append({"set": "training", "q": question.q, "kind": question.kind, "y": int(question.answerable),
                     **signals})
    return rows


def support_mix_rows(settings, db, directory: Path, *, limit: int | None = None, progress: bool = True) -> list[dict]:
    """Feature rows of the support-mix dev queries, each as it is (y=1) and with its relevant documents hidden (y=0).
    The corpus must be indexed (make bench-retrieval) under the tenant infra.bench_retrieval uses."""
    from infra.bench_retrieval import TENANT, source_uri
    from infra.eval.beir import load_corpus, load_qrels, load_queries
    from shared.documents import document_id

    retriever, _ = _retriever(settings, db)
    hiding = hidden_retriever(retriever)
    gate = _gate(hiding, db)
    qrels = load_qrels(directory / "qrels.dev.tsv")
    queries = [q for q in load_queries(directory / "queries.dev.jsonl") if q.id in qrels][:limit]
    known = {d.id for d in load_corpus(directory / "corpus.jsonl.gz")}
    rows = []
    started = time.perf_counter()
    for number, query in enumerate(queries, 1):
        relevant = {document_id(TENANT, source_uri(_Doc(doc))) for doc in qrels[query.id] if doc in known}
        for answerable in (True, False):
            hiding.hidden.clear()
            if not answerable:
                hiding.hidden.update(relevant)
            result = hiding.retrieve(query.text, TENANT, top_k=settings.chat_max_sources)
            _, _, signals = gate.measure(query.text, TENANT, result.documents, sources_of(result.documents))
            rows.append({"set": "support-mix", "split": query.split, "q": query.id, "y": int(answerable),
                         **signals})
        if progress and number % 100 == 0:
            print(f"  support-mix: {number}/{len(queries)} queries, {time.perf_counter() - started:.0f} s", flush=True)
    return rows


class _Doc:  # what infra.bench_retrieval.source_uri reads of a corpus document
    def __init__(self, doc_id: str):
        self.id = doc_id


def _retriever(settings, db):
    """The product's Retriever and a Gate measuring as chat's does (passages embedded through the cache)."""
    from shared.embeddings import create_embedder
    from shared.retrieval.hybrid import Retriever
    from shared.retrieval.keyword import KeywordSearch
    from shared.retrieval.vector import VectorSearch
    from shared.vectors import create_vector_index

    keyword = KeywordSearch(db)
    vector = VectorSearch(db, create_embedder(settings, for_queries=True), create_vector_index(settings, db))
    retriever = Retriever(db, keyword, vector)
    return retriever, _gate(retriever, db)


def _gate(retriever, db) -> Gate:
    """A gate measuring as chat's does (its model does not matter: only its features are read)."""
    from shared.answerability.passages import PassageScorer
    from shared.embeddings.cache import EmbeddingCache

    return Gate(Model(0.0, dict.fromkeys(FEATURES, 0.0)), 0.5, retriever.keyword.term_frequencies,
                PassageScorer(retriever.vector.embedder, EmbeddingCache(db)), retriever.vector.embed_question)


# --- the fit ------------------------------------------------------------------------------------------------------
def fit(rows: list[dict], l2: float = L2) -> tuple[float, dict[str, float]]:
    """Logistic regression by Newton's method; every data set ("set") weighs the same in total."""
    import numpy as np

    x = np.array([[1.0, *(r[f] for f in FEATURES)] for r in rows])
    y = np.array([r["y"] for r in rows], dtype=float)
    sets = [r["set"] for r in rows]
    share = {s: sets.count(s) for s in set(sets)}
    w = np.array([len(rows) / (len(share) * share[s]) for s in sets])
    beta = np.zeros(x.shape[1])
    penalty = l2 * np.eye(x.shape[1])
    penalty[0, 0] = 0.0  # the intercept is not shrunk
    for _ in range(100):
        p = 1 / (1 + np.exp(-np.clip(x @ beta, -30, 30)))
        gradient = x.T @ (w * (p - y)) + penalty @ beta * len(rows)
        hessian = (x * (w * p * (1 - p))[:, None]).T @ x + penalty * len(rows)
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return float(beta[0]), {name: float(b) for name, b in zip(FEATURES, beta[1:])}


def choose_threshold(probabilities: list[float], labels: list[bool], weights: list[float], target: float) -> float:
    """The lowest threshold whose answered questions are at least `target` answerable (weighted), on a 0.01 grid."""
    for step in range(1, 100):
        threshold = step / 100
        answered = [(y, w) for p, y, w in zip(probabilities, labels, weights) if p >= threshold]
        total = sum(w for _, w in answered)
        if total and sum(w for y, w in answered if y) / total >= target:
            return threshold
    return 0.99


def report(rows: list[dict], model: Model, threshold: float) -> None:
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["set"] + (f" {row['split']}" if row.get("split") else ""), []).append(row)
    print(f"\n{'data':<28}{'n':>6}{'AUROC':>8}{'answered (answerable)':>24}{'refused (unanswerable)':>25}")
    for name, group in sorted(groups.items()):
        p = [model.probability(r) for r in group]
        y = [bool(r["y"]) for r in group]
        pos = [pi for pi, yi in zip(p, y) if yi]
        neg = [pi for pi, yi in zip(p, y) if not yi]
        answered = sum(pi >= threshold for pi in pos) / len(pos) if pos else float("nan")
        refused = sum(pi < threshold for pi in neg) / len(neg) if neg else float("nan")
        print(f"{name:<28}{len(group):>6}{auroc(p, y):>8.3f}{answered:>24.1%}{refused:>25.1%}")


def collect(args) -> list[dict]:
    """Feature rows of the training files (on the sample knowledge base, indexed here, or --kb-database-url) and of
    support-mix dev, counterfactual (unless --no-support-mix)."""
    from infra.migrate import apply_migrations
    from infra.stack.postgres import PostgresServer
    from shared.config import Settings
    from shared.db import Database

    rows: list[dict] = []
    servers = []
    try:
        questions = [q for path in args.training or TRAINING_FILES for q in load_questions(path)]
        if args.kb_database_url:
            url = args.kb_database_url
        else:
            servers.append(PostgresServer(ROOT / ".local" / "answerability").start())
            url = servers[-1].url
        settings = Settings.from_env({**os.environ, "DATABASE_URL": url}).validate()
        db = Database(settings)
        if not args.kb_database_url:
            apply_migrations(db)
            SampleIndex(settings, db, tenant=args.tenant).build()
        rows += sample_rows(settings, db, questions, args.tenant)
        db.close()
        print(f"training files: {len(questions)} questions ({sum(q.answerable for q in questions)} answerable)")
        if not args.no_support_mix:
            servers.append(PostgresServer(ROOT / ".local" / "bench-retrieval").start())
            mix_settings = Settings.from_env({**os.environ, "DATABASE_URL": servers[-1].url}).validate()
            mix_db = Database(mix_settings)
            rows += support_mix_rows(mix_settings, mix_db, args.support_mix, limit=args.support_mix_limit)
            mix_db.close()
    finally:
        for server in servers:
            server.stop()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--training", type=Path, action="append",
                        help="labelled questions about the knowledge base (repeatable; default: the two files of "
                             "infra/answers/ that are not the benchmark's)")
    parser.add_argument("--kb-database-url", help="the knowledge base's database (default: index the sample one)")
    parser.add_argument("--tenant", default="answers", help="the knowledge base's tenant in that database")
    parser.add_argument("--support-mix", type=Path, default=SUPPORT_MIX, help="the support-mix directory")
    parser.add_argument("--no-support-mix", action="store_true", help="fit on the training file only")
    parser.add_argument("--support-mix-limit", type=int, help="use only the first N dev queries (a smoke run)")
    parser.add_argument("--target-precision", type=float, default=0.8)
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--rows", type=Path, help="also write every feature row here (JSON lines)")
    parser.add_argument("--from-rows", type=Path, help="fit on feature rows written by --rows (no retrieval)")
    args = parser.parse_args(argv)
    logging.basicConfig(level="WARNING")
    if args.from_rows:
        rows = [json.loads(line) for line in args.from_rows.read_text().splitlines() if line.strip()]
    else:
        rows = collect(args)
    if args.rows:
        args.rows.write_text("".join(json.dumps(r) + "\n" for r in rows))

    intercept, weights = fit(rows)
    sets = [r["set"] for r in rows]
    share = {s: sets.count(s) for s in set(sets)}
    model = Model(intercept, weights)
    probabilities = [model.probability(r) for r in rows]
    threshold = choose_threshold(probabilities, [bool(r["y"]) for r in rows],
                                 [len(rows) / (len(share) * share[s]) for s in sets], args.target_precision)
    from shared.config import Settings
    from shared.embeddings import create_embedder

    embedder = create_embedder(Settings.from_env(os.environ), for_queries=True).key  # names it; loads no model
    out = {
        "intercept": round(intercept, 4), "weights": {k: round(v, 4) for k, v in weights.items()},
        "threshold": threshold, "embedder": embedder,
        "meta": {"fitted": time.strftime("%Y-%m-%d"), "command": "python -m infra.fit_answerability "
                 + " ".join(argv if argv is not None else sys.argv[1:]), "target_precision": args.target_precision,
                 "rows": {s: n for s, n in sorted(share.items())}, "l2": L2},
    }
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nintercept {intercept:.3f}  " + "  ".join(f"{k} {v:+.3f}" for k, v in weights.items()))
    print(f"threshold {threshold:.2f} (answers at least {args.target_precision:.0%} answerable on the training data)")
    report(rows, model, threshold)
    print(f"\nwrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
