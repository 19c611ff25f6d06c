"""The retrieval benchmark command on a tiny BEIR-layout set, end to end (index, rerun from cache, metrics)."""

from __future__ import annotations

import json

from infra import bench_retrieval


def write_beir(directory):
    docs = [
        {"_id": "kb:refunds", "title": "Refund policy", "text": "Refunds reach your card within 5-10 business days."},
        {"_id": "kb:password", "title": "Reset your password", "text": "Reset links expire after 60 minutes."},
        {"_id": "kb:calendar", "title": "Google Calendar sync", "text": "Sync runs every 5 minutes."},
    ]
    (directory / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in docs))
    queries = [{"_id": "q1", "text": "when does my refund arrive", "metadata": {"split": "a"}},
               {"_id": "q2", "text": "password reset link expired", "metadata": {"split": "b"}}]
    (directory / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries))
    (directory / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tkb:refunds\t1\nq2\tkb:password\t1\n")


def test_benchmark_indexes_once_and_reports_every_leg_per_split(tmp_path, database_url, monkeypatch, capsys):
    write_beir(tmp_path)
    monkeypatch.setenv("EMBEDDER", "hash")
    args = [str(tmp_path), "--corpus", "corpus.jsonl", "--database-url", database_url]

    assert bench_retrieval.main(args) == 0
    first = capsys.readouterr().out
    assert "3 documents, 2 judged queries" in first and "indexing: 3 indexed, 0 unchanged" in first
    lines = {line.split()[0]: line.split() for line in first.splitlines() if line[:1] in ("a", "b", "A")}
    assert set(lines) == {"a", "b", "ALL"}
    assert lines["ALL"][2] == "1.000"  # keyword nDCG@10: each query's document ranks first
    assert "latency per query, first pass (ms; caches cold after a start): keyword p50" in first
    assert "latency per query, second pass (ms; warm, as a running chat instance): keyword p50" in first

    assert bench_retrieval.main(args) == 0
    assert "indexing: 0 indexed, 3 unchanged" in capsys.readouterr().out  # the rerun reuses the index
