"""The Gemini adapters through the real google-genai SDK against the Gemini stand-in (conftest `gemini`)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.config import Settings
from shared.embeddings.gemini import make_genai_client
from shared.errors import UpstreamUnavailable
from shared.llm import CitationFilter, create_answerer, create_rewriter, create_summarizer
from shared.llm.gemini import GeminiAnswerer, GeminiRewriter, GeminiSummarizer
from shared.llm.prompt import POLICIES_HEADING
from shared.llm.rewrite import RuleRewriter
from shared.llm.types import CLARIFY, HANDOFF, Action, AnswerRequest, HistoryMessage, Rewrite, Source
from shared.memory.models import Message
from shared.memory.summary import ExtractiveSummarizer

MODEL = "gemini-2.5-flash"
STREAM_PATH = f"/v1/models/{MODEL}:streamGenerateContent?alt=sse"
GENERATE_PATH = f"/v1/models/{MODEL}:generateContent"

SOURCES = [
    Source(1, "Refunds", "Refunds reach your card within 5-10 business days.", "https://help.example.com/refunds",
           "billing/refunds.md"),
    Source(2, "Invoices", "Invoices are emailed on the 1st of each month.", "", "billing/invoices.html"),
]  # fmt: skip
POLICIES = "Never promise a refund above 500 EUR; hand those to a human."
HISTORY = [
    HistoryMessage("user", "How do I get a refund?"),
    HistoryMessage("assistant", "Ask within 30 days of the charge [1]."),
]
REQUEST = AnswerRequest(
    question="and how long does that take?",
    query="how long does a refund take",
    sources=SOURCES,
    history=HISTORY,
    summary="The customer is on the Pro plan.",
    policies=POLICIES,
)


@pytest.fixture
def settings(gemini) -> Settings:
    return Settings.from_env({"GEMINI_API_KEY": "test-key", "GEMINI_BASE_URL": gemini.url,
                              "GENERATION_MODEL": MODEL})  # fmt: skip


@pytest.fixture
def client(settings):
    return make_genai_client(settings)


def _answerer(client, **options) -> GeminiAnswerer:
    return GeminiAnswerer(client, MODEL, **{"retry_base_seconds": 0.01, **options})


def _calls(gemini, path: str = STREAM_PATH) -> list:
    return [r for r in gemini.requests if r.path == path]


def _message(role: str, text: str, seq: int) -> Message:
    return Message(id=f"m{seq}", role=role, text=text, turn_id=f"t{seq // 2}", seq=seq,
                   created_at=datetime(2026, 11, 2, tzinfo=UTC))  # fmt: skip


# --- answering ---------------------------------------------------------------------------------------------------


def test_pieces_are_yielded_in_order_as_they_stream(gemini, client):
    gemini.script_stream(["Refunds reach ", "your card within ", "5-10 business days [1]."])

    assert list(_answerer(client).answer(REQUEST)) == ["Refunds reach ", "your card within ",
                                                       "5-10 business days [1]."]  # fmt: skip
    assert len(_calls(gemini)) == 1


def test_the_request_carries_rules_policies_numbered_sources_conversation_and_tools(gemini, client):
    gemini.script_reply("Five to ten business days [1].")

    list(_answerer(client).answer(REQUEST))

    body = _calls(gemini)[0].json
    system = body["systemInstruction"]["parts"][0]["text"]
    assert "ONLY the numbered sources" in system and "never invent a source number" in system
    assert f"## {POLICIES_HEADING}\n{POLICIES}" in system
    assert "[1] Refunds (https://help.example.com/refunds)\nRefunds reach your card within 5-10" in system
    assert "[2] Invoices\nInvoices are emailed" in system
    assert system.index(POLICIES) < system.index("[1] Refunds")
    turns = [(c["role"], c["parts"][0]["text"]) for c in body["contents"]]
    assert turns == [
        ("user", "(Summary of our conversation so far: The customer is on the Pro plan.)\n\nHow do I get a refund?"),
        ("model", "Ask within 30 days of the charge [1]."),
        ("user", "and how long does that take?"),
    ]
    declarations = {d["name"]: d for d in body["tools"][0]["functionDeclarations"]}
    assert declarations["ask_clarifying_question"]["parameters"]["required"] == ["question"]
    assert declarations["hand_off_to_human"]["parameters"]["required"] == ["reason"]
    assert body["generationConfig"]["temperature"] == 0.2


def test_a_429_then_success_is_retried(gemini, client):
    gemini.fail_next(1, status=429)
    gemini.script_reply("Five to ten business days [1].")

    assert "".join(_answerer(client).answer(REQUEST)) == "Five to ten business days [1]."
    assert len(_calls(gemini)) == 2


@pytest.mark.parametrize("status", [429, 500, 503])
def test_persistent_throttling_or_outage_is_upstream_unavailable_after_max_retries(gemini, client, status):
    gemini.fail_next(10, status=status)
    slept: list[float] = []

    with pytest.raises(UpstreamUnavailable, match=f"after 3 attempts: Gemini answered {status}"):
        list(_answerer(client, max_retries=2, sleep=slept.append).answer(REQUEST))

    assert len(_calls(gemini)) == 3
    assert len(slept) == 2 and slept[1] > slept[0] * 0.5  # exponential backoff, with jitter


def test_a_rejected_key_is_a_configuration_problem_and_is_not_retried(gemini, settings):
    wrong = make_genai_client(Settings.from_env({"GEMINI_API_KEY": "wrong", "GEMINI_BASE_URL": gemini.url}))

    with pytest.raises(UpstreamUnavailable, match="configuration problem.*GEMINI_API_KEY") as raised:
        list(_answerer(wrong).answer(REQUEST))

    assert "400" in str(raised.value)
    assert raised.value.public_message == "temporarily unavailable, retry later"  # never the internal detail
    assert len(_calls(gemini)) == 1


def test_an_unknown_model_names_the_setting_to_check(gemini, client):
    answerer = GeminiAnswerer(client, "gemini-embedding-001")  # served, but not for generation: 404

    with pytest.raises(UpstreamUnavailable, match="GENERATION_MODEL"):
        list(answerer.answer(REQUEST))

    assert len(gemini.requests) == 1


def test_connection_errors_are_retried_then_upstream_unavailable():
    from infra.standins.gemini_server import GeminiServer

    with GeminiServer(api_key="test-key") as gone:
        url = gone.url
    closed = make_genai_client(Settings.from_env({"GEMINI_API_KEY": "test-key", "GEMINI_BASE_URL": url}))
    slept: list[float] = []

    with pytest.raises(UpstreamUnavailable, match="after 2 attempts: connection to Gemini failed"):
        list(_answerer(closed, max_retries=1, sleep=slept.append).answer(REQUEST))

    assert len(slept) == 1


def test_a_failure_after_text_was_yielded_is_not_retried(gemini, client):
    gemini.script_stream(["Refunds reach ", "your card ", "within days."], fail_after=2)
    received = []

    with pytest.raises(UpstreamUnavailable, match="after the answer began"):
        for item in _answerer(client).answer(REQUEST):
            received.append(item)

    assert received == ["Refunds reach ", "your card "]
    assert len(_calls(gemini)) == 1


def test_a_stream_cut_before_any_text_is_retried(gemini, client):
    gemini.script_stream(["never ", "seen"], fail_after=0)
    gemini.script_reply("Five to ten business days [1].")

    assert "".join(_answerer(client).answer(REQUEST)) == "Five to ten business days [1]."
    assert len(_calls(gemini)) == 2


def test_a_clarifying_question_is_shown_then_the_clarify_action(gemini, client):
    gemini.script_function_call("ask_clarifying_question", {"question": "Which plan are you on?"})

    assert list(_answerer(client).answer(REQUEST)) == ["Which plan are you on?", Action(CLARIFY)]


def test_a_clarification_without_a_question_becomes_a_handoff(gemini, client):
    gemini.script_function_call("ask_clarifying_question", {})

    assert list(_answerer(client).answer(REQUEST)) == [Action(HANDOFF, "the model returned no answer (STOP)")]


def test_a_hand_off_ends_the_answer_with_the_handoff_action(gemini, client):
    gemini.script_function_call("hand_off_to_human", {"reason": "refund above 500 EUR"}, ["I can't promise that. "])

    assert list(_answerer(client).answer(REQUEST)) == ["I can't promise that. ",
                                                       Action(HANDOFF, "refund above 500 EUR")]  # fmt: skip


def test_a_reply_blocked_by_safety_filters_is_a_handoff_without_text(gemini, client):
    gemini.script_blocked("SAFETY")

    assert list(_answerer(client).answer(REQUEST)) == [Action(HANDOFF, "the model declined to answer")]


def test_invented_citations_in_the_stream_are_removed_by_the_filter(gemini, client):
    gemini.script_stream(["Within 5-10 days [1", "]. Also see ", "[4]."])
    citations = CitationFilter({s.number for s in SOURCES})

    text = "".join(citations.feed(p) for p in _answerer(client).answer(REQUEST) if isinstance(p, str))

    assert text + citations.finish() == "Within 5-10 days [1]. Also see."
    assert citations.cited == [1] and citations.removed == 1


def test_the_factory_builds_a_gemini_answerer_with_thinking_off_for_flash(gemini, settings):
    gemini.script_reply("ok")
    answerer = create_answerer(settings)

    assert answerer.name == "gemini"
    list(answerer.answer(REQUEST))
    thinking = _calls(gemini)[0].json["generationConfig"]["thinkingConfig"]
    assert list(thinking.values()) == [0]


# --- rewriting ---------------------------------------------------------------------------------------------------


def test_a_standalone_message_is_not_sent_to_the_model(gemini, client):
    rewriter = GeminiRewriter(client, MODEL, RuleRewriter())

    assert rewriter.rewrite("How do I reset my password?", HISTORY) == Rewrite("How do I reset my password?", "none")
    assert rewriter.rewrite("and how long does that take?", []) == Rewrite("and how long does that take?", "none")
    assert gemini.requests == []


def test_a_follow_up_is_rewritten_by_one_model_call(gemini, client):
    gemini.script_reply('"How long does a refund take?"\n')
    rewriter = GeminiRewriter(client, MODEL, RuleRewriter())

    assert rewriter.rewrite("and how long does that take?", HISTORY) == Rewrite("How long does a refund take?",
                                                                                 "gemini")  # fmt: skip
    (call,) = _calls(gemini, GENERATE_PATH)
    prompt_text = call.json["contents"][0]["parts"][0]["text"]
    assert "Customer: How do I get a refund?" in prompt_text
    assert "Last message:\nand how long does that take?" in prompt_text
    assert "standalone question" in call.json["systemInstruction"]["parts"][0]["text"]


@pytest.mark.parametrize("trouble", ["500", "empty", "overlong"])
def test_the_rewriter_falls_back_to_the_rules(gemini, client, trouble):
    if trouble == "500":
        gemini.fail_next(1, status=500)
    else:
        gemini.script_reply("" if trouble == "empty" else "word " * 100)
    rewriter = GeminiRewriter(client, MODEL, RuleRewriter())

    assert rewriter.rewrite("and how long does that take?", HISTORY) == Rewrite("how long does refund take", "rules")
    assert len(_calls(gemini, GENERATE_PATH)) == 1


def test_the_factory_rewriter_uses_gemini(gemini, settings):
    gemini.script_reply("How long does a refund take?")

    assert create_rewriter(settings).rewrite("and how long does that take?", HISTORY).method == "gemini"


# --- summarizing -------------------------------------------------------------------------------------------------

MESSAGES = [_message("user", "Can I get a refund for SMS top-ups?", 0),
            _message("assistant", "Yes, unused top-ups within 30 days [1]. Ask from Billing.", 1)]  # fmt: skip


def test_the_summarizer_folds_new_messages_into_the_summary(gemini, client):
    gemini.script_reply("Customer on Pro asked about refunding SMS top-ups: allowed within 30 days if unused.")
    summarizer = GeminiSummarizer(client, MODEL, ExtractiveSummarizer())

    summary = summarizer.summarize("Customer is on the Pro plan.", MESSAGES)

    assert summary == "Customer on Pro asked about refunding SMS top-ups: allowed within 30 days if unused."
    text = _calls(gemini, GENERATE_PATH)[0].json["contents"][0]["parts"][0]["text"]
    assert "Previous summary:\nCustomer is on the Pro plan." in text
    assert "Customer: Can I get a refund for SMS top-ups?" in text and "Assistant: Yes, unused top-ups" in text


@pytest.mark.parametrize("status", [429, 503])
def test_the_summarizer_falls_back_to_the_extractive_summary(gemini, client, status):
    gemini.fail_next(1, status=status)
    fallback = ExtractiveSummarizer()

    summary = GeminiSummarizer(client, MODEL, fallback).summarize("Customer is on the Pro plan.", MESSAGES)

    assert summary == fallback.summarize("Customer is on the Pro plan.", MESSAGES)
    assert "Customer asked: Can I get a refund for SMS top-ups?" in summary


def test_the_factory_summarizer_uses_gemini(gemini, settings):
    gemini.script_reply("Short summary.")

    assert create_summarizer(settings).summarize("", MESSAGES) == "Short summary."


# --- the stand-in's function calling, as the adapters rely on it ------------------------------------------------


def test_the_stand_in_delivers_only_declared_function_calls(gemini, client):
    from google.genai import types

    gemini.script_function_call("hand_off_to_human", {"reason": "x"})
    undeclared = client.models.generate_content(model=MODEL, contents="hi")
    assert undeclared.candidates[0].finish_reason == types.FinishReason.UNEXPECTED_TOOL_CALL
    assert undeclared.function_calls is None

    gemini.script_function_call("hand_off_to_human", {"reason": "x"})
    tool = types.Tool(function_declarations=[types.FunctionDeclaration(name="hand_off_to_human")])
    declared = client.models.generate_content(model=MODEL, contents="hi", config=types.GenerateContentConfig(
        tools=[tool], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True)))
    assert [(call.name, call.args) for call in declared.function_calls] == [("hand_off_to_human", {"reason": "x"})]
