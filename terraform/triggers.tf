# --- Cloud Tasks: embed and the sync steps ----------------------------------------------------------------------------
# Queue-level overrides make every task carry the invoker's OIDC token for the right audience, whatever the code
# that created it set: only that identity may invoke embed and scrape.
resource "google_cloud_tasks_queue" "embed" {
  project  = var.project_id
  location = var.region
  name     = "${var.name}-embed"

  rate_limits {
    max_dispatches_per_second = 5
    max_concurrent_dispatches = var.functions["embed"].max_instances * var.functions["embed"].concurrency
  }

  retry_config {
    max_attempts       = 10 # embed also counts its own calls per version (EMBED_MAX_CALLS) and records a failure
    min_backoff        = "10s"
    max_backoff        = "600s"
    max_doublings      = 5
    max_retry_duration = "86400s"
  }

  http_target {
    http_method = "POST"
    oidc_token {
      service_account_email = google_service_account.tasks_invoker.email
      audience              = local.urls.embed
    }
  }

  stackdriver_logging_config {
    sampling_ratio = 1.0 # every dispatch and its outcome in the logs: the queue is the ingestion's audit trail
  }

  depends_on = [google_project_service.apis]
}

resource "google_cloud_tasks_queue" "sync" {
  project  = var.project_id
  location = var.region
  name     = "${var.name}-sync"

  rate_limits {
    max_dispatches_per_second = 1
    max_concurrent_dispatches = var.functions["scrape"].max_instances
  }

  retry_config {
    max_attempts  = 8 # a step that fails is retried; the engine's lease makes a duplicate delivery a no-op (503 Busy)
    min_backoff   = "30s"
    max_backoff   = "900s"
    max_doublings = 4
  }

  http_target {
    http_method = "POST"
    oidc_token {
      service_account_email = google_service_account.tasks_invoker.email
      audience              = local.urls.scrape
    }
  }

  stackdriver_logging_config {
    sampling_ratio = 1.0
  }

  depends_on = [google_project_service.apis]
}

# --- Cloud Scheduler: the nightly sync --------------------------------------------------------------------------------
resource "google_cloud_scheduler_job" "nightly_sync" {
  project          = var.project_id
  region           = var.region
  name             = "${var.name}-nightly-sync"
  description      = "Starts the nightly sync of every source, then reconciles the bucket with the database."
  schedule         = var.sync_schedule
  time_zone        = var.sync_time_zone
  attempt_deadline = "${var.functions["scrape"].timeout_seconds}s" # scrape answers once the runs are started and reconciliation is done

  retry_config {
    retry_count          = 3
    min_backoff_duration = "60s"
    max_backoff_duration = "600s"
  }

  http_target {
    http_method = "POST"
    uri         = local.urls.scrape
    headers     = { "Content-Type" = "application/json" }
    body        = base64encode(jsonencode({}))

    oidc_token {
      service_account_email = google_service_account.scheduler_invoker.email
      audience              = local.urls.scrape
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.private_invoker]
}

# --- Eventarc: the knowledge bucket's object events -> ingest ---------------------------------------------------------
locals {
  storage_events = {
    finalized = "google.cloud.storage.object.v1.finalized" # a file was added or overwritten
    deleted   = "google.cloud.storage.object.v1.deleted"   # a version was deleted for good (the lifecycle rule, or a bucket without versioning)
    # The bucket keeps versions, so removing a file makes its live version noncurrent: Cloud Storage reports that as
    # `archived`, not `deleted`. ingest treats both as a deletion of that generation (and ignores an archived
    # generation that a newer live one replaced).
    archived = "google.cloud.storage.object.v1.archived"
  }
}

resource "google_eventarc_trigger" "knowledge" {
  for_each        = local.storage_events
  project         = var.project_id
  location        = var.region
  name            = "${var.name}-knowledge-${each.key}"
  service_account = google_service_account.eventarc.email

  matching_criteria {
    attribute = "type"
    value     = each.value
  }
  matching_criteria {
    attribute = "bucket"
    value     = google_storage_bucket.knowledge.name
  }

  destination {
    cloud_run_service {
      service = module.function["ingest"].name
      region  = var.region
    }
  }

  depends_on = [
    google_project_iam_member.storage_agent_publishes,
    google_project_iam_member.eventarc_receives,
    google_cloud_run_v2_service_iam_member.private_invoker,
  ]
}
