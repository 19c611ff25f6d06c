"""Build one self-contained deployable folder and zip per Cloud Function, the way Cloud Functions expects it:

    dist/functions/<name>/main.py           the entry point
    dist/functions/<name>/widget/widget.js  static files the function serves (ASSETS; the chat widget)
    dist/functions/<name>/shared/           the common package
    dist/functions/<name>/requirements.txt  the pinned runtime dependencies
    dist/functions/<name>-<sha256[:12]>.zip the same, zipped deterministically (content-addressed: the object name
                                            changes exactly when the code does, so Terraform redeploys only then)

    python -m infra.package                 # every function
    python -m infra.package ingest embed --out /tmp/bundles
"""

from __future__ import annotations

import argparse
import hashlib
import io
import pathlib
import shutil
import sys
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
FUNCTIONS = ("chat", "ingest", "embed", "scrape")
# Files next to a function's main.py that it reads at run time, relative to functions/<name>/.
ASSETS = {"chat": ("widget/widget.js",)}
_SKIP = {"__pycache__", ".pytest_cache"}


def _files(name: str) -> list[tuple[str, pathlib.Path]]:
    """(path inside the bundle, source file) pairs, sorted for a reproducible zip."""
    entries = [("main.py", ROOT / "functions" / name / "main.py"), ("requirements.txt", ROOT / "requirements.txt")]
    entries += [(asset, ROOT / "functions" / name / asset) for asset in ASSETS.get(name, ())]
    for path in sorted((ROOT / "shared").rglob("*")):
        if path.is_file() and not _SKIP.intersection(path.parts) and path.suffix in (".py", ".sql", ".json", ".txt"):
            entries.append((str(path.relative_to(ROOT)), path))
    return sorted(entries)


def build(name: str, out: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """Write the folder and the zip for one function; return both paths."""
    if name not in FUNCTIONS:
        raise SystemExit(f"unknown function {name!r}; choose from {', '.join(FUNCTIONS)}")
    folder = out / name
    if folder.exists():
        shutil.rmtree(folder)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for arcname, source in _files(name):
            target = folder / arcname
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            info = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))  # fixed time: same code, same hash
            info.external_attr = 0o644 << 16
            archive.writestr(info, source.read_bytes(), zipfile.ZIP_DEFLATED)
    data = buffer.getvalue()
    for old in out.glob(f"{name}-*.zip"):
        old.unlink()
    zip_path = out / f"{name}-{hashlib.sha256(data).hexdigest()[:12]}.zip"
    zip_path.write_bytes(data)
    return folder, zip_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("functions", nargs="*", default=list(FUNCTIONS), help="functions to package (default: all)")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "dist" / "functions", help="output directory")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.functions:
        folder, zip_path = build(name, args.out)
        print(f"{name:7} {folder}  {zip_path.name}  ({zip_path.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
