"""Every Firestore collection whose documents carry `expires_at` has a TTL policy in the Terraform (firestore.tf).

A chat turn, a vote, a hand-off and the rate limits run through the real chat function against the emulator; then
every document the product wrote is walked. A new collection with `expires_at` that Terraform does not expire (the
emulator never deletes, production would keep it forever) fails here."""

from __future__ import annotations

import re
from pathlib import Path

from google.cloud import firestore

from tests.integration.test_chat import make_chat  # noqa: F401  (the fixture)

ROOT = Path(__file__).resolve().parents[2]


def terraform_ttl_collections() -> set[str]:
    text = (ROOT / "terraform" / "firestore.tf").read_text()
    match = re.search(r"ttl_collections\s*=\s*\[([^\]]*)\]", text)
    assert match, "firestore.tf must define local.ttl_collections"
    return set(re.findall(r'"([^"]+)"', match.group(1)))


def collections_with_expiry(client: firestore.Client) -> tuple[set[str], set[str]]:
    """(collection ids whose documents carry expires_at, every collection id written), over all nesting levels."""
    expiring, seen = set(), set()
    pending = list(client.collections())
    while pending:
        collection = pending.pop()
        seen.add(collection.id)
        for snapshot in collection.list_documents():
            pending.extend(snapshot.collections())
            data = snapshot.get().to_dict() or {}
            if "expires_at" in data:
                expiring.add(collection.id)
    return expiring, seen


def test_every_collection_with_expires_at_has_a_ttl_policy(make_chat, tasks):  # noqa: F811
    chat = make_chat(kb=False)
    turn = chat.ask("How do I get a refund?")
    ids = turn["done"]
    assert chat.post("/v1/feedback", {"session_id": ids["session_id"], "turn_id": ids["turn_id"],
                                      "rating": "up"}).status_code == 204
    assert chat.post("/v1/handoff", {"session_id": ids["session_id"], "contact": "ana@example.com"}).status_code == 201
    chat.ask("And an invoice?", session_id=ids["session_id"])

    client = firestore.Client(project=tasks.project)
    expiring, seen = collections_with_expiry(client)
    assert {"sessions", "messages", "ratelimits"} <= seen, seen  # the walk reached what a turn writes
    policies = terraform_ttl_collections()
    assert expiring == policies, f"collections with expires_at {sorted(expiring)}, TTL policies {sorted(policies)}"
