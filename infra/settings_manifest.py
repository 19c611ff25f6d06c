"""Write the names of every setting the code reads (shared/config.py) to terraform/code_settings.json.

    python -m infra.settings_manifest           # rewrite the file
    python -m infra.settings_manifest --check   # exit 1 when the file is out of date

`terraform test` (terraform/tests/settings.tftest.hcl) checks that the deployment sets each of them, reads it from
Secret Manager, or leaves it at its default with a reason; tests/unit/test_settings_manifest.py keeps this file equal
to the code, so a new setting cannot reach production undecided.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

from shared.config import fields

MANIFEST = pathlib.Path(__file__).resolve().parent.parent / "terraform" / "code_settings.json"


def render() -> str:
    names = sorted(f.metadata["env"] for f in fields())
    return json.dumps({"settings": names}, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail when the file differs from the code")
    args = parser.parse_args(argv)
    if args.check:
        if not MANIFEST.exists() or MANIFEST.read_text() != render():
            print(f"{MANIFEST} is out of date: run python -m infra.settings_manifest", file=sys.stderr)
            return 1
        return 0
    MANIFEST.write_text(render())
    print(f"wrote {MANIFEST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
