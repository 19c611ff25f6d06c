"""Sync source definitions: defaults filled in, and a bad definition refused with a message naming the field."""

from __future__ import annotations

import pytest

from shared.sync.listings import slug
from shared.sync.sources import InvalidSource, validate_source


def test_a_website_gets_its_scope_from_its_start_url():
    source = validate_source("default", "help", "website", "docs", {"url": "https://Help.Example.com/docs/start"})
    assert source.config["hosts"] == ["help.example.com"]
    assert source.config["prefixes"] == ["/docs/"]
    assert (source.config["follow_links"], source.config["max_depth"], source.config["max_pages"]) == (True, 5, 10000)
    assert source.object_prefix == "docs/help/"
    other = validate_source("acme", "help", "website", "docs", {"url": "https://help.acme.example/"})
    assert other.object_prefix == "docs/acme/help/"  # object names are global to the bucket


@pytest.mark.parametrize(("kind", "config", "field"), [
    ("website", {}, "url"),
    ("website", {"url": "ftp://files.example.com/"}, "url"),
    ("website", {"url": "https://x.example/", "max_pages": 0}, "max_pages"),
    ("website", {"url": "https://x.example/", "max_depth": "deep"}, "max_depth"),
    ("website", {"url": "https://x.example/", "prefixes": ["docs/"]}, "prefixes"),
    ("website", {"url": "https://x.example/", "selector": "main >>> p"}, "selector"),
    ("website", {"url": "https://x.example/", "headers_secret": "lower-case"}, "headers_secret"),
    ("website", {"url": "https://x.example/", "follow_links": "maybe"}, "follow_links"),
    ("website", {"url": "https://x.example/", "bucket": "b"}, "bucket"),  # not a website setting
    ("feed", {"url": "https://x.example/f.json", "format": "xml"}, "format"),
    ("feed", {"url": "https://x.example/f.json", "template": "{{#items}} no end"}, "template"),
    ("feed", {"url": "https://x.example/f.json", "id_field": ""}, "id_field"),
    ("s3", {"bucket": "Not_A_Bucket"}, "bucket"),
    ("s3", {"bucket": "docs-bucket", "region": "mars"}, "region"),
    ("s3", {"bucket": "docs-bucket", "prefix": "/abs"}, "prefix"),
    ("nope", {}, "kind"),
])
def test_a_bad_definition_is_refused_naming_the_field(kind, config, field):
    with pytest.raises(InvalidSource) as error:
        validate_source("default", "docs", kind, "docs", config)
    assert f"field '{field}'" in str(error.value)
    assert error.value.status == 400


@pytest.mark.parametrize(("name", "topic", "field"), [("Docs", "docs", "name"), ("docs", "Docs/x", "topic"),
                                                      ("-docs", "docs", "name"), ("docs", "", "topic")])
def test_names_and_topics_are_folder_safe(name, topic, field):
    with pytest.raises(InvalidSource, match=f"field '{field}'"):
        validate_source("default", name, "website", topic, {"url": "https://x.example/"})


def test_a_feed_defaults_its_format_from_the_url():
    def fmt(url):
        return validate_source("default", "faq", "feed", "faq", {"url": url}).config["format"]

    assert (fmt("https://x.example/faq.csv"), fmt("https://x.example/api/faq")) == ("csv", "json")


def test_a_secret_is_read_from_the_environment_and_never_stored(monkeypatch):
    source = validate_source("default", "docs", "website", "docs", {"url": "https://x.example/",
                                                                    "headers_secret": "DOCS_AUTH"})
    with pytest.raises(InvalidSource, match="DOCS_AUTH, which is not set"):
        source.secret_json("headers_secret")
    monkeypatch.setenv("DOCS_AUTH", '{"Authorization": "Bearer s3cret"}')
    assert source.secret_json("headers_secret") == {"Authorization": "Bearer s3cret"}
    assert "s3cret" not in str(source.config)
    monkeypatch.setenv("DOCS_AUTH", '["not", "an", "object"]')
    with pytest.raises(InvalidSource, match="JSON object of strings"):
        source.secret_json("headers_secret")


def test_item_ids_and_keys_become_deterministic_object_paths():
    assert slug("sms-credits") == "sms-credits"
    assert slug("Extra Calendar") == slug("Extra Calendar") != "extra-calendar"  # changed: hash-suffixed
    assert slug("Extra Calendar").startswith("extra-calendar-")
    assert slug("billing/Refunds Policy.MD", keep_extension=True).endswith(".md")
    assert ".." not in slug("../../etc/passwd") and not slug("../../etc/passwd").startswith("/")
