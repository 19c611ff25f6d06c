# Every setting in shared/config.py is set by this deployment (functions.tf: common_settings, DB_USER, secrets) or
# deliberately left at its default, here, with the reason. tests/terraform fails when a setting is neither, so a new
# setting cannot ship without a decision. `var.settings` overrides any of them.
locals {
  settings_left_default = {
    DEFAULT_TENANT                 = "`default`: the tenant of objects without `tenant` metadata."
    LOG_LEVEL                      = "INFO: one structured record per turn, version and run; no message text."
    DATABASE_URL                   = "Production connects through the Cloud SQL connector (CLOUD_SQL_INSTANCE)."
    DB_POOL_SIZE                   = "4 connections per instance: retrieval holds one briefly; the instance's max_connections (sql.tf) covers every function at its max_instances."
    CLOUD_TASKS_EMULATOR_HOST      = "Local emulator only; empty means the real Cloud Tasks."
    MAX_FILE_BYTES                 = "20 MiB per knowledge file."
    MAX_EVENT_AGE_SECONDS          = "25 h, above Eventarc's 24 h of redelivery: an event it may still deliver is never dropped."
    CHUNK_MAX_TOKENS               = "The tuned chunk size (README, Benchmarks)."
    CHUNK_OVERLAP_TOKENS           = "The tuned overlap."
    MAX_CHUNKS_PER_DOCUMENT        = "Bounds one document's embedding cost."
    MAX_DOCUMENT_CHARS             = "Bounds one document's parse."
    MAX_DOCUMENT_ELEMENTS          = "Bounds hostile files (README, Hardening)."
    MAX_EXPANDED_BYTES             = "Bounds zip bombs inside DOCX and PDF."
    MAX_PDF_PAGES                  = "Bounds one PDF."
    RECONCILE_MAX_DELETES          = "At most 25 deletions per nightly reconciliation; more wait for a person."
    SYNC_STEP_SECONDS              = "240 s per step: inside the sync queue's 10 min dispatch deadline and scrape's timeout (variable functions)."
    SYNC_RUN_MAX_SECONDS           = "6 h per run."
    SYNC_USER_AGENT                = "The product's token; set SYNC_CONTACT_URL (variable sync_contact_url) to say who crawls."
    SYNC_ALLOWED_PRIVATE_HOSTS     = "Must stay empty in production: the sync refuses private addresses (SSRF)."
    SYNC_GRACE_RUNS                = "A page is deleted after 2 complete runs without it."
    SYNC_MAX_DELETES               = "max(10, 10% of a source's pages) per run."
    SYNC_SHRINK_LIMIT              = "A run that sees under half the pages deletes nothing."
    SYNC_ERROR_RATE_LIMIT          = "A run with over 10% failed fetches deletes nothing."
    SYNC_RETRY_BASE_SECONDS        = "5 s, doubling."
    SYNC_CONCURRENCY               = "8 fetches per step (per host at most the source's own limit)."
    SYNC_MAX_PAGE_BYTES            = "20 MiB per page."
    EMBED_BATCH_SIZE               = "64 texts per Gemini embedding request."
    EMBED_MAX_RETRIES              = "5 retries of a batch on 429/5xx."
    EMBED_RETRY_BASE_SECONDS       = "1 s, doubling, with jitter."
    EMBED_TIME_BUDGET_SECONDS      = "300 s per call: inside the embed queue's 10 min dispatch deadline and embed's timeout."
    EMBED_MAX_CALLS                = "20 calls per version before it is recorded as failed."
    EMBED_MAX_STALLED_CALLS        = "3 calls in a row without progress."
    LOCAL_EMBEDDING_THREADS        = "The local model is not used in production (EMBEDDER=gemini)."
    LOCAL_EMBEDDING_RUNTIME        = "The local model is not used in production (EMBEDDER=gemini)."
    GEMINI_BASE_URL                = "Local stand-in only; empty means Google's endpoint."
    FIRESTORE_TIMEOUT_SECONDS      = "3 s per attempt."
    FIRESTORE_RETRY_SECONDS        = "3 s of retries, then 503 with Retry-After."
    SESSION_TTL_SECONDS            = "A session lives 24 h after its last turn (the TTL policies delete it, firestore.tf)."
    SUMMARY_EVERY_TURNS            = "Rolling summary every 6 turns."
    RATE_LIMIT_SESSION_PER_MINUTE  = "20 messages per session per minute."
    RATE_LIMIT_CLIENT_PER_MINUTE   = "60 messages per client address per minute."
    RATE_LIMIT_HANDOFF_PER_HOUR    = "10 hand-offs per client address per hour."
    RATE_LIMIT_FEEDBACK_PER_MINUTE = "30 votes per client address per minute."
    POLICY_CACHE_SECONDS           = "Policies cached 5 min per instance."
    TENANT_CACHE_SECONDS           = "Tenants cached 1 min per instance."
    TRUSTED_PROXY_HOPS             = "1: Cloud Functions' own front end appends the caller's address (2 behind a load balancer)."
    CHAT_MAX_BODY_BYTES            = "16 KiB per chat request."
    CHAT_MAX_MESSAGE_CHARS         = "4,000 characters per message."
    CHAT_HISTORY_MESSAGES          = "The last 6 messages go to the model with the summary."
    CHAT_MAX_SOURCES               = "5 numbered sources per answer."
    ANSWERABILITY_MODEL            = "The gate's coefficients shipped in the bundle (shared/answerability/model.json)."
    SSE_HEARTBEAT_SECONDS          = "A comment line after 10 s of silence keeps proxies from closing the stream."
    REQUEST_BODY_TIMEOUT_SECONDS   = "10 s for a request body."
    REQUEST_MAX_BODY_BYTES         = "1 MiB per request."
  }

  # Settings that are secrets, each read from Secret Manager when its feature is on (functions.tf, secrets.tf).
  settings_as_secrets = {
    PINECONE_API_KEY    = "vector_backend = pinecone"
    GEMINI_API_KEY      = "gemini.backend = api_key (Vertex AI needs no key)"
    USER_TOKEN_SECRET   = "signed_users = true"
    HANDOFF_WEBHOOK_URL = "handoff_webhook = true"
  }
}

output "settings" {
  description = "Which setting each function gets, and how: names only, never values (README, Configuration)."
  value = {
    environment  = { for f in local.function_names : f => sort(keys(local.function_settings[f])) }
    secrets      = { for f in local.function_names : f => sort(keys(local.function_secrets[f])) }
    as_secrets   = sort(keys(local.settings_as_secrets))
    left_default = sort(keys(local.settings_left_default))
  }
}
