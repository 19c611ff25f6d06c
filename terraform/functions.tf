# --- the four functions and their settings ----------------------------------------------------------------------------
locals {
  # Cloud Run's deterministic service URLs (https://SERVICE-PROJECT_NUMBER.REGION.run.app), known before the functions
  # exist: embed and scrape need their own URL in their settings (a task's target and OIDC audience), which a
  # reference to the function's `uri` would make a cycle. The check "function_urls" compares them after apply.
  urls = { for f in local.function_names : f => "https://${var.name}-${f}-${local.project_number}.${var.region}.run.app" }

  entry_points = { chat = "chat", ingest = "ingest", embed = "embed", scrape = "scrape" }
  descriptions = {
    chat   = "Answers the web widget: hybrid retrieval, Gemini, memory, citations, hand-off (public)."
    ingest = "Parses files dropped into the knowledge bucket and queues their chunks for embedding."
    embed  = "Embeds a document version's chunks and writes them to the vector index (Cloud Tasks)."
    scrape = "The nightly sync of websites, feeds and S3 sources, and reconciliation (Cloud Scheduler, Cloud Tasks)."
  }

  # Settings every function reads (shared/config.py). Each is set here, in the per-function maps below, as a secret,
  # or listed in settings_left_default (settings.tf) with the reason; tests/terraform checks that nothing is missed.
  common_settings = {
    GOOGLE_CLOUD_PROJECT  = var.project_id # not set automatically for python311 functions
    REGION                = var.region
    CLOUD_SQL_INSTANCE    = google_sql_database_instance.main.connection_name
    DB_NAME               = google_sql_database.knowledge.name
    DB_IP_TYPE            = "public" # through the connector only: no authorized networks (sql.tf)
    KNOWLEDGE_BUCKET      = google_storage_bucket.knowledge.name
    TASKS_QUEUE           = google_cloud_tasks_queue.embed.name
    EMBED_URL             = local.urls.embed
    SYNC_QUEUE            = google_cloud_tasks_queue.sync.name
    SCRAPE_URL            = local.urls.scrape
    TASKS_SERVICE_ACCOUNT = google_service_account.tasks_invoker.email
    EMBEDDER              = "gemini"
    EMBEDDING_MODEL       = var.gemini.embedding_model
    EMBEDDING_DIMENSION   = tostring(var.gemini.dimension)
    GEMINI_VERTEXAI       = var.gemini.backend == "vertexai" ? "true" : "false"
    GENERATION_MODEL      = var.gemini.generation_model
    VECTOR_BACKEND        = var.vector_backend
    PINECONE_INDEX_HOST   = var.pinecone_index_host
    FIRESTORE_DATABASE    = google_firestore_database.memory.name
    TENANT_REGISTRY       = var.tenant_registry
    CHAT_ALLOWED_ORIGINS  = join(",", var.allowed_origins)
    PUBLIC_URL_BASES      = join(",", var.public_url_bases)
    ANSWER_MIN_CONFIDENCE = tostring(var.answer_min_confidence)
    SYNC_CONTACT_URL      = var.sync_contact_url
  }

  # Secrets, as environment variables resolved from Secret Manager when an instance starts.
  common_secrets = merge(
    var.vector_backend == "pinecone" ? { PINECONE_API_KEY = google_secret_manager_secret.this["pinecone-api-key"].secret_id } : {},
    var.gemini.backend == "api_key" ? { GEMINI_API_KEY = google_secret_manager_secret.this["gemini-api-key"].secret_id } : {},
  )
  function_secrets = {
    chat = merge(local.common_secrets,
      var.signed_users ? { USER_TOKEN_SECRET = google_secret_manager_secret.this["user-token-secret"].secret_id } : {},
      var.handoff_webhook ? { HANDOFF_WEBHOOK_URL = google_secret_manager_secret.this["handoff-webhook"].secret_id } : {},
    )
    ingest = local.common_secrets
    embed  = local.common_secrets
    scrape = merge(local.common_secrets, var.sync_secrets)
  }

  function_settings = { for f in local.function_names : f => merge(
    local.common_settings,
    { DB_USER = trimsuffix(local.sa[f], ".gserviceaccount.com") }, # the IAM database user (sql.tf)
    var.settings,
  ) }
}

module "function" {
  source   = "./modules/function"
  for_each = toset(local.function_names)

  project_id            = var.project_id
  region                = var.region
  name                  = "${var.name}-${each.key}"
  description           = local.descriptions[each.key]
  entry_point           = local.entry_points[each.key]
  source_bucket         = google_storage_bucket.sources.name
  source_object         = google_storage_bucket_object.bundle[each.key].name
  build_service_account = google_service_account.builder.id
  service_account       = local.sa[each.key]
  environment           = local.function_settings[each.key]
  secrets               = local.function_secrets[each.key]
  ingress               = each.key == "chat" ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"
  size                  = var.functions[each.key]
  labels                = merge({ app = var.name, function = each.key }, var.labels)

  depends_on = [
    google_service_account_iam_member.deployer_acts_as,
    google_project_iam_member.builder,
    google_secret_manager_secret_iam_member.function,
    google_sql_user.function,
  ]
}

check "function_urls" {
  assert {
    condition     = alltrue([for f in local.function_names : module.function[f].uri == local.urls[f]])
    error_message = "A function's URL differs from the deterministic Cloud Run URL its settings use (EMBED_URL, SCRAPE_URL, OIDC audiences): ${jsonencode({ for f in local.function_names : f => module.function[f].uri })}."
  }
}

# --- who may call what ------------------------------------------------------------------------------------------------
resource "google_cloud_run_v2_service_iam_member" "chat_public" {
  #checkov:skip=CKV2_SUPPORT_1:chat is the public endpoint the web widget calls from visitors' browsers; it limits callers by origin, site key and rate limits.
  project  = var.project_id
  location = var.region
  name     = module.function["chat"].name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# The private functions' only callers: each invoker identity on exactly the function it calls.
locals {
  private_invokers = {
    "embed/tasks"      = { function = "embed", member = "serviceAccount:${google_service_account.tasks_invoker.email}" }      # Cloud Tasks delivers embed tasks with its OIDC token
    "scrape/tasks"     = { function = "scrape", member = "serviceAccount:${google_service_account.tasks_invoker.email}" }     # Cloud Tasks delivers the sync steps (/step)
    "scrape/scheduler" = { function = "scrape", member = "serviceAccount:${google_service_account.scheduler_invoker.email}" } # Cloud Scheduler starts the nightly sync
    "ingest/eventarc"  = { function = "ingest", member = "serviceAccount:${google_service_account.eventarc.email}" }          # the storage triggers push events as this identity
  }
}

resource "google_cloud_run_v2_service_iam_member" "private_invoker" {
  for_each = local.private_invokers
  project  = var.project_id
  location = var.region
  name     = module.function[each.value.function].name
  role     = "roles/run.invoker"
  member   = each.value.member
}
