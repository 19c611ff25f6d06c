import gzip
import json
import math

import pytest

from infra.eval.beir import load_corpus, load_qrels, load_queries
from infra.eval.metrics import mrr_at, ndcg_at, percentile, recall_at


def test_ndcg_matches_a_hand_computed_value():
    relevant = {"a": 1, "b": 1}
    # hits at ranks 1 and 3: DCG = 1/log2(2) + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3)
    assert ndcg_at(["a", "x", "b"], relevant) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    assert ndcg_at(["a", "b"], relevant) == 1.0
    assert ndcg_at(["x", "y"], relevant) == 0.0
    assert ndcg_at(["a", "a", "b"], relevant) == 1.0  # a duplicate does not count twice nor push b down


def test_graded_relevance_and_cutoff():
    relevant = {"a": 2, "b": 1}
    assert ndcg_at(["b", "a"], relevant) < ndcg_at(["a", "b"], relevant) == 1.0
    assert ndcg_at(["x"] * 1 + [f"n{i}" for i in range(9)] + ["a"], relevant, k=10) == 0.0


def test_recall_and_mrr():
    relevant = {"a": 1, "b": 1, "c": 1, "d": 1}
    assert recall_at(["a", "x", "c"], relevant) == 0.5
    assert mrr_at(["x", "y", "b"], relevant) == pytest.approx(1 / 3)
    assert mrr_at(["x"], relevant) == 0.0


def test_percentile_interpolates():
    assert percentile([10, 20, 30, 40], 50) == 25
    assert percentile([5.0], 95) == 5.0
    assert percentile(list(range(1, 101)), 95) == pytest.approx(95.05)


def test_loaders_read_beir_layout(tmp_path):
    corpus = tmp_path / "corpus.jsonl.gz"
    with gzip.open(corpus, "wt") as handle:
        handle.write(json.dumps({"_id": "d1", "title": "T", "text": "body", "metadata": {"source": "x"}}) + "\n")
    queries = tmp_path / "queries.jsonl"
    queries.write_text(json.dumps({"_id": "q1", "text": "what", "metadata": {"split": "dev"}}) + "\n")
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\n")

    assert [d.title for d in load_corpus(corpus)] == ["T"]
    assert load_queries(queries)[0].split == "dev"
    assert load_qrels(qrels) == {"q1": {"d1": 1}}
