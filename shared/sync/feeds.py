"""JSON and CSV feeds (a shop's product catalogue, an FAQ export): items with stable ids, rendered to Markdown.

A feed we cannot key must not delete anything: every problem that makes the listing untrustworthy (bad JSON, a
missing items list, an item without id, a repeated id, too many items) raises FeedError, which the caller treats
as an incomplete listing.

Templates are a small Mustache subset, parsed once per template text and cached:
- `{{ field }}`, `{{field.sub}}`: a value as text (lists joined with ", ", dicts as "k: v" pairs, None or missing
  as ""); values are never parsed again, so a value containing "{{x}}" stays literal.
- `{{#field}}...{{/field}}`: rendered when the value is truthy; once per element for a list, with `{{.}}` the
  element (and an element's own keys visible inside); `{{^field}}...{{/field}}`: rendered when it is falsy.
- Built-ins, whatever the item holds: `{{_title}}` (the item's title), `{{_id}}`, and `{{#_fields}}` over every
  non-empty field but the title one, each with `{{_key}}` (humanised) and `{{_value}}`. `{{title}}` and `{{id}}`
  fall back to `_title` and `_id` when the item has no such field.
A section tag alone on its line takes its line with it, so list templates do not leave blank lines.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import logging
import re
from dataclasses import dataclass

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_TEMPLATE", "FeedError", "FeedItem", "parse_feed", "render_item", "validate_template"]

DEFAULT_TEMPLATE = "# {{_title}}\n\n{{#_fields}}\n- **{{_key}}**: {{_value}}\n{{/_fields}}\n"

_CSV_DELIMITERS = (",", ";", "\t")


class FeedError(ValueError):
    """A feed or template we cannot use as it is; the message names what is wrong and where."""


@dataclass
class FeedItem:
    """One item of a feed: its id (a stripped string, unique in the feed) and its fields in the feed's order."""

    id: str
    fields: dict[str, object]


# ---------------------------------------------------------------------------------------------------------------
# Parsing


def parse_feed(body: bytes, *, format: str, items_path: str = "", id_field: str = "id",
               max_items: int = 50_000) -> list[FeedItem]:
    """The items of a JSON or CSV feed, or FeedError.

    JSON: the top-level list, or the list at the dotted `items_path` of an object; every item an object. CSV: a
    header row, then one item per row (UTF-8 with or without BOM, else windows-1252 as spreadsheets save it; the
    delimiter is whichever of , ; tab splits the header into the most columns). Each item needs a non-empty,
    unique `id_field`.
    """
    kind = format.strip().lower()
    if kind == "json":
        records = _json_records(body, items_path, max_items)
    elif kind == "csv":
        records = _csv_records(body, max_items)
    else:
        raise FeedError(f"unknown feed format {format!r} (expected 'json' or 'csv')")
    return _keyed_items(records, id_field)


def _json_records(body: bytes, items_path: str, max_items: int) -> list[tuple[str, dict]]:
    try:
        data = json.loads(_decode_utf8(body, "JSON"))
    except json.JSONDecodeError as exc:
        raise FeedError(f"the feed is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    items = _at_path(data, items_path)
    if not isinstance(items, list):
        if not items_path and isinstance(data, dict):
            keys = ", ".join(list(map(str, data))[:10])
            raise FeedError(f"the feed is a JSON object, not a list: set items_path to its list (keys: {keys})")
        raise FeedError(f"items_path {items_path!r} is {_kind(items)}, not a list")
    if len(items) > max_items:
        raise FeedError(f"the feed has {len(items)} items, more than max_items ({max_items})")
    records = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise FeedError(f"item {index} is {_kind(item)}, not an object")
        records.append((f"item {index}", item))
    return records


def _at_path(data: object, items_path: str) -> object:
    """The value at a dotted path of objects (a number steps into a list); FeedError naming the missing step."""
    if not items_path.strip():
        return data
    value = data
    walked: list[str] = []
    for step in items_path.strip().split("."):
        if isinstance(value, dict) and step in value:
            value = value[step]
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            where = ".".join(walked) or "the top level"
            raise FeedError(f"items_path {items_path!r} not found: no {step!r} in {where} ({_kind(value)})")
        walked.append(step)
    return value


def _csv_records(body: bytes, max_items: int) -> list[tuple[str, dict]]:
    text = _decode_csv(body)
    first_line = text.split("\n", 1)[0]
    delimiter = max(_CSV_DELIMITERS, key=lambda d: len(next(csv.reader([first_line], delimiter=d), [])))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, None)
    if not header or not any(name.strip() for name in header):
        raise FeedError("the CSV feed has no header row")
    names = [name.strip() for name in header]
    seen: set[str] = set()
    for name in names:
        if name and name in seen:
            raise FeedError(f"the CSV header names column {name!r} twice")
        seen.add(name)
    records = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue  # blank lines between rows carry no item
        if len(records) >= max_items:
            raise FeedError(f"the feed has more than max_items ({max_items}) rows")
        fields = {name: (row[i].strip() if i < len(row) else "") for i, name in enumerate(names) if name}
        records.append((f"item {len(records)} (line {reader.line_num})", fields))
    return records


def _decode_utf8(body: bytes, what: str) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FeedError(f"the {what} feed is not UTF-8 (byte {exc.start}: {exc.reason})") from exc


def _decode_csv(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Spreadsheets on Windows save "CSV" in windows-1252; its five undefined bytes would end up replaced.
        logger.debug("CSV feed is not UTF-8; decoding it as windows-1252")
        return body.decode("cp1252", "replace")


def _keyed_items(records: list[tuple[str, dict]], id_field: str) -> list[FeedItem]:
    items: list[FeedItem] = []
    first_seen: dict[str, str] = {}
    for where, fields in records:
        raw = fields[id_field] if id_field in fields else _dotted(fields, id_field)
        if isinstance(raw, (dict, list)):
            raise FeedError(f"{where}: its {id_field!r} is {_kind(raw)}, not an id")
        item_id = "" if raw is None else str(raw).strip()
        if not item_id:
            raise FeedError(f"{where} has no {id_field!r} (an item without id cannot be kept in sync)")
        if item_id in first_seen:
            raise FeedError(f"{where} repeats id {item_id!r} of {first_seen[item_id]}")
        first_seen[item_id] = where
        items.append(FeedItem(id=item_id, fields=fields))
    return items


def _dotted(fields: dict, path: str) -> object:
    value: object = fields
    for step in path.split("."):
        if not isinstance(value, dict) or step not in value:
            return None
        value = value[step]
    return value


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


# ---------------------------------------------------------------------------------------------------------------
# Templates

_TAG = re.compile(r"\{\{(.*?)\}\}", re.S)


@dataclass
class _Section:
    name: str
    inverted: bool
    children: list


def validate_template(template: str) -> None:
    """Raise FeedError naming the problem (an unclosed section, a stray close, a bad tag) with its line."""
    _compile(template)


def render_item(item: FeedItem, template: str | None, title_field: str = "name") -> tuple[str, str]:
    """(title, Markdown) of one item: `template`, or DEFAULT_TEMPLATE (a "# title" heading, then one
    "- **Key**: value" line per other non-empty field in the item's order).

    The title is the item's `title_field`, else its "name" or "title", else its id.
    """
    title_key, title = _item_title(item, title_field)
    listed = [{"_key": _humanise(key), "_value": _as_text(value)}
              for key, value in item.fields.items() if key != title_key and _as_text(value)]
    # Looked up from the last: the built-ins first (whatever the item holds), then the item's fields, then the
    # fallbacks for a template that says {{title}} of an item without a "title".
    stack = [{"title": title, "id": item.id}, item.fields, {"_title": title, "_id": item.id, "_fields": listed}]
    parts: list[str] = []
    _render(_compile(template if template is not None else DEFAULT_TEMPLATE), stack, parts)
    return title, _tidy("".join(parts))


def _item_title(item: FeedItem, title_field: str) -> tuple[str | None, str]:
    for key in (title_field, "name", "title"):
        text = " ".join(_as_text(item.fields.get(key)).split())
        if text:
            return key, text
    return None, item.id


def _humanise(key: str) -> str:
    """A field name as a label: "in_stock" -> "In stock"; names with capitals are kept as they are."""
    label = " ".join(re.split(r"[_\s]+", key)).strip() or key
    return label[:1].upper() + label[1:] if label.islower() else label


def _as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(text for text in map(_as_text, value) if text)
    if isinstance(value, dict):
        return ", ".join(f"{key}: {_as_text(inner)}" for key, inner in value.items() if _as_text(inner))
    return str(value)


@functools.lru_cache(maxsize=64)
def _compile(template: str) -> list:
    """The template as a tree of text, ("var", name) and _Section nodes; FeedError when it is malformed."""
    if not isinstance(template, str):
        raise FeedError(f"the template must be text, not {_kind(template)}")
    tokens = _tokens(template)
    root: list = []
    stack: list[tuple[_Section, int]] = []
    children = root
    for token in tokens:
        if isinstance(token, str):
            children.append(token)
            continue
        kind, name, line = token
        if kind == "var":
            children.append(("var", name))
        elif kind in ("#", "^"):
            section = _Section(name, kind == "^", [])
            children.append(section)
            stack.append((section, line))
            children = section.children
        else:  # "/"
            if not stack:
                raise FeedError(f"template line {line}: {{{{/{name}}}}} closes a section that was never opened")
            section, opened = stack.pop()
            if section.name != name:
                raise FeedError(f"template line {line}: {{{{/{name}}}}} closes section {section.name!r} "
                                f"opened at line {opened}")
            children = stack[-1][0].children if stack else root
    if stack:
        section, opened = stack[-1]
        raise FeedError(f"template line {opened}: section {section.name!r} is never closed")
    return root


def _tokens(template: str) -> list:
    """Text pieces and (kind, name, line) tags, section tags alone on their line taking that line with them."""
    tokens: list = []
    position = 0
    for match in _TAG.finditer(template):
        line = template.count("\n", 0, match.start()) + 1
        inside = match.group(1).strip()
        if "{{" in inside or "{" in inside or "}" in inside:
            raise FeedError(f"template line {line}: bad tag {match.group(0)!r}")
        kind = inside[:1] if inside[:1] in ("#", "^", "/") else "var"
        name = inside[1:].strip() if kind != "var" else inside
        if not name or (kind != "var" and name == "."):
            raise FeedError(f"template line {line}: tag {match.group(0)!r} names no field")
        if kind == "var" and name[:1] in ("!", ">", "&", "="):
            raise FeedError(f"template line {line}: {match.group(0)!r} is not supported (only fields and sections)")
        tokens.append(template[position:match.start()])
        tokens.append((kind, name, line))
        position = match.end()
    rest = template[position:]
    if "{{" in rest:
        line = template.count("\n", 0, position + rest.index("{{")) + 1
        raise FeedError(f"template line {line}: '{{{{' is never closed with '}}}}'")
    tokens.append(rest)
    _drop_standalone_lines(tokens)
    return [token for token in tokens if token != ""]


def _drop_standalone_lines(tokens: list) -> None:
    """Mustache's standalone rule: a section tag with only spaces around it on its line removes that line.

    Tokens alternate text, tag, text...; decisions are taken on the original texts, then applied as cuts (a text
    between two standalone tags loses both its start and its end).
    """
    keep_from = [0] * len(tokens)
    keep_to = [len(token) if isinstance(token, str) else 0 for token in tokens]
    for index in range(1, len(tokens) - 1, 2):
        if tokens[index][0] == "var":
            continue
        before, after = tokens[index - 1], tokens[index + 1]
        line_start = before.rfind("\n") + 1
        if line_start == 0 and index != 1:
            continue  # the text before does not reach back to a line start
        line_end = after.find("\n")
        if line_end == -1 and index + 1 != len(tokens) - 1:
            continue  # nor the text after to a line end
        tail_length = line_end + 1 if line_end != -1 else len(after)
        if before[line_start:].strip(" \t") or after[:tail_length].strip(" \t\r\n"):
            continue
        keep_to[index - 1] = min(keep_to[index - 1], line_start)
        keep_from[index + 1] = max(keep_from[index + 1], tail_length)
    for index in range(0, len(tokens), 2):
        tokens[index] = tokens[index][keep_from[index]:keep_to[index]] if keep_from[index] < keep_to[index] else ""


def _lookup(stack: list, name: str) -> object:
    if name == ".":
        return stack[-1]
    for context in reversed(stack):
        if isinstance(context, dict):
            if name in context:  # a key may itself contain dots ("product.id" as a CSV header)
                return context[name]
            head, _, rest = name.partition(".")
            if rest and head in context:
                value = context[head]
                for step in rest.split("."):
                    if not isinstance(value, dict) or step not in value:
                        return None
                    value = value[step]
                return value
    return None


def _render(nodes: list, stack: list, parts: list[str]) -> None:
    for node in nodes:
        if isinstance(node, str):
            parts.append(node)
        elif isinstance(node, tuple):
            parts.append(_as_text(_lookup(stack, node[1])))
        else:
            value = _lookup(stack, node.name)
            if node.inverted:
                if not value:
                    _render(node.children, stack, parts)
            elif isinstance(value, list):
                for element in value:
                    _render(node.children, [*stack, element], parts)
            elif value:
                _render(node.children, [*stack, value], parts)


_BLANK_RUNS = re.compile(r"\n{3,}")
_TRAILING_SPACE = re.compile(r"[ \t]+$", re.M)


def _tidy(markdown: str) -> str:
    return _BLANK_RUNS.sub("\n\n", _TRAILING_SPACE.sub("", markdown)).strip()
