"""A bounded fuzz pass of the chat API against its contract, `functions/chat/openapi.yaml` (schemathesis).

The chat function runs over real HTTP on the real stack (PostgreSQL with part of the sample knowledge base, the
Firestore emulator); every operation of the contract gets `EXAMPLES` generated requests (valid and invalid bodies,
parameters and headers, derandomized: the same cases on every run). The pass fails on any 5xx, on a status the
contract does not list, and on a response whose body, headers or content type do not match it. It is part of
`make test` (no marker); `make test PYTEST_ARGS="-k fuzz"` runs it alone.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings

from tests.conftest import FunctionServer
from tests.integration.test_chat import ROOT

# Generated requests per operation (about 300 in all: under a minute here, stack included); CHAT_FUZZ_EXAMPLES=500
# for a deeper run by hand.
EXAMPLES = int(os.environ.get("CHAT_FUZZ_EXAMPLES", "40"))
SPEC = ROOT / "functions" / "chat" / "openapi.yaml"
DOCUMENTS = ["billing/refunds.md", "account/reset-password.md"]


# Every check schemathesis can make from the contract except positive_data_acceptance: some refusals are semantic
# (a message that is blank once trimmed, a session id we never issued, a token that is not signed) and the
# contract documents them as 400/401/404 rather than encode them in JSON Schema.
CHECKS = [schemathesis.checks.not_a_server_error, schemathesis.checks.status_code_conformance,
          schemathesis.checks.content_type_conformance, schemathesis.checks.response_headers_conformance,
          schemathesis.checks.response_schema_conformance, schemathesis.checks.negative_data_rejection,
          schemathesis.checks.allow_header_conformance]


@pytest.fixture
def chat_url(make_stack, firestore_db):
    # Limits high enough that the pass explores the API rather than its 429s (which the contract allows anyway).
    stack = make_stack(RATE_LIMIT_CLIENT_PER_MINUTE=100000, RATE_LIMIT_SESSION_PER_MINUTE=100000,
                       RATE_LIMIT_HANDOFF_PER_HOUR=100000, RATE_LIMIT_FEEDBACK_PER_MINUTE=100000)
    for name in DOCUMENTS:
        stack.upload(name, (ROOT / "infra" / "sample_kb" / name).read_bytes())
    for name in DOCUMENTS:
        stack.wait_for(name, "ready", timeout=60)
    server = FunctionServer("chat")
    yield server.url
    server.stop()


def test_the_chat_api_never_answers_5xx_and_keeps_its_contract(chat_url):
    from hypothesis import given

    schema = schemathesis.openapi.from_path(SPEC)
    schema.config.update(base_url=chat_url, request_timeout=30)
    calls: dict[str, int] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10, "every route of the contract is fuzzed"
    for operation in operations:
        name = f"{operation.method.upper()} {operation.path}"

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def fuzz(case):
            calls[name] = calls.get(name, 0) + 1
            case.call_and_validate(base_url=chat_url, checks=CHECKS)

        try:
            fuzz()
        except Exception as exc:
            raise AssertionError(f"{name}: {exc}") from exc
    assert set(calls) == {f"{o.method.upper()} {o.path}" for o in operations}
