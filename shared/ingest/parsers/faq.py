"""FAQ sheets: CSV or JSON of question/answer pairs (optional category), one `faq` block per pair."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable

from shared.errors import CorruptFile, UnsupportedFile
from shared.ingest.parsers.common import _collapse, _collapse_lines, _normalise_newlines, decode_text
from shared.ingest.parsers.limits import MAX_JSON_DEPTH, Budget, ParseLimits
from shared.models import Block, ParsedDocument

_QUESTION_FIELDS = ("question", "q", "title", "query")
_ANSWER_FIELDS = ("answer", "a", "response", "reply")
_CATEGORY_FIELDS = ("category", "topic", "section")
_JSON_LIST_KEYS = ("faqs", "questions", "items")


def parse_csv(data: bytes, filename: str, limits: ParseLimits = ParseLimits()) -> ParsedDocument:
    text = decode_text(data)
    if len(text) > limits.max_chars:
        raise limits.too_many_chars("the CSV file", len(text))
    header = text.split("\n", 1)[0]
    # The header row names the columns and rarely contains a delimiter by accident: count there.
    delimiter = max((",", ";", "\t"), key=header.count) if header else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    budget = Budget(limits, "the CSV file", kind="rows")
    rows = []
    try:
        for row in reader:  # counted as read: a row may span lines, so lines would overcount
            budget.add_elements()
            rows.append(row)
    except csv.Error as exc:
        raise CorruptFile(f"the CSV could not be read ({exc})") from exc
    return _faq_document(rows, list(reader.fieldnames or []), title="")


def parse_json(data: bytes, filename: str, limits: ParseLimits = ParseLimits()) -> ParsedDocument:
    text = decode_text(data)
    if len(text) > limits.max_chars:
        raise limits.too_many_chars("the JSON file", len(text))
    # Objects and numbers are counted as the decoder makes them (strings, bounded by the characters, are not).
    budget = Budget(limits, "the JSON file", kind="values")

    def counted(make):
        def hook(value):
            budget.add_elements()
            return make(value)
        return hook

    try:
        payload = json.loads(text, object_pairs_hook=counted(dict), parse_int=counted(int),
                             parse_float=counted(float))
    except json.JSONDecodeError as exc:
        raise CorruptFile(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    if _depth(payload) > MAX_JSON_DEPTH:
        raise UnsupportedFile(f"JSON is not an FAQ sheet: it is nested more than {MAX_JSON_DEPTH} levels deep "
                              "(an FAQ sheet needs three)")
    title = ""
    items = payload
    if isinstance(payload, dict):
        keys = {str(key).lower(): key for key in payload}
        if "title" in keys and isinstance(payload[keys["title"]], str):
            title = payload[keys["title"]]
        list_key = next((keys[k] for k in _JSON_LIST_KEYS if k in keys), None)
        if list_key is None:
            raise UnsupportedFile("JSON is not an FAQ sheet: expected a list of question/answer objects or "
                                  f"{{\"faqs\": [...]}}; found keys: {_names(payload)}")
        items = payload[list_key]
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise UnsupportedFile("JSON is not an FAQ sheet: expected a list of objects with question and answer fields")
    columns = list(dict.fromkeys(str(key) for item in items for key in item))
    return _faq_document(items, columns, title=_collapse(title))


def _faq_document(rows: list[dict], columns: list[str], title: str) -> ParsedDocument:
    """One faq block per question/answer pair, with a level-2 heading whenever the category changes."""
    names = {_field_key(name) for name in columns if name is not None}
    if names.isdisjoint(_QUESTION_FIELDS) or names.isdisjoint(_ANSWER_FIELDS):
        raise UnsupportedFile("not an FAQ sheet: need a question column (question, q, title or query) and an answer "
                              f"column (answer, a, response or reply); found: {_names(columns) or 'no columns'}")
    blocks: list[Block] = []
    current_category = None
    for row in rows:
        # Looked up per row: JSON objects in one file may spell their keys differently.
        fields = {_field_key(key): value for key, value in row.items() if key is not None}
        question = _faq_cell(_first_field(fields, _QUESTION_FIELDS))
        answer = _faq_cell(_first_field(fields, _ANSWER_FIELDS), keep_lines=True)
        if not question or not answer:
            continue
        category = _faq_cell(_first_field(fields, _CATEGORY_FIELDS))
        if category and category != current_category:
            blocks.append(Block("heading", category, level=2))
        current_category = category or current_category
        blocks.append(Block("faq", answer, info=question))
    return ParsedDocument(title=title, blocks=blocks)


def _depth(value) -> int:
    """How deeply containers nest in a decoded JSON value, without recursion (stops counting past the limit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, (dict, list)):
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            break
        stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _first_field(fields: dict, aliases: tuple[str, ...]):
    return next((fields[alias] for alias in aliases if fields.get(alias) not in (None, "")), None)


def _field_key(name: str) -> str:
    return str(name).strip().lstrip("\ufeff").strip().lower()


def _faq_cell(value, keep_lines: bool = False) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    text = _normalise_newlines(str(value))
    return _collapse_lines(text) if keep_lines else _collapse(text)


def _names(columns: Iterable) -> str:
    names = [repr(str(c)) for c in columns if c is not None and str(c).strip()]
    return ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
