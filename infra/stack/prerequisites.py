"""Check what `make dev` / `make test` need from the machine beyond Python packages, and say how to get it.

Python packages are installed by make itself; Java and the Firestore emulator come with the gcloud SDK. Chromium,
for the browser tests, is installed here with apt when we run as root (CI, containers); otherwise we print the
command. A missing browser fails the setup only under CI=true, where the browser tests must run: a developer can
still `make dev` and run the other tests without it.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from infra.stack import browser
from infra.stack.firestore import INSTALL_HINT

ROOT = Path(__file__).resolve().parents[2]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def problems() -> list[str]:
    found = []
    if shutil.which("java") is None:
        found.append("Java 17+ is needed by the Firestore emulator: install a JRE (e.g. apt-get install openjdk-17-jre-headless)")
    if shutil.which("gcloud") is None:
        found.append(f"the gcloud SDK provides the Firestore emulator. {INSTALL_HINT}")
    return found


def main() -> int:
    found = problems()
    no_browser = browser.ensure_chromium(ROOT / ".local" / "logs")
    if no_browser and in_ci():
        found.append(f"the browser tests need Chromium. {no_browser}")
    elif no_browser:
        print(f"note: the browser tests will be skipped: {no_browser}", file=sys.stderr)
    for problem in found:
        print(f"missing: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
