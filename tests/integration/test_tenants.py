"""Tenants bound to sites, end to end: documents of two tenants ingested through the real path, the chat function over
real HTTP, the tenant registry and the memory in the Firestore emulator, and the operator command (infra.tenants).

Before the registry, a request named its tenant: `{"tenant": "acme"}` from curl or from the allowed demo origin read
acme's private documents, `GET /v1/sessions/{id}?tenant=acme` read acme's transcripts, and rotating `tenant` reset
the per-client rate limit."""

from __future__ import annotations

import io
import json

import httpx
import pytest

from tests.conftest import FunctionServer

ACME_ORIGIN = "https://help.acme.example"
GLOBEX_ORIGIN = "https://globex.example"
SECRET = "The acme vault combination is PELICAN-4242."
ACME_DOC = f"# Vault\n\n{SECRET} Only acme staff may read it.\n"
DEFAULT_DOC = "# Opening hours\n\nThe shop opens at nine and closes at five on weekdays.\n"


@pytest.fixture
def two_tenants(make_stack, firestore_db):
    """acme's and the default tenant's documents, ready; a chat server per call of `serve(**settings)`."""
    servers: list[FunctionServer] = []

    def serve(**settings):
        stack = make_stack(ANSWER_MIN_CONFIDENCE="0", TENANT_CACHE_SECONDS="0", **settings)
        stack.upload("vault/vault.md", ACME_DOC, metadata={"tenant": "acme"})
        stack.upload("shop/hours.md", DEFAULT_DOC)
        stack.wait_for("vault/vault.md", "ready")
        stack.wait_for("shop/hours.md", "ready")
        server = FunctionServer("chat")
        servers.append(server)
        return server.url

    yield serve
    for server in servers:
        server.stop()


def ask(url: str, body: dict, origin: str | None = None) -> httpx.Response:
    headers = {"Accept": "application/json", **({"Origin": origin} if origin else {})}
    return httpx.post(url + "/v1/chat", json=body, headers=headers, timeout=60)


def admin():
    from shared import services
    from shared.memory.connection import utc_now
    from shared.tenants import TenantAdmin

    return TenantAdmin(services.memory_store().connection, now=utc_now)


def cli(*argv: str) -> tuple[int, str]:
    from infra.tenants import run

    out = io.StringIO()
    code = run(["--chat-url", "https://chat.example", *argv], admin=admin(), out=out)
    return code, out.getvalue()


# --- no registry: one tenant, as before, but a request cannot pick another ------------------------------------------
def test_without_a_registry_a_request_cannot_name_another_tenant(two_tenants):
    url = two_tenants()
    own = ask(url, {"message": "When does the shop open?"})
    assert own.status_code == 200 and "nine" in own.json()["answer"]

    for origin in (None, "http://localhost:8080"):  # curl, and the allowed demo origin
        stolen = ask(url, {"message": "What is the vault combination?", "tenant": "acme"}, origin)
        assert stolen.status_code == 400, stolen.text
        assert "PELICAN" not in stolen.text and "tenant is not a request field" in stolen.json()["error"]["message"]

    session_id = own.json()["session_id"]
    assert httpx.get(f"{url}/v1/sessions/{session_id}?tenant=acme").status_code == 400
    assert httpx.get(f"{url}/v1/sessions/{session_id}").status_code == 200
    # The default tenant never sees acme's documents.
    answer = ask(url, {"message": "What is the vault combination?"}).json()
    assert "PELICAN" not in json.dumps(answer)


# --- the registry ------------------------------------------------------------------------------------------------------
def test_the_site_key_selects_the_tenant_and_its_origins(two_tenants):
    url = two_tenants(TENANT_REGISTRY="firestore")
    acme = admin().add("acme", [ACME_ORIGIN])
    globex = admin().add("globex", [GLOBEX_ORIGIN])

    answered = ask(url, {"message": "What is the vault combination?", "site_key": acme.site_key}, ACME_ORIGIN)
    assert answered.status_code == 200 and "PELICAN-4242" in answered.json()["answer"]
    assert answered.headers["access-control-allow-origin"] == ACME_ORIGIN
    assert ask(url, {"message": "What is the vault combination?", "site_key": acme.site_key}).status_code == 200

    # Another site's page using acme's key: refused, and its browser cannot read the refusal.
    foreign = ask(url, {"message": "What is the vault combination?", "site_key": acme.site_key}, GLOBEX_ORIGIN)
    assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in foreign.headers

    # globex's key reaches globex's (empty) knowledge, never acme's.
    other = ask(url, {"message": "What is the vault combination?", "site_key": globex.site_key}, GLOBEX_ORIGIN)
    assert other.status_code == 200 and "PELICAN" not in json.dumps(other.json())

    # No key, a made-up key, a malformed key, a tenant named in the request.
    missing = ask(url, {"message": "hi"}, ACME_ORIGIN)
    assert missing.status_code == 400 and "site_key" in missing.json()["error"]["message"]
    for key in ("pk_" + "A" * 24, "acme", "pk_short"):
        unknown = ask(url, {"message": "hi", "site_key": key}, ACME_ORIGIN)
        assert unknown.status_code == 403 and unknown.json()["error"]["code"] == "unknown_site_key"
    named = ask(url, {"message": "hi", "site_key": globex.site_key, "tenant": "acme"}, GLOBEX_ORIGIN)
    assert named.status_code == 400


def test_a_session_is_read_only_through_its_own_tenants_key(two_tenants):
    url = two_tenants(TENANT_REGISTRY="firestore")
    acme = admin().add("acme", [ACME_ORIGIN])
    globex = admin().add("globex", [GLOBEX_ORIGIN])
    session_id = ask(url, {"message": "What is the vault combination?", "site_key": acme.site_key}).json()["session_id"]

    own = httpx.get(f"{url}/v1/sessions/{session_id}", params={"site_key": acme.site_key})
    assert own.status_code == 200 and "PELICAN" in own.text
    assert httpx.get(f"{url}/v1/sessions/{session_id}", params={"site_key": globex.site_key}).status_code == 404
    assert httpx.get(f"{url}/v1/sessions/{session_id}").status_code == 400
    assert httpx.get(f"{url}/v1/sessions/{session_id}", params={"site_key": acme.site_key,
                                                               "tenant": "acme"}).status_code == 400
    handoff = httpx.post(f"{url}/v1/handoff", json={"session_id": session_id, "site_key": globex.site_key})
    assert handoff.status_code == 404
    handoff = httpx.post(f"{url}/v1/handoff", json={"session_id": session_id, "site_key": acme.site_key})
    assert handoff.status_code == 201


def test_rotating_a_key_retires_the_old_one_and_limits_are_per_tenant(two_tenants):
    url = two_tenants(TENANT_REGISTRY="firestore")
    old = admin().add("acme", [ACME_ORIGIN], {"client_per_minute": 2})
    new = admin().rotate_key("acme")
    assert new.site_key != old.site_key
    assert ask(url, {"message": "hi", "site_key": old.site_key}, ACME_ORIGIN).status_code == 403
    assert ask(url, {"message": "When?", "site_key": new.site_key}, ACME_ORIGIN).status_code == 200
    assert ask(url, {"message": "When?", "site_key": new.site_key}, ACME_ORIGIN).status_code == 200
    limited = ask(url, {"message": "When?", "site_key": new.site_key}, ACME_ORIGIN)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1

    admin().set_disabled("acme", True)
    assert ask(url, {"message": "When?", "site_key": new.site_key}, ACME_ORIGIN).status_code == 403


def test_the_registry_is_readable_while_firestore_lookups_fail_for_cached_tenants():
    from shared.memory.connection import MemoryUnavailable
    from shared.tenants import FirestoreTenantRegistry, Tenant, UnknownSiteKey

    clock = [0.0]
    key = "pk_" + "k" * 24
    answers: list = [Tenant(id="acme", site_key=key), MemoryUnavailable("down"), None]

    class Registry(FirestoreTenantRegistry):
        lookups = 0

        def _lookup(self, site_key):
            self.lookups += 1
            answer = answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer

    registry = Registry(connection=None, ttl_seconds=60, clock=lambda: clock[0])
    assert registry.resolve(key).id == "acme"
    assert registry.resolve(key).id == "acme" and registry.lookups == 1  # cached
    clock[0] = 61
    assert registry.resolve(key).id == "acme" and registry.lookups == 2  # stale, but Firestore is down
    clock[0] = 122
    with pytest.raises(UnknownSiteKey):
        registry.resolve(key)  # the tenant was removed
    with pytest.raises(UnknownSiteKey):
        registry.resolve(key)  # a refused key is remembered briefly: no lookup per request
    assert registry.lookups == 3


# --- the operator command ------------------------------------------------------------------------------------------
def test_the_operator_command_adds_rotates_and_edits_tenants(firestore_db, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://unused@127.0.0.1:1/unused")  # the settings need one
    from shared import services

    services.reset()
    code, out = cli("add", "acme", "--origin", "https://Help.Acme.Example:443/", "--client-per-minute", "30")
    assert code == 0
    added = json.loads(out.splitlines()[0])
    assert added["allowed_origins"] == ["https://help.acme.example"] and added["limits"] == {"client_per_minute": 30}
    assert f'data-site-key="{added["site_key"]}"' in out and "https://chat.example/widget/v1/widget.js" in out

    assert cli("add", "acme", "--origin", "https://x.example")[0] == 2  # exists already
    assert cli("add", "Acme", "--origin", "https://x.example")[0] == 2  # mixed case: refused, never a second tenant
    assert cli("add", "evil", "--origin", "https://x.example/path")[0] == 2  # not an origin

    code, out = cli("origins", "acme", "--add", "https://www.acme.example", "--remove", "https://help.acme.example")
    assert code == 0 and json.loads(out)["allowed_origins"] == ["https://www.acme.example"]
    code, out = cli("limits", "acme", "--client-per-minute", "0", "--session-per-minute", "5")
    assert code == 0 and json.loads(out)["limits"] == {"session_per_minute": 5}
    code, out = cli("rotate-key", "acme")
    assert code == 0 and json.loads(out.splitlines()[0])["site_key"] != added["site_key"]
    code, out = cli("list")
    assert code == 0 and [json.loads(line)["id"] for line in out.splitlines()] == ["acme"]
    assert cli("show", "nobody")[0] == 2
