# --- where ------------------------------------------------------------------------------------------------------------
variable "project_id" {
  description = "Google Cloud project that holds the whole deployment."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project id (6-30 lowercase letters, digits and hyphens), not its name or number."
  }
}

variable "region" {
  description = "Region of the functions, queues, Cloud SQL, the bucket and (for Vertex AI) Gemini."
  type        = string
  default     = "europe-west1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must be a region such as europe-west1 (not a zone such as europe-west1-b)."
  }
}

variable "name" {
  description = "Prefix of every resource name (service accounts, buckets, queues, the database instance)."
  type        = string
  default     = "support"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,13}$", var.name))
    error_message = "name must be 2-14 lowercase letters, digits or hyphens, starting with a letter (service account ids are at most 30 characters)."
  }
}

variable "labels" {
  description = "Labels added to every resource that takes labels."
  type        = map(string)
  default     = {}
}

# --- what is deployed -------------------------------------------------------------------------------------------------
variable "bundle_dir" {
  description = "Directory holding the function bundles `make package` writes (<function>-<sha256[:12]>.zip)."
  type        = string
  default     = "../dist/functions"
}

variable "functions" {
  description = <<-EOT
    Size of each function. chat streams answers (SSE): one instance holds many open streams, so its concurrency is
    high and its timeout covers the longest stream; embed and scrape work in budgeted steps (EMBED_TIME_BUDGET_SECONDS,
    SYNC_STEP_SECONDS) that must end well inside their timeouts. Keys: chat, ingest, embed, scrape.
  EOT
  type = map(object({
    memory          = optional(string, "1Gi")
    cpu             = optional(string, "1")
    timeout_seconds = optional(number, 540)
    concurrency     = optional(number, 1)
    min_instances   = optional(number, 0)
    max_instances   = optional(number, 10)
  }))
  default = {
    chat   = { memory = "1Gi", cpu = "1", timeout_seconds = 900, concurrency = 40, min_instances = 0, max_instances = 10 }
    ingest = { memory = "2Gi", cpu = "1", timeout_seconds = 540, concurrency = 1, min_instances = 0, max_instances = 5 }
    embed  = { memory = "1Gi", cpu = "1", timeout_seconds = 900, concurrency = 1, min_instances = 0, max_instances = 3 }
    scrape = { memory = "2Gi", cpu = "1", timeout_seconds = 600, concurrency = 1, min_instances = 0, max_instances = 2 }
  }

  validation {
    condition     = toset(keys(var.functions)) == toset(["chat", "ingest", "embed", "scrape"])
    error_message = "functions must have exactly the keys chat, ingest, embed and scrape."
  }
  validation {
    condition = alltrue([for f in values(var.functions) :
    f.timeout_seconds >= 60 && f.timeout_seconds <= 3600 && f.concurrency >= 1 && f.concurrency <= 1000 && f.min_instances >= 0 && f.max_instances >= max(1, f.min_instances)])
    error_message = "Each function needs a timeout of 60-3600 s (HTTP functions), a concurrency of 1-1000, min_instances >= 0 and max_instances >= max(1, min_instances)."
  }
  validation {
    condition     = var.functions["chat"].timeout_seconds >= 300 && var.functions["chat"].concurrency >= 8
    error_message = "chat streams answers over SSE: give it a timeout of at least 300 s and a concurrency of at least 8, or streams are cut and every open stream costs an instance."
  }
  validation {
    condition     = var.functions["embed"].timeout_seconds >= 600 && var.functions["scrape"].timeout_seconds >= 300 && var.functions["scrape"].timeout_seconds <= 1800
    error_message = "embed needs a timeout of at least 600 s (Cloud Tasks' dispatch deadline; EMBED_TIME_BUDGET_SECONDS is 300) and scrape 300-1800 s (SYNC_STEP_SECONDS is 240; the nightly job waits that long, and Cloud Scheduler waits at most 30 min)."
  }
}

# --- answers and vectors ----------------------------------------------------------------------------------------------
variable "gemini" {
  description = <<-EOT
    How the functions reach Gemini. `vertexai` (default): Vertex AI with each function's own service account, billed to
    this project, no key. `api_key`: the Gemini API with the key in the Secret Manager secret `<name>-gemini-api-key`.
  EOT
  type = object({
    backend          = optional(string, "vertexai")
    generation_model = optional(string, "gemini-2.5-flash")
    embedding_model  = optional(string, "gemini-embedding-001")
    dimension        = optional(number, 768)
  })
  default = {}

  validation {
    condition     = contains(["vertexai", "api_key"], var.gemini.backend)
    error_message = "gemini.backend must be vertexai or api_key."
  }
  validation {
    condition     = contains([128, 256, 512, 768, 1536, 3072], var.gemini.dimension)
    error_message = "gemini.dimension must be one of gemini-embedding-001's output sizes: 128, 256, 512, 768, 1536 or 3072 (and the Pinecone index's dimension)."
  }
}

variable "vector_backend" {
  description = "`pinecone` (default, the client's choice) or `pgvector` (vectors in the same Cloud SQL database; no Pinecone account)."
  type        = string
  default     = "pinecone"

  validation {
    condition     = contains(["pinecone", "pgvector"], var.vector_backend)
    error_message = "vector_backend must be pinecone or pgvector."
  }
}

variable "pinecone_index_host" {
  description = "Host of the Pinecone index, as `python -m infra.pinecone_index` prints it (https://NAME-ID.svc.REGION.pinecone.io). Not a secret."
  type        = string
  default     = ""

  validation {
    condition     = var.vector_backend != "pinecone" || var.pinecone_index_host != ""
    error_message = "vector_backend = pinecone needs pinecone_index_host: create the index with `python -m infra.pinecone_index` (README, Deploy) and put the host it prints here."
  }
  validation {
    condition     = var.pinecone_index_host == "" || can(regex("^https://[a-z0-9.-]+$", var.pinecone_index_host))
    error_message = "pinecone_index_host must be an https:// host without a path, e.g. https://support-kb-abc123.svc.aped-4627-b74a.pinecone.io."
  }
}

# --- chat -------------------------------------------------------------------------------------------------------------
variable "allowed_origins" {
  description = "Browser origins of the sites that embed the widget (CORS), e.g. [\"https://www.example.com\"]."
  type        = list(string)

  validation {
    condition     = length(var.allowed_origins) > 0 && alltrue([for o in var.allowed_origins : can(regex("^https?://[^/]+$", o))])
    error_message = "allowed_origins must list at least one origin, each scheme://host[:port] without a path or trailing slash."
  }
}

variable "tenant_registry" {
  description = "Empty: one tenant (default). `firestore`: several sites, each registered with `python -m infra.tenants` and its own site key."
  type        = string
  default     = ""

  validation {
    condition     = contains(["", "firestore"], var.tenant_registry)
    error_message = "tenant_registry must be empty or firestore."
  }
}

variable "public_url_bases" {
  description = "Where documents without a source_url are published: `gs://BUCKET/prefix/=https://help.example.com/base/` pairs (PUBLIC_URL_BASES). Empty: cited by title."
  type        = list(string)
  default     = []
}

variable "answer_min_confidence" {
  description = "Below this answerability the assistant says it does not know and offers a person (ANSWER_MIN_CONFIDENCE)."
  type        = number
  default     = 0.51

  validation {
    condition     = var.answer_min_confidence >= 0 && var.answer_min_confidence <= 1
    error_message = "answer_min_confidence must be between 0 and 1."
  }
}

variable "handoff_webhook" {
  description = "Whether hand-off tickets are also POSTed to a help desk, with the URL in the secret `<name>-handoff-webhook`."
  type        = bool
  default     = false
}

variable "signed_users" {
  description = "Whether host sites sign user ids (long-term memory per user) with the secret `<name>-user-token-secret`."
  type        = bool
  default     = false
}

variable "settings" {
  description = "Further settings (environment variables of shared/config.py) for every function, e.g. { RATE_LIMIT_CLIENT_PER_MINUTE = \"30\" }. They override the deployment's own values."
  type        = map(string)
  default     = {}

  validation {
    # code_settings.json lists every setting the code reads (python -m infra.settings_manifest writes it).
    condition     = length(setsubtract(keys(var.settings), jsondecode(file("${path.module}/code_settings.json")).settings)) == 0
    error_message = "settings names variables the code does not read (a typo?); the settings are listed in terraform/code_settings.json and the README's Configuration table."
  }
}

# --- sync -------------------------------------------------------------------------------------------------------------
variable "sync_schedule" {
  description = "When the nightly sync runs (cron, in sync_time_zone)."
  type        = string
  default     = "30 2 * * *"

  validation {
    condition     = length(split(" ", trimspace(var.sync_schedule))) == 5
    error_message = "sync_schedule must be a five-field cron expression, e.g. \"30 2 * * *\"."
  }
}

variable "sync_time_zone" {
  description = "IANA time zone of sync_schedule."
  type        = string
  default     = "Etc/UTC"
}

variable "sync_contact_url" {
  description = "URL in the sync's User-Agent where site owners learn who crawls them (SYNC_CONTACT_URL)."
  type        = string
  default     = ""
}

variable "sync_secrets" {
  description = "Secret Manager secrets (ids in this project) mounted into scrape as environment variables, for sources' `headers_secret` / `credentials_secret`: { ENV_NAME = \"secret-id\" }."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.sync_secrets) : can(regex("^[A-Z][A-Z0-9_]*$", k))])
    error_message = "sync_secrets keys must be environment variable names (upper case, digits, underscores)."
  }
}

# --- data -------------------------------------------------------------------------------------------------------------
variable "database" {
  description = "Cloud SQL for PostgreSQL. The default tier is the smallest shared-core machine; give production traffic a dedicated one (db-custom-1-3840)."
  type = object({
    tier                 = optional(string, "db-g1-small")
    availability         = optional(string, "ZONAL")
    disk_size_gb         = optional(number, 10)
    backup_start_time    = optional(string, "01:00")
    retained_backups     = optional(number, 14)
    log_retention_days   = optional(number, 7)
    deletion_protection  = optional(bool, true)
    maintenance_day      = optional(number, 7)
    maintenance_hour_utc = optional(number, 3)
  })
  default = {}

  validation {
    condition     = contains(["ZONAL", "REGIONAL"], var.database.availability)
    error_message = "database.availability must be ZONAL or REGIONAL (high availability, about twice the price)."
  }
  validation {
    condition     = var.database.log_retention_days >= 1 && var.database.log_retention_days <= 7 && var.database.retained_backups >= 1
    error_message = "database.log_retention_days (point-in-time recovery) must be 1-7 and retained_backups at least 1."
  }
}

variable "database_version" {
  description = "PostgreSQL major version of Cloud SQL (a change is an in-place major upgrade: take a backup first)."
  type        = string
  default     = "POSTGRES_18"

  validation {
    condition     = contains(["POSTGRES_16", "POSTGRES_17", "POSTGRES_18"], var.database_version)
    error_message = "database_version must be POSTGRES_16, POSTGRES_17 or POSTGRES_18 (IAM authentication and pgvector; the tests run on 16)."
  }
}

variable "deployer_service_account" {
  description = "Email of the service account Cloud Build runs `terraform apply` and the migrations as (README, bootstrap). It becomes the database's migration user."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]+@[a-z0-9-]+\\.iam\\.gserviceaccount\\.com$", var.deployer_service_account))
    error_message = "deployer_service_account must be a service account email (NAME@PROJECT.iam.gserviceaccount.com)."
  }
}

variable "knowledge_noncurrent_days" {
  description = "Days an overwritten or deleted knowledge file's old version is kept (restore by copying it back)."
  type        = number
  default     = 30

  validation {
    condition     = var.knowledge_noncurrent_days >= 1
    error_message = "knowledge_noncurrent_days must be at least 1."
  }
}

variable "firestore_location" {
  description = "Firestore location (a region such as europe-west1, or a multi-region such as eur3). Empty: the region."
  type        = string
  default     = ""
}

# --- operations -------------------------------------------------------------------------------------------------------
variable "notification_channels" {
  description = "Monitoring notification channel ids (projects/P/notificationChannels/N) that alerts are sent to. Empty: alerts show in the console only."
  type        = list(string)
  default     = []
}

variable "alert_thresholds" {
  description = "Alert thresholds; see terraform/modules/monitoring/variables.tf."
  type        = any
  default     = {}
}
