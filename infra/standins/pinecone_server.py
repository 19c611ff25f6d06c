"""In-memory stand-ins for Pinecone, for the real `pinecone` SDK: the data plane of one serverless index
(`PineconeIndexServer`) and the control plane that creates such indexes (`PineconeControlPlane`).

    with PineconeIndexServer(dimension=384) as server:
        index = Pinecone(api_key="test").index(host=server.url)   # the scheme is required: a bare host means https

    with PineconeControlPlane() as control:
        pc = Pinecone(api_key="test", host=control.url)          # or PINECONE_CONTROLLER_HOST=control.url
        model = pc.indexes.create(name="kb", schema={"fields": {"_values": {"type": "dense_vector",
                                                                            "dimension": 384, "metric": "cosine"}}})
        pc.index(host=model.host)                                  # each index's data plane, on a port of its own

Emulated, in the wire format pinecone 10.x sends and parses (camelCase JSON, `Api-Key` header; the
`X-Pinecone-Api-Version` header is accepted and not checked):

    POST /vectors/upsert         {vectors: [{id, values, metadata?}], namespace?}  -> {upsertedCount}
    POST /query                  {topK, vector | id, filter?, includeValues, includeMetadata, namespace?}
                                 -> {matches: [{id, score, values, metadata?}], namespace, usage, results: []}
    GET  /vectors/fetch          ?ids=a&ids=b&namespace=  -> {vectors: {id: {id, values, metadata?}}, namespace, usage}
    POST /vectors/delete         {namespace, ids | filter | deleteAll}  -> {}
    GET  /vectors/list           ?namespace=&prefix=&limit=&paginationToken=  -> {vectors: [{id}], pagination?, ...}
    POST /describe_index_stats   {}  -> {namespaces: {name: {vectorCount}}, dimension, indexFullness,
                                        totalVectorCount, metric, vectorType}

Behaviour kept from the real service: a fixed dimension and metric (cosine, dotproduct or euclidean, where
the score is the squared distance and lower is better); exact search, best match first; upsert overwrites by
id; values and scores are float32 (0.1 comes back as 0.10000000149...), metadata numbers doubles (2020 comes
back as 2020.0) and null metadata values are dropped; the default namespace is "" on the wire
and "__default__" in stats; metadata filters with $eq $ne $gt $gte $lt $lte $in $nin $exists $and $or and
implicit equality, where a list-of-strings field matches $eq/$in if any element does; the documented limits
(1000 vectors or 2 MiB per upsert, 40 KB of metadata per vector, topK <= 1000 with values or metadata);
deleting from a namespace that was never written answers 404 "Namespace not found", as serverless does.
Errors use the data plane's body `{"code": <gRPC code>, "message": ..., "details": []}`, e.g. 400
"Vector dimension 3 does not match the dimension of the index 384"; a missing or wrong key answers 401
"Invalid API Key" as plain text.

Not emulated: sparse and hybrid vectors, update, fetch_by_metadata, namespaces and imports endpoints,
integrated (records) indexes, gRPC, eventual consistency (writes are visible at once) and real usage
accounting (usage is a nominal 1 read unit). The dimension, metadata,
namespace and key messages are Pinecone's; the wording of other errors (filters, limits) is our own. Where
Pinecone's docs are silent we follow MongoDB, whose filter language it borrows: $ne and $nin also match
records that lack the field, and a query by an id that is not stored returns no matches.

Test hooks: `requests` (every request as method, path, json), `fail_next(count, status)` and `reset()`.

The control plane speaks API version 2026-07 (what pinecone 10.x sends; snake_case JSON, `Api-Key` header):

    POST   /indexes          {name, schema: {fields: {<name>: {type: dense_vector, dimension, metric}}},
                              deployment?: {deployment_type: managed, cloud, region}, deletion_protection?, tags?,
                              read_capacity?}  -> 201 IndexModel
    GET    /indexes          -> {indexes: [IndexModel]}
    GET    /indexes/{name}   -> IndexModel: {name, host, status: {ready, state}, schema, deployment,
                                             deletion_protection, read_capacity: {mode, status: {state}}, tags}
    DELETE /indexes/{name}   -> 202 (403 while deletion_protection is "enabled")

A new index reports `{"ready": false, "state": "Initializing"}` to its first `ready_after` describes (1 by default),
then `{"ready": true, "state": "Ready"}`, so a client has to wait as it must with the real service. Each index gets
its own `PineconeIndexServer` with the declared dimension and metric, and the same key. Errors are the control
plane's body `{"error": {"code", "message"}, "status"}`: 409 ALREADY_EXISTS "Resource already exists", 404
NOT_FOUND "Resource <name> not found", 400 INVALID_ARGUMENT, 401 UNAUTHENTICATED "Invalid API Key". Deviations: the
host is a full `http://127.0.0.1:<port>` URL (the real one is a bare `<name>-<id>.svc.<region>.pinecone.io`,
which the SDK reads as https); the name is required (the service would assign one); only managed (serverless)
deployments and one dense vector field are accepted; the cloud and region are recorded, not checked against
Pinecone's list.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import numpy as np

from infra.standins.http import BadJson, JsonHandler, StandinServer, cli_parser

METRICS = ("cosine", "dotproduct", "euclidean")
DEFAULT_NAMESPACE_LABEL = "__default__"  # how the default namespace ("" on the wire) appears in stats
MAX_UPSERT_VECTORS = 1000
MAX_UPSERT_BYTES = 2 * 1024 * 1024
MAX_METADATA_BYTES = 40 * 1024
MAX_TOP_K = 10_000
MAX_TOP_K_WITH_DATA = 1000
MAX_FETCH_IDS = 1000
MAX_LIST_LIMIT = 100
MAX_ID_LENGTH = 512

# The data plane reports errors with gRPC status codes in the body.
_GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 412: 9, 413: 3, 429: 8, 500: 13, 503: 14, 504: 4}
_INJECTED_MESSAGES = {
    429: "Request failed. You've reached the rate limit for this index; retry with backoff.",
    500: "Internal error",
    503: "Service is unavailable; retry later.",
    504: "Deadline exceeded",
}


class PineconeApiError(Exception):
    """An error answer: HTTP status plus the message for Pinecone's error body."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"code": _GRPC_CODES.get(self.status, 2), "message": self.message, "details": []}


def _bad_request(message: str) -> PineconeApiError:
    return PineconeApiError(400, message)


@dataclass
class _Record:
    values: np.ndarray  # float32, as Pinecone stores them
    metadata: dict[str, Any] | None


class PineconeIndexServer(StandinServer):
    """One serverless index's data plane, in memory. Thread-safe; start with `start()` or a `with` block."""

    def __init__(
        self,
        dimension: int,
        metric: str = "cosine",
        *,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        """`api_key=None` accepts any non-empty key; otherwise only that one."""
        if dimension < 1:
            raise ValueError("dimension must be a positive integer")
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        super().__init__(_PineconeHandler, host, port)
        self.dimension = dimension
        self.metric = metric
        self.api_key = api_key
        self._namespaces: dict[str, dict[str, _Record]] = {}
        self._request_ids = 0

    def fail_next(self, count: int = 1, status: int = 503) -> None:
        """Answer the next `count` authenticated requests with `status` and a Pinecone error body.

        The SDK retries 408, 429 and 5xx itself (up to 3 retries, backoff from 0.25 s, and a process-wide
        retry budget per host), so one injected 503 is normally invisible to the caller; inject 4 or more
        to see the error surface.
        """
        self.queue_failures(count, status)

    def reset(self) -> None:
        """Forget all vectors, the request log and queued failures."""
        with self.lock:
            super().reset()
            self._namespaces.clear()

    def next_request_id(self) -> str:
        with self.lock:
            self._request_ids += 1
            return str(self._request_ids)

    # --- operations: body or query in, response payload out; raise PineconeApiError for error answers ---

    def upsert(self, body: dict[str, Any]) -> dict[str, Any]:
        vectors = body.get("vectors")
        if not isinstance(vectors, list) or not vectors:
            raise _bad_request("No vectors provided")
        if len(vectors) > MAX_UPSERT_VECTORS:
            raise _bad_request(f"Batch size exceeds the maximum of {MAX_UPSERT_VECTORS} vectors per upsert request")
        records = {}
        for vector in vectors:
            if not isinstance(vector, dict):
                raise _bad_request("Each vector must be an object with id and values")
            vector_id = _require_id(vector.get("id"))
            if vector.get("sparseValues") is not None:
                raise _bad_request("Sparse values are not supported by this stand-in (dense indexes only)")
            values = self._dense_values(vector.get("values"), "Vector dimension")
            if self.metric == "cosine" and not np.any(values):
                raise _bad_request("Dense vectors must contain at least one non-zero value")
            records[vector_id] = _Record(values, _validated_metadata(vector.get("metadata")))
        with self.lock:
            self._namespaces.setdefault(_namespace(body), {}).update(records)
        return {"upsertedCount": len(vectors)}

    def query(self, body: dict[str, Any]) -> dict[str, Any]:
        top_k = body.get("topK")
        if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= MAX_TOP_K:
            raise _bad_request(f"topK must be an integer between 1 and {MAX_TOP_K}")
        include_values = bool(body.get("includeValues"))
        include_metadata = bool(body.get("includeMetadata"))
        if (include_values or include_metadata) and top_k > MAX_TOP_K_WITH_DATA:
            raise _bad_request(
                f"topK must be at most {MAX_TOP_K_WITH_DATA} when includeValues or includeMetadata is true"
            )
        if body.get("sparseVector") is not None:
            raise _bad_request("Sparse query vectors are not supported by this stand-in (dense indexes only)")
        if ("vector" in body) == ("id" in body):
            raise _bad_request("Exactly one of vector or id must be provided")
        accepts = _compile_filter(body["filter"]) if body.get("filter") else None
        namespace = _namespace(body)
        with self.lock:
            stored = dict(self._namespaces.get(namespace, {}))
        if "id" in body:
            anchor = stored.get(_require_id(body["id"]))
            query_vector = anchor.values if anchor is not None else None
        else:
            query_vector = self._dense_values(body["vector"], "Query vector dimension")
        candidates = [(i, r) for i, r in stored.items() if accepts is None or accepts(r.metadata or {})]
        matches = []
        if query_vector is not None and candidates:
            scores = self._scores(query_vector, np.stack([r.values for _, r in candidates]))
            best_first = sorted(range(len(candidates)), key=lambda n: (self._rank_key(scores[n]), candidates[n][0]))
            for n in best_first[:top_k]:
                vector_id, record = candidates[n]
                match: dict[str, Any] = {"id": vector_id, "score": float(np.float32(scores[n]))}
                match["values"] = record.values.tolist() if include_values else []
                if include_metadata and record.metadata is not None:
                    match["metadata"] = record.metadata
                matches.append(match)
        return {"results": [], "matches": matches, "namespace": namespace, "usage": {"readUnits": 1}}

    def fetch(self, query: dict[str, list[str]]) -> dict[str, Any]:
        ids = query.get("ids", [])
        if not ids:
            raise _bad_request("No ids provided")
        if len(ids) > MAX_FETCH_IDS:
            raise _bad_request(f"Too many ids: at most {MAX_FETCH_IDS} can be fetched at once")
        namespace = _namespace({"namespace": _single(query, "namespace")})
        with self.lock:
            stored = self._namespaces.get(namespace, {})
            vectors = {i: _vector_json(i, stored[i]) for i in ids if i in stored}
        return {"vectors": vectors, "namespace": namespace, "usage": {"readUnits": 1}}

    def delete(self, body: dict[str, Any]) -> dict[str, Any]:
        ids, delete_all, flt = body.get("ids"), body.get("deleteAll", False), body.get("filter")
        if sum(1 for selector in (ids, delete_all, flt) if selector) != 1:
            raise _bad_request("Exactly one of ids, deleteAll or filter must be provided")
        if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
            raise _bad_request("ids must be a list of strings")
        accepts = _compile_filter(flt) if flt else None
        namespace = _namespace(body)
        with self.lock:
            stored = self._namespaces.get(namespace)
            if stored is None:
                raise PineconeApiError(404, "Namespace not found")
            if delete_all:
                stored.clear()
            elif ids:
                for vector_id in ids:
                    stored.pop(vector_id, None)
            else:
                for vector_id in [i for i, r in stored.items() if accepts(r.metadata or {})]:
                    del stored[vector_id]
        return {}

    def list_ids(self, query: dict[str, list[str]]) -> dict[str, Any]:
        namespace = _namespace({"namespace": _single(query, "namespace")})
        prefix = _single(query, "prefix") or ""
        raw_limit = _single(query, "limit")
        try:
            limit = int(raw_limit) if raw_limit else MAX_LIST_LIMIT
        except ValueError:
            raise _bad_request("limit must be an integer") from None
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise _bad_request(f"limit must be between 1 and {MAX_LIST_LIMIT}")
        after = _decode_token(_single(query, "paginationToken"))
        with self.lock:
            ids = sorted(i for i in self._namespaces.get(namespace, {}) if i.startswith(prefix) and i > after)
        page = ids[:limit]
        response: dict[str, Any] = {"vectors": [{"id": i} for i in page], "namespace": namespace}
        if len(ids) > limit:
            response["pagination"] = {"next": _encode_token(page[-1])}
        response["usage"] = {"readUnits": 1}
        return response

    def describe_index_stats(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("filter"):
            raise _bad_request("Serverless indexes do not support describing index stats with a metadata filter")
        with self.lock:
            counts = {(ns or DEFAULT_NAMESPACE_LABEL): len(records) for ns, records in self._namespaces.items()}
        return {
            "namespaces": {name: {"vectorCount": count} for name, count in sorted(counts.items())},
            "dimension": self.dimension,
            "indexFullness": 0.0,
            "totalVectorCount": sum(counts.values()),
            "metric": self.metric,
            "vectorType": "dense",
        }

    # --- helpers ---

    def _dense_values(self, values: Any, what: str) -> np.ndarray:
        if not isinstance(values, list) or not all(_is_number(v) for v in values):
            raise _bad_request("Vector values must be a list of numbers")
        if len(values) != self.dimension:
            raise _bad_request(f"{what} {len(values)} does not match the dimension of the index {self.dimension}")
        return np.asarray(values, dtype=np.float32)

    def _scores(self, query: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        q, m = query.astype(np.float64), matrix.astype(np.float64)
        if self.metric == "euclidean":
            return ((m - q) ** 2).sum(axis=1)
        dots = m @ q
        if self.metric == "dotproduct":
            return dots
        norms = np.linalg.norm(m, axis=1) * np.linalg.norm(q)
        return np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)

    def _rank_key(self, score: float) -> float:
        return score if self.metric == "euclidean" else -score


# --- request parsing and validation ---


def _namespace(body: dict[str, Any]) -> str:
    namespace = body.get("namespace") or ""
    if not isinstance(namespace, str):
        raise _bad_request("namespace must be a string")
    return "" if namespace == DEFAULT_NAMESPACE_LABEL else namespace


def _single(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _require_id(vector_id: Any) -> str:
    if not isinstance(vector_id, str) or not vector_id:
        raise _bad_request("Vector id must be a non-empty string")
    if len(vector_id) > MAX_ID_LENGTH:
        raise _bad_request(f"Vector id must be at most {MAX_ID_LENGTH} characters")
    return vector_id


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_metadata_value(value: Any) -> bool:
    if isinstance(value, list):
        return all(isinstance(item, str) for item in value)
    return isinstance(value, (str, bool)) or _is_number(value)


def _validated_metadata(metadata: Any) -> dict[str, Any] | None:
    """Check metadata as the server does and return it as stored: nulls dropped, numbers as doubles."""
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise _bad_request("Metadata must be an object")
    stored = {}
    for key, value in metadata.items():
        if value is None:
            continue  # the server strips null values on write rather than refusing them
        if not _is_metadata_value(value):
            raise _bad_request(
                "Metadata value must be a string, number, boolean or list of strings, "
                f"got '{_render_metadata_value(value)}' for field '{key}'"
            )
        stored[key] = float(value) if _is_number(value) else value  # 2020 comes back as 2020.0
    size = len(json.dumps(stored, separators=(",", ":")).encode())
    if size > MAX_METADATA_BYTES:
        raise _bad_request(
            f"Metadata size is {size} bytes, which exceeds the limit of {MAX_METADATA_BYTES} bytes per vector"
        )
    return stored


def _render_metadata_value(value: Any) -> str:
    """A rejected value as the server quotes it: compact JSON, numbers as doubles, cut at 16 bytes."""

    def as_floats(v: Any) -> Any:
        if _is_number(v):
            return float(v)
        if isinstance(v, dict):
            return {k: as_floats(item) for k, item in v.items()}
        return [as_floats(item) for item in v] if isinstance(v, list) else v

    rendered = json.dumps(as_floats(value), separators=(",", ":"), ensure_ascii=False).encode()
    return rendered[:16].decode(errors="ignore") + "..." if len(rendered) > 16 else rendered.decode()


def _vector_json(vector_id: str, record: _Record) -> dict[str, Any]:
    vector: dict[str, Any] = {"id": vector_id, "values": record.values.tolist()}
    if record.metadata is not None:
        vector["metadata"] = record.metadata
    return vector


def _encode_token(last_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_id}).encode()).decode()


def _decode_token(token: str | None) -> str:
    if not token:
        return ""
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))["after"]
    except (ValueError, KeyError, TypeError):
        raise _bad_request("Invalid pagination token") from None


# --- metadata filters ---

Predicate = Callable[[dict[str, Any]], bool]
_MISSING = object()


def _compile_filter(flt: Any) -> Predicate:
    """Validate a metadata filter once and turn it into a predicate over a record's metadata."""
    if not isinstance(flt, dict) or not flt:
        raise _bad_request("Invalid filter: a filter must be a non-empty object")
    clauses: list[Predicate] = []
    for key, condition in flt.items():
        if key in ("$and", "$or"):
            if not isinstance(condition, list) or not condition:
                raise _bad_request(f"Invalid filter: {key} must be a non-empty list of filters")
            parts = [_compile_filter(part) for part in condition]
            combine = all if key == "$and" else any
            clauses.append(lambda md, parts=parts, combine=combine: combine(p(md) for p in parts))
        elif key.startswith("$"):
            raise _bad_request(f"Invalid filter: unsupported top-level operator {key}")
        else:
            clauses.append(_compile_field(key, condition))
    return lambda md: all(clause(md) for clause in clauses)


def _compile_field(field: str, condition: Any) -> Predicate:
    if not isinstance(condition, dict):
        condition = {"$eq": condition}  # {"genre": "drama"} means {"genre": {"$eq": "drama"}}
    if not condition:
        raise _bad_request(f"Invalid filter: empty condition for field {field}")
    tests = [_compile_operator(field, operator, operand) for operator, operand in condition.items()]
    return lambda md: all(test(md.get(field, _MISSING)) for test in tests)


def _compile_operator(field: str, operator: str, operand: Any) -> Callable[[Any], bool]:
    def invalid(expected: str) -> PineconeApiError:
        got = json.dumps(operand)
        return _bad_request(f"Invalid filter: {operator} on field {field} expects {expected}, got {got}")

    if operator in ("$eq", "$ne"):
        if not (isinstance(operand, (str, bool)) or _is_number(operand)):
            raise invalid("a string, number or boolean")
        def equal(value: Any) -> bool:
            return _contains(value, operand)

        return equal if operator == "$eq" else (lambda value: not equal(value))
    if operator in ("$gt", "$gte", "$lt", "$lte"):
        if not _is_number(operand):
            raise invalid("a number")
        compare = {
            "$gt": lambda a: a > operand,
            "$gte": lambda a: a >= operand,
            "$lt": lambda a: a < operand,
            "$lte": lambda a: a <= operand,
        }[operator]
        return lambda value: _is_number(value) and compare(value)
    if operator in ("$in", "$nin"):
        if not isinstance(operand, list) or not all(isinstance(o, (str, bool)) or _is_number(o) for o in operand):
            raise invalid("a list of strings, numbers or booleans")
        def any_of(value: Any) -> bool:
            return any(_contains(value, o) for o in operand)

        return any_of if operator == "$in" else (lambda value: not any_of(value))
    if operator == "$exists":
        if not isinstance(operand, bool):
            raise invalid("a boolean")
        return lambda value: (value is not _MISSING) == operand
    raise _bad_request(f"Invalid filter: unsupported operator {operator} on field {field}")


def _contains(value: Any, wanted: Any) -> bool:
    """Equality as Pinecone applies it: a list-of-strings field matches if any element does."""
    if isinstance(value, list):
        return any(_same(item, wanted) for item in value)
    return _same(value, wanted)


def _same(a: Any, b: Any) -> bool:
    # Python says True == 1; metadata does not.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return float(a) == float(b)
    return isinstance(a, str) and isinstance(b, str) and a == b


# --- HTTP ---

# (method, path) -> the server method that answers it; GET operations take the query, POST ones the body.
_ROUTES = {
    ("POST", "/vectors/upsert"): "upsert",
    ("POST", "/query"): "query",
    ("GET", "/vectors/fetch"): "fetch",
    ("POST", "/vectors/delete"): "delete",
    ("GET", "/vectors/list"): "list_ids",
    ("POST", "/describe_index_stats"): "describe_index_stats",
}


class _PineconeRequestHandler(JsonHandler):
    """What both planes do first: read and record the request, give it a request id, check the Api-Key."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        raise NotImplementedError

    def _begin(self) -> tuple[bytes, object, dict[str, str], bool]:
        """(raw body, parsed JSON or None, response headers, whether the Api-Key is accepted)."""
        raw = self.read_body()
        try:
            body = self.parse_json(raw)
        except BadJson:
            body = None
        self.server.record(self.command, self.path, body)
        headers = {"x-pinecone-request-id": self.server.next_request_id()}
        key = self.headers.get("Api-Key")
        return raw, body, headers, bool(key) and (self.server.api_key is None or key == self.server.api_key)


class _PineconeHandler(_PineconeRequestHandler):
    server: PineconeIndexServer

    def _dispatch(self) -> None:
        raw, body, headers, authorized = self._begin()
        if not authorized:
            self.send_text(401, "Invalid API Key", headers)
            return
        try:
            operation = _ROUTES.get((self.command, self.route))
            if operation is None:
                raise PineconeApiError(404, f"{self.command} {self.route} is not emulated by the Pinecone stand-in")
            failure = self.server.take_failure()
            if failure is not None:
                raise PineconeApiError(failure, _INJECTED_MESSAGES.get(failure, "Injected failure"))
            if raw and body is None:
                raise _bad_request("Request body is not valid JSON")
            if self.command == "POST" and not isinstance(body, dict):
                raise _bad_request("Request body must be a JSON object")
            if self.route == "/vectors/upsert" and len(raw) > MAX_UPSERT_BYTES:
                message = f"Request size {len(raw)} bytes exceeds the maximum of {MAX_UPSERT_BYTES} bytes"
                raise PineconeApiError(413, message)
            payload = getattr(self.server, operation)(self.query if self.command == "GET" else body)
        except PineconeApiError as exc:
            self.send_json(exc.status, exc.body(), headers)
            return
        self.send_json(200, payload, headers)


# --- control plane (API 2026-07) ---

CONTROL_PLANE_API_VERSION = "2026-07"
MAX_DIMENSION = 20_000
_INDEX_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,43}[a-z0-9])?$")  # lowercase alphanumerics and hyphens, <= 45
_CONTROL_CODES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "FORBIDDEN", 404: "NOT_FOUND",
                  409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED", 500: "UNKNOWN", 503: "UNAVAILABLE"}


class ControlPlaneError(Exception):
    """An error answer of the control plane: HTTP status and message (the code follows from the status)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"error": {"code": _CONTROL_CODES.get(self.status, "UNKNOWN"), "message": self.message},
                "status": self.status}


@dataclass
class _IndexEntry:
    name: str
    field: str  # the dense vector field's name ("_values" for an index the vectors API addresses)
    dimension: int
    metric: str
    deployment: dict[str, Any]
    deletion_protection: str
    tags: dict[str, str] | None
    data_plane: PineconeIndexServer
    describes_left: int  # describes that still answer "Initializing"

    def model(self) -> dict[str, Any]:
        ready = self.describes_left <= 0
        return {
            "name": self.name,
            "host": self.data_plane.url,
            "status": {"ready": ready, "state": "Ready" if ready else "Initializing"},
            "schema": {"fields": {self.field: {"type": "dense_vector", "dimension": self.dimension,
                                               "metric": self.metric}}},
            "deployment": dict(self.deployment),
            "deletion_protection": self.deletion_protection,
            "read_capacity": {"mode": "OnDemand", "status": {"state": "Ready" if ready else "Initializing"}},
            "tags": self.tags,
        }


class PineconeControlPlane(StandinServer):
    """Pinecone's control plane for serverless indexes, in memory; each index's data plane is a
    `PineconeIndexServer` started on a free port. Start with `start()` or a `with` block."""

    def __init__(self, *, api_key: str | None = None, host: str = "127.0.0.1", port: int = 0, ready_after: int = 1):
        """`api_key=None` accepts any non-empty key; `ready_after`: describes of a new index that still answer
        "Initializing" (0: ready at once)."""
        super().__init__(_ControlPlaneHandler, host, port)
        self.api_key = api_key
        self.ready_after = ready_after
        self._indexes: dict[str, _IndexEntry] = {}
        self._request_ids = 0

    def next_request_id(self) -> str:
        with self.lock:
            self._request_ids += 1
            return str(self._request_ids)

    def index(self, name: str) -> PineconeIndexServer:
        """The data plane of index `name` (for a test to look inside)."""
        with self.lock:
            return self._indexes[name].data_plane

    def stop(self) -> None:
        super().stop()
        with self.lock:
            for entry in self._indexes.values():
                entry.data_plane.stop()

    def reset(self) -> None:
        """Forget every index (stopping their data planes), the request log and queued failures."""
        with self.lock:
            super().reset()
            for entry in self._indexes.values():
                entry.data_plane.stop()
            self._indexes.clear()

    # --- operations ---

    def create_index(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("name")
        if not isinstance(name, str) or not _INDEX_NAME.match(name):
            raise ControlPlaneError(400, "Name must consist of lower case alphanumeric characters or '-', start and "
                                         "end with an alphanumeric character, and be 1 to 45 characters long")
        field, dimension, metric = _dense_field(body.get("schema"))
        deployment = _managed_deployment(body.get("deployment"))
        protection = body.get("deletion_protection", "disabled")
        if protection not in ("enabled", "disabled"):
            raise ControlPlaneError(400, "deletion_protection must be 'enabled' or 'disabled'")
        tags = body.get("tags")
        if tags is not None and not (isinstance(tags, dict) and all(isinstance(v, str) for v in tags.values())):
            raise ControlPlaneError(400, "tags must be an object of string values")
        with self.lock:
            if name in self._indexes:
                raise ControlPlaneError(409, "Resource already exists")
            data_plane = PineconeIndexServer(dimension, metric, api_key=self.api_key, host=self.server_address[0])
            data_plane.start()
            entry = _IndexEntry(name, field, dimension, metric, deployment, protection, tags or None, data_plane,
                                self.ready_after)
            self._indexes[name] = entry
            return entry.model()

    def describe_index(self, name: str) -> dict[str, Any]:
        with self.lock:
            entry = self._entry(name)
            model = entry.model()
            entry.describes_left -= 1
            return model

    def list_indexes(self) -> dict[str, Any]:
        with self.lock:
            return {"indexes": [e.model() for _, e in sorted(self._indexes.items())]}

    def delete_index(self, name: str) -> None:
        with self.lock:
            entry = self._entry(name)
            if entry.deletion_protection == "enabled":
                raise ControlPlaneError(403, "Deletion protection is enabled for this index. Disable deletion "
                                             "protection before retrying.")
            del self._indexes[name]
        entry.data_plane.stop()

    def _entry(self, name: str) -> _IndexEntry:
        entry = self._indexes.get(name)
        if entry is None:
            raise ControlPlaneError(404, f"Resource {name} not found")
        return entry


def _dense_field(schema: Any) -> tuple[str, int, str]:
    """The one dense vector field a schema must declare: (name, dimension, metric)."""
    fields = schema.get("fields") if isinstance(schema, dict) else None
    if not isinstance(fields, dict) or not fields:
        raise ControlPlaneError(400, "schema.fields must declare at least one field")
    dense = [(n, f) for n, f in fields.items() if isinstance(f, dict) and f.get("type") == "dense_vector"]
    if len(dense) != 1 or len(fields) != 1:
        raise ControlPlaneError(400, "This stand-in accepts exactly one field, of type dense_vector")
    name, field = dense[0]
    dimension, metric = field.get("dimension"), field.get("metric", "cosine")
    if not isinstance(dimension, int) or isinstance(dimension, bool) or not 1 <= dimension <= MAX_DIMENSION:
        raise ControlPlaneError(400, f"Dimension must be an integer between 1 and {MAX_DIMENSION}")
    if metric not in METRICS:
        raise ControlPlaneError(400, f"Metric must be one of {', '.join(METRICS)}")
    return name, dimension, metric


def _managed_deployment(deployment: Any) -> dict[str, Any]:
    if deployment is None:
        return {"deployment_type": "managed", "cloud": "aws", "region": "us-east-1"}  # the service's default
    if not isinstance(deployment, dict) or deployment.get("deployment_type") != "managed":
        raise ControlPlaneError(400, "This stand-in accepts managed (serverless) deployments only")
    cloud, region = deployment.get("cloud"), deployment.get("region")
    if cloud not in ("aws", "gcp", "azure") or not isinstance(region, str) or not region:
        raise ControlPlaneError(400, "A managed deployment needs cloud (aws, gcp or azure) and region")
    return {"deployment_type": "managed", "cloud": cloud, "region": region}


class _ControlPlaneHandler(_PineconeRequestHandler):
    server: PineconeControlPlane

    def _dispatch(self) -> None:
        _, body, headers, authorized = self._begin()
        try:
            if not authorized:
                raise ControlPlaneError(401, "Invalid API Key")
            failure = self.server.take_failure()
            if failure is not None:
                raise ControlPlaneError(failure, _INJECTED_MESSAGES.get(failure, "Injected failure"))
            parts = self.route.strip("/").split("/")
            if parts == ["indexes"] and self.command == "POST":
                if not isinstance(body, dict):
                    raise ControlPlaneError(400, "Request body must be a JSON object")
                self.send_json(201, self.server.create_index(body), headers)
            elif parts == ["indexes"] and self.command == "GET":
                self.send_json(200, self.server.list_indexes(), headers)
            elif len(parts) == 2 and parts[0] == "indexes" and self.command == "GET":
                self.send_json(200, self.server.describe_index(unquote(parts[1])), headers)
            elif len(parts) == 2 and parts[0] == "indexes" and self.command == "DELETE":
                self.server.delete_index(unquote(parts[1]))
                self.send_bytes(202, b"", "text/plain", headers)
            else:
                raise ControlPlaneError(404, f"{self.command} {self.route} is not emulated by the Pinecone stand-in")
        except ControlPlaneError as exc:
            self.send_json(exc.status, exc.body(), headers)


def main() -> None:
    parser = cli_parser("Serve an in-memory Pinecone index data plane (or, with --control-plane, the control plane "
                        "that creates indexes) for local development.", default_port=8091)
    parser.add_argument("--dimension", type=int, help="vector dimension of the index, e.g. 384 (data plane)")
    parser.add_argument("--metric", choices=METRICS, default="cosine", help="similarity metric (default cosine)")
    parser.add_argument("--control-plane", action="store_true", help="serve the control plane (POST /indexes ...): "
                        "each index created gets a data plane of its own")
    args = parser.parse_args()
    if args.control_plane:
        control = PineconeControlPlane(api_key=args.api_key, host=args.host, port=args.port)
        control.serve_until_interrupted(
            f"Pinecone control-plane stand-in (API {CONTROL_PLANE_API_VERSION}) on {control.url}\n"
            f"  PINECONE_CONTROLLER_HOST={control.url} python -m infra.pinecone_index   Ctrl-C to stop"
        )
        return
    if args.dimension is None:
        parser.error("--dimension is required for the data plane (or pass --control-plane)")
    server = PineconeIndexServer(args.dimension, args.metric, api_key=args.api_key, host=args.host, port=args.port)
    server.serve_until_interrupted(
        f"Pinecone stand-in (dimension {args.dimension}, {args.metric}) on {server.url}\n"
        f'  Pinecone(api_key=...).index(host="{server.url}")   Ctrl-C to stop'
    )


if __name__ == "__main__":
    main()
