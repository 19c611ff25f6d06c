"""Fixtures of the Terraform tier: the real module (or a skip until it exists), the tool's own fixture module, and
``run_check``, which turns a missing tool into a skip locally and a failure under CI=true."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from infra.tfcheck import ToolMissing, assert_fails, mutated_copy

ROOT = Path(__file__).resolve().parents[2]
REAL_MODULE = ROOT / "terraform"
FIXTURE_MODULE = Path(__file__).resolve().parent / "fixtures" / "repo" / "terraform"


@pytest.fixture
def real_module() -> Path:
    """The product's ``terraform/`` root module; skipped while it has not been written yet."""
    if not (REAL_MODULE.is_dir() and any(REAL_MODULE.glob("*.tf"))):
        pytest.skip(f"{REAL_MODULE} does not exist yet (no *.tf): nothing to check")
    return REAL_MODULE


@pytest.fixture
def fixture_module() -> Path:
    """A small realistic module of the tool's own (gen2 function, bucket, IAM, dashboard, cloudbuild.yaml)."""
    return FIXTURE_MODULE


@pytest.fixture
def run_check():
    """Call a check; a missing tool skips the test, except under CI=true where it fails it."""

    def run(check, *args, **kwargs):
        try:
            return check(*args, **kwargs)
        except ToolMissing as exc:
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(f"CI=true and a tool is missing: {exc}")
            pytest.skip(f"tool missing: {exc}")

    return run


@pytest.fixture
def mutation(run_check, tmp_path):
    """``mutation(check, src, {path: (pattern, repl)}, expected)``: the check must fail on the edited copy with
    output matching the regex ``expected``. Returns the :class:`CheckResult` for further asserts."""

    def run(check, src: Path, mutations: dict[str, tuple[str, str]], expected: str):
        copy = mutated_copy(src, mutations, Path(tempfile.mkdtemp(prefix="mutant-", dir=tmp_path)))
        return assert_fails(run_check(check, copy), expected)

    return run
