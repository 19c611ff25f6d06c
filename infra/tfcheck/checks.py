"""The checks on a Terraform root module, each returning a :class:`CheckResult` (never raising for a finding):

- :func:`run_fmt`: ``terraform fmt -check -recursive -diff``.
- :func:`run_validate`: ``terraform validate -json`` against the stand-in google provider, one line per
  diagnostic as ``file:line: severity: summary: detail``.
- :func:`run_terraform_test`: ``terraform test`` (the module's ``tests/*.tftest.hcl``, with ``mock_provider``).
- :func:`run_checkov`: checkov's Terraform checks, offline; one failed check fails the run.
- :func:`run_discovery`: ``cloudbuild.yaml`` (beside the module's folder) and every ``*.json.tftpl`` under the
  module against Google's published API schemas (:mod:`infra.tfcheck.discovery`).

validate and test work on a copy of the module in a temporary folder (never touching the module's own
``.terraform`` or lock file: the stand-in's hashes must never be committed). A tool that is missing raises
:class:`~infra.tfcheck.toolchain.ToolMissing`.

For tests that prove a check bites, :func:`mutated_copy` copies a module (or a file) and edits it with regexes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from infra.tfcheck import discovery, schema, toolchain

CHECKS = ("fmt", "validate", "test", "checkov", "discovery")
_IGNORED = shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate", "*.tfstate.backup")


@dataclass
class CheckResult:
    """What one check found: ``ok`` and the output to show (diagnostics, failures, diff)."""

    name: str
    ok: bool
    output: str

    def __str__(self) -> str:
        return f"{self.name}: {'ok' if self.ok else 'FAILED'}\n{self.output}".rstrip()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # No CLI config (it would only warn), no checkpoint calls, no prompts, no plugin cache of the user's.
    env.update(TF_CLI_CONFIG_FILE="/dev/null", CHECKPOINT_DISABLE="1", TF_IN_AUTOMATION="1", TF_INPUT="0")
    env.pop("TF_PLUGIN_CACHE_DIR", None)
    env.pop("TF_DATA_DIR", None)
    return env


def _run(cmd: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)


def run_fmt(module: Path) -> CheckResult:
    """Fail, with the diff, when any ``.tf`` or ``.tftest.hcl`` file is not in canonical format."""
    proc = _run([toolchain.terraform(), "fmt", "-check", "-recursive", "-diff", "-no-color"], module)
    out = (proc.stdout + proc.stderr).strip()
    return CheckResult("fmt", proc.returncode == 0, out if proc.returncode else "")


def _work_copy(module: Path, tmp: Path) -> Path:
    """Copy ``module`` to ``tmp/<name>`` and link its siblings, so ``../functions``-style paths still resolve."""
    module = module.resolve()
    dest = tmp / module.name
    shutil.copytree(module, dest, ignore=_IGNORED, symlinks=True)
    for sibling in module.parent.iterdir():
        if sibling.name != module.name and not (tmp / sibling.name).exists():
            (tmp / sibling.name).symlink_to(sibling)
    return dest


def _init(work: Path) -> CheckResult | None:
    plugins = toolchain.provider_plugin_dir()
    proc = _run([toolchain.terraform(), "init", "-backend=false", f"-plugin-dir={plugins}", "-input=false",
                 "-no-color"], work)
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip()
        if "Failed to query available provider packages" in out or "Failed to install provider" in out:
            out += ("\n\ntfcheck: only hashicorp/google = " + schema.PROVIDER_VERSION + " is served offline (a "
                    "stand-in); any other provider (archive, random, google-beta) cannot be installed here.")
        return CheckResult("init", False, out)
    return None


def format_diagnostics(report: dict, origin: Path) -> list[str]:
    """``terraform validate -json`` diagnostics as ``file:line: severity: summary: detail`` lines."""
    lines = []
    for d in report.get("diagnostics", []):
        where = d.get("range", {})
        place = ""
        if where.get("filename"):
            place = f"{origin / where['filename']}:{where.get('start', {}).get('line', '?')}: "
        detail = " ".join(d.get("detail", "").split())
        lines.append(f"{place}{d.get('severity', 'error')}: {d.get('summary', '')}" + (f": {detail}" if detail else ""))
    return lines


def run_validate(module: Path) -> CheckResult:
    """``terraform validate`` with the stand-in provider: names, types, required arguments, blocks, enums."""
    with tempfile.TemporaryDirectory(prefix="tfcheck-") as tmp:
        work = _work_copy(module, Path(tmp))
        failed = _init(work)
        if failed:
            return CheckResult("validate", False, failed.output)
        proc = _run([toolchain.terraform(), "validate", "-json", "-no-color"], work)
        try:
            report = json.loads(proc.stdout)
        except json.JSONDecodeError:
            return CheckResult("validate", False, (proc.stdout + proc.stderr).strip())
        lines = format_diagnostics(report, module)
        ok = bool(report.get("valid")) and proc.returncode == 0
        return CheckResult("validate", ok, "\n".join(lines))


def run_terraform_test(module: Path, args: list[str] | tuple[str, ...] = ()) -> CheckResult:
    """``terraform test`` on a copy of ``module``; ``args`` go to terraform (``["-filter=tests/x.tftest.hcl"]``)."""
    with tempfile.TemporaryDirectory(prefix="tfcheck-") as tmp:
        work = _work_copy(module, Path(tmp))
        failed = _init(work)
        if failed:
            return CheckResult("test", False, failed.output)
        proc = _run([toolchain.terraform(), "test", "-no-color", *args], work)
        out = (proc.stdout + proc.stderr).strip()
        if re.search(r"\b0 passed, 0 failed", out) or "no test files" in out.lower():
            return CheckResult("test", False, f"no terraform tests ran in {module}/tests:\n{out}")
        return CheckResult("test", proc.returncode == 0, out)


def run_checkov(module: Path) -> CheckResult:
    """checkov's Terraform checks, offline (``--skip-download``); inline ``#checkov:skip=ID:reason`` is honoured.

    Fails on any failed check, on parsing errors, and when checkov found nothing to check (a wrong folder).
    """
    exe = toolchain.checkov()
    module = module.resolve()
    proc = _run([str(exe), "-d", str(module), "--framework", "terraform", "--skip-download", "-o", "json",
                 "--external-checks-dir", str(POLICIES)],
                module, timeout=900)
    try:
        reports = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return CheckResult("checkov", False, f"checkov printed no report (exit {proc.returncode}):\n"
                           f"{(proc.stdout + proc.stderr).strip()[-3000:]}")
    reports = reports if isinstance(reports, list) else [reports]
    lines, passed, failed, skipped, parse_errors = [], 0, 0, 0, 0
    for report in reports:
        summary = report.get("summary", report)
        passed += summary.get("passed", 0)
        failed += summary.get("failed", 0)
        skipped += summary.get("skipped", 0)
        parse_errors += summary.get("parsing_errors", 0)
        for check in report.get("results", {}).get("failed_checks", []):
            start = (check.get("file_line_range") or ["?"])[0]
            where = f"{module}{check.get('file_path', '')}:{start}"
            lines.append(f"{where}: {check.get('check_id')}: {check.get('check_name')} ({check.get('resource')})")
    lines.append(f"checkov: {passed} passed, {failed} failed, {skipped} skipped, {parse_errors} parsing errors")
    ok = failed == 0 and parse_errors == 0 and passed > 0 and proc.returncode == 0
    if passed == 0 and failed == 0:
        lines.append(f"checkov found nothing to check in {module}")
    return CheckResult("checkov", ok, "\n".join(lines))


def run_discovery(module: Path, cloudbuild: Path | None = None, dashboards: list[Path] | None = None) -> CheckResult:
    """Cloud Build config and dashboard templates against the cloudbuild v1 ``Build`` / monitoring v1 ``Dashboard``.

    By default ``cloudbuild.yaml`` is looked for beside the module's folder (the repo root for ``terraform/``) and
    dashboards are every ``*.json.tftpl`` under the module; a missing cloudbuild.yaml is reported, not skipped.
    """
    cloudbuild = cloudbuild or module.resolve().parent / "cloudbuild.yaml"
    dashboards = dashboards if dashboards is not None else sorted(module.rglob("*.json.tftpl"))
    problems: list[str] = []
    if cloudbuild.exists():
        problems += discovery.check_cloudbuild(cloudbuild)
    else:
        problems.append(f"{cloudbuild}: not found (the build config the discovery check validates)")
    for path in dashboards:
        render = path.parent / RENDER_FILE
        if render.exists():
            rendered, trouble = render_with_terraform(path.parent, json.loads(render.read_text()))
            problems += trouble or discovery.check_dashboard(rendered, path)
        else:
            problems += discovery.check_dashboard_template(path)
    checked = [str(cloudbuild)] + [str(p) for p in dashboards]
    return CheckResult("discovery", not problems, "\n".join(problems) or "checked: " + ", ".join(checked))


# Beside a template with directives (%{ for }), how to render it: {"expression": "local.x", "variables": {...}}.
RENDER_FILE = "render.json"


def render_with_terraform(module: Path, spec: dict) -> tuple[str, list[str]]:
    """Evaluate ``spec["expression"]`` in a copy of ``module`` with ``terraform console`` (the real templatefile, so
    directives and functions render as in production); return (JSON text, problems)."""
    with tempfile.TemporaryDirectory(prefix="tfcheck-render-") as tmp:
        work = _work_copy(module, Path(tmp))
        failed = _init(work)
        if failed:
            return "", [f"{module}: cannot render {spec.get('expression')}: {failed.output}"]
        (work / "render.auto.tfvars.json").write_text(json.dumps(spec.get("variables", {})))
        proc = subprocess.run([toolchain.terraform(), "console"], cwd=work, env=_env(), capture_output=True,
                              text=True, timeout=300, input=f"jsonencode(jsondecode({spec['expression']}))\n")
        try:
            return json.loads(proc.stdout.strip()), []
        except json.JSONDecodeError:
            return "", [f"{module}: terraform console could not render {spec['expression']}: "
                        f"{(proc.stdout + proc.stderr).strip()[-2000:]}"]


# Checks of our own where checkov has none (YAML policies): public Cloud Run v2 invokers.
POLICIES = Path(__file__).resolve().parent / "policies"

RUNNERS = {"fmt": run_fmt, "validate": run_validate, "test": run_terraform_test, "checkov": run_checkov,
           "discovery": run_discovery}


def mutated_copy(src: Path, mutations: dict[str, tuple[str, str]], dest: Path | None = None) -> Path:
    """Copy ``src`` (a module folder or one file) into ``dest`` and apply regex edits; return the copy's path.

    ``mutations`` maps a path relative to ``src`` (for a file: its name) to ``(pattern, replacement)`` for
    :func:`re.sub` with ``re.M``. Every pattern must match, or :class:`ValueError` says which did not, so a
    mutation test cannot silently stop mutating when the module changes. The folder's siblings are linked
    beside the copy (``../cloudbuild.yaml``, ``../functions``), as in the real layout.
    """
    src = src.resolve()
    dest = Path(tempfile.mkdtemp(prefix="tfcheck-mutant-")) if dest is None else dest
    dest.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        copy = dest / src.name
        shutil.copytree(src, copy, ignore=_IGNORED, symlinks=True)
        for sibling in src.parent.iterdir():
            if sibling.name != src.name and not (dest / sibling.name).exists():
                # A sibling that is mutated too gets a real copy, the others a link.
                if any(k.startswith(f"../{sibling.name}") for k in mutations):
                    (shutil.copytree if sibling.is_dir() else shutil.copy2)(sibling, dest / sibling.name)
                else:
                    (dest / sibling.name).symlink_to(sibling)
        base = copy
    else:
        copy = dest / src.name
        shutil.copy2(src, copy)
        base = dest
    for rel, (pattern, replacement) in mutations.items():
        target = base / rel
        if not target.resolve().is_relative_to(dest.resolve()):
            raise ValueError(f"mutation of {rel} would edit a file outside the copy (through a link)")
        text = target.read_text()
        new, count = re.subn(pattern, replacement, text, flags=re.M)
        if count == 0:
            raise ValueError(f"mutation pattern {pattern!r} matched nothing in {rel}")
        target.write_text(new)
    return copy


def assert_fails(result: CheckResult, expected: str) -> CheckResult:
    """Assert that a check failed and that its output matches the regex ``expected``; return the result.

    Terraform wraps its messages at 80 columns and frames them with box characters, so the output is also matched
    with each run of whitespace and frame characters collapsed into one space."""
    if result.ok:
        raise AssertionError(f"{result.name} passed, but a failure matching {expected!r} was expected:\n"
                             f"{result.output}")
    flat = " ".join(re.sub(r"[│╷╵]", " ", result.output).split())
    if not (re.search(expected, result.output) or re.search(expected, flat)):
        raise AssertionError(f"{result.name} failed, but its output does not match {expected!r}:\n{result.output}")
    return result

