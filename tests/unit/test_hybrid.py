"""Fusion, identifiers and grouping of the hybrid retriever, on hand-made leg results."""

from __future__ import annotations

import pytest

from shared.retrieval import ChunkHit
from shared.retrieval.hybrid import NAME, STRONG, Retriever, find_identifiers


def hit(chunk: str, score: float) -> ChunkHit:
    return ChunkHit(chunk_id=chunk, document_id=chunk.split("#")[0], score=score, title=chunk.split("#")[0],
                    topic="t-" + chunk.split("#")[0])


def fuse(keyword, vector, exact=(), weight=0.7):
    return Retriever(None, None, None, vector_weight=weight).fuse(keyword, vector, list(exact))


@pytest.mark.parametrize("question, expected", [
    ("What does BW-4012 mean?", [("BW-4012", STRONG)]),
    ('Why do I see "Too many open files"?', [("Too many open files", STRONG)]),
    ("search for 'exact phrase' please", [("exact phrase", STRONG)]),
    ("Error 0x80070005 when syncing", [("0x80070005", STRONG)]),
    ("HTTP 404 on the webhook", [("404", NAME), ("HTTP", NAME)]),
    ("EJPAS0017E after upgrading to v7.2 on 64bit", [("EJPAS0017E", STRONG), ("v7.2", NAME), ("64bit", NAME)]),
    ("Is CVE-2017-3156 fixed?", [("CVE-2017-3156", STRONG)]),
    ("Does it work with SharePoint and Zapier?", [("SharePoint", NAME), ("Zapier", NAME)]),
    ("I'm afraid I've lost my password", []),  # apostrophes are not quotes
    ("How do I reset my password? Thanks", []),  # a capitalised word starting a sentence is not a name
])
def test_identifiers_in_questions(question, expected):
    assert find_identifiers(question) == expected


def test_the_better_scored_chunk_wins_and_a_chunk_one_leg_missed_gets_that_legs_lowest_score():
    docs = fuse(keyword=[hit("a#0", 10.0), hit("b#0", 8.0)], vector=[hit("b#0", 0.8), hit("c#0", 0.6)])
    assert [d.document_id for d in docs] == ["b", "a", "c"]
    by_id = {d.document_id: d for d in docs}
    # b: 0.7 * 0.8 + 0.3 * 0.8; a: vector floor 0.6, keyword 1.0; c: vector 0.6, keyword floor 0.8
    assert by_id["a"].score == pytest.approx(0.7 * 0.6 + 0.3 * 1.0)
    assert by_id["c"].score == pytest.approx(0.7 * 0.6 + 0.3 * 0.8)
    assert by_id["a"].vector_score == 0.0 and by_id["c"].keyword_score == 0.0


def test_a_strong_identifier_match_leads_and_a_name_only_nudges():
    keyword = [hit("a#0", 10.0), hit("b#0", 9.0)]
    vector = [hit("a#0", 0.9), hit("b#0", 0.88)]
    assert [d.document_id for d in fuse(keyword, vector)][:2] == ["a", "b"]
    assert fuse(keyword, vector, [hit("z#0", STRONG)])[0].document_id == "z"
    assert fuse(keyword, vector, [hit("z#0", STRONG)])[0].exact
    nudged = fuse(keyword, vector, [hit("b#0", NAME)])
    assert [d.document_id for d in nudged][:2] == ["b", "a"] and not nudged[0].exact
    far_behind = [hit("a#0", 10.0), hit("b#0", 1.0)], [hit("a#0", 0.9), hit("b#0", 0.3)]
    assert fuse(*far_behind, [hit("b#0", NAME)])[0].document_id == "a"  # a name does not override a clear winner


def test_chunks_are_grouped_by_document_best_first_in_document_order():
    docs = fuse(keyword=[], vector=[hit("a#5", 0.9), hit("b#0", 0.8), hit("a#1", 0.7), hit("a#9", 0.6),
                                    hit("a#3", 0.5)])
    assert [d.document_id for d in docs] == ["a", "b"]
    assert [c.chunk_id for c in docs[0].chunks] == ["a#1", "a#5", "a#9"]  # the best three, in document order
    assert docs[0].best_chunk_id == "a#5"


