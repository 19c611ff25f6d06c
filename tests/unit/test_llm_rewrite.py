"""Follow-up detection and the rule-based rewriter."""

from __future__ import annotations

import pytest

from shared.llm import create_rewriter
from shared.llm.rewrite import RuleRewriter, key_words, needs_context
from shared.llm.types import HistoryMessage, Rewrite

HISTORY = [
    HistoryMessage("user", "How do I get a refund?"),
    HistoryMessage("assistant", "You can ask for a refund within 30 days of the charge [1]."),
]


@pytest.mark.parametrize(
    "message",
    [
        "and how long does that take?",  # connective + pronoun
        "And for annual plans?",
        "also for teams",
        "What about the Pro plan?",
        "how about SMS top-ups?",
        "but what if I paid by SEPA?",
        "ok and for teams?",
        "thanks, and what about teams?",
        "Does that apply to annual plans too?",
        "How do I turn it off?",
        "Can I do the same for my invoices?",
        "Which one is cheaper?",
        "Are they refunded automatically?",
        "How do I get there?",  # place, not existential
        "How much?",  # very short
        "refunds?",
        "yes, the pro plan",  # the answer to a clarifying question
        "Et pour l'Espagne ?",  # short, Latin script
    ],
)
def test_follow_ups_need_context(message):
    assert needs_context(message, HISTORY)


@pytest.mark.parametrize(
    "message",
    [
        "How do I reset my password?",
        "What are your opening hours?",
        "Is there a fee for cancelling a booking?",  # existential "there"
        "There is a problem with my calendar sync",
        "Is it possible to export my invoices as PDF?",  # dummy "it"
        "I was told that the refund takes 5 days, is that right?",  # "that" opens a clause; antecedent inside
        "I forgot my password, how do I reset it?",  # the antecedent is in the same message
        "Can I change the date of my booking and cancel it later?",
        "How many staff seats are included this month?",  # "this month" is time, not a reference
        "thanks!",
        "Thank you so much",
        "Hello",
        "Wie setze ich mein Passwort zurück?",  # another language, unsure: no
        "那退款需要多久？",  # another script: never "short"
    ],
)
def test_standalone_messages_do_not(message):
    assert not needs_context(message, HISTORY)


@pytest.mark.parametrize("message", ["and how long does that take?", "What about the Pro plan?", "How much?"])
def test_without_a_previous_user_message_nothing_needs_context(message):
    assert not needs_context(message, [])
    assert not needs_context(message, [HistoryMessage("assistant", "Hi! How can I help?")])
    assert RuleRewriter().rewrite(message, []) == Rewrite(message, "none")


def test_the_refund_follow_up_becomes_a_standalone_question():
    rewrite = RuleRewriter().rewrite("and how long does that take?", HISTORY)

    assert rewrite == Rewrite("how long does refund take", "rules")


def test_a_connective_follow_up_keeps_its_words_and_adds_the_previous_topic():
    history = [HistoryMessage("user", "How much does the Basic plan cost?"), HistoryMessage("assistant", "9 EUR [1].")]

    query = RuleRewriter().rewrite("What about the Pro plan?", history).query

    assert query.startswith("the pro plan")
    assert "cost" in query.split() and "what" not in query.split()


def test_a_follow_up_of_a_follow_up_is_resolved_through_the_earlier_one():
    history = [
        *HISTORY,
        HistoryMessage("user", "and how long does that take?"),
        HistoryMessage("assistant", "5 to 10 business days [1]."),
    ]

    query = RuleRewriter().rewrite("what about for teams?", history).query

    assert {"teams", "refund", "long"} <= set(query.split())


def test_the_most_recent_user_question_is_the_one_used():
    history = [*HISTORY, HistoryMessage("user", "How do I reset my password?"), HistoryMessage("assistant", "…")]

    query = RuleRewriter().rewrite("and how long does that take?", history).query

    assert "password" in query and "refund" not in query


def test_a_standalone_message_is_returned_unchanged():
    message = "How do I reset my password?"

    assert RuleRewriter().rewrite(message, HISTORY) == Rewrite(message, "none")


def test_rewriting_is_deterministic():
    rewriter = RuleRewriter()

    results = {rewriter.rewrite("Does that apply to annual plans too?", HISTORY) for _ in range(5)}

    assert results == {Rewrite("does refund apply to annual plans too", "rules")}


def test_key_words_drop_stop_words_generic_verbs_and_pronouns():
    assert key_words("How do I get a refund for it after 30 days?") == ["refund", "days"]


def test_without_a_key_the_factory_gives_the_rule_rewriter():
    from shared.config import Settings

    assert isinstance(create_rewriter(Settings()), RuleRewriter)
