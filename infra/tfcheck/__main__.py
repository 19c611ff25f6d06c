"""``python -m infra.tfcheck [fmt|validate|test|checkov|discovery|all] [--dir terraform]``: run the offline
Terraform checks and exit non-zero when any fails or a tool is missing (see infra/tfcheck/checks.py)."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from infra.tfcheck.checks import CHECKS, RUNNERS
from infra.tfcheck.toolchain import ToolMissing


def main(argv: list[str] | None = None) -> int:
    """Run the chosen checks on ``--dir`` and print each result; 0 only when all passed."""
    parser = argparse.ArgumentParser(prog="python -m infra.tfcheck", description=__doc__.splitlines()[0])
    parser.add_argument("check", nargs="?", default="all", choices=(*CHECKS, "all"))
    parser.add_argument("--dir", type=Path, default=Path("terraform"), help="the Terraform root module")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="tfcheck: %(message)s", stream=sys.stderr)
    if not args.dir.is_dir():
        print(f"tfcheck: {args.dir} is not a folder: nothing to check", file=sys.stderr)
        return 2
    failed = []
    for name in CHECKS if args.check == "all" else (args.check,):
        started = time.monotonic()
        try:
            result = RUNNERS[name](args.dir)
        except ToolMissing as exc:
            print(f"{name}: TOOL MISSING: {exc}")
            failed.append(name)
            continue
        print(f"{name}: {'ok' if result.ok else 'FAILED'} ({time.monotonic() - started:.1f} s)")
        if result.output:
            print(result.output)
        sys.stdout.flush()
        if not result.ok:
            failed.append(name)
    if failed:
        print(f"tfcheck: FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("tfcheck: all passed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
