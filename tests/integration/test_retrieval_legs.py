"""The two retrieval legs on documents ingested through the real path."""

from __future__ import annotations

import pytest

from shared.documents import document_of
from shared.retrieval.keyword import KeywordSearch
from shared.retrieval.vector import VectorSearch

DOCS = {
    "billing/refunds.md": "# Refund policy\n\nRefunds are available within 30 days. The money reaches your card "
                          "within 5-10 business days.",
    "account/password.md": "# Reset your password\n\nReset links expire after 60 minutes. Request a new link from "
                           "the sign-in page.",
    "integrations/calendar.md": "# Google Calendar\n\nConnect your calendar in Settings. Sync runs every 5 minutes.",
    # A long document that mentions "refund" once among a lot of other text must not outrank the refund policy.
    "policies/terms.md": "# Terms of service\n\n" + " ".join(
        f"Clause {i} covers accounts, bookings, calendars, invoices and data retention." for i in range(120))
                         + " Refund disputes follow clause 7.",
}


@pytest.fixture
def indexed(stack):
    for name, text in DOCS.items():
        stack.upload(name, text)
    for name in DOCS:
        stack.wait_for(name, "ready")
    return stack


def sources(hits):
    return [h.source_uri.rsplit("/", 2)[-2] + "/" + h.source_uri.rsplit("/", 1)[-1] for h in hits]


def test_keyword_leg_answers_questions_that_do_not_share_every_word(indexed):
    search = KeywordSearch(indexed.services.database())
    hits = search.search("how long until my refund reaches the card?", "default")
    assert sources(hits)[0] == "billing/refunds.md"
    assert "policies/terms.md" in sources(hits)  # any word may match ...
    assert hits[0].score > hits[-1].score      # ... but the focused chunk ranks first, not the long one
    assert hits[0].title == "Refund policy" and "5-10 business days" in hits[0].text


def test_keyword_leg_titles_count_more_and_topics_filter(indexed):
    search = KeywordSearch(indexed.services.database())
    assert sources(search.search("password", "default"))[0] == "account/password.md"
    assert sources(search.search("refund", "default", topics=["policies"])) == ["policies/terms.md"]
    assert search.search("refund", "other-tenant") == []
    assert search.search("how is it the", "default") == []  # only stop words: nothing to look for


def test_vector_leg_returns_chunks_with_their_text(indexed):
    services = indexed.services
    search = VectorSearch(services.database(), services.embedder(), services.vector_index())
    hits = search.search("reset password link expire", "default", top_k=3)
    assert sources(hits)[0] == "account/password.md" and "60 minutes" in hits[0].text
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    only_billing = search.search("reset password link expire", "default", topics=["billing"])
    assert {h.topic for h in only_billing} == {"billing"}


def test_each_document_also_has_a_title_vector_that_finds_its_first_chunk(indexed):
    services = indexed.services
    ids = indexed.vector_ids(titles=True)
    titles = {i for i in ids if i.endswith("#title")}
    assert len(titles) == len(DOCS)  # one per document, beside the chunk vectors
    search = VectorSearch(services.database(), services.embedder(), services.vector_index())
    # The hashing embedder matches exact wording: the title alone is the closest vector to the title.
    hits = search.search("Google Calendar", "default", top_k=20)
    assert not any(h.chunk_id.endswith("#title") for h in hits)  # a title hit is reported as the first chunk
    assert hits[0].chunk_id.endswith("#0") and sources(hits)[0] == "integrations/calendar.md"
    assert len({h.chunk_id for h in hits}) == len(hits)


def test_missing_title_vectors_are_added_once(indexed):
    services = indexed.services
    index, indexer = services.vector_index(), services.indexer()
    titles = {i for i in indexed.vector_ids(titles=True) if i.endswith("#title")}
    index.delete("default", sorted(titles)[:2])  # as if indexed by a version that wrote no title vectors

    assert indexer.add_missing_title_vectors("default") == 2
    assert {i for i in indexed.vector_ids(titles=True) if i.endswith("#title")} == titles
    assert indexer.add_missing_title_vectors("default") == 0


def test_the_retriever_reads_the_text_of_the_documents_it_returns_only(indexed):
    services = indexed.services
    result = services.retriever().retrieve("how long until my refund reaches the card?", "default", top_k=2)
    assert result.keyword_hits and all(h.text == "" for h in (*result.keyword_hits, *result.vector_hits))
    best = result.documents[0]
    assert best.title == "Refund policy" and best.source_uri.endswith("billing/refunds.md")
    assert "5-10 business days" in best.chunks[0].text
    assert len(result.documents) == 2


def test_a_document_whose_chunks_vanished_after_the_legs_ran_is_replaced_by_the_next(indexed):
    services = indexed.services
    refunds = document_of(indexed.chunks("billing/refunds.md")[0]["id"])
    with services.database().transaction() as cur:  # as if deleted between the index query and reading the text
        cur.execute("DELETE FROM chunks WHERE document_id = %s", (refunds,))
    result = services.retriever().retrieve("refund card", "default", top_k=2)
    assert any(h.document_id == refunds for h in result.vector_hits)  # its vectors still answered ...
    assert refunds not in [d.document_id for d in result.documents]  # ... but it is not shown without text
    assert len(result.documents) == 2 and all(d.chunks[0].text for d in result.documents)


def test_word_statistics_for_the_gate_come_from_the_index(indexed):
    search = KeywordSearch(indexed.services.database())
    chunks, df = search.term_frequencies("default", "Refunds for students, error BW-2110, Salesforce's sync?")

    assert chunks >= 4
    assert df["refunds"] == 2  # the refund policy and the terms mention it
    assert df["students"] == 0 and df["salesforce"] == 0  # words the knowledge base never mentions
    assert df["2110"] == 0 and "bw" in df  # a code's parts, as the parser splits them ("-2110" is a signed number)
    assert "for" not in df  # stop words have no lexeme
    assert search.term_frequencies("other-tenant", "refunds") == (0, {"refunds": 0})
