"""CitationFilter: invented source numbers are removed from a stream, whatever the split; other brackets pass."""

from __future__ import annotations

import random

import pytest

from shared.llm.citations import MAX_MARKER, CitationFilter


def _filter(text: str, valid=(1, 2, 3), pieces: list[str] | None = None) -> tuple[str, CitationFilter]:
    citations = CitationFilter(valid)
    out = "".join(citations.feed(piece) for piece in (pieces if pieces is not None else [text]))
    return out + citations.finish(), citations


def test_valid_citations_are_kept_and_recorded_in_first_use_order():
    text, citations = _filter("Refunds take 5 days [2]. Ask within 30 days [1][2].")

    assert text == "Refunds take 5 days [2]. Ask within 30 days [1][2]."
    assert citations.cited == [2, 1]
    assert citations.removed == 0


def test_an_invented_number_is_removed_with_the_space_before_it():
    text, citations = _filter("Refunds take 5 days [7]. Really [9]")

    assert text == "Refunds take 5 days. Really"
    assert citations.cited == []
    assert citations.removed == 2


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("It works [1, 7].", "It works [1]."),
        ("It works [7, 2, 3].", "It works [2, 3]."),
        ("It works [1,2].", "It works [1,2]."),  # unchanged markers keep their spelling
        ("It works [2][9].", "It works [2]."),
        ("It works [9][2].", "It works [2]."),  # the space stays when a marker follows
        ("It works [1-3].", "It works [1-3]."),
        ("It works [2–5].", "It works [2, 3]."),
        ("It works [0].", "It works."),
    ],
)
def test_only_the_invalid_numbers_of_a_marker_are_removed(given, expected):
    assert _filter(given)[0] == expected


def test_mixed_marker_counts_what_it_cites_and_removes():
    _, citations = _filter("A [1, 7] and B [3, 8, 9].")

    assert citations.cited == [1, 3]
    assert citations.removed == 3


@pytest.mark.parametrize(
    "text",
    [
        "See [the guide](https://example.com/guide) for details.",
        "Open [1](https://example.com/one) first.",
        "- [x] done\n- [ ] to do",
        "[ERROR] sync failed",
        "Published [2024] and [note]",
        "Arrays like a[i] and [[nested]]",
    ],
)
def test_brackets_that_are_not_citations_pass_through_untouched(text):
    output, citations = _filter(text)

    assert output == text
    assert citations.cited == [] and citations.removed == 0


ANSWER = (
    "Refunds take 5 days [1]. Invented [7], mixed [1, 7] and [2][9] then [9][2]. A link [docs](https://x.io/a) "
    "and [1](https://x.io/b), a box [x], [ERROR], [2024], range [1-3], [ ] and an open end [3"
)


def test_feeding_one_character_at_a_time_gives_the_same_result_as_the_whole_text():
    whole, whole_filter = _filter(ANSWER)
    split, split_filter = _filter(ANSWER, pieces=list(ANSWER))

    assert split == whole
    assert (split_filter.cited, split_filter.removed) == (whole_filter.cited, whole_filter.removed) == ([1, 2, 3], 4)
    assert whole == (
        "Refunds take 5 days [1]. Invented, mixed [1] and [2] then [2]. A link [docs](https://x.io/a) "
        "and [1](https://x.io/b), a box [x], [ERROR], [2024], range [1-3], [ ] and an open end [3"
    )


@pytest.mark.parametrize("cut", range(1, len("Price [1, 7] [9] ok")))
def test_a_split_at_any_position_gives_the_same_result(cut):
    text = "Price [1, 7] [9] ok"

    assert _filter(text, pieces=[text[:cut], text[cut:]])[0] == "Price [1] ok"


def test_random_splits_give_the_same_result_as_the_whole_text():
    whole = _filter(ANSWER)[0]
    rng = random.Random(7)
    for _ in range(500):
        cuts = sorted(rng.sample(range(1, len(ANSWER)), rng.randint(1, 25)))
        pieces = [ANSWER[a:b] for a, b in zip([0, *cuts], [*cuts, len(ANSWER)])]
        assert _filter(ANSWER, pieces=pieces)[0] == whole, pieces


def test_text_is_emitted_at_once_and_only_a_possible_marker_is_held_back():
    citations = CitationFilter({1})

    assert citations.feed("Refunds take") == "Refunds take"
    assert citations.feed(" five days ") == " five days"  # the last space waits: "[9]" may follow
    assert citations.feed("[1") == ""
    assert citations.feed(", 2") == ""
    assert citations.feed("]") == ""  # "(" next would make it a link
    assert citations.feed(".") == " [1]."
    assert citations.finish() == ""


def test_a_fragment_that_cannot_be_a_marker_is_not_held():
    citations = CitationFilter({1})

    held = citations.feed("x [" + "1, " * 10)
    assert len("x [" + "1, " * 10) - len(held) <= MAX_MARKER + 1
    assert citations.feed("[note]").endswith("[note]")


def test_an_unfinished_marker_is_flushed_as_is_at_the_end():
    citations = CitationFilter({1})

    assert citations.feed("see [1") == "see"
    assert citations.finish() == " [1"
    assert citations.cited == []


def test_renumbering_shows_citations_in_order_of_first_use():
    checker = CitationFilter([1, 2, 3, 4], renumber=True)
    text = "".join(checker.feed(c) for c in "Refunds take days [3]. Invoices [4][3] and [9], see [2, 4].") \
        + checker.finish()
    assert text == "Refunds take days [1]. Invoices [2][1] and, see [3, 2]."
    assert checker.cited == [3, 4, 2] and checker.removed == 1
