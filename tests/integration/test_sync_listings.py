"""The feed and S3 sources through the real stack: a JSON/CSV feed served on loopback, an S3 bucket on moto's server
(real S3 wire format for boto3), the storage emulator into ingest, PostgreSQL. Also: the operator's source
commands (python -m infra.sync sources ...) against the same database."""

from __future__ import annotations

import json

import pytest

from infra import sync as sync_cli
from tests.integration.test_sync_website import Sync, counts

ADDONS = [
    {"id": "sms-credits", "name": "SMS credits", "price_eur_month": 9, "description": "500 SMS reminders a month."},
    {"id": "extra-calendar", "name": "Extra calendar", "price_eur_month": 4, "description": "Sync one more calendar."},
    {"id": "custom-domain", "name": "Custom domain", "price_eur_month": 6, "description": "Booking pages on your "
     "own domain, with HTTPS."},
    {"id": "white-label", "name": "White label", "price_eur_month": 19, "description": "Remove the Brightwave "
     "branding from pages and emails."},
]


@pytest.fixture
def sync(make_stack, site):
    return Sync(make_stack(SYNC_ALLOWED_PRIVATE_HOSTS="127.0.0.1"), site)


def serve_feed(site, items) -> None:
    site.put("/feeds/addons.json", json.dumps({"addons": items}), "application/json")


def add_feed(sync, site, **config):
    return sync.add("addons", "feed", "addons", url=site.url + "/feeds/addons.json", items_path="addons",
                    **config)


def test_a_feed_becomes_one_document_per_item_and_an_unchanged_feed_costs_a_304(sync, site):
    serve_feed(site, ADDONS)
    add_feed(sync, site, url_field="")
    summary = sync.run("addons")
    assert summary["outcome"] == "complete" and summary["counts"]["new"] == 4
    objects = sync.bucket("addons/")
    assert sorted(objects) == sorted(f"addons/addons/{a['id']}.md" for a in ADDONS)
    text = sync.text("addons/addons/custom-domain.md")
    assert "# Custom domain" in text and "own domain, with HTTPS" in text and "6" in text
    sync.stack.wait_for("addons/addons/custom-domain.md", "ready")
    again = sync.run("addons")
    assert counts(again, "writes", "not_modified", "unchanged") == {"writes": 0, "not_modified": 1, "unchanged": 4}
    assert sync.bucket("addons/") == objects


def test_an_edited_item_rewrites_one_object_with_the_operators_template(sync, site):
    serve_feed(site, ADDONS)
    add_feed(sync, site, template="# {{name}}\n\n{{description}}\n\nPrice: {{price_eur_month}} EUR a month.\n")
    sync.run("addons")
    before = sync.bucket("addons/")
    changed = [dict(a) for a in ADDONS]
    changed[0]["price_eur_month"] = 12
    serve_feed(site, changed)
    summary = sync.run("addons")
    after = sync.bucket("addons/")
    assert [n for n in after if after[n] != before[n]] == ["addons/addons/sms-credits.md"]
    assert "Price: 12 EUR a month." in sync.text("addons/addons/sms-credits.md")
    assert counts(summary, "changed", "unchanged") == {"changed": 1, "unchanged": 3}


def test_a_removed_feed_item_is_deleted_after_the_grace_runs_and_an_emptied_feed_deletes_nothing(sync, site):
    serve_feed(site, ADDONS)
    add_feed(sync, site)
    sync.run("addons")
    serve_feed(site, ADDONS[1:])
    assert sync.run("addons")["counts"].get("deleted", 0) == 0
    summary = sync.run("addons")
    assert summary["counts"]["deleted"] == 1
    assert "addons/addons/sms-credits.md" not in sync.bucket("addons/")
    serve_feed(site, [])  # an export that came out empty
    for _ in range(3):
        summary = sync.run("addons")
    assert summary["counts"].get("deleted", 0) == 0 and summary["counts"]["withheld"] == 3
    assert len(sync.bucket("addons/")) == 3


def test_a_feed_that_fails_or_cannot_be_keyed_is_a_partial_run(sync, site):
    serve_feed(site, ADDONS)
    add_feed(sync, site, grace_runs=1)
    sync.run("addons")
    site.put("/feeds/addons.json", json.dumps({"addons": [{"name": "no id"}, *ADDONS[1:]]}), "application/json")
    summary = sync.run("addons")
    assert summary["outcome"] == "partial" and "could not be read" in summary["reasons"][0]
    site.fail("/feeds/addons.json", 500, times=10)
    summary = sync.run("addons", sync_step_seconds=60)
    assert summary["outcome"] == "partial" and summary["counts"].get("deleted", 0) == 0
    assert len(sync.bucket("addons/")) == 4


def test_a_csv_feed(sync, site):
    site.put("/feeds/faq.csv", "\ufeffid;question;answer\nq1;Can I pause my plan?;Yes, for up to 3 months.\n"
             "q2;Do you offer refunds?;Within 30 days of a charge.\n", "text/csv; charset=utf-8")
    sync.add("faq", "feed", "faq", url=site.url + "/feeds/faq.csv", title_field="question",
             template="# {{question}}\n\n{{answer}}\n")
    summary = sync.run("faq")
    assert summary["counts"]["new"] == 2
    assert "Within 30 days of a charge." in sync.text("faq/faq/q2.md")


# -- S3 ------------------------------------------------------------------------------------------------------------

@pytest.fixture
def s3(monkeypatch):
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    monkeypatch.setenv("S3_DOCS_CREDENTIALS", json.dumps({"aws_access_key_id": "testing",
                                                           "aws_secret_access_key": "testing"}))
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    client.create_bucket(Bucket="acme-docs")
    client.endpoint = endpoint
    yield client
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(endpoint + "/moto-api/reset", method="POST")).close()  # global state
    server.stop()


def test_s3_objects_are_synced_by_etag_and_an_edited_and_a_removed_object_follow(sync, s3):
    s3.put_object(Bucket="acme-docs", Key="kb/billing/refunds.md", Body=b"# Refunds\n\nWithin 30 days.\n",
                  ContentType="text/markdown")
    s3.put_object(Bucket="acme-docs", Key="kb/security/sso.md", Body=b"# SSO\n\nSAML for Enterprise.\n",
                  ContentType="text/markdown")
    s3.put_object(Bucket="acme-docs", Key="kb/.draft.md", Body=b"# Draft\n")
    s3.put_object(Bucket="acme-docs", Key="other/ignored.md", Body=b"# Not in the prefix\n")
    sync.add("handbook", "s3", "handbook", bucket="acme-docs", prefix="kb/", endpoint_url=s3.endpoint,
             credentials_secret="S3_DOCS_CREDENTIALS")
    summary = sync.run("handbook")
    assert summary["outcome"] == "complete", summary
    objects = sync.bucket("handbook/")
    assert sorted(objects) == ["handbook/handbook/billing/refunds.md", "handbook/handbook/security/sso.md"]
    sync.stack.wait_for("handbook/handbook/billing/refunds.md", "ready")

    assert counts(sync.run("handbook"), "writes", "unchanged") == {"writes": 0, "unchanged": 2}
    s3.put_object(Bucket="acme-docs", Key="kb/billing/refunds.md", Body=b"# Refunds\n\nWithin 14 days now.\n",
                  ContentType="text/markdown")
    s3.delete_object(Bucket="acme-docs", Key="kb/security/sso.md")
    edited = sync.run("handbook")
    assert counts(edited, "changed", "writes", "deleted") == {"changed": 1, "writes": 1, "deleted": 0}
    assert "14 days" in sync.text("handbook/handbook/billing/refunds.md")
    removed = sync.run("handbook")
    assert removed["counts"]["deleted"] == 1
    assert sorted(sync.bucket("handbook/")) == ["handbook/handbook/billing/refunds.md"]


def test_an_s3_listing_that_fails_deletes_nothing(sync, s3):
    s3.put_object(Bucket="acme-docs", Key="kb/a.md", Body=b"# A\n\nAlpha text.\n")
    sync.add("handbook", "s3", "handbook", bucket="acme-docs", prefix="kb/", endpoint_url=s3.endpoint,
             credentials_secret="S3_DOCS_CREDENTIALS", grace_runs=1)
    sync.run("handbook")
    s3.delete_object(Bucket="acme-docs", Key="kb/a.md")
    s3.delete_bucket(Bucket="acme-docs")
    summary = sync.run("handbook")
    assert summary["outcome"] == "partial" and "listing" in summary["reasons"][0]
    assert list(sync.bucket("handbook/")) == ["handbook/handbook/a.md"]


# -- the operator's commands -----------------------------------------------------------------------------------------

def cli(capsys, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = sync_cli.run(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_sources_are_added_listed_changed_paused_and_removed_without_code(sync, site, capsys):
    serve_feed(site, ADDONS)
    code, out = cli(capsys, "sources", "add", "addons", "--kind", "feed", "--topic", "addons", "--url",
                    site.url + "/feeds/addons.json", "--config", '{"items_path": "addons"}')
    assert code == 0 and "addons/addons/" in out
    code, out = cli(capsys, "sources", "add", "bad", "--kind", "website", "--topic", "docs", "--url", "ftp://x/",
                    "--config", '{"max_pages": 0}')
    assert code == 1 and "field 'url'" in out
    code, out = cli(capsys, "sources", "update", "addons", "--config", '{"max_depth": 3}')
    assert code == 1 and "field 'max_depth'" in out  # not a feed setting
    assert cli(capsys, "sources", "pause", "addons")[0] == 0
    code, out = cli(capsys, "run")
    assert "no enabled source" in out
    assert cli(capsys, "sources", "resume", "addons")[0] == 0
    code, out = cli(capsys, "run", "--inline")
    assert code == 0 and "complete" in out and "new 4" in out
    code, out = cli(capsys, "sources", "list")
    assert "addons" in out and "enabled" in out
    code, out = cli(capsys, "runs")
    assert "complete" in out
    code, out = cli(capsys, "history", "addons", "white-label")
    assert "new" in out
    code, out = cli(capsys, "sources", "remove", "addons")
    assert code == 0 and "deleted its 4 object(s)" in out
    assert sync.bucket("addons/") == {}
