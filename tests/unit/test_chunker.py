"""Chunker: heading paths, atomic code and tables, overlap within sections only, FAQ pairs, and the token bound."""

import itertools
import random
from pathlib import Path

import pytest

from shared.ingest.chunker import chunk_document
from shared.ingest.parsers import parse_document
from shared.ingest.tokens import count_tokens
from shared.models import Block, ParsedDocument

SAMPLE_KB = Path(__file__).resolve().parents[2] / "infra" / "sample_kb"


def sentences(prefix: str, n: int) -> str:
    return " ".join(f"{prefix} sentence {i} explains one rule about refunds and invoices." for i in range(n))


def check_invariants(chunks, max_tokens):
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert chunk.text.strip()
        assert chunk.token_count == count_tokens(chunk.embedding_text)
        assert chunk.token_count <= max_tokens


def paths(chunks):
    return [c.heading_path for c in chunks]


# ---------------------------------------------------------------------------------------------------------------
# Heading paths and sections
# ---------------------------------------------------------------------------------------------------------------


def test_heading_path_without_repeating_the_title():
    document = ParsedDocument("Refunds", [
        Block("heading", "Refunds", level=1),  # the usual H1 equal to the title
        Block("paragraph", sentences("Intro", 6)),
        Block("heading", "Eligibility", level=2),
        Block("paragraph", sentences("Eligible", 6)),
        Block("heading", "Exceptions", level=3),
        Block("paragraph", sentences("Except", 6)),
        Block("heading", "How to ask", level=2),
        Block("paragraph", sentences("Ask", 6)),
    ])
    chunks = chunk_document(document)
    assert paths(chunks) == [
        ("Refunds",),
        ("Refunds", "Eligibility"),
        ("Refunds", "Eligibility", "Exceptions"),
        ("Refunds", "How to ask"),
    ]
    assert chunks[1].text == sentences("Eligible", 6)  # the body only; the path is context
    assert chunks[1].embedding_text == "Refunds > Eligibility\n\n" + sentences("Eligible", 6)
    check_invariants(chunks, 256)


def test_a_heading_at_the_same_or_higher_level_always_starts_a_new_chunk():
    document = ParsedDocument("Doc", [
        Block("heading", "A", level=2), Block("paragraph", "Tiny A."),
        Block("heading", "B", level=2), Block("paragraph", "Tiny B."),
        Block("heading", "C", level=1), Block("paragraph", "Tiny C."),
    ])
    chunks = chunk_document(document)
    assert [(c.heading_path, c.text) for c in chunks] == [
        (("Doc", "A"), "Tiny A."), (("Doc", "B"), "Tiny B."), (("Doc", "C"), "Tiny C.")]


def test_a_tiny_section_takes_in_its_subsections_with_inline_headings():
    document = ParsedDocument("Guide", [
        Block("heading", "Billing", level=2),
        Block("paragraph", "A short intro."),
        Block("heading", "Invoices", level=3),
        Block("paragraph", "Invoices are emailed."),
        Block("heading", "Refunds", level=3),
        Block("paragraph", "Refunds take 5-10 business days."),
        Block("heading", "Account", level=2),
        Block("paragraph", "Sign in."),
    ])
    chunks = chunk_document(document)
    assert paths(chunks) == [("Guide", "Billing"), ("Guide", "Account")]
    assert chunks[0].text == ("A short intro.\n\n### Invoices\n\nInvoices are emailed.\n\n### Refunds\n\n"
                              "Refunds take 5-10 business days.")


def test_a_full_section_does_not_take_in_subsections():
    document = ParsedDocument("Guide", [
        Block("heading", "Billing", level=2),
        Block("paragraph", sentences("Billing", 8)),
        Block("heading", "Invoices", level=3),
        Block("paragraph", "Invoices are emailed."),
    ])
    assert paths(chunk_document(document)) == [("Guide", "Billing"), ("Guide", "Billing", "Invoices")]


def test_no_title_and_no_heading_means_no_path():
    chunks = chunk_document(ParsedDocument("", [Block("paragraph", "Loose text.")]))
    assert paths(chunks) == [()]
    assert chunks[0].embedding_text == "Loose text."


def test_text_before_the_first_heading_has_the_title_as_path():
    document = ParsedDocument("Doc", [Block("paragraph", sentences("Intro", 8)), Block("heading", "Section", level=2),
                                      Block("paragraph", sentences("Section", 8))])
    assert paths(chunk_document(document)) == [("Doc",), ("Doc", "Section")]


def test_blocks_of_one_section_are_packed_together():
    document = ParsedDocument("Doc", [Block("paragraph", f"Paragraph {i}.") for i in range(10)])
    chunks = chunk_document(document)
    assert len(chunks) == 1
    assert chunks[0].text == "\n\n".join(f"Paragraph {i}." for i in range(10))


# ---------------------------------------------------------------------------------------------------------------
# Code and tables
# ---------------------------------------------------------------------------------------------------------------

CODE = "\n".join(f"def handler_{i}(event):\n    return process(event, retries={i})" for i in range(6))


def test_code_that_fits_is_never_cut():
    document = ParsedDocument("Webhooks", [
        Block("paragraph", sentences("Before", 9)),
        Block("code", CODE, info="python"),
        Block("paragraph", sentences("After", 3)),
    ])
    chunks = chunk_document(document, max_tokens=256)
    fenced = f"```python\n{CODE}\n```"
    assert sum(fenced in c.text for c in chunks) == 1
    check_invariants(chunks, 256)


def test_oversized_code_splits_on_line_boundaries():
    code = "\n".join(f"print('line {i} of a long script')  # step {i}" for i in range(120))
    chunks = chunk_document(ParsedDocument("Script", [Block("code", code, info="python")]), max_tokens=128)
    assert len(chunks) > 2
    recovered = []
    for chunk in chunks:
        assert chunk.text.startswith("```python\n") and chunk.text.endswith("\n```")
        recovered.extend(chunk.text[len("```python\n"):-len("\n```")].split("\n"))
    assert recovered == code.split("\n")  # whole lines, in order, none lost
    check_invariants(chunks, 128)


TABLE_HEADER = "| Code | Meaning |\n| --- | --- |"


def test_table_that_fits_is_never_cut():
    table = TABLE_HEADER + "\n" + "\n".join(f"| BW-{1000 + i} | Meaning {i} |" for i in range(8))
    document = ParsedDocument("Errors", [Block("paragraph", sentences("Intro", 10)), Block("table", table)])
    chunks = chunk_document(document)
    assert sum(table in c.text for c in chunks) == 1


def test_oversized_table_splits_on_rows_with_the_header_repeated():
    rows = [f"| BW-{1000 + i} | The request failed because of reason number {i} |" for i in range(80)]
    table = TABLE_HEADER + "\n" + "\n".join(rows)
    chunks = chunk_document(ParsedDocument("Errors", [Block("table", table)]), max_tokens=128)
    assert len(chunks) > 2
    recovered = []
    for chunk in chunks:
        assert chunk.text.startswith(TABLE_HEADER + "\n")
        recovered.extend(chunk.text[len(TABLE_HEADER) + 1:].split("\n"))
    assert recovered == rows
    check_invariants(chunks, 128)


# ---------------------------------------------------------------------------------------------------------------
# Paragraphs, lists and overlap
# ---------------------------------------------------------------------------------------------------------------


def test_oversized_paragraph_splits_at_sentence_boundaries_with_overlap():
    text = sentences("Long", 40)
    chunks = chunk_document(ParsedDocument("Doc", [Block("paragraph", text)]), max_tokens=128, overlap_tokens=24)
    assert len(chunks) > 2
    for previous, chunk in itertools.pairwise(chunks):
        assert chunk.text[0].isupper() and chunk.text.endswith(".")  # whole sentences
        last_sentence = previous.text[previous.text.rindex("Long sentence"):]
        assert chunk.text.startswith(last_sentence)  # the overlap
    check_invariants(chunks, 128)


def test_overlap_within_a_section_but_not_across_sections():
    document = ParsedDocument("Doc", [
        Block("heading", "First", level=2),
        Block("paragraph", sentences("First", 12)),
        Block("paragraph", sentences("Second", 12)),
        Block("heading", "Next", level=2),
        Block("paragraph", sentences("Next", 12)),
    ])
    chunks = chunk_document(document, max_tokens=160, overlap_tokens=32)
    first = [c for c in chunks if c.heading_path == ("Doc", "First")]
    nxt = [c for c in chunks if c.heading_path == ("Doc", "Next")]
    assert len(first) >= 2
    for previous, chunk in itertools.pairwise(first):
        opening = chunk.text[: chunk.text.index(".") + 1]  # the next chunk's first sentence...
        closing = previous.text[previous.text.rindex("sentence"):]  # ...and the previous chunk's last one
        assert opening in previous.text and closing in chunk.text
    assert nxt[0].text.startswith("Next sentence 0")  # nothing carried over from the previous section


def test_no_overlap_when_disabled():
    text = sentences("Long", 40)
    chunks = chunk_document(ParsedDocument("Doc", [Block("paragraph", text)]), max_tokens=128, overlap_tokens=0)
    assert " ".join(c.text for c in chunks) == text


def test_oversized_list_splits_between_items_keeping_nested_lines():
    items = [f"- Item {i} with a few words of explanation\n  - nested detail {i}" for i in range(40)]
    chunks = chunk_document(ParsedDocument("Doc", [Block("list", "\n".join(items))]), max_tokens=96,
                            overlap_tokens=0)
    assert len(chunks) > 2
    for chunk in chunks:
        assert chunk.text.startswith("- Item")
        assert chunk.text.count("- Item") == chunk.text.count("- nested")
    check_invariants(chunks, 96)


# ---------------------------------------------------------------------------------------------------------------
# FAQ
# ---------------------------------------------------------------------------------------------------------------


def test_faq_one_chunk_per_pair_with_category_and_question_in_the_path():
    document = ParsedDocument("General FAQ", [
        Block("heading", "Billing", level=2),
        Block("faq", "Within 30 days.", info="Can I get a refund?"),
        Block("faq", "5-10 business days.", info="How long does a refund take?"),
        Block("heading", "Account", level=2),
        Block("faq", "After 60 minutes.", info="When does the reset link expire?"),
    ])
    chunks = chunk_document(document)
    assert [(c.heading_path, c.text) for c in chunks] == [
        (("General FAQ", "Billing", "Can I get a refund?"), "Within 30 days."),
        (("General FAQ", "Billing", "How long does a refund take?"), "5-10 business days."),
        (("General FAQ", "Account", "When does the reset link expire?"), "After 60 minutes."),
    ]


def test_long_faq_answer_splits_under_the_same_question_without_overlap():
    answer = sentences("Answer", 40)
    document = ParsedDocument("FAQ", [Block("faq", answer, info="Why?"), Block("faq", "Short.", info="Next?")])
    chunks = chunk_document(document, max_tokens=128, overlap_tokens=32)
    long_parts = [c for c in chunks if c.heading_path == ("FAQ", "Why?")]
    assert len(long_parts) > 1
    assert " ".join(c.text for c in long_parts) == answer  # no overlap: the parts add up exactly
    assert chunks[-1].heading_path == ("FAQ", "Next?") and chunks[-1].text == "Short."


# ---------------------------------------------------------------------------------------------------------------
# The token bound, on varied input, and determinism
# ---------------------------------------------------------------------------------------------------------------

WORDS = ["refund", "invoice", "BW-4012", "SharePointOnline", "(30 days)", "x_y_z", "café", "预约", "2026-10-02",
         "https://book.brightwave.io/your-link", "a", "—", "supercalifragilisticexpialidocious"]


def random_document(seed: int) -> ParsedDocument:
    rng = random.Random(seed)

    def words(n):
        return " ".join(rng.choice(WORDS) for _ in range(n))

    def prose():
        return " ".join(words(rng.randint(1, 25)) + rng.choice([".", "!", "?", ""]) for _ in range(rng.randint(1, 30)))

    blocks = []
    for _ in range(rng.randint(1, 30)):
        kind = rng.choice(["heading", "paragraph", "paragraph", "list", "code", "table", "faq"])
        if kind == "heading":
            blocks.append(Block("heading", words(rng.choice([1, 3, 60])), level=rng.randint(1, 6)))
        elif kind == "paragraph":
            blocks.append(Block("paragraph", prose()))
        elif kind == "list":
            lines = [("  " * rng.randint(0, 2)) + "- " + words(rng.randint(1, 40)) for _ in range(rng.randint(1, 30))]
            blocks.append(Block("list", "- first\n" + "\n".join(lines)))
        elif kind == "code":
            lines = ["    " + words(rng.randint(0, 30)) for _ in range(rng.randint(1, 80))]
            blocks.append(Block("code", "\n".join(lines), info=rng.choice(["", "python"])))
        elif kind == "table":
            rows = [f"| {words(rng.randint(1, 5))} | {words(rng.randint(1, 30))} |" for _ in range(rng.randint(1, 60))]
            blocks.append(Block("table", "| h1 | h2 |\n| --- | --- |\n" + "\n".join(rows)))
        else:
            blocks.append(Block("faq", prose(), info=words(rng.randint(1, 20)) + "?"))
    blocks.append(Block("paragraph", "B" * rng.choice([10, 3000])))  # a huge unbroken word
    return ParsedDocument(words(rng.choice([0, 2, 80])), blocks)


@pytest.mark.parametrize("max_tokens, overlap_tokens", [(16, 0), (32, 8), (64, 16), (128, 32), (256, 32), (512, 64)])
@pytest.mark.parametrize("seed", range(12))
def test_token_bound_holds_on_varied_documents(seed, max_tokens, overlap_tokens):
    document = random_document(seed)
    chunks = chunk_document(document, max_tokens=max_tokens, overlap_tokens=overlap_tokens)
    assert chunks
    check_invariants(chunks, max_tokens)


def test_long_heading_paths_are_shortened_to_fit():
    long_heading = " ".join(["word"] * 300)
    document = ParsedDocument(long_heading, [Block("heading", long_heading + " two", level=2),
                                             Block("paragraph", "Body text."),
                                             Block("faq", "Answer.", info=long_heading + "?")])
    chunks = chunk_document(document, max_tokens=64)
    check_invariants(chunks, 64)
    assert [c.text for c in chunks] == ["Body text.", "Answer."]


def test_deterministic():
    document = random_document(3)
    assert chunk_document(document) == chunk_document(document)


def test_nothing_to_chunk():
    assert chunk_document(ParsedDocument("Title", [Block("heading", "Only a heading", level=1)])) == []


@pytest.mark.parametrize("max_tokens, overlap_tokens", [(8, 0), (64, -1), (64, 64)])
def test_invalid_limits(max_tokens, overlap_tokens):
    with pytest.raises(ValueError):
        chunk_document(ParsedDocument("T", [Block("paragraph", "x")]), max_tokens, overlap_tokens)


SAMPLE_FILES = sorted(p for p in SAMPLE_KB.rglob("*") if p.is_file() and p.suffix != ".py")


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: str(p.relative_to(SAMPLE_KB)))
def test_sample_kb_chunks_within_bound_and_keep_every_word(path):
    document = parse_document(path.read_bytes(), path.name)
    chunks = chunk_document(document)
    check_invariants(chunks, 256)
    chunk_words = set(" ".join(c.embedding_text for c in chunks).split())
    for block in document.blocks:
        assert set(block.text.split()) <= chunk_words
