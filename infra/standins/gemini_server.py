"""A stand-in for the Gemini Developer API as google-genai 3.x calls it: embeddings and text generation.

    with GeminiServer() as server:
        client = genai.Client(api_key="test", http_options=types.HttpOptions(base_url=server.url))

Emulated, under both API versions (`/v1/`, the SDK's default, and `/v1beta/`):

    POST /{version}/models/{model}:batchEmbedContents   {requests: [{model, content, taskType?, outputDimensionality?}]}
                                                        -> {embeddings: [{values}]}    (all the SDK ever sends)
    POST /{version}/models/{model}:embedContent         {content, taskType?, outputDimensionality?}
                                                        -> {embedding: {values}}
    POST /{version}/models/{model}:generateContent      {contents, systemInstruction?, generationConfig?}
                                                        -> {candidates, usageMetadata, modelVersion, responseId}
    POST /{version}/models/{model}:streamGenerateContent?alt=sse   the same response in pieces, one SSE event
                                                        (`data: {json}` + CRLF CRLF) per piece, chunked transfer

Behaviour kept from the real service: the key comes in the `x-goog-api-key` header (what the SDK sends) or a
`key` query parameter; a missing key answers 403 PERMISSION_DENIED and a wrong one 400 API_KEY_INVALID; errors
use Google's body `{"error": {"code", "message", "status"}}`; at most 100 requests per batch
("* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch"); taskType must be a known
task type; embedding models (names containing "embedding") only embed and other models only generate (404 as
the real API answers); embeddings have 3072 dimensions unless outputDimensionality asks for fewer, and only
the full 3072 are unit length, because a shorter one is a truncation of it (as with gemini-embedding-001).

Embeddings are deterministic and meaningful enough for retrieval tests: lower-cased words and their character
trigrams are hashed into buckets and projected by a fixed random Gaussian matrix, so texts that share words
score a higher cosine, and any truncation keeps that property. taskType does not change the vector.

Generation replies come from a script (`script_reply`, `script_stream`), else a deterministic echo of the last
user message; usage counts estimate 4 characters per token. A scripted failure (`fail_after=n`) drops the
connection after n chunks, which the SDK surfaces as httpx2 (or httpx) RemoteProtocolError while iterating.

Function calling as the API answers it when the request declares `tools: [{functionDeclarations: [...]}]`:
`script_function_call` makes the reply end with a `functionCall {name, args}` part (after any scripted text,
in its own last stream chunk); a call to a function the request did not declare comes back, as the real
service reports it, as a candidate without content and `finishReason: UNEXPECTED_TOOL_CALL`.
`script_blocked("SAFETY")` answers like a response blocked by the safety filters: one candidate without
content, that finishReason, and a blocked safety rating.

Messages are Google's where we could confirm them (keys, batch size, unknown model, canonical statuses); the
wording for a bad outputDimensionality, empty text or missing parts is our own.

Not emulated: automatic choice of function calls (only scripted ones), toolConfig modes, argument validation
against the declared schema, JSON mode, safety ratings of normal replies, blocked prompts (promptFeedback),
multimodal parts, token limits, countTokens, files, caching, batches, the Live API, Vertex AI paths and OAuth.

Test hooks: `requests` (method, path, json), `fail_next(count, status)`, `script_reply`, `script_stream`,
`script_function_call`, `script_blocked`, `reset()`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections import Counter, deque
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from infra.standins.http import BadJson, JsonHandler, StandinServer, cli_parser

EMBEDDING_DIMENSION = 3072  # gemini-embedding-001's native size
MAX_BATCH_REQUESTS = 100
TASK_TYPES = frozenset({
    "TASK_TYPE_UNSPECIFIED", "RETRIEVAL_QUERY", "RETRIEVAL_DOCUMENT", "SEMANTIC_SIMILARITY", "CLASSIFICATION",
    "CLUSTERING", "QUESTION_ANSWERING", "FACT_VERIFICATION", "CODE_RETRIEVAL_QUERY",
})  # fmt: skip

# Google's canonical status name and message for each HTTP status a stand-in can answer.
_STATUSES = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "Requested entity was not found."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    500: (
        "INTERNAL",
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
    ),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}  # fmt: skip
_PATH = re.compile(r"^/(?P<version>v1|v1beta)/models/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$")
_EMBED_METHODS = {"batchEmbedContents", "embedContent"}
_GENERATE_METHODS = {"generateContent", "streamGenerateContent"}


class GoogleApiError(Exception):
    """An error answer: HTTP status, message and optional details for Google's error body."""

    def __init__(self, status: int, message: str | None = None, details: list[dict[str, Any]] | None = None):
        name, default_message = _STATUSES.get(status, ("UNKNOWN", "Unknown error."))
        super().__init__(message or default_message)
        self.status = status
        self.body = {"error": {"code": status, "message": message or default_message, "status": name}}
        if details:
            self.body["error"]["details"] = details


_BLOCKING_REASONS = frozenset({"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION"})


@dataclass
class _Scripted:
    text: str
    chunks: list[str] | None  # None: split `text` into a few stream pieces ourselves
    fail_after: int | None
    function_call: dict[str, Any] | None = None  # {"name", "args"}: the reply's last part
    finish_reason: str = "STOP"


class GeminiServer(StandinServer):
    """The Gemini Developer API surface google-genai uses. Thread-safe; start with `start()` or a `with` block."""

    def __init__(self, *, api_key: str | None = None, chunk_delay: float = 0.0, host: str = "127.0.0.1", port: int = 0):
        """`api_key=None` accepts any non-empty key; `chunk_delay` (seconds) spaces out stream chunks."""
        super().__init__(_GeminiHandler, host, port)
        self.api_key = api_key
        self.chunk_delay = chunk_delay
        self._script: deque[_Scripted] = deque()
        self._responses = 0

    def fail_next(self, count: int = 1, status: int = 429) -> None:
        """Answer the next `count` authenticated API calls with `status` and Google's error body.

        429 -> RESOURCE_EXHAUSTED, 500 -> INTERNAL, 503 -> UNAVAILABLE, 504 -> DEADLINE_EXCEEDED, ...
        google-genai retries only when built with `HttpOptions(retry_options=HttpRetryOptions(...))`.
        """
        self.queue_failures(count, status)

    def script_reply(self, text: str) -> None:
        """Queue the text of the next generation reply (streamed calls get it in a few pieces)."""
        with self.lock:
            self._script.append(_Scripted(text, None, None))

    def script_stream(self, chunks: list[str], fail_after: int | None = None) -> None:
        """Queue the pieces of the next streamed reply (a non-streamed call gets them joined).

        With `fail_after=n` the connection is dropped after n pieces, mid-stream; a non-streamed call that
        takes this script is dropped before any answer.
        """
        with self.lock:
            self._script.append(_Scripted("".join(chunks), list(chunks), fail_after))

    def script_function_call(self, name: str, args: dict[str, Any], text_chunks: list[str] | None = None) -> None:
        """Queue a reply that calls function `name` with `args`, after the optional `text_chunks`.

        The call reaches the client only if the request declared that function in `tools`; otherwise the reply
        ends with finishReason UNEXPECTED_TOOL_CALL and no call, as the real API reports an undeclared call.
        """
        chunks = list(text_chunks or [])
        with self.lock:
            self._script.append(_Scripted("".join(chunks), chunks, None, {"name": name, "args": dict(args)}))

    def script_blocked(self, finish_reason: str = "SAFETY") -> None:
        """Queue a reply blocked by a filter: no content and `finish_reason` (SAFETY adds a blocked safety rating)."""
        if finish_reason not in _BLOCKING_REASONS:
            raise ValueError(f"finish_reason must be one of {sorted(_BLOCKING_REASONS)}")
        with self.lock:
            self._script.append(_Scripted("", [], None, None, finish_reason))

    def reset(self) -> None:
        """Forget the request log, scripted replies and queued failures."""
        with self.lock:
            super().reset()
            self._script.clear()

    # --- operations ---

    def batch_embed_contents(self, body: dict[str, Any]) -> dict[str, Any]:
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            raise GoogleApiError(400, "* BatchEmbedContentsRequest.requests: requests is not specified")
        if len(requests) > MAX_BATCH_REQUESTS:
            raise GoogleApiError(
                400, f"* BatchEmbedContentsRequest.requests: at most {MAX_BATCH_REQUESTS} requests can be in one batch"
            )
        texts, dimensions = [], []
        for n, request in enumerate(requests):
            text, dimension = _embed_request(request, f"requests[{n}]")
            texts.append(text)
            dimensions.append(dimension)
        vectors = embed_texts(texts)
        return {"embeddings": [{"values": vector[:d].tolist()} for vector, d in zip(vectors, dimensions)]}

    def embed_content(self, body: dict[str, Any]) -> dict[str, Any]:
        text, dimension = _embed_request(body, "")
        return {"embedding": {"values": embed_texts([text])[0][:dimension].tolist()}}

    def next_reply(self, model: str, body: dict[str, Any]) -> tuple[_Scripted, dict[str, Any], int]:
        """The scripted (or default) reply to a generation request, its response header fields and prompt tokens."""
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            raise GoogleApiError(400, "* GenerateContentRequest.contents: contents is not specified")
        with self.lock:
            scripted = self._script.popleft() if self._script else None
            self._responses += 1
            response_id = f"standin-{self._responses}"
        if scripted is None:
            scripted = _Scripted(_default_reply(contents), None, None)
        prompt_text = _all_text(contents) + _all_text([body.get("systemInstruction") or {}])
        header = {"modelVersion": model, "responseId": response_id}
        return scripted, header, _estimate_tokens(prompt_text)


# --- embeddings ---

_HASH_BUCKETS = 1024
_WORD = re.compile(r"\w+")
_STOPWORDS = frozenset(
    "a an and are as at be but by can could do does for from had has have how i if in is it its me my no not of"
    " on or our so that the their there this to was we were what when where which who why will with you your".split()
)


def embed_texts(texts: list[str]) -> np.ndarray:
    """Unit-length 3072-d embeddings, one row per text: hashed word and trigram counts, randomly projected."""
    buckets = np.zeros((len(texts), _HASH_BUCKETS), dtype=np.float32)
    for row, text in enumerate(texts):
        for feature, weight in _features(text).items():
            digest = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "big")
            buckets[row, digest % _HASH_BUCKETS] += weight if digest >> 63 else -weight
    vectors = buckets @ _projection()
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def _features(text: str) -> dict[str, float]:
    """Lower-cased words and their character trigrams (so "refund" stays near "refunds"), each weighted
    1 + log(count); trigrams count half and common function words a tenth, so content words dominate."""
    words = _WORD.findall(text.lower())
    content_words = [word for word in words if word not in _STOPWORDS]
    trigrams = Counter(f"<{word}>"[i : i + 3] for word in content_words for i in range(len(word)))
    features = {
        "w:" + word: (0.1 if word in _STOPWORDS else 1.0) * (1.0 + math.log(n)) for word, n in Counter(words).items()
    }
    features.update({"c:" + trigram: 0.5 * (1.0 + math.log(n)) for trigram, n in trigrams.items()})
    return features or {"raw:" + text.strip(): 1.0}  # punctuation or emoji only: still a stable, non-zero vector


@cache
def _projection() -> np.ndarray:
    """A fixed Gaussian matrix (12 MB): every output dimension mixes every bucket, so truncation keeps meaning."""
    return np.random.default_rng(20240501).standard_normal((_HASH_BUCKETS, EMBEDDING_DIMENSION), dtype=np.float32)


def _embed_request(request: Any, where: str) -> tuple[str, int]:
    """Validate one embedding request; returns its text and output dimensionality."""
    prefix = f"{where}." if where else ""
    if not isinstance(request, dict):
        raise GoogleApiError(400, f"Invalid JSON payload received. {where or 'request'} must be an object.")
    task_type = request.get("taskType")
    if task_type is not None and task_type not in TASK_TYPES:
        raise GoogleApiError(
            400,
            f"Invalid value at '{prefix}task_type' (type.googleapis.com/google.ai.generativelanguage.v1.TaskType), "
            f'"{task_type}"',
        )
    dimension = request.get("outputDimensionality", EMBEDDING_DIMENSION)
    if not isinstance(dimension, int) or isinstance(dimension, bool) or not 1 <= dimension <= EMBEDDING_DIMENSION:
        raise GoogleApiError(400, f"* {prefix}output_dimensionality must be between 1 and {EMBEDDING_DIMENSION}")
    parts = (request.get("content") or {}).get("parts")
    if not isinstance(parts, list) or not parts:
        raise GoogleApiError(400, f"* {prefix}content.parts: contents are required")
    if any(not isinstance(part, dict) or "text" not in part for part in parts):
        raise GoogleApiError(400, "Only text content can be embedded by this stand-in")
    text = " ".join(str(part["text"]) for part in parts)
    if not text.strip():
        raise GoogleApiError(400, "The text content is empty.")
    return text, dimension


# --- generation ---


def _all_text(contents: list[Any]) -> str:
    return " ".join(
        str(part.get("text", ""))
        for content in contents
        if isinstance(content, dict)
        for part in content.get("parts") or []
        if isinstance(part, dict)
    )


def _default_reply(contents: list[Any]) -> str:
    user_turns = [c for c in contents if isinstance(c, dict) and c.get("role", "user") == "user"]
    words = _all_text(user_turns[-1:]).split()
    summary = " ".join(words[:12]) + (" ..." if len(words) > 12 else "")
    return f"Stand-in reply to: {summary}" if summary else "Stand-in reply."


def _estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4)) if text else 0


def _split_for_stream(text: str, pieces: int = 3) -> list[str]:
    """Split at word boundaries into up to `pieces` parts that join back to `text`."""
    words = re.findall(r"\S+\s*", text) or [text]
    size = math.ceil(len(words) / pieces)
    return ["".join(words[i : i + size]) for i in range(0, len(words), size)]


def _declared_functions(body: dict[str, Any]) -> set[str]:
    """Names of the functions the request declares in `tools[].functionDeclarations[]`."""
    return {
        declaration.get("name")
        for tool in body.get("tools") or []
        if isinstance(tool, dict)
        for declaration in tool.get("functionDeclarations") or []
        if isinstance(declaration, dict)
    }


def _candidate(
    text: str | None, finish_reason: str | None, function_call: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One candidate: a text part and/or a functionCall part (no content at all when both are None)."""
    parts: list[dict[str, Any]] = []
    if text is not None:
        parts.append({"text": text})
    if function_call is not None:
        parts.append({"functionCall": function_call})
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}} if parts else {}
    candidate["index"] = 0
    if finish_reason is not None:
        candidate["finishReason"] = finish_reason
    if finish_reason == "SAFETY":
        candidate["safetyRatings"] = [
            {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
        ]
    return candidate


def _usage(prompt_tokens: int, reply_text: str | None) -> dict[str, Any]:
    usage = {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens}
    if reply_text is not None:
        usage["candidatesTokenCount"] = _estimate_tokens(reply_text)
        usage["totalTokenCount"] += usage["candidatesTokenCount"]
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt_tokens}]
    return usage


# --- HTTP ---


class _GeminiHandler(JsonHandler):
    server: GeminiServer

    def do_GET(self) -> None:
        self.do_POST()

    def do_POST(self) -> None:
        raw = self.read_body()
        try:
            body = self.parse_json(raw)
        except BadJson:
            body = None
        self.server.record(self.command, self.path, body)
        try:
            self._check_api_key()
            match = _PATH.match(self.route) if self.command == "POST" else None
            if match is None:
                raise GoogleApiError(404, f"{self.command} {self.route} is not emulated by the Gemini stand-in")
            version, model, method = match.group("version", "model", "method")
            is_embedding_model = "embedding" in model
            if method not in (_EMBED_METHODS if is_embedding_model else _GENERATE_METHODS):
                raise GoogleApiError(
                    404,
                    f"models/{model} is not found for API version {version}, or is not supported for {method}. "
                    "Call ListModels to see the list of available models and their supported methods.",
                )
            failure = self.server.take_failure()
            if failure is not None:
                raise GoogleApiError(failure)
            if not isinstance(body, dict):
                raise GoogleApiError(400, "Invalid JSON payload received. The request body must be a JSON object.")
            if method == "batchEmbedContents":
                self.send_json(200, self.server.batch_embed_contents(body))
            elif method == "embedContent":
                self.send_json(200, self.server.embed_content(body))
            else:
                self._generate(model, body, stream=method == "streamGenerateContent")
        except GoogleApiError as exc:
            self.send_json(exc.status, exc.body)

    def _check_api_key(self) -> None:
        key = self.headers.get("x-goog-api-key") or (self.query.get("key") or [None])[-1]
        if not key:
            raise GoogleApiError(
                403,
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API.",
            )
        if self.server.api_key is not None and key != self.server.api_key:
            raise GoogleApiError(
                400,
                "API key not valid. Please pass a valid API key.",
                [{
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }],
            )  # fmt: skip

    def _generate(self, model: str, body: dict[str, Any], stream: bool) -> None:
        scripted, header, prompt_tokens = self.server.next_reply(model, body)
        function_call, finish_reason = scripted.function_call, scripted.finish_reason
        if function_call is not None and function_call["name"] not in _declared_functions(body):
            function_call, finish_reason = None, "UNEXPECTED_TOOL_CALL"
        reply_text = scripted.text + (json.dumps(function_call) if function_call else "")
        # A reply that ends with a function call or without content gets its own last piece.
        ends_apart = function_call is not None or finish_reason != "STOP"
        if not stream:
            if scripted.fail_after is not None:
                self.abort_connection()
                return
            text = scripted.text if scripted.text or not ends_apart else None
            candidate, usage = _candidate(text, finish_reason, function_call), _usage(prompt_tokens, reply_text)
            self.send_json(200, {"candidates": [candidate], "usageMetadata": usage, **header})
            return

        chunks = scripted.chunks if scripted.chunks is not None else _split_for_stream(scripted.text)
        pieces: list[tuple[str | None, dict[str, Any] | None]] = [(chunk, None) for chunk in chunks]
        if ends_apart:
            pieces.append((None, function_call))
        events = []
        for n, (chunk, call) in enumerate(pieces):
            last = n == len(pieces) - 1
            usage = _usage(prompt_tokens, reply_text if last else None)
            candidate = _candidate(chunk, finish_reason if last else None, call)
            events.append({"candidates": [candidate], "usageMetadata": usage, **header})
        if self.query.get("alt") != ["sse"]:  # without alt=sse the API streams one JSON array
            self.send_json(200, events)
            return
        self.start_chunked(200, "text/event-stream")
        for n, event in enumerate(events):
            if scripted.fail_after is not None and n >= scripted.fail_after:
                self.abort_connection()
                return
            if n and self.server.chunk_delay:
                time.sleep(self.server.chunk_delay)
            self.write_chunk(b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\r\n\r\n")
        self.end_chunked()


def main() -> None:
    parser = cli_parser("Serve a stand-in Gemini Developer API for local development.", default_port=8092)
    parser.add_argument("--chunk-delay", type=float, default=0.05, help="seconds between stream chunks (default 0.05)")
    args = parser.parse_args()
    server = GeminiServer(api_key=args.api_key, chunk_delay=args.chunk_delay, host=args.host, port=args.port)
    server.serve_until_interrupted(
        f"Gemini stand-in on {server.url}\n"
        f'  genai.Client(api_key=..., http_options=types.HttpOptions(base_url="{server.url}"))   Ctrl-C to stop'
    )


if __name__ == "__main__":
    main()
