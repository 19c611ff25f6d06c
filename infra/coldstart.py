"""Cold start: how long importing each function's module takes in a fresh interpreter, and which heavy libraries it
pulls in (none should be: models, SDKs and parsers load on first use).

    python -m infra.coldstart [--repeat 5] [--budget 1.5]

Prints, per function, the median and worst import time over `--repeat` fresh processes, and the heavy modules that
were imported; exits 1 if a median is over the budget or a heavy module is imported at import time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ("chat", "ingest", "embed", "scrape")
# Libraries that cost hundreds of milliseconds (or seconds) to import; each must wait until a request needs it.
HEAVY = ("torch", "sentence_transformers", "transformers", "google.genai", "pinecone", "pypdf", "docx", "bs4",
         "numpy", "google.cloud.sql.connector")

_PROBE = """
import importlib.util, json, sys, time
start = time.perf_counter()
spec = importlib.util.spec_from_file_location("main", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["main"] = module
spec.loader.exec_module(module)
elapsed = time.perf_counter() - start
heavy = json.loads(sys.argv[2])
print(json.dumps({"seconds": elapsed, "heavy": [m for m in heavy if m in sys.modules]}))
"""


def measure(function: str) -> dict:
    """Import functions/<function>/main.py once in a fresh interpreter (the way functions-framework loads it)."""
    return measure_file(ROOT / "functions" / function / "main.py")


def measure_file(path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path), json.dumps(HEAVY)],
        cwd=ROOT, capture_output=True, text=True, check=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--budget", type=float, default=1.5, help="seconds allowed for the median import")
    parser.add_argument("functions", nargs="*", default=list(FUNCTIONS))
    args = parser.parse_args(argv)
    failed = False
    print(f"{'function':<10}{'median s':>10}{'worst s':>10}  heavy modules imported")
    for function in args.functions:
        runs = [measure(function) for _ in range(args.repeat)]
        times = [r["seconds"] for r in runs]
        heavy = sorted({m for r in runs for m in r["heavy"]})
        median = statistics.median(times)
        failed |= median > args.budget or bool(heavy)
        print(f"{function:<10}{median:>10.3f}{max(times):>10.3f}  {', '.join(heavy) or '-'}")
    print(f"budget {args.budget:.2f} s: {'FAILED' if failed else 'ok'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
