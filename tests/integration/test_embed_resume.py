"""A document version too large for one embed call, through the real stack (storage emulator -> ingest -> Cloud Tasks
emulator -> embed -> PostgreSQL + pgvector): it is finished across calls that each stop after
EMBED_TIME_BUDGET_SECONDS, continuations go to the back of the queue, progress survives a call that fails or dies
part-way, and the number of calls is bounded. The embedder is the hashing test embedder made as slow as a remote
service and counting every passage it embeds (so "each batch embedded once" is a count, not a guess)."""

from __future__ import annotations

import threading
import time

import pytest

from shared.embeddings import DOCUMENT
from shared.embeddings.hashing import HashingEmbedder
from shared.errors import UpstreamUnavailable

BATCH = 4


class CountingEmbedder(HashingEmbedder):
    """`delay` seconds per batch of passages, like a remote embedding service; `fail` maps a batch number (1-based,
    over the embedder's life) to the exception that batch raises instead, once; `fail_always` raises on every batch.
    `passages` lists every passage actually embedded."""

    def __init__(self, delay: float = 0.0, fail: dict | None = None, fail_always: Exception | None = None):
        super().__init__()
        self.delay = delay
        self.fail = dict(fail or {})
        self.fail_always = fail_always
        self.passages: list[str] = []
        self.batches = 0
        self._lock = threading.Lock()

    def embed_batch(self, texts, kind):
        if kind != DOCUMENT:
            return super().embed_batch(texts, kind)
        with self._lock:
            self.batches += 1
            number = self.batches
        if self.fail_always is not None:
            raise self.fail_always
        if number in self.fail:
            raise self.fail.pop(number)
        time.sleep(self.delay)
        with self._lock:
            self.passages.extend(texts)
        return super().embed_batch(texts, kind)


def guide(sections: int, topic: str = "setup") -> str:
    """A Markdown guide of `sections` distinct sections: one chunk each at CHUNK_MAX_TOKENS=40."""
    parts = [f"# {topic.title()} guide\n"]
    for i in range(sections):
        parts.append(f"## Step {i} of the {topic}\n\nStep {i} of the {topic} guide explains item {i}: open panel {i}, "
                     f"set option {i * 7} and save.\n")
    return "\n".join(parts)


SMALL = "# Reset your password\n\nReset links expire after 60 minutes."


@pytest.fixture
def start(make_stack, monkeypatch):
    """`start(embedder, **settings)`: the stack with small chunks and batches, serving `embedder` in embed."""

    def start_with(embedder: CountingEmbedder, **settings):
        stack = make_stack(CHUNK_MAX_TOKENS=40, CHUNK_OVERLAP_TOKENS=0, EMBED_BATCH_SIZE=BATCH, **settings)
        embedder.batch_size = BATCH
        monkeypatch.setattr(stack.services, "embedder", lambda: embedder)
        return stack

    return start_with


def latest_version(stack, name: str) -> dict:
    return stack.versions(name)[-1]


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout}s: {what}")


def ready_at(stack, name: str):
    with stack.services.database().transaction() as cur:
        cur.execute("SELECT v.updated_at FROM document_versions v JOIN documents d ON d.live_version_id = v.id "
                    "WHERE d.source_uri = %s", (stack.uri(name),))
        return cur.fetchone()[0]


def assert_indexed_once(stack, *names: str) -> None:
    """Each document: one live version's chunks, no duplicate, and exactly its vectors (chunks + title)."""
    expected_vectors = set()
    for name in names:
        chunks = stack.chunks(name)
        row = stack.status(name)
        ids = [c["id"] for c in chunks]
        assert row["status"] == "ready" and len(ids) == len(set(ids)) == row["chunk_count"]
        assert [c["ordinal"] for c in chunks] == list(range(len(chunks)))
        assert {c["version_id"] for c in chunks} == {row["version_id"]}
        expected_vectors |= set(ids) | {ids[0].split("#")[0] + "#title"}
    assert stack.vector_ids(titles=True) == expected_vectors  # no orphan, none missing


def test_a_large_version_is_finished_across_calls_and_later_uploads_do_not_wait_for_it(start):
    embedder = CountingEmbedder(delay=0.25)
    stack = start(embedder, EMBED_TIME_BUDGET_SECONDS=0.001, EMBED_MAX_CALLS=50)  # one batch per call
    stack.upload("guides/setup.md", guide(40))  # 40 chunks + the title: 41 passages, 11 batches
    wait_until(lambda: (stack.versions("guides/setup.md") or [{}])[-1].get("attempts", 0) >= 1, 20,
               "the large document's first embed call")
    stack.upload("account/password.md", SMALL)

    stack.wait_for("account/password.md", "ready", timeout=30)
    assert stack.status("guides/setup.md")["status"] != "ready"  # indexed while the large one is still going
    stack.wait_for("guides/setup.md", "ready", timeout=60)

    assert ready_at(stack, "account/password.md") < ready_at(stack, "guides/setup.md")
    version = latest_version(stack, "guides/setup.md")
    assert version["chunk_count"] == 40
    assert version["attempts"] == version["timings"]["embed_calls"] == 11  # one batch each, none repeated
    assert version["timings"]["embedded"] == 41
    assert_indexed_once(stack, "guides/setup.md", "account/password.md")
    # Each passage embedded exactly once over all the calls: the 41 of the guide and the 2 of the small file.
    assert len(embedder.passages) == len(set(embedder.passages)) == 41 + 2


def test_the_live_version_stays_whole_and_searchable_until_the_new_one_is_complete(start):
    embedder = CountingEmbedder()
    stack = start(embedder, EMBED_TIME_BUDGET_SECONDS=0.001)
    stack.upload("guides/setup.md", guide(3, "billing"))
    stack.wait_for("guides/setup.md", "ready")
    old = stack.status("guides/setup.md")["version_id"]

    embedder.delay = 0.2
    stack.upload("guides/setup.md", guide(30))  # 31 passages, 8 calls
    seen_old_while_new_embedding = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = latest_version(stack, "guides/setup.md")
        chunks = stack.chunks("guides/setup.md")  # one query: a consistent snapshot
        versions = {c["version_id"] for c in chunks}
        assert len(versions) == 1, "chunks of two versions were searchable at once"
        if new["id"] != old and new["status"] == "ready":
            break
        if new["id"] != old and new["attempts"] >= 2 and versions == {old}:
            assert len(chunks) == 3 and all("billing" in c["content"] for c in chunks)
            seen_old_while_new_embedding = True
        time.sleep(0.05)
    else:
        raise AssertionError("the new version was not indexed within 60 s")

    assert seen_old_while_new_embedding
    assert [v["status"] for v in stack.versions("guides/setup.md")] == ["superseded", "ready"]
    assert_indexed_once(stack, "guides/setup.md")
    assert len(embedder.passages) == len(set(embedder.passages)) == 4 + 31


def test_a_version_needing_more_calls_than_allowed_fails_with_a_reason_and_requeue_continues_it(start):
    from infra.kb import requeue_unfinished
    from shared.config import get_settings

    embedder = CountingEmbedder()
    stack = start(embedder, EMBED_TIME_BUDGET_SECONDS=0.001, EMBED_MAX_CALLS=3)
    stack.upload("guides/setup.md", SMALL)
    stack.wait_for("guides/setup.md", "ready")
    stack.upload("guides/setup.md", guide(19))  # 20 passages: 5 batches, one per call, but 3 calls allowed

    row = stack.wait_for("guides/setup.md", "failed", timeout=30)
    assert "EMBED_MAX_CALLS" in row["error"] and "12 of 20 passages embedded" in row["error"]
    assert "requeue --failed" in row["error"]
    assert latest_version(stack, "guides/setup.md")["attempts"] == 3
    assert [c["content"] for c in stack.chunks("guides/setup.md")] == ["Reset links expire after 60 minutes."]

    # The operator raises nothing and requeues: a fresh allowance of calls continues from the embedded batches.
    assert requeue_unfinished(stack.services.database(), get_settings(), include_failed=True) == 1
    stack.wait_for("guides/setup.md", "ready", timeout=30)
    assert latest_version(stack, "guides/setup.md")["timings"]["embed_calls"] == 2
    assert_indexed_once(stack, "guides/setup.md")
    assert len(embedder.passages) == len(set(embedder.passages)) == 2 + 20


@pytest.mark.parametrize("error", [UpstreamUnavailable("Gemini answered 503"), RuntimeError("the instance died")],
                         ids=["transient-error", "crash"])
def test_a_call_that_fails_part_way_is_resumed_not_restarted(start, error):
    embedder = CountingEmbedder(fail={3: error})  # the third batch fails once, after two were embedded
    stack = start(embedder)  # the default budget: one call would do it all
    stack.upload("guides/setup.md", guide(19))  # 20 passages, 5 batches

    stack.wait_for("guides/setup.md", "ready", timeout=30)
    # The retry embedded only the three batches the failed call had not finished.
    assert len(embedder.passages) == len(set(embedder.passages)) == 20
    version = latest_version(stack, "guides/setup.md")
    assert version["attempts"] == 2 and version["timings"]["stalled_calls"] == 0
    assert_indexed_once(stack, "guides/setup.md")


def test_calls_that_keep_dying_without_progress_fail_the_version_with_a_reason(start):
    embedder = CountingEmbedder(fail_always=RuntimeError("out of memory"))
    stack = start(embedder, EMBED_MAX_STALLED_CALLS=2)
    stack.upload("guides/setup.md", guide(5))

    row = stack.wait_for("guides/setup.md", "failed", timeout=30)
    assert "2 embed calls in a row" in row["error"] and "EMBED_BATCH_SIZE" in row["error"]
    assert latest_version(stack, "guides/setup.md")["attempts"] == 2  # the third call gave up before working
    assert embedder.batches == 2
    assert stack.chunks("guides/setup.md") == []
