"""Token estimate: conservative against the real tokenizer, additive, and splitting that respects the limit."""

import random

import pytest

from shared.ingest.tokens import count_tokens, split_sentences, split_to_tokens

# Real all-MiniLM-L6-v2 word-piece counts (tokenizer.tokenize, no special tokens), measured once offline.
REAL_COUNTS = [
    ("Refunds are available within 30 days of any charge and take 5-10 business days to reach your card.", 22),
    ("Password reset links expire after 60 minutes. Request a new link from the sign-in page if yours has "
     "expired.", 24),
    ("Error BW-4012 means the webhook endpoint did not answer within 10 seconds; respond with a 2xx status "
     "quickly.", 28),
    ("To configure SharePointOnline retention policies, open the Microsoft 365 compliance center and select Data "
     "lifecycle management.", 25),
    ("def verify(raw_body: bytes, header: str, secret: str) -> bool:\n    expected = hmac.new(secret.encode(), "
     "raw_body, hashlib.sha256).hexdigest()", 57),
    ("| Code | What it means |\n| --- | --- |\n| `BW-1001` | Password reset link expired |", 30),
    ("预约页面的链接可以在设置中更改。", 16),
]


@pytest.mark.parametrize("text, real", REAL_COUNTS)
def test_estimate_is_slightly_conservative(text, real):
    estimate = count_tokens(text)
    assert real <= estimate <= real * 1.35


@pytest.mark.parametrize("text, expected", [("", 0), ("   \n\t ", 0), ("hello", 2), ("a, b", 4)])
def test_small_counts(text, expected):
    # "hello" is one piece times the margin, rounded up; punctuation is a piece of its own.
    assert count_tokens(text) == expected


def test_cjk_characters_count_one_each():
    assert 11 <= count_tokens("预约页面的链接可以在设") <= 12


def test_long_numbers_and_identifiers_cost_more_than_short_words():
    assert count_tokens("12345678901234") > count_tokens("2026")
    assert count_tokens("SharePointOnlineManagementShell") > count_tokens("shell")


def test_joined_text_never_counts_more_than_its_parts():
    rng = random.Random(7)
    words = ["refund", "BW-4012", "(30 days)", "SharePoint", "café", "预约", "x_y", "…", "2026-10-02T09:30:00Z"]
    for _ in range(200):
        parts = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 8))) for _ in range(rng.randint(2, 5))]
        assert count_tokens("\n\n".join(parts)) <= sum(count_tokens(p) for p in parts)


def test_split_sentences():
    text = "First one. Second one? Third! e.g. lower case stays.\nNew line here"
    assert split_sentences(text) == ["First one.", "Second one?", "Third! e.g. lower case stays.", "New line here"]


def test_split_to_tokens_prefers_sentence_boundaries():
    sentences = [f"Sentence number {i} explains one refund rule in detail." for i in range(30)]
    pieces = split_to_tokens(" ".join(sentences), 40)
    assert len(pieces) > 1
    assert all(count_tokens(piece) <= 40 for piece in pieces)
    assert all(piece.endswith(".") for piece in pieces)
    assert " ".join(pieces) == " ".join(sentences)


def test_split_to_tokens_falls_back_to_words_then_characters():
    long_sentence = " ".join(["word"] * 200)
    pieces = split_to_tokens(long_sentence, 30)
    assert all(count_tokens(p) <= 30 for p in pieces)
    assert " ".join(pieces).split() == long_sentence.split()

    blob = "A" * 5000  # a key or a base64 blob with no spaces
    pieces = split_to_tokens(blob, 25)
    assert all(count_tokens(p) <= 25 for p in pieces)
    assert "".join(pieces) == blob

    underscores = "_" * 300  # the heaviest characters still fit
    assert all(count_tokens(p) <= 10 for p in split_to_tokens(underscores, 10))


def test_split_to_tokens_edge_cases():
    assert split_to_tokens("", 10) == []
    assert split_to_tokens("  short text  ", 10) == ["short text"]
    with pytest.raises(ValueError):
        split_to_tokens("text", 0)
