"""Settings from the environment, validated once per instance.

Every field has an environment variable, a default that runs locally without keys, and a one-line help; the README's
configuration table lists them all (tests/unit/test_config.py fails when one is missing there).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from shared.errors import ConfigurationError
from shared.tenants import TENANT_ID


def setting(env: str, default, help: str):
    return field(default=default, metadata={"env": env, "help": help})


@dataclass(frozen=True)
class Settings:
    # --- identity -------------------------------------------------------------------------------------------------
    project: str = setting("GOOGLE_CLOUD_PROJECT", "demo-local", "Google Cloud project id (any id works on emulators).")
    region: str = setting("REGION", "europe-west1", "Region of the queue and the functions.")
    default_tenant: str = setting(
        "DEFAULT_TENANT", "default", "Tenant (site) id for objects without a `tenant` metadata entry."
    )
    log_level: str = setting("LOG_LEVEL", "INFO", "Python log level name.")

    # --- database (Cloud SQL for PostgreSQL) ----------------------------------------------------------------------
    database_url: str = setting(
        "DATABASE_URL",
        "",
        "Direct connection, `postgresql://user:pass@host:port/db` (add `?host=/socket/dir` for a unix socket). "
        "Used when CLOUD_SQL_INSTANCE is empty.",
    )
    cloud_sql_instance: str = setting(
        "CLOUD_SQL_INSTANCE",
        "",
        "Instance connection name `project:region:instance`; when set, connect through the Cloud SQL Python "
        "Connector with IAM database authentication.",
    )
    db_user: str = setting("DB_USER", "", "Database user for the connector (IAM: the service account email without "
                           "`.gserviceaccount.com`).")
    db_name: str = setting("DB_NAME", "knowledge", "Database name for the connector.")
    db_ip_type: str = setting("DB_IP_TYPE", "private", "Connector IP type: `private`, `public` or `psc`.")
    db_pool_size: int = setting("DB_POOL_SIZE", 4, "Connections kept open per instance.")

    # --- object storage and queue ---------------------------------------------------------------------------------
    knowledge_bucket: str = setting("KNOWLEDGE_BUCKET", "knowledge", "Bucket editors drop knowledge files into.")
    tasks_queue: str = setting("TASKS_QUEUE", "embed", "Cloud Tasks queue id that drives `embed`.")
    embed_url: str = setting("EMBED_URL", "http://127.0.0.1:8083", "URL Cloud Tasks calls to run `embed`.")
    tasks_service_account: str = setting(
        "TASKS_SERVICE_ACCOUNT", "", "Service account whose OIDC token Cloud Tasks sends to `embed` (empty: none)."
    )
    tasks_emulator_host: str = setting(
        "CLOUD_TASKS_EMULATOR_HOST", "", "`host:port` of a Cloud Tasks emulator (local only; empty in production)."
    )

    # --- ingestion ------------------------------------------------------------------------------------------------
    max_file_bytes: int = setting("MAX_FILE_BYTES", 20 * 1024 * 1024, "Larger files are recorded as failed.")
    max_event_age_seconds: int = setting(
        "MAX_EVENT_AGE_SECONDS", 25 * 3600, "Older storage events are acknowledged without work instead of retried. "
        "Eventarc redelivers an unacknowledged event for 24 h (its Pub/Sub subscription's default message retention, "
        "backoff 10-600 s; Eventarc docs, 'Retry events'), so keep this above the trigger's retention: an event is "
        "never dropped while Eventarc may still deliver it, and reconciliation (`kb reconcile`, the nightly `scrape`) "
        "catches what it lost after that."
    )
    chunk_max_tokens: int = setting("CHUNK_MAX_TOKENS", 256, "Upper bound of a chunk's size in tokens.")
    chunk_overlap_tokens: int = setting("CHUNK_OVERLAP_TOKENS", 32, "Tokens repeated from the previous chunk of the "
                                        "same section.")
    max_chunks_per_document: int = setting(
        "MAX_CHUNKS_PER_DOCUMENT", 2000, "A file that makes more chunks is recorded as failed (split it): bounds what "
        "one document costs embed and how long it holds the queue."
    )
    max_document_chars: int = setting(
        "MAX_DOCUMENT_CHARS", 4_000_000, "Characters of text a file may parse into; more is recorded as failed "
        "(raise it with MAX_CHUNKS_PER_DOCUMENT or CHUNK_MAX_TOKENS)."
    )
    max_document_elements: int = setting(
        "MAX_DOCUMENT_ELEMENTS", 100_000, "Elements a file may hold: DOCX paragraphs and table cells, HTML tags, "
        "Markdown tokens, lines of text, CSV rows, JSON values, blocks (PDF: 20 content operations each)."
    )
    max_expanded_bytes: int = setting(
        "MAX_EXPANDED_BYTES", 100 * 1024 * 1024, "Bytes a compressed file may expand to: a DOCX's parts unzipped "
        "(each XML part a quarter of it), a PDF's decoded page contents (each stream a quarter of it)."
    )
    max_pdf_pages: int = setting("MAX_PDF_PAGES", 2000, "Pages a PDF may have.")

    reconcile_max_deletes: int = setting(
        "RECONCILE_MAX_DELETES", 25, "Most documents one reconciliation deletes because their object is gone from the "
        "bucket (each re-checked first); the rest are reported and wait for the next run or `kb reconcile "
        "--max-deletes N` (0: report only)."
    )

    # --- nightly sync (scrape) -------------------------------------------------------------------------------------
    sync_queue: str = setting("SYNC_QUEUE", "sync", "Cloud Tasks queue id that drives the steps of sync runs.")
    scrape_url: str = setting("SCRAPE_URL", "http://127.0.0.1:8084", "URL of `scrape`; sync steps are POSTed to "
                              "its /step.")
    sync_step_seconds: float = setting(
        "SYNC_STEP_SECONDS", 240.0, "Work one sync step does before it hands over to a successor task. Keep it well "
        "under the sync queue's dispatch deadline (10 min by default) and scrape's timeout."
    )
    sync_run_max_seconds: float = setting(
        "SYNC_RUN_MAX_SECONDS", 6 * 3600.0, "A run still going after this ends as partial (no deletions); the next "
        "run continues, and unchanged pages cost it a 304 each."
    )
    sync_contact_url: str = setting(
        "SYNC_CONTACT_URL", "", "URL in the sync's User-Agent where a site owner learns who crawls and how to reach "
        "you (set it in production)."
    )
    sync_user_agent: str = setting("SYNC_USER_AGENT", "support-agent-sync/1.0", "Product token of the sync's "
                                   "User-Agent; robots.txt groups for it apply.")
    sync_allowed_private_hosts: str = setting(
        "SYNC_ALLOWED_PRIVATE_HOSTS", "", "Comma-separated hosts the sync may reach although they resolve to a "
        "private, loopback or link-local address (the local stack's sites). Empty: none (SSRF protection)."
    )
    sync_grace_runs: int = setting(
        "SYNC_GRACE_RUNS", 2, "Complete runs a page must be missing from before it is re-checked and deleted "
        "(a source's `grace_runs` overrides)."
    )
    sync_max_deletes: int = setting(
        "SYNC_MAX_DELETES", 0, "Deletions one run of a source may make; the rest are withheld for `make sync ARGS="
        "'approve SOURCE'`. 0: max(10, 10% of the source's pages) (a source's `max_deletes` overrides)."
    )
    sync_shrink_limit: float = setting(
        "SYNC_SHRINK_LIMIT", 0.5, "A run that sees fewer than (1 - this) x the pages of the last complete run "
        "deletes nothing (a partial sitemap, a site redesign)."
    )
    sync_error_rate_limit: float = setting(
        "SYNC_ERROR_RATE_LIMIT", 0.1, "A run whose fetches failed more often than this is partial (no deletions)."
    )
    sync_retry_base_seconds: float = setting(
        "SYNC_RETRY_BASE_SECONDS", 5.0, "First wait before a URL that answered 429/5xx without Retry-After (or failed "
        "to connect) is tried again; doubles per attempt, at most 4 attempts per run."
    )
    sync_concurrency: int = setting("SYNC_CONCURRENCY", 8, "Pages one sync step fetches and extracts at once "
                                    "(per host at most the source's `concurrency`).")
    sync_max_page_bytes: int = setting("SYNC_MAX_PAGE_BYTES", 20 * 1024 * 1024, "Larger responses are not read "
                                       "(counted as errors of class too_large).")

    # --- embeddings -----------------------------------------------------------------------------------------------
    embedder: str = setting("EMBEDDER", "local", "`local` (all-MiniLM-L6-v2, offline), `gemini`, or `hash` (tests).")
    embedding_model: str = setting("EMBEDDING_MODEL", "gemini-embedding-001", "Gemini embedding model.")
    embedding_dimension: int = setting(
        "EMBEDDING_DIMENSION", 768, "Gemini output dimensionality (the local model is always 384)."
    )
    embed_batch_size: int = setting("EMBED_BATCH_SIZE", 64, "Texts per embedding request.")
    embed_max_retries: int = setting("EMBED_MAX_RETRIES", 5, "Retries of an embedding batch on 429/5xx.")
    embed_retry_base_seconds: float = setting(
        "EMBED_RETRY_BASE_SECONDS", 1.0, "First backoff delay; doubles per retry, with jitter."
    )
    embed_time_budget_seconds: float = setting(
        "EMBED_TIME_BUDGET_SECONDS", 300.0, "Embedding time one `embed` call spends on a document version before it "
        "saves its progress (the embedding cache) and continues in a new task at the back of the queue. Keep it well "
        "under Cloud Tasks' dispatch deadline (HTTP tasks: 10 min by default, 15 s-30 min; Cloud Tasks API, "
        "Task.dispatch_deadline) and embed's timeout (60 s by default, up to 60 min for HTTP functions; Cloud "
        "Functions docs, 'Function timeout'; deploy embed with at least the dispatch deadline), leaving time for "
        "chunking and the final write."
    )
    embed_max_calls: int = setting(
        "EMBED_MAX_CALLS", 20, "Embed calls one document version may take (continuations, and retries after a "
        "timeout, a crash or a transient error, together) before it is recorded as failed with what to do."
    )
    embed_max_stalled_calls: int = setting(
        "EMBED_MAX_STALLED_CALLS", 3, "Embed calls in a row that died without an outcome and without embedding a "
        "batch (killed at the deadline, out of memory, crashed) before the version is recorded as failed."
    )
    local_embedding_threads: int = setting(
        "LOCAL_EMBEDDING_THREADS", 0, "CPU threads for the local model (0: all cores to index, one per question in chat)."
    )
    local_embedding_runtime: str = setting(
        "LOCAL_EMBEDDING_RUNTIME", "onnx", "What runs the local model on questions: `onnx` (ONNX Runtime, about 3x "
        "faster per question; falls back to `torch` if it cannot load) or `torch`. Passages always use PyTorch."
    )

    # --- Gemini ---------------------------------------------------------------------------------------------------
    gemini_api_key: str = setting("GEMINI_API_KEY", "", "Gemini API key (empty: use Vertex AI if GEMINI_VERTEXAI).")
    gemini_vertexai: bool = setting(
        "GEMINI_VERTEXAI", False, "Call Gemini through Vertex AI with the function's service account (no key)."
    )
    gemini_base_url: str = setting("GEMINI_BASE_URL", "", "Override the Gemini endpoint (local stand-in only).")

    # --- vector index ---------------------------------------------------------------------------------------------
    vector_backend: str = setting("VECTOR_BACKEND", "pgvector", "`pgvector` (same database) or `pinecone`.")
    pinecone_api_key: str = setting("PINECONE_API_KEY", "", "Pinecone API key (VECTOR_BACKEND=pinecone).")
    pinecone_index_host: str = setting(
        "PINECONE_INDEX_HOST", "", "Pinecone index host, e.g. `https://support-abc123.svc.pinecone.io`."
    )

    # --- conversation memory (Firestore) ---------------------------------------------------------------------------
    firestore_database: str = setting("FIRESTORE_DATABASE", "(default)", "Firestore database id of the chat memory.")
    firestore_timeout_seconds: float = setting(
        "FIRESTORE_TIMEOUT_SECONDS", 3.0, "Deadline of one Firestore call attempt (sessions, messages, rate limits)."
    )
    firestore_retry_seconds: float = setting(
        "FIRESTORE_RETRY_SECONDS", 3.0, "Failed Firestore calls are retried with backoff for this long (0: never), "
        "so an outage answers 503 with Retry-After after about the sum of the two."
    )
    session_ttl_seconds: int = setting(
        "SESSION_TTL_SECONDS", 24 * 3600, "A chat session expires this long after its last turn (field `expires_at`)."
    )
    summary_every_turns: int = setting(
        "SUMMARY_EVERY_TURNS", 6, "Fold the turns not yet summarized into the session's rolling summary this often."
    )
    user_token_secret: str = setting(
        "USER_TOKEN_SECRET", "", "HMAC-SHA256 secret host sites sign user ids with (empty: signed user ids disabled)."
    )
    rate_limit_session_per_minute: int = setting(
        "RATE_LIMIT_SESSION_PER_MINUTE", 20, "Chat messages allowed per session per sliding minute."
    )
    rate_limit_client_per_minute: int = setting(
        "RATE_LIMIT_CLIENT_PER_MINUTE", 60, "Chat messages allowed per client (IP address) per sliding minute."
    )
    rate_limit_handoff_per_hour: int = setting(
        "RATE_LIMIT_HANDOFF_PER_HOUR", 10, "Hand-off tickets allowed per client (IP address) per sliding hour."
    )
    rate_limit_feedback_per_minute: int = setting(
        "RATE_LIMIT_FEEDBACK_PER_MINUTE", 30, "Feedback votes allowed per client (IP address) per sliding minute."
    )
    policy_cache_seconds: int = setting(
        "POLICY_CACHE_SECONDS", 300, "How long an instance caches a tenant's policies (`tenants/{t}/config/policies`)."
    )
    tenant_registry: str = setting(
        "TENANT_REGISTRY", "", "Empty: one tenant (DEFAULT_TENANT, origins CHAT_ALLOWED_ORIGINS). `firestore`: tenants "
        "in Firestore (`python -m infra.tenants`), each with a public site key the widget sends, its allowed origins "
        "and its limits.",
    )
    tenant_cache_seconds: int = setting(
        "TENANT_CACHE_SECONDS", 60, "How long an instance caches a tenant looked up by its site key (an edit or a "
        "rotated key takes effect within this time).",
    )
    # --- end of conversation memory (Firestore) ---

    # --- chat ------------------------------------------------------------------------------------------------------
    generation_model: str = setting("GENERATION_MODEL", "gemini-2.5-flash", "Gemini model that writes answers and "
                                    "rewrites follow-up questions (used when a Gemini key or Vertex AI is set).")
    chat_allowed_origins: str = setting(
        "CHAT_ALLOWED_ORIGINS", "http://localhost:8080,http://127.0.0.1:8080",
        "Comma-separated browser origins allowed to call the chat API (CORS); `*` allows any.",
    )
    trusted_proxy_hops: int = setting(
        "TRUSTED_PROXY_HOPS", 1, "Proxies in front of chat that append the caller's address to X-Forwarded-For: the "
        "client is the N-th entry from the right (1: Cloud Functions' own front end; 2: behind an external "
        "Application Load Balancer; 0: ignore the header, use the connection's peer address)."
    )
    chat_max_body_bytes: int = setting("CHAT_MAX_BODY_BYTES", 16 * 1024, "Largest accepted chat request body.")
    chat_max_message_chars: int = setting("CHAT_MAX_MESSAGE_CHARS", 4000, "Longest accepted chat message.")
    chat_history_messages: int = setting(
        "CHAT_HISTORY_MESSAGES", 6, "Buffer window: the last N messages given to the model with the summary."
    )
    chat_max_sources: int = setting("CHAT_MAX_SOURCES", 5, "Documents given to the model as numbered sources.")
    answer_min_confidence: float = setting(
        "ANSWER_MIN_CONFIDENCE", 0.51, "Below this probability that the documents answer the question (the "
        "answerability gate's, the turn's `confidence`) the assistant says it does not know and offers a human (the "
        "question is recorded as a coverage gap). The default is the threshold `make fit-answerability` chose for a "
        "precision of 0.8 on its training data (see README, Honest answers).",
    )
    answerability_model: str = setting(
        "ANSWERABILITY_MODEL", "", "Path of the answerability gate's coefficients (JSON written by "
        "`python -m infra.fit_answerability`); empty: the file shipped in shared/answerability/model.json.",
    )
    handoff_webhook_url: str = setting(
        "HANDOFF_WEBHOOK_URL", "", "POST each hand-off ticket as JSON here (e.g. your help desk); empty: Firestore only."
    )
    sse_heartbeat_seconds: float = setting(
        "SSE_HEARTBEAT_SECONDS", 10.0, "Send an SSE comment line after this long without an event."
    )
    public_url_bases: str = setting(
        "PUBLIC_URL_BASES", "", "Where documents without a `source_url` are published: comma-separated "
        "`gs://bucket/prefix/=https://help.example.com/base/` pairs. A document whose path starts with a prefix "
        "(the longest that matches) links to the base plus the rest of its path, URL-quoted and with its file "
        "extension kept (`gs://knowledge/billing/refunds.md` -> `https://help.example.com/base/billing/refunds.md`"
        " for the prefix `gs://knowledge/`); one that matches none is cited by its title only. Applied when "
        "answering: a change needs no re-ingest. An entry that is not `gs://bucket/…=http(s)://host/…` (or whose "
        "base has a query or fragment) stops the function at its first request."
    )

    # --- HTTP server (every function; shared/server.py) -----------------------------------------------------------
    request_body_timeout_seconds: float = setting(
        "REQUEST_BODY_TIMEOUT_SECONDS", 10.0, "A request body must arrive within this long after its headers, or "
        "the request is answered 408 and closed (a 16 KiB chat body needs under 2 KB/s)."
    )
    request_max_body_bytes: int = setting(
        "REQUEST_MAX_BODY_BYTES", 1024 * 1024, "Largest request body any function reads (413 beyond); endpoints "
        "may accept less (CHAT_MAX_BODY_BYTES)."
    )
    # --- end of HTTP server ---

    # ------------------------------------------------------------------------------------------------------------
    def validate(self) -> Settings:
        """Fail early, saying what to set and why."""
        if not self.database_url and not self.cloud_sql_instance:
            raise ConfigurationError("set DATABASE_URL (direct connection) or CLOUD_SQL_INSTANCE (Cloud SQL connector)")
        if self.cloud_sql_instance and not self.db_user:
            raise ConfigurationError("set DB_USER to the IAM database user when CLOUD_SQL_INSTANCE is set")
        if self.db_ip_type not in ("private", "public", "psc"):
            raise ConfigurationError("DB_IP_TYPE must be private, public or psc")
        if self.local_embedding_runtime not in ("onnx", "torch"):
            raise ConfigurationError("LOCAL_EMBEDDING_RUNTIME must be onnx or torch")
        if self.embedder not in ("local", "gemini", "hash"):
            raise ConfigurationError("EMBEDDER must be local, gemini or hash")
        if self.embedder == "gemini" and not (self.gemini_api_key or self.gemini_vertexai):
            raise ConfigurationError("set GEMINI_API_KEY, or GEMINI_VERTEXAI=true, or EMBEDDER=local")
        if self.vector_backend not in ("pgvector", "pinecone"):
            raise ConfigurationError("VECTOR_BACKEND must be pgvector or pinecone")
        if self.vector_backend == "pinecone" and not (self.pinecone_api_key and self.pinecone_index_host):
            raise ConfigurationError(
                "set PINECONE_API_KEY and PINECONE_INDEX_HOST to your index's host, or VECTOR_BACKEND=pgvector"
            )
        if self.max_event_age_seconds < 60:
            raise ConfigurationError("MAX_EVENT_AGE_SECONDS must be at least 60 (Eventarc retries for 24 h: 90000 "
                                     "keeps every event it may still deliver)")
        if self.reconcile_max_deletes < 0:
            raise ConfigurationError("RECONCILE_MAX_DELETES must be at least 0 (0: report deletions, never do them)")
        if not 0 < self.embed_time_budget_seconds <= 1800:
            raise ConfigurationError("EMBED_TIME_BUDGET_SECONDS must be above 0 and at most 1800 (Cloud Tasks' "
                                     "longest dispatch deadline), and well under embed's timeout")
        if self.embed_max_calls < 1 or self.embed_max_stalled_calls < 1:
            raise ConfigurationError("EMBED_MAX_CALLS and EMBED_MAX_STALLED_CALLS must be at least 1")
        if not 16 <= self.chunk_max_tokens <= 8192:
            raise ConfigurationError("CHUNK_MAX_TOKENS must be between 16 and 8192")
        if not 0 <= self.chunk_overlap_tokens < self.chunk_max_tokens // 2:
            raise ConfigurationError("CHUNK_OVERLAP_TOKENS must be at least 0 and under half of CHUNK_MAX_TOKENS")
        if min(self.max_chunks_per_document, self.max_document_chars, self.max_document_elements,
               self.max_expanded_bytes, self.max_pdf_pages) < 1:
            raise ConfigurationError("MAX_CHUNKS_PER_DOCUMENT, MAX_DOCUMENT_CHARS, MAX_DOCUMENT_ELEMENTS, "
                                     "MAX_EXPANDED_BYTES and MAX_PDF_PAGES must be at least 1")
        # --- conversation memory (Firestore) ---
        if not self.firestore_database:
            raise ConfigurationError("set FIRESTORE_DATABASE to the Firestore database id, e.g. (default)")
        if self.session_ttl_seconds < 60:
            raise ConfigurationError("SESSION_TTL_SECONDS must be at least 60")
        if self.summary_every_turns < 1:
            raise ConfigurationError("SUMMARY_EVERY_TURNS must be at least 1")
        if self.user_token_secret and len(self.user_token_secret) < 32:
            raise ConfigurationError("USER_TOKEN_SECRET must be at least 32 characters (e.g. `openssl rand -hex 32`), "
                                     "or empty to disable signed user ids")
        if min(self.rate_limit_session_per_minute, self.rate_limit_client_per_minute,
               self.rate_limit_handoff_per_hour, self.rate_limit_feedback_per_minute) < 1:
            raise ConfigurationError(
                "RATE_LIMIT_SESSION_PER_MINUTE, RATE_LIMIT_CLIENT_PER_MINUTE, RATE_LIMIT_HANDOFF_PER_HOUR and "
                "RATE_LIMIT_FEEDBACK_PER_MINUTE must be at least 1"
            )
        if self.firestore_timeout_seconds <= 0 or self.firestore_retry_seconds < 0:
            raise ConfigurationError(
                "FIRESTORE_TIMEOUT_SECONDS must be positive and FIRESTORE_RETRY_SECONDS at least 0"
            )
        if self.tenant_registry not in ("", "firestore"):
            raise ConfigurationError("TENANT_REGISTRY must be empty (one tenant) or firestore")
        if self.tenant_cache_seconds < 0:
            raise ConfigurationError("TENANT_CACHE_SECONDS must be at least 0")
        if not TENANT_ID.fullmatch(self.default_tenant):
            raise ConfigurationError("DEFAULT_TENANT must be 1-63 lowercase letters, digits, '_' or '-'")
        if self.policy_cache_seconds < 0:
            raise ConfigurationError("POLICY_CACHE_SECONDS must be at least 0")
        if self.chat_max_message_chars < 1 or self.chat_max_body_bytes < self.chat_max_message_chars:
            raise ConfigurationError("CHAT_MAX_MESSAGE_CHARS must be at least 1 and CHAT_MAX_BODY_BYTES at least as "
                                     "large")
        if self.chat_history_messages < 0 or self.chat_max_sources < 1:
            raise ConfigurationError("CHAT_HISTORY_MESSAGES must be at least 0 and CHAT_MAX_SOURCES at least 1")
        if not 0.0 <= self.answer_min_confidence <= 1.0:
            raise ConfigurationError("ANSWER_MIN_CONFIDENCE must be between 0 and 1")
        if not 0 <= self.trusted_proxy_hops <= 10:
            raise ConfigurationError("TRUSTED_PROXY_HOPS must be between 0 (ignore X-Forwarded-For) and 10")
        if self.sse_heartbeat_seconds <= 0:
            raise ConfigurationError("SSE_HEARTBEAT_SECONDS must be positive")
        parse_url_bases(self.public_url_bases)  # a bad entry stops the function now, not at its first citation
        # --- HTTP server ---
        if not 0 < self.request_body_timeout_seconds <= 3600:
            raise ConfigurationError("REQUEST_BODY_TIMEOUT_SECONDS must be above 0 and at most 3600")
        if self.request_max_body_bytes < self.chat_max_body_bytes:
            raise ConfigurationError("REQUEST_MAX_BODY_BYTES must be at least CHAT_MAX_BODY_BYTES")
        return self

    @property
    def allowed_origins(self) -> frozenset[str]:
        return frozenset(o.strip().rstrip("/") for o in self.chat_allowed_origins.split(",") if o.strip())

    @property
    def url_bases(self) -> tuple[tuple[str, str], ...]:
        """PUBLIC_URL_BASES as (prefix, base) pairs (`shared.llm.links.public_url` picks the longest match)."""
        return parse_url_bases(self.public_url_bases)

    @property
    def generation_enabled(self) -> bool:
        """True when answers come from Gemini; otherwise they are extractive (quoted from the documentation)."""
        return bool(self.gemini_api_key or self.gemini_vertexai)

    @property
    def queue_path(self) -> str:
        return f"projects/{self.project}/locations/{self.region}/queues/{self.tasks_queue}"

    @property
    def sync_queue_path(self) -> str:
        return f"projects/{self.project}/locations/{self.region}/queues/{self.sync_queue}"

    @property
    def allowed_private_hosts(self) -> frozenset[str]:
        return frozenset(h.strip().lower() for h in self.sync_allowed_private_hosts.split(",") if h.strip())

    @property
    def user_agent(self) -> str:
        """An honest User-Agent: the product token and, when configured, where to reach the operator."""
        contact = f"; +{self.sync_contact_url}" if self.sync_contact_url else ""
        return f"{self.sync_user_agent} (knowledge-base sync{contact})"

    @classmethod
    def from_env(cls, environ: dict | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        values = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(f.metadata["env"])
            if raw is None or raw == "":
                continue
            values[f.name] = _coerce(f, raw)
        return cls(**values)


def _coerce(f: dataclasses.Field, raw: str):
    kind = type(f.default)
    try:
        if kind is bool:
            if raw.strip().lower() in ("1", "true", "yes", "on"):
                return True
            if raw.strip().lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        return kind(raw)
    except ValueError:
        raise ConfigurationError(f"{f.metadata['env']}={raw!r} is not a valid {kind.__name__}") from None


def parse_url_bases(raw: str) -> tuple[tuple[str, str], ...]:
    """`gs://b/prefix/=https://host/base/,...` as (prefix, base) pairs. A base gains a trailing "/" when its prefix
    has one, so a folder maps onto a folder."""
    pairs = []
    for entry in (e.strip() for e in raw.split(",")):
        if not entry:
            continue
        prefix, equals, base = (part.strip() for part in entry.partition("="))
        if not equals or not re.fullmatch(r"gs://[^/\s]+/\S*", prefix):
            raise ConfigurationError(f"PUBLIC_URL_BASES: {entry!r} must be `gs://bucket/prefix=https://host/path`")
        if not _is_base_url(base):
            raise ConfigurationError(f"PUBLIC_URL_BASES: {base!r} (for {prefix}) must be an http(s) URL without "
                                     "a query or fragment")
        if prefix.endswith("/") and not base.endswith("/"):
            base += "/"
        pairs.append((prefix, base))
    if len({prefix for prefix, _ in pairs}) < len(pairs):
        raise ConfigurationError("PUBLIC_URL_BASES names a prefix twice")
    return tuple(pairs)


def _is_base_url(value: str) -> bool:
    """An absolute http(s) URL with a host and no query or fragment (a path appended to it stays its path)."""
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(host) and not re.search(r"[?#\s]", value)


def fields() -> list[dataclasses.Field]:
    return list(dataclasses.fields(Settings))


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The instance's settings, read and validated on first use."""
    return Settings.from_env().validate()
