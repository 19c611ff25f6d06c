"""`scrape` as deployed: Cloud Scheduler's POST starts the runs, the Cloud Tasks emulator delivers each step to
/step on the real sync queue, and the function answers duplicates and malformed tasks as Cloud Tasks needs."""

from __future__ import annotations

import logging
import time

import pytest

from tests.conftest import FunctionServer
from tests.integration.test_sync_website import TOPICS, docs_site


@pytest.fixture
def scrape_stack(make_stack, site):
    scrape = FunctionServer("scrape")
    stack = make_stack(SYNC_ALLOWED_PRIVATE_HOSTS="127.0.0.1", SCRAPE_URL=scrape.url, SYNC_STEP_SECONDS="0.5")
    yield stack, scrape
    scrape.stop()


def wait_finished(stack, run_id: int, timeout: float = 60.0):
    from shared.sync.state import SyncState

    state = SyncState(stack.services.database())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = state.get_run(run_id)
        if run.finished_at is not None:
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish: {state.get_run(run_id)}")


def test_the_nightly_call_starts_runs_whose_steps_arrive_through_the_sync_queue(scrape_stack, site, capsys):
    from infra import sync as sync_cli

    stack, scrape = scrape_stack
    docs_site(site)
    assert sync_cli.run(["sources", "add", "docs", "--kind", "website", "--topic", "docs", "--url",
                         site.url + "/docs/"]) == 0
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("shared.sync.engine").addHandler(handler)
    try:
        response = scrape.client.post("/", json={"jobs": ["sync"]})
        assert response.status_code == 200, response.get_data(as_text=True)
        [run] = response.get_json()["jobs"]["sync"]["runs"]
        again = scrape.client.post("/", json={"jobs": ["sync"]}).get_json()["jobs"]["sync"]["runs"]
        assert again[0]["run"] == run["run"]  # an overlapping start joins the running run
        finished = wait_finished(stack, run["run"])
    finally:
        logging.getLogger("shared.sync.engine").removeHandler(handler)
    assert finished.outcome == "complete", finished.summary()
    assert finished.counts["new"] == 1 + len(TOPICS)
    assert "docs/docs/refunds.md" in {b.name for b in stack.bucket.client.list_blobs(stack.bucket, prefix="docs/")}
    summary = [r for r in records if getattr(r, "labels", {}).get("job") == "sync"]
    assert len(summary) == 1 and summary[0].labels["outcome"] == "complete"
    stack.wait_for("docs/docs/refunds.md", "ready")

    duplicate = scrape.client.post("/step", json={"run_id": run["run"], "step": 0})
    assert duplicate.status_code == 200 and duplicate.get_json()["status"] == "duplicate"
    for body in ({"run_id": "1", "step": 0}, {"step": 0}, {"run_id": 1, "step": -1}, [1]):
        assert scrape.client.post("/step", json=body).status_code == 400
    assert scrape.client.post("/", json={"jobs": ["nope"]}).status_code == 400
    assert scrape.client.post("/elsewhere", json={}).status_code == 400


def test_a_step_while_another_worker_holds_the_run_answers_503_for_a_later_retry(scrape_stack, site):
    from shared.sync.sources import validate_source
    from shared.sync.state import SyncState

    stack, scrape = scrape_stack
    docs_site(site, ["refunds"])
    engine = stack.services.sync_engine()
    engine.sources.add(validate_source("default", "docs", "website", "docs", {"url": site.url + "/docs/"}))
    run, _ = SyncState(stack.services.database()).start_run("default", "docs", "website", "operator", False)
    assert SyncState(stack.services.database()).lease(run.id, 0, "another-worker", 60) is not None
    response = scrape.client.post("/step", json={"run_id": run.id, "step": 0})
    assert response.status_code == 503 and response.headers["Retry-After"] == "30"
