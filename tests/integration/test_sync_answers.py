"""The sample company's docs website, synced into the knowledge base, answers questions with citations that link to
the live page; an edit on the site followed by a sync changes the answer (the real stack, the local embedder, the
extractive answerer, chat over HTTP)."""

from __future__ import annotations

import dataclasses
import time

import pytest

from tests.integration.test_chat import make_chat  # noqa: F401 - the fixture, used by name below

QUESTION = "How many SMS reminders are included in the Pro plan each month?"


@pytest.fixture
def docs_site():
    from infra.standins.website import serve_sample_site

    site = serve_sample_site()
    yield site
    site.stop()


def sync(stack, site) -> dict:
    from shared import services
    from shared.storage import ObjectStore
    from shared.sync.engine import SyncEngine
    from shared.sync.sources import validate_source

    settings = dataclasses.replace(services.get_settings(), sync_allowed_private_hosts="127.0.0.1")
    engine = SyncEngine(settings, services.database(), ObjectStore(settings.project))
    engine.sources.add(validate_source("default", "site", "website", "docs", {"url": site.url + "/docs/"}),
                       replace=True)
    [run] = engine.start(names=["site"])
    return engine.run_inline(run.id).summary()


def wait_for_text(stack, name: str, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(text in c["content"] for c in stack.chunks(name)) and stack.status(name)["status"] == "ready":
            return
        time.sleep(0.25)
    raise AssertionError(f"{name} never held {text!r}")


def test_a_synced_page_answers_with_a_link_to_the_live_page_and_an_edit_changes_the_answer(make_chat,  # noqa: F811
                                                                                             docs_site):
    chat = make_chat(kb=False, EMBEDDER="local")
    summary = sync(chat.stack, docs_site)
    assert summary["outcome"] == "complete", summary
    assert not [r for r in docs_site.requests if r.path.startswith("/internal/")]  # robots.txt disallows it
    wait_for_text(chat.stack, "docs/site/sms-reminders.md", "250 SMS")

    turn = chat.ask(QUESTION)
    assert "250" in turn["answer"], turn
    urls = [c.get("url") for c in turn["citations"]["citations"]]
    assert f"{docs_site.url}/docs/sms-reminders.html" in urls

    docs_site.edit("/docs/sms-reminders.html", "(250 SMS per month)", "(400 SMS per month)")
    docs_site.edit("/docs/sms-reminders.html", "<td>Pro</td><td>250</td>", "<td>Pro</td><td>400</td>")
    again = sync(chat.stack, docs_site)
    assert (again["counts"].get("changed"), again["counts"].get("writes")) == (1, 1)
    wait_for_text(chat.stack, "docs/site/sms-reminders.md", "400 SMS")
    turn = chat.ask(QUESTION)
    # The page now says 400 (the site's PDF guide, another document, still says 250: it was not edited).
    assert "Pro plan (400 SMS per month)" in turn["answer"], turn
