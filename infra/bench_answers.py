"""Honest-answer benchmark: does the assistant answer what the documents answer, and refuse what they do not?

    make bench-answers                                        # both suites below
    python -m infra.bench_answers --suite sample [--verbose]  # the sample knowledge base, through chat over HTTP
    python -m infra.bench_answers --questions my.jsonl --chat-url http://127.0.0.1:8081   # your questions, your KB
    python -m infra.bench_answers --suite support-mix [--limit 200]

`sample` asks every question of a JSON-lines file (default infra/answers/sample-kb.jsonl: held out, never used to fit
the gate) through the product's own chat service, POST /v1/chat in JSON mode, one new session per question, with the
answerer the stack is configured with (extractive without a Gemini key). The chat is the one at --chat-url, else the
running `make dev` stack (.local/stack.env), else a throwaway local stack this command starts under
.local/bench-answers/ with the sample knowledge base uploaded and ingested. Printed per kind of question:
- answerable: answered correctly (not refused, and the answer contains one of `must`), and how often a document
  holding a `must` string is cited;
- unanswerable: refused (action `handoff` or `clarify`, or a reply without citations saying the documentation does
  not cover it);
- the gate's AUROC: how well the turn's `confidence` separates answerable from unanswerable questions.

`support-mix` is ../shared/eval/support-mix's dev split, counterfactual: every query as it is (answerable: its
relevant documents are in the index) and with them hidden from retrieval (unanswerable); the product's Retriever and
answerability gate (as chat builds them) decide, and the answer rate, refusal rate and AUROC are printed per split.
The corpus must be indexed first (`make bench-retrieval`; the index is kept under .local/bench-retrieval/). The gate
was fitted on this split too: these figures are not held out.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path

from infra.eval.answers import (
    QUESTIONS,
    Question,
    answered_correctly,
    auroc,
    expected_documents,
    hidden_retriever,
    load_questions,
    refused,
    sample_documents,
    sources_of,
)

ROOT = Path(__file__).resolve().parent.parent
SUPPORT_MIX = ROOT.parent / "shared" / "eval" / "support-mix"


# --- the sample knowledge base, through chat --------------------------------------------------------------------
def ask(chat_url: str, question: str, site_key: str = "") -> dict:
    """One turn in JSON mode; a 429 waits its Retry-After and asks again."""
    body = json.dumps({"message": question, **({"site_key": site_key} if site_key else {})}).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    for _ in range(20):
        request = urllib.request.Request(chat_url.rstrip("/") + "/v1/chat", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code != 429:
                raise RuntimeError(f"chat answered {exc.code}: {exc.read()[:300]!r}") from None
            time.sleep(float(exc.headers.get("Retry-After") or 1))
    raise RuntimeError("chat kept answering 429")


def running_chat() -> str:
    """The chat URL of a running `make dev` stack, or ""."""
    env = ROOT / ".local" / "stack.env"
    if not env.exists():
        return ""
    url = next((line.split("=", 1)[1].strip().strip("'") for line in env.read_text().splitlines()
                if line.startswith("export CHAT_URL=")), "")
    try:
        urllib.request.urlopen(url + "/healthz", timeout=2).close()
        return url
    except (OSError, ValueError):
        return ""


def throwaway_stack():
    """A local stack under .local/bench-answers/ with the sample knowledge base ingested (no rate limit in the way)."""
    from infra.dev import upload_sample_kb
    from infra.stack.local import LocalStack
    from shared.config import Settings
    from shared.db import Database
    from shared.documents import DocumentStore

    data_dir = ROOT / ".local" / "bench-answers"
    stack = LocalStack(data_dir, persistent=False, demo=False, settings={
        "EMBEDDER": os.environ.get("EMBEDDER", "local"), "RATE_LIMIT_CLIENT_PER_MINUTE": "100000",
        "RATE_LIMIT_SESSION_PER_MINUTE": "100000", "LOG_LEVEL": "WARNING"})
    stack.start()
    os.environ.setdefault("STORAGE_EMULATOR_HOST", stack.storage.url)
    uploaded = upload_sample_kb(stack)
    db = Database(Settings.from_env(stack.env()).validate())
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            rows = DocumentStore(db).status()
            if len(rows) >= uploaded and all(r["status"] in ("ready", "failed") for r in rows):
                break
            time.sleep(1)
        else:
            raise RuntimeError("the sample knowledge base was not ingested within 10 minutes")
    finally:
        db.close()
    print(f"started a local stack with the sample knowledge base ({uploaded} files) at {stack.urls['chat']}")
    return stack


def run_sample(questions: list[Question], chat_url: str, *, verbose: bool, site_key: str = "") -> dict:
    documents = sample_documents()
    texts = {name: text for name, (_, text) in documents.items()}
    titles = {name: title for name, (title, _) in documents.items()}
    rows = []
    started = time.perf_counter()
    for question in questions:
        turn = ask(chat_url, question.q, site_key)
        expected = expected_documents(question, texts) if question.answerable else set()
        cited = {c.get("title", "") for c in turn.get("citations") or []}
        row = {
            "q": question.q, "kind": question.kind or ("answerable" if question.answerable else "unanswerable"),
            "answerable": question.answerable, "action": turn.get("action"),
            "confidence": float(turn.get("confidence") or 0.0),
            "correct": question.answerable and answered_correctly(turn, question),
            "refused": refused(turn),
            "cited_expected": bool(expected and cited & {titles.get(name, name) for name in expected}),
            "answer": turn.get("answer", ""),
        }
        rows.append(row)
        if verbose:
            verdict = ("ok " if row["correct"] else "MISS") if question.answerable else \
                ("ok " if row["refused"] else "ANSWERED")
            print(f"{verdict:<9}{row['action']:<8}{row['confidence']:.2f}  {question.q[:90]}"
                  + ("" if verdict.startswith("ok") else f"\n{'':<23}-> {' '.join(row['answer'].split())[:160]}"))
    seconds = time.perf_counter() - started
    print_sample(rows, seconds)
    return summarize(rows)


def summarize(rows: list[dict]) -> dict:
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    return {
        "answerable": len(answerable), "unanswerable": len(unanswerable),
        "answered_correctly": sum(r["correct"] for r in answerable) / len(answerable) if answerable else float("nan"),
        "refused": sum(r["refused"] for r in unanswerable) / len(unanswerable) if unanswerable else float("nan"),
        "cited_expected": (sum(r["cited_expected"] for r in answerable) / len(answerable)
                           if answerable else float("nan")),
        "auroc": auroc([r["confidence"] for r in rows], [r["answerable"] for r in rows]),
    }


def print_sample(rows: list[dict], seconds: float) -> None:
    by_kind = defaultdict(list)
    for row in rows:
        by_kind[row["kind"]].append(row)
    print(f"\n{'kind':<16}{'n':>5}  result")
    for kind, group in sorted(by_kind.items(), key=lambda item: (not item[1][0]["answerable"], item[0])):
        if group[0]["answerable"]:
            print(f"{kind:<16}{len(group):>5}  answered correctly {sum(r['correct'] for r in group) / len(group):.1%}, "
                  f"expected document cited {sum(r['cited_expected'] for r in group) / len(group):.1%}")
        else:
            print(f"{kind:<16}{len(group):>5}  refused {sum(r['refused'] for r in group) / len(group):.1%}")
    s = summarize(rows)
    print(f"\nanswerable {s['answerable']}: answered correctly {s['answered_correctly']:.1%}, expected document cited "
          f"{s['cited_expected']:.1%}; unanswerable {s['unanswerable']}: refused {s['refused']:.1%}; "
          f"gate AUROC {s['auroc']:.3f}; {seconds / max(len(rows), 1) * 1000:.0f} ms per question")


# --- support-mix, counterfactual --------------------------------------------------------------------------------
def run_support_mix(directory: Path, limit: int | None, verbose: bool) -> dict:
    from infra.bench_retrieval import TENANT
    from infra.eval.beir import load_qrels, load_queries
    from infra.stack.postgres import PostgresServer
    from shared.answerability.gate import create_gate
    from shared.config import Settings
    from shared.db import Database
    from shared.documents import document_id
    from shared.embeddings import create_embedder
    from shared.embeddings.cache import EmbeddingCache
    from shared.retrieval.hybrid import Retriever
    from shared.retrieval.keyword import KeywordSearch
    from shared.retrieval.vector import VectorSearch
    from shared.vectors import create_vector_index

    server = PostgresServer(ROOT / ".local" / "bench-retrieval").start()
    try:
        settings = Settings.from_env({**os.environ, "DATABASE_URL": server.url}).validate()
        db = Database(settings)
        with db.transaction() as cur:
            cur.execute("SELECT count(*) FROM documents WHERE tenant = %s", (TENANT,))
            if not cur.fetchone()[0]:
                raise SystemExit("support-mix is not indexed: run `make bench-retrieval` first")
        keyword = KeywordSearch(db)
        vector = VectorSearch(db, create_embedder(settings, for_queries=True), create_vector_index(settings, db))
        hiding = hidden_retriever(Retriever(db, keyword, vector))
        gate = create_gate(settings, hiding, EmbeddingCache(db))
        qrels = load_qrels(directory / "qrels.dev.tsv")
        queries = [q for q in load_queries(directory / "queries.dev.jsonl") if q.id in qrels][:limit]
        rows = []
        started = time.perf_counter()
        for number, query in enumerate(queries, 1):
            relevant = {document_id(TENANT, f"beir://{doc}") for doc in qrels[query.id]}
            for answerable in (True, False):
                hiding.hidden.clear()
                if not answerable:
                    hiding.hidden.update(relevant)
                result = hiding.retrieve(query.text, TENANT, top_k=settings.chat_max_sources)
                assessment = gate.assess(query.text, TENANT, result.documents, sources_of(result.documents))
                rows.append({"split": query.split, "answerable": answerable, "p": assessment.probability,
                             "answered": assessment.answerable})
            if verbose and number % 100 == 0:
                print(f"  {number}/{len(queries)} queries, {time.perf_counter() - started:.0f} s", flush=True)
        db.close()
    finally:
        server.stop()
    print(f"\nsupport-mix dev, counterfactual ({len(queries)} queries, each with and without its relevant documents; "
          f"threshold {gate.threshold:.2f}):")
    print(f"{'split':<16}{'n':>6}{'answered (answerable)':>24}{'refused (hidden)':>19}{'AUROC':>8}")
    by_split = defaultdict(list)
    for row in rows:
        by_split[row["split"]].append(row)
        by_split["all"].append(row)
    result = {}
    for split, group in sorted(by_split.items(), key=lambda item: (item[0] == "all", item[0])):
        pos = [r for r in group if r["answerable"]]
        neg = [r for r in group if not r["answerable"]]
        answered = sum(r["answered"] for r in pos) / len(pos)
        refused_share = sum(not r["answered"] for r in neg) / len(neg)
        area = auroc([r["p"] for r in group], [r["answerable"] for r in group])
        result[split] = {"answered": answered, "refused": refused_share, "auroc": area}
        print(f"{split:<16}{len(pos):>6}{answered:>24.1%}{refused_share:>19.1%}{area:>8.3f}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=("sample", "support-mix", "all"), default="all")
    parser.add_argument("--questions", type=Path, help="a JSON-lines question file (default: the sample one)")
    parser.add_argument("--chat-url", help="the chat function to ask (default: the running stack, else a new one)")
    parser.add_argument("--site-key", default="", help="the tenant's site key, when the chat has a tenant registry")
    parser.add_argument("--support-mix", type=Path, default=SUPPORT_MIX)
    parser.add_argument("--limit", type=int, help="support-mix: only the first N dev queries")
    parser.add_argument("--verbose", action="store_true", help="a line per question")
    args = parser.parse_args(argv)
    logging.basicConfig(level="WARNING")
    if args.questions:
        args.suite = "sample"
    if args.suite in ("sample", "all"):
        questions = load_questions(args.questions or QUESTIONS)
        chat_url = args.chat_url or running_chat()
        stack = None
        if not chat_url:
            stack = throwaway_stack()
            chat_url = stack.urls["chat"]
        else:
            print(f"asking the chat at {chat_url}")
        try:
            print(f"{args.questions or QUESTIONS}: {len(questions)} questions "
                  f"({sum(q.answerable for q in questions)} answerable)")
            run_sample(questions, chat_url, verbose=args.verbose, site_key=args.site_key)
        finally:
            if stack is not None:
                stack.stop()
    if args.suite in ("support-mix", "all"):
        run_support_mix(args.support_mix, args.limit, args.verbose)
    return 0


if __name__ == "__main__":
    sys.exit(main())
