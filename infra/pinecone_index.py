"""Create (or check) the Pinecone serverless index the product writes to, with the embedder's dimension and metric.

    python -m infra.pinecone_index [--name support-kb] [--cloud gcp] [--region us-central1] [--metric cosine]
                                   [--check] [--timeout 300]

Reads PINECONE_API_KEY, and the embedder's dimension from the settings (EMBEDDER=gemini: EMBEDDING_DIMENSION;
local: 384; hash: 256). The metric is cosine by default: the Pinecone adapter (shared/vectors) reads scores as cosine
similarities, and the answerability gate's thresholds were fitted on them. PINECONE_CONTROLLER_HOST points the SDK
at another control plane (the stand-in: `python -m infra.standins.pinecone_server --control-plane`).

- The index is missing: it is created (a managed, serverless index whose one dense vector field is the one the
  vectors API addresses), and the command waits until it is ready. With `--check` it fails instead.
- The index exists: its dimension and metric must match. A mismatch fails with what to do (an index cannot change
  either; upserts of another width are refused, and another metric silently ruins ranking and the gate).

Prints the index host, which is what PINECONE_INDEX_HOST must be. Exit status: 0 ready and matching, 1 mismatch or
missing with --check, 2 configuration or Pinecone errors (key, timeout).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

DEFAULT_NAME = "support-kb"
METRICS = ("cosine", "dotproduct", "euclidean")
# The field a legacy vector index has: the vectors API (upsert/query, what shared/vectors/pinecone.py calls)
# addresses an index's dense vectors by this reserved name.
VECTOR_FIELD = "_values"
LOCAL_DIMENSION = 384  # all-MiniLM-L6-v2 (shared/embeddings/local.py)
HASH_DIMENSION = 256  # the hashing fake's default (shared/embeddings/hashing.py)


class IndexProblem(Exception):
    """The index is missing (with --check) or does not match; the message says what to do. Exit status 1."""


class SetupError(Exception):
    """A setting is missing or Pinecone could not be used (key refused, not ready in time). Exit status 2."""


@dataclass(frozen=True)
class IndexSpec:
    """What the product needs of its index."""

    name: str
    dimension: int
    metric: str
    cloud: str
    region: str


@dataclass(frozen=True)
class Outcome:
    host: str
    created: bool
    notes: tuple[str, ...] = ()


def embedder_dimension(environ: Mapping[str, str]) -> tuple[int, str]:
    """The width of the vectors the configured embedder writes, and where that number comes from."""
    from shared.config import Settings

    settings = Settings.from_env(dict(environ))
    if settings.embedder == "gemini":
        return settings.embedding_dimension, f"EMBEDDER=gemini, EMBEDDING_DIMENSION={settings.embedding_dimension}"
    if settings.embedder == "local":
        return LOCAL_DIMENSION, "EMBEDDER=local (all-MiniLM-L6-v2)"
    if settings.embedder == "hash":
        return HASH_DIMENSION, "EMBEDDER=hash (test embedder)"
    raise SetupError(f"unknown EMBEDDER {settings.embedder!r}: set local, gemini or hash")


def _dense_fields(model) -> dict[str, tuple[int | None, str | None]]:
    """The index's dense vector fields: name -> (dimension, metric)."""
    from pinecone.models.indexes.schema import DenseVectorField

    fields = getattr(getattr(model, "schema", None), "fields", None) or {}
    return {name: (f.dimension, f.metric) for name, f in fields.items() if isinstance(f, DenseVectorField)}


def check_matches(model, spec: IndexSpec) -> list[str]:
    """Raise IndexProblem if the existing index cannot serve the product; return notes on harmless differences."""
    dense = _dense_fields(model)
    if len(dense) != 1:
        raise IndexProblem(f"index {spec.name!r} has {len(dense)} dense vector fields ({', '.join(dense) or 'none'}); "
                           f"the product needs exactly one: create a new index with another --name")
    (field, (dimension, metric)), = dense.items()
    problems = []
    if dimension != spec.dimension:
        problems.append(f"dimension {dimension}, the embedder writes {spec.dimension}")
    if (metric or "").lower() != spec.metric:
        problems.append(f"metric {metric}, the product needs {spec.metric}")
    if problems:
        advice = "Create a new index (another --name) and re-ingest"
        if dimension != spec.dimension:
            advice += f", or make the embedder match (EMBEDDER=gemini with EMBEDDING_DIMENSION={dimension})"
        raise IndexProblem(f"index {spec.name!r} does not match: {'; '.join(problems)}. An index's dimension and "
                           f"metric cannot be changed. {advice}.")
    notes = []
    if field != VECTOR_FIELD:
        notes.append(f"its vector field is {field!r}, not {VECTOR_FIELD!r}: if upserts are refused, recreate it")
    deployment = getattr(model, "deployment", None)
    where = (getattr(deployment, "cloud", None), getattr(deployment, "region", None))
    if where != (spec.cloud, spec.region):
        notes.append(f"it runs in {where[0]} {where[1]}, not {spec.cloud} {spec.region} (latency only)")
    return notes


def ensure_index(pc, spec: IndexSpec, *, create: bool = True, timeout: float = 300.0, poll_seconds: float = 5.0,
                 sleep: Callable[[float], None] = time.sleep) -> Outcome:
    """Create the index if it is missing (unless `create` is False), wait until it is ready, check what exists."""
    from pinecone.errors import ConflictError, NotFoundError

    created = False
    try:
        model = pc.indexes.describe(spec.name)
    except NotFoundError:
        if not create:
            raise IndexProblem(f"index {spec.name!r} does not exist: run without --check to create it") from None
        try:
            model = pc.indexes.create(
                name=spec.name,
                schema={"fields": {VECTOR_FIELD: {"type": "dense_vector", "dimension": spec.dimension,
                                                  "metric": spec.metric}}},
                deployment={"deployment_type": "managed", "cloud": spec.cloud, "region": spec.region},
                timeout=-1,  # we wait ourselves, with our own deadline and message
            )
            created = True
        except ConflictError:  # created meanwhile by someone else: check theirs like any existing index
            model = pc.indexes.describe(spec.name)
    notes = check_matches(model, spec)
    deadline = time.monotonic() + timeout
    while not model.status.ready:
        if model.status.state in ("InitializationFailed", "Terminating", "Disabled"):
            raise SetupError(f"index {spec.name!r} is {model.status.state}: it will not become ready")
        if time.monotonic() >= deadline:
            raise SetupError(f"index {spec.name!r} was not ready after {timeout:g} s (state {model.status.state}); "
                             f"run the command again to keep waiting")
        sleep(poll_seconds)
        model = pc.indexes.describe(spec.name)
    return Outcome(host=model.host, created=created, notes=tuple(notes))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m infra.pinecone_index", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default=DEFAULT_NAME, help=f"index name (default {DEFAULT_NAME})")
    parser.add_argument("--cloud", default="gcp", choices=("gcp", "aws", "azure"), help="cloud (default gcp)")
    parser.add_argument("--region", default="us-central1", help="region (default us-central1)")
    parser.add_argument("--metric", default="cosine", choices=METRICS,
                        help="similarity metric (default cosine, what the product's Pinecone adapter assumes)")
    parser.add_argument("--check", action="store_true", help="only check: never create; fail if missing")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the index to be ready")
    parser.add_argument("--poll-seconds", type=float, default=5.0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = parse_args(argv)
    environ = os.environ if environ is None else environ
    try:
        key = environ.get("PINECONE_API_KEY", "")
        if not key:
            raise SetupError("set PINECONE_API_KEY to a key of the Pinecone project the index belongs in")
        dimension, source = embedder_dimension(environ)
        spec = IndexSpec(args.name, dimension, args.metric, args.cloud, args.region)
        from pinecone import Pinecone
        from pinecone.errors import PineconeError

        pc = Pinecone(api_key=key, host=environ.get("PINECONE_CONTROLLER_HOST") or None)
        print(f"index {spec.name!r}: dimension {dimension} ({source}), metric {spec.metric}")
        try:
            outcome = ensure_index(pc, spec, create=not args.check, timeout=args.timeout,
                                   poll_seconds=args.poll_seconds)
        except PineconeError as exc:
            raise SetupError(f"Pinecone refused the request: {exc}") from exc
    except IndexProblem as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{'created' if outcome.created else 'found'} and ready; it matches")
    for note in outcome.notes:
        print(f"note: {note}")
    print(f"\nPINECONE_INDEX_HOST={outcome.host}\n\n"
          "Store it with the functions' settings (chat, ingest, embed, scrape), next to VECTOR_BACKEND=pinecone and\n"
          "PINECONE_API_KEY (a secret): locally `export PINECONE_INDEX_HOST=...`; deployed, as an environment\n"
          f"variable, e.g. `gcloud functions deploy chat --update-env-vars PINECONE_INDEX_HOST={outcome.host}`.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
