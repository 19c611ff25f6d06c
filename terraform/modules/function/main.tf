# One 2nd-gen Cloud Function (a Cloud Run service) built from a content-addressed bundle.
resource "google_cloudfunctions2_function" "this" {
  #checkov:skip=CKV_GCP_124:The ingress is the caller's choice: ALLOW_ALL only for chat, which the widget calls from browsers; terraform/tests asserts ingest, embed and scrape are ALLOW_INTERNAL_ONLY.
  project     = var.project_id
  location    = var.region
  name        = var.name
  description = var.description
  labels      = var.labels

  build_config {
    runtime         = "python311"
    entry_point     = var.entry_point
    service_account = var.build_service_account
    source {
      storage_source {
        bucket = var.source_bucket
        object = var.source_object
      }
    }
  }

  service_config {
    service_account_email            = var.service_account
    ingress_settings                 = var.ingress
    all_traffic_on_latest_revision   = true
    available_memory                 = var.size.memory
    available_cpu                    = var.size.cpu
    timeout_seconds                  = var.size.timeout_seconds
    max_instance_request_concurrency = var.size.concurrency
    min_instance_count               = var.size.min_instances
    max_instance_count               = var.size.max_instances
    environment_variables            = var.environment

    dynamic "secret_environment_variables" {
      for_each = var.secrets
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = "latest"
      }
    }
  }
}
