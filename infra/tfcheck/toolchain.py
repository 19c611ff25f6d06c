"""The tools the checks run, each installed once and cached: terraform (from the machine), the stand-in provider
plugin in ``.venv-tfcheck``, checkov in ``.venv-checkov``, and the provider schema under ``.cache/tfcheck/``.

A virtualenv is rebuilt only when its requirements file changes (its hash is kept in ``.installed``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from infra.tfcheck import schema

log = logging.getLogger(__name__)

REPO_ROOT = schema.REPO_ROOT
TFCHECK_VENV = REPO_ROOT / ".venv-tfcheck"
CHECKOV_VENV = REPO_ROOT / ".venv-checkov"
TFCHECK_REQUIREMENTS = REPO_ROOT / "infra" / "requirements-tfcheck.txt"
CHECKOV_REQUIREMENTS = REPO_ROOT / "infra" / "requirements-checkov.txt"
PLUGIN_DIR = schema.CACHE_DIR / "plugins"
PROVIDER_SCRIPT = Path(__file__).with_name("provider.py")


class ToolMissing(RuntimeError):
    """A tool a check needs is not on this machine and cannot be installed by the check itself."""


def terraform() -> str:
    """The terraform executable, or :class:`ToolMissing` saying how to get one."""
    found = shutil.which(os.environ.get("TERRAFORM", "terraform"))
    if not found:
        raise ToolMissing("terraform is not installed (not on PATH; set TERRAFORM to its path). The Terraform checks "
                          "need terraform >= 1.7 (for `terraform test` with mock_provider); nothing else is fetched.")
    return found


def ensure_venv(venv: Path, requirements: Path) -> Path:
    """Create ``venv`` from the pinned ``requirements`` unless it was built from the same file; return its python."""
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return python
    log.info("installing %s into %s (once)", requirements.name, venv.name)
    if not python.exists():
        _run_or_fail([sys.executable, "-m", "venv", str(venv)], f"creating {venv.name}")
    _run_or_fail([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                  "-r", str(requirements)], f"installing {requirements.name} into {venv.name}")
    stamp.write_text(digest + "\n")
    return python


def _run_or_fail(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT)
    if proc.returncode != 0:
        raise ToolMissing(f"{what} failed (exit {proc.returncode}):\n{(proc.stderr or proc.stdout).strip()[-3000:]}")


def provider_plugin_dir() -> Path:
    """A ``-plugin-dir`` holding the stand-in hashicorp/google at the version the schema was generated from."""
    python = ensure_venv(TFCHECK_VENV, TFCHECK_REQUIREMENTS)
    schema_file = schema.schema_path()
    if not schema_file.exists():
        # In a process of its own: reading the 131 MB .jsii costs ~750 MB that the caller (pytest) would keep.
        _run_or_fail([sys.executable, "-m", "infra.tfcheck.schema"], "rebuilding the google provider schema")
    version = schema.PROVIDER_VERSION
    exe_dir = PLUGIN_DIR / "registry.terraform.io" / "hashicorp" / "google" / version / "linux_amd64"
    exe_dir.mkdir(parents=True, exist_ok=True)
    exe = exe_dir / f"terraform-provider-google_v{version}"
    # Absolute paths: Terraform runs the plugin from its own working directory. Rewritten on every run because a
    # clone in another folder has other paths; -I keeps the repo's own modules off the plugin's import path.
    script = (f'#!/bin/sh\nexec "{python}" -I "{PROVIDER_SCRIPT}" --schema "{schema_file}"\n')
    if not exe.exists() or exe.read_text() != script:
        exe.write_text(script)
        exe.chmod(0o755)
    return PLUGIN_DIR


def checkov() -> Path:
    """The checkov executable in its own virtualenv (its two HCL parsers clash with other packages)."""
    python = ensure_venv(CHECKOV_VENV, CHECKOV_REQUIREMENTS)
    return python.parent / "checkov"


def discovery_document(name: str) -> Path:
    """A Google API discovery document shipped in google-api-python-client (in ``.venv-tfcheck``)."""
    ensure_venv(TFCHECK_VENV, TFCHECK_REQUIREMENTS)
    documents = "site-packages/googleapiclient/discovery_cache/documents"
    found = sorted(TFCHECK_VENV.glob(f"lib/python*/{documents}/{name}.json"))
    if not found:
        raise ToolMissing(f"discovery document {name}.json not found in {TFCHECK_VENV.name}")
    return found[0]
