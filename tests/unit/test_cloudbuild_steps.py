"""The shell glue in cloudbuild.yaml's migrate and smoke-test steps, run for real with bash.

Cloud Build substitutes `$$` with `$` and `${_NAME}` / `${PROJECT_ID}` with their values before a step runs; the test
does the same, points /workspace at a temporary folder holding a `terraform output -json` of the shape Terraform
prints, and replaces the virtualenv's python with a stub that runs `-c` snippets for real and records `-m` calls."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
STUB = """#!/usr/bin/env bash
if [ "$1" = "-c" ]; then exec {python} "$@"; fi
{python} - "$@" <<'PY'
import json, os, sys
keys = [k for k in os.environ if k.startswith(("SYSTEM_", "CLOUD_SQL", "DB_", "GOOGLE_CLOUD"))]
with open(os.environ["CALLS"], "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "env": {{k: os.environ[k] for k in keys}}}}) + "\\n")
PY
"""


def outputs(pgvector_dimension: int) -> dict:
    def value(v):
        return {"sensitive": False, "type": "dynamic", "value": v}

    return {
        "chat_url": value("https://support-chat-123.europe-west1.run.app"),
        "smoke_origin": value("https://www.acme.example"),
        "database_instance": value("acme-support:europe-west1:support-db"),
        "deployer_database_user": value("deployer@acme-support.iam"),
        "database_users": value(["support-chat@acme-support.iam", "support-embed@acme-support.iam"]),
        "pgvector_dimension": value(pgvector_dimension),
        "function_urls": value({f: f"https://support-{f}-123.europe-west1.run.app"
                                for f in ("chat", "ingest", "embed", "scrape")}),
    }


def substitute(script: str, values: dict[str, str]) -> str:
    """Cloud Build's substitution: `$$` is a literal `$`; `${NAME}` and `$NAME` are substitutions, and one that is not
    defined fails the build (a shell variable must be written `$$NAME`)."""
    def one(match):
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"${name} is not a substitution: Cloud Build would refuse the build (write $${name})")
        return values[name]

    return re.sub(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", one, script)


def run_step(step_id: str, tmp_path: Path, pgvector_dimension: int = 0) -> list[dict]:
    steps = {s["id"]: s for s in yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())["steps"]}
    step = steps[step_id]
    assert step["entrypoint"] == "bash" and step["args"][0] == "-ceu"
    workspace = tmp_path / "workspace"
    (workspace / ".venv" / "bin").mkdir(parents=True)
    stub = workspace / ".venv" / "bin" / "python"
    stub.write_text(STUB.format(python=shutil.which("python3") or sys.executable))
    stub.chmod(0o755)
    (workspace / "outputs.json").write_text(json.dumps(outputs(pgvector_dimension)))
    script = substitute(step["args"][1], {"PROJECT_ID": "acme-support", "_SMOKE_QUESTION": "How do refunds work?",
                                          "_SMOKE_SITE_KEY": ""})
    script = script.replace("/workspace", str(workspace))
    calls = tmp_path / "calls.jsonl"
    subprocess.run(["bash", "-ceu", script], check=True, cwd=ROOT, env={"PATH": "/usr/bin:/bin", "CALLS": str(calls)},
                   timeout=60)
    return [json.loads(line) for line in calls.read_text().splitlines()]


@pytest.mark.parametrize("dimension, extra", [(0, []), (768, ["--vector-dimension", "768"])])
def test_migrate_step_grants_the_function_users_through_the_connector(tmp_path, dimension, extra):
    [call] = run_step("migrate", tmp_path, dimension)
    assert call["argv"] == ["-m", "infra.migrate", "--grant", "support-chat@acme-support.iam",
                            "support-embed@acme-support.iam", *extra]
    assert call["env"] == {"GOOGLE_CLOUD_PROJECT": "acme-support", "DB_IP_TYPE": "public",
                           "CLOUD_SQL_INSTANCE": "acme-support:europe-west1:support-db",
                           "DB_USER": "deployer@acme-support.iam"}


def test_smoke_step_points_the_system_tier_at_the_deployment(tmp_path):
    [call] = run_step("smoke-test", tmp_path)
    assert call["argv"][:3] == ["-m", "pytest", "tests/system"] and "--confcutdir=tests/system" in call["argv"]
    assert call["env"] == {
        "SYSTEM_CHAT_URL": "https://support-chat-123.europe-west1.run.app",
        "SYSTEM_ORIGIN": "https://www.acme.example",
        "SYSTEM_INGEST_URL": "https://support-ingest-123.europe-west1.run.app",
        "SYSTEM_EMBED_URL": "https://support-embed-123.europe-west1.run.app",
        "SYSTEM_SCRAPE_URL": "https://support-scrape-123.europe-west1.run.app",
        "SYSTEM_QUESTION": "How do refunds work?",
        "SYSTEM_SITE_KEY": "",
    }


BUILT_IN = {"PROJECT_ID", "PROJECT_NUMBER", "BUILD_ID", "LOCATION", "COMMIT_SHA", "SHORT_SHA", "REVISION_ID",
            "BRANCH_NAME", "TAG_NAME", "REPO_NAME", "REPO_FULL_NAME", "TRIGGER_NAME", "TRIGGER_BUILD_CONFIG_PATH",
            "SERVICE_ACCOUNT_EMAIL", "SERVICE_ACCOUNT", "REF_NAME"}


def test_every_step_substitutes_cleanly():
    """Every `$NAME` in every step is a declared or built-in substitution; shell variables are written `$$NAME`."""
    build = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
    values = {name: "x" for name in set(build["substitutions"]) | BUILT_IN}
    for step in build["steps"]:
        for text in [step["name"], step.get("entrypoint", ""), step.get("dir", ""), *step.get("env", []),
                     *step.get("args", [])]:
            substitute(text, values)  # raises KeyError on an undeclared one
