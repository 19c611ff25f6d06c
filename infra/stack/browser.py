"""The browser the widget tests drive: Debian's Chromium, launched by Playwright for Python.

Playwright's pip wheel carries its own Node driver but no browser, and `playwright install` downloads from the
internet, which CI does not have. So the browser comes from the distribution: `apt-get install chromium`, which
`make setup` runs when we are root (CI, containers) and otherwise prints for the developer to run.

    python -m infra.stack.browser     make sure Chromium is there (install it if we may), print what happened
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

DEFAULT_EXECUTABLE = "/usr/bin/chromium"
INSTALL_COMMAND = "apt-get install -y --no-install-recommends chromium"

# Headless and quiet: no GPU on CI machines, no sandbox as root, and no calls home (there is no internet in CI).
LAUNCH_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]


def executable() -> str:
    """The Chromium binary to drive: $CHROMIUM if set (another path, e.g. on macOS), else Debian's."""
    return os.environ.get("CHROMIUM") or DEFAULT_EXECUTABLE


def missing_reason() -> str | None:
    """Why the browser tests cannot run here (None when they can), with the command that fixes it."""
    path = executable()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        if shutil.which("apt-get"):
            return f"Chromium not found at {path}: run `sudo {INSTALL_COMMAND}` (or `make setup` as root)"
        return f"Chromium not found at {path}: install Chromium and set CHROMIUM to its executable"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is missing: run `make setup`"
    return None


def _apt(args: list[str], log_path: Path) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with open(log_path, "ab") as log:
        log.write(f"\n=== {' '.join(args)}\n".encode())
        log.flush()
        subprocess.run(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, check=True)


def _apt_knows_chromium() -> bool:
    """True if the package lists already offer a chromium candidate (then `apt-get update` can be skipped)."""
    result = subprocess.run(["apt-cache", "policy", "chromium"], check=False, capture_output=True, text=True)
    return result.returncode == 0 and "Candidate:" in result.stdout and "Candidate: (none)" not in result.stdout


def ensure_chromium(log_dir: Path) -> str | None:
    """Install Chromium with apt when it is missing and we may (root, apt-get present, default path).

    Returns why the browser is still unavailable, or None when it is there. Prints one line when it installs.
    """
    reason = missing_reason()
    if reason is None or executable() != DEFAULT_EXECUTABLE or os.path.exists(DEFAULT_EXECUTABLE):
        return reason
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return reason
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "chromium-install.log"
    print(f"installing Chromium for the browser tests: {INSTALL_COMMAND} (log: {log_path})", flush=True)
    update, install = ["apt-get", "update", "-q"], ["apt-get", *INSTALL_COMMAND.split()[1:], "-q"]
    try:
        if _apt_knows_chromium():
            try:
                _apt(install, log_path)
            except subprocess.CalledProcessError:  # stale package lists: the version they name is gone
                _apt(update, log_path)
                _apt(install, log_path)
        else:
            _apt(update, log_path)
            _apt(install, log_path)
    except subprocess.CalledProcessError as exc:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
        return f"`{' '.join(exc.cmd)}` failed (exit {exc.returncode}); end of {log_path}:\n{tail}"
    return missing_reason()


def main() -> int:
    reason = ensure_chromium(Path(__file__).resolve().parents[2] / ".local" / "logs")
    if reason:
        print(f"browser tests: {reason}", file=sys.stderr)
        return 1
    version = subprocess.run([executable(), "--version"], check=False, capture_output=True, text=True).stdout.strip()
    print(f"browser tests: {version or executable()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
