"""Check what `make dev` / `make test` need from the machine beyond Python packages, and say how to get it.

Python packages are installed by make itself; Java and the Firestore emulator come with the gcloud SDK.
"""

from __future__ import annotations

import shutil
import sys

from infra.stack.firestore import INSTALL_HINT


def problems() -> list[str]:
    found = []
    if shutil.which("java") is None:
        found.append("Java 17+ is needed by the Firestore emulator: install a JRE (e.g. apt-get install openjdk-17-jre-headless)")
    if shutil.which("gcloud") is None:
        found.append(f"the gcloud SDK provides the Firestore emulator. {INSTALL_HINT}")
    return found


def main() -> int:
    found = problems()
    for problem in found:
        print(f"missing: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
