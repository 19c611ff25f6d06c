"""Feeds for the sync: JSON and CSV items with stable ids, errors that stop a listing we cannot key, and the
Markdown each item is rendered to."""

from __future__ import annotations

import json

import pytest

from shared.sync.feeds import DEFAULT_TEMPLATE, FeedError, FeedItem, parse_feed, render_item, validate_template

PRODUCTS = [
    {"id": 101, "name": "Travel mug", "price": 12.5, "tags": ["steel", "350 ml"], "size": {"h": 15, "d": 8},
     "in_stock": True, "note": None},
    {"id": " 102 ", "name": "Teapot", "price": 30, "tags": [], "in_stock": False},
]


def as_json(data) -> bytes:
    return json.dumps(data).encode()


# ---------------------------------------------------------------------------------------------------------------
# JSON


def test_a_top_level_json_list():
    items = parse_feed(as_json(PRODUCTS), format="json")
    assert [item.id for item in items] == ["101", "102"]  # str()-ed and stripped
    assert items[0].fields == PRODUCTS[0]
    assert list(items[0].fields) == ["id", "name", "price", "tags", "size", "in_stock", "note"]


def test_a_list_at_a_nested_items_path_and_another_id_field():
    body = as_json({"meta": {"count": 2}, "data": {"products": [{"sku": "A-1", "name": "A"},
                                                                {"sku": "B-2", "name": "B"}]}})
    items = parse_feed(body, format="JSON", items_path="data.products", id_field="sku")
    assert [(item.id, item.fields["name"]) for item in items] == [("A-1", "A"), ("B-2", "B")]


def test_items_path_steps_into_a_list_by_index():
    body = as_json({"pages": [{"faqs": [{"id": "q1", "question": "Why?"}]}]})
    assert parse_feed(body, format="json", items_path="pages.0.faqs")[0].id == "q1"


@pytest.mark.parametrize("body, kwargs, message", [
    (as_json({"data": {"items": []}}), {"items_path": "data.products"},
     "items_path 'data.products' not found: no 'products' in data"),
    (as_json({"data": {"products": {"id": 1}}}), {"items_path": "data.products"},
     "items_path 'data.products' is an object, not a list"),
    (as_json({"products": [], "total": 0}), {}, "set items_path to its list (keys: products, total)"),
    (as_json([{"id": 1}, "two"]), {}, "item 1 is a string, not an object"),
    (b'[{"id": 1},', {}, "not valid JSON"),
    (b"\xff\xfe[]", {}, "not UTF-8"),
])
def test_json_problems_name_what_is_wrong(body, kwargs, message):
    with pytest.raises(FeedError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_feed(body, format="json", **kwargs)


@pytest.mark.parametrize("items, message", [
    ([{"id": 1}, {"name": "no id"}], "item 1 has no 'id'"),
    ([{"id": 1}, {"id": "  "}], "item 1 has no 'id'"),
    ([{"id": 1}, {"id": None}], "item 1 has no 'id'"),
    ([{"id": 1}, {"id": 2}, {"id": "1"}], "item 2 repeats id '1' of item 0"),
    ([{"id": {"nested": 1}}], "item 0: its 'id' is an object"),
])
def test_items_without_a_usable_id_stop_the_feed(items, message):
    with pytest.raises(FeedError, match=message):
        parse_feed(as_json(items), format="json")


def test_more_items_than_allowed_stop_the_feed():
    body = as_json([{"id": n} for n in range(11)])
    assert len(parse_feed(body, format="json", max_items=11)) == 11
    with pytest.raises(FeedError, match="more than max_items"):
        parse_feed(body, format="json", max_items=10)
    csv_body = ("id\n" + "".join(f"{n}\n" for n in range(11))).encode()
    with pytest.raises(FeedError, match="more than max_items"):
        parse_feed(csv_body, format="csv", max_items=10)


def test_feed_error_is_a_value_error_and_unknown_formats_are_refused():
    assert issubclass(FeedError, ValueError)
    with pytest.raises(FeedError, match="unknown feed format 'xml'"):
        parse_feed(b"<x/>", format="xml")


# ---------------------------------------------------------------------------------------------------------------
# CSV


def test_csv_with_semicolons_a_bom_and_quoted_fields():
    body = "\ufeffsku;name;description;price\r\nA-1;Café au lait;\"Hot; milky\nand sweet\";3,50\r\n\r\nB-2;Tea;;2\r\n"
    items = parse_feed(body.encode("utf-8"), format="csv", id_field="sku")
    assert [item.id for item in items] == ["A-1", "B-2"]
    assert items[0].fields == {"sku": "A-1", "name": "Café au lait", "description": "Hot; milky\nand sweet",
                               "price": "3,50"}
    assert items[1].fields["description"] == ""


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_the_csv_delimiter_is_sniffed(delimiter):
    body = delimiter.join(["id", "name", "price"]) + "\n" + delimiter.join(["7", "Seven", "7.00"]) + "\n"
    assert parse_feed(body.encode(), format="csv")[0].fields == {"id": "7", "name": "Seven", "price": "7.00"}


def test_a_csv_export_in_windows_1252():
    body = "id,name\n1,Crème brûlée\n".encode("cp1252")
    assert parse_feed(body, format="csv")[0].fields["name"] == "Crème brûlée"


@pytest.mark.parametrize("body, message", [
    (b"id,name\n1,a\n,b\n", r"item 1 \(line 3\) has no 'id'"),
    (b"id,name\n1,a\n2,b\n1,c\n", r"item 2 \(line 4\) repeats id '1' of item 0 \(line 2\)"),
    (b"name\nno ids here\n", r"item 0 \(line 2\) has no 'id'"),
    (b"id,name,id\n1,a,2\n", "names column 'id' twice"),
    (b"", "no header row"),
])
def test_csv_problems_name_the_row(body, message):
    with pytest.raises(FeedError, match=message):
        parse_feed(body, format="csv")


# ---------------------------------------------------------------------------------------------------------------
# Templates


def item(**fields) -> FeedItem:
    return FeedItem(id=str(fields.get("id", "x")), fields=fields)


def test_the_default_template_lists_every_other_field_in_order():
    title, markdown = render_item(parse_feed(as_json(PRODUCTS), format="json")[0], None)
    assert title == "Travel mug"
    assert markdown == ("# Travel mug\n\n- **Id**: 101\n- **Price**: 12.5\n- **Tags**: steel, 350 ml\n"
                        "- **Size**: h: 15, d: 8\n- **In stock**: yes")  # the empty note is left out
    assert render_item(item(id="7", title="Titled", body="b"), DEFAULT_TEMPLATE) == (
        "Titled", "# Titled\n\n- **Id**: 7\n- **Body**: b")


@pytest.mark.parametrize("fields, title_field, expected", [
    ({"id": "1", "label": "L", "name": "N", "title": "T"}, "label", "L"),
    ({"id": "1", "label": "", "name": "N", "title": "T"}, "label", "N"),
    ({"id": "1", "title": "T"}, "name", "T"),
    ({"id": "1", "other": "O"}, "name", "1"),
])
def test_the_title_rule(fields, title_field, expected):
    title, markdown = render_item(item(**fields), None, title_field=title_field)
    assert title == expected
    assert markdown.startswith(f"# {expected}\n")


def test_substitution_of_fields_paths_lists_dicts_and_missing_values():
    template = "# {{ name }}\n\n{{price}} EUR, {{size.h}} cm, tags {{tags}}, size {{size}}, [{{missing}}]" \
               " [{{note}}] [{{size.nope}}] {{in_stock}}"
    _, markdown = render_item(parse_feed(as_json(PRODUCTS), format="json")[0], template)
    assert markdown == "# Travel mug\n\n12.5 EUR, 15 cm, tags steel, 350 ml, size h: 15, d: 8, [] [] [] yes"


def test_sections_render_for_truthy_values_once_per_list_element():
    template = """# {{name}}
{{#tags}}
- {{.}}
{{/tags}}
{{#size}}Height {{h}} of {{name}}.{{/size}}
{{^tags}}
No tags.
{{/tags}}
{{#in_stock}}In stock.{{/in_stock}}{{^in_stock}}Sold out.{{/in_stock}}
"""
    items = parse_feed(as_json(PRODUCTS), format="json")
    assert render_item(items[0], template)[1] == "# Travel mug\n- steel\n- 350 ml\nHeight 15 of Travel mug.\nIn stock."
    assert render_item(items[1], template)[1] == "# Teapot\n\nNo tags.\nSold out."


def test_a_section_over_a_list_of_objects_sees_each_objects_keys():
    faq = item(id="f", name="Shipping", answers=[{"q": "How long?", "a": "3 days"}, {"q": "Where?", "a": "EU"}])
    template = "# {{name}}\n\n{{#answers}}\n## {{q}}\n\n{{a}}\n\n{{/answers}}"
    assert render_item(faq, template)[1] == "# Shipping\n\n## How long?\n\n3 days\n\n## Where?\n\nEU"


def test_values_are_text_never_template():
    sneaky = item(id="1", name="{{secret}}", secret="s3cr3t", body="{{#x}}{{/y}} and {{id}}")
    title, markdown = render_item(sneaky, "# {{name}}\n\n{{body}}")
    assert title == "{{secret}}"
    assert markdown == "# {{secret}}\n\n{{#x}}{{/y}} and {{id}}"
    assert "s3cr3t" not in markdown


def test_builtins_win_over_fields_with_their_names_and_title_falls_back():
    odd = item(id="9", name="Nine", _title="field value", sku="S9")
    assert render_item(odd, "{{_title}} / {{title}} / {{_id}} / {{id}}")[1] == "Nine / Nine / 9 / 9"
    own_title = item(id="9", name="Nine", title="Own title")
    assert render_item(own_title, "{{title}} / {{_title}}")[1] == "Own title / Nine"


@pytest.mark.parametrize("template, message", [
    ("{{#tags}}\n- {{.}}\n", "line 1: section 'tags' is never closed"),
    ("a\n{{/tags}}", "line 2: {{/tags}} closes a section that was never opened"),
    ("{{#a}}\n{{#b}}\n{{/a}}\n{{/b}}", "line 3: {{/a}} closes section 'b' opened at line 2"),
    ("{{}}", "names no field"),
    ("{{#}}x{{/}}", "names no field"),
    ("{{ {x} }}", "bad tag"),
    ("text {{name", "never closed"),
    ("{{> partial}}", "not supported"),
])
def test_validate_template_names_the_problem(template, message):
    with pytest.raises(FeedError, match=message.replace("{", r"\{").replace("}", r"\}").replace(".", r"\.")):
        validate_template(template)
    with pytest.raises(FeedError):
        render_item(item(id="1"), template)


def test_valid_templates_pass_validation():
    validate_template(DEFAULT_TEMPLATE)
    validate_template("{{#a}}{{#b}}{{.}}{{/b}}{{/a}} {{x.y}} }} plain { braces }")
