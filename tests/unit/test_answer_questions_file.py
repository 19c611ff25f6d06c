"""The held-out question file of the honest-answers benchmark (infra/answers/sample-kb.jsonl) is well formed.

The file is written by hand from the sample knowledge base, so these checks catch what hand-editing breaks: a missing
key, a kind below its minimum, a duplicate, and above all a `must` string that is not really in the articles (a
paraphrase, or a fact that was edited since) — such a question could never be answered correctly.
"""

import csv
import importlib.util
import io
import json
import re
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_KB = ROOT / "infra" / "sample_kb"
QUESTIONS = ROOT / "infra" / "answers" / "sample-kb.jsonl"

MINIMUMS = {"answerable": 65, "near_miss": 45, "out_of_scope": 7, "chitchat": 7, "manipulation": 7}
MIN_UNANSWERABLE = 65
MIN_QUESTIONS_PER_DOCUMENT = 2


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


class _HtmlText(HTMLParser):
    """Visible text of an HTML page, entities decoded (&rarr; becomes →), scripts and styles left out."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag, attrs):
        self._skipping += tag in ("script", "style")

    def handle_endtag(self, tag):
        self._skipping -= tag in ("script", "style")

    def handle_data(self, data):
        if not self._skipping:
            self.parts.append(data)


def _html_text(raw: str) -> str:
    parser = _HtmlText()
    parser.feed(raw)
    return " ".join(parser.parts)


def _json_strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [text for item in value for text in _json_strings(item)]
    return []


def _markdown_text(raw: str) -> str:
    """Emphasis and code markers removed: a quoted answer says "expire after 60 minutes", not "**60 minutes**"."""
    return re.sub(r"[*`]", "", raw)


TEXT_READERS = {
    ".md": _markdown_text,
    ".txt": lambda raw: raw,
    ".html": _html_text,
    ".csv": lambda raw: "\n".join(cell for row in csv.reader(io.StringIO(raw)) for cell in row),
    ".json": lambda raw: "\n".join(_json_strings(json.loads(raw))),
}


def _binary_article_texts() -> dict[str, str]:
    """The PDF and DOCX articles by their content variable in build_binaries.py, which holds their exact text."""
    spec = importlib.util.spec_from_file_location("sample_kb_build_binaries", SAMPLE_KB / "build_binaries.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    articles = {}
    for name, value in vars(module).items():
        if name.isupper() and isinstance(value, list) and value and value[0][0] == "title":
            articles[name] = "\n".join(_json_strings([payload for _, payload in value]))
    return articles


def _documents() -> dict[str, str]:
    documents = {}
    for path in sorted(SAMPLE_KB.rglob("*")):
        reader = TEXT_READERS.get(path.suffix)
        if reader and path.name != "README.md":
            documents[str(path.relative_to(SAMPLE_KB))] = normalise(reader(path.read_text(encoding="utf-8")))
    documents.update({name: normalise(text) for name, text in _binary_article_texts().items()})
    return documents


DOCUMENTS = _documents()


def _load() -> list[dict]:
    lines = [line for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


ENTRIES = _load()
ANSWERABLE = [entry for entry in ENTRIES if entry.get("answerable") is True]


def test_every_binary_article_has_its_text_in_the_build_script():
    binaries = [p for p in SAMPLE_KB.rglob("*") if p.suffix in (".pdf", ".docx")]
    assert len(_binary_article_texts()) == len(binaries) > 0


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda entry: entry.get("q", "?")[:60])
def test_entry_has_the_keys_and_types_of_its_kind(entry):
    assert isinstance(entry.get("q"), str) and entry["q"].strip()
    assert len(entry["q"]) <= 200
    assert entry["q"].isascii(), "questions are plain English, as typed in a chat widget"
    if entry["answerable"] is True:
        assert set(entry) == {"q", "answerable", "must", "kind"}
        assert entry["kind"] == "answerable"
        must = entry["must"]
        assert isinstance(must, list) and 1 <= len(must) <= 3
        assert all(isinstance(text, str) and text.strip() for text in must)
    else:
        assert entry["answerable"] is False
        assert set(entry) == {"q", "answerable", "kind"}
        assert entry["kind"] in ("near_miss", "out_of_scope", "chitchat", "manipulation")


def test_counts_per_kind_meet_the_minimums():
    counts = Counter(entry["kind"] for entry in ENTRIES)
    for kind, minimum in MINIMUMS.items():
        assert counts[kind] >= minimum, f"{kind}: {counts[kind]} < {minimum}"
    assert sum(1 for entry in ENTRIES if entry["answerable"] is False) >= MIN_UNANSWERABLE


def test_no_duplicate_questions():
    counts = Counter(normalise(entry["q"]) for entry in ENTRIES)
    assert [q for q, n in counts.items() if n > 1] == []


@pytest.mark.parametrize("entry", ANSWERABLE, ids=lambda entry: entry["q"][:60])
def test_must_strings_are_quoted_from_the_articles_not_from_the_question(entry):
    for text in entry["must"]:
        wanted = normalise(text)
        assert any(wanted in document for document in DOCUMENTS.values()), f"not in any article: {text!r}"
        assert wanted not in normalise(entry["q"]), f"the question gives the answer away: {text!r}"


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_every_article_can_answer_some_questions(name):
    """Counts questions whose every `must` string is in this article: a lower bound on the questions it answers."""
    document = DOCUMENTS[name]
    answered = [e for e in ANSWERABLE if all(normalise(text) in document for text in e["must"])]
    assert len(answered) >= MIN_QUESTIONS_PER_DOCUMENT
