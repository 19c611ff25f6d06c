# --- the knowledge bucket: the editors' source of truth ---------------------------------------------------------------
resource "google_storage_bucket" "knowledge" {
  #checkov:skip=CKV_GCP_62:Access logs go to Cloud Audit Logs (enable Data Access logs for storage if you need reads logged); a second bucket only for usage logs adds cost and no control.
  project                     = var.project_id
  name                        = "${var.project_id}-${var.name}-knowledge"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false # a teardown never deletes the knowledge silently (README, "Teardown")

  # Every overwrite or deletion keeps the old version (restore it by copying it back) ...
  versioning {
    enabled = true
  }

  # ... for knowledge_noncurrent_days, then it is deleted.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.knowledge_noncurrent_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis]
}

# --- function bundles (`make package`): object names carry the content hash ----------------------------------------
resource "google_storage_bucket" "sources" {
  #checkov:skip=CKV_GCP_62:Holds only build inputs; Cloud Audit Logs record writes.
  #checkov:skip=CKV_GCP_78:Object names are content hashes: an object is never overwritten, so versions would hold nothing.
  project                     = var.project_id
  name                        = "${var.project_id}-${var.name}-sources"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true # only rebuildable bundles

  # Old bundles are only needed to roll back; keep them for 90 days.
  lifecycle_rule {
    condition {
      age = 90
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis]
}

locals {
  # The single zip `make package` left for each function, e.g. chat-3f9a0c1d2e4b.zip.
  bundles = { for f in local.function_names : f => try(one(fileset(var.bundle_dir, "${f}-*.zip")), null) }
}

resource "google_storage_bucket_object" "bundle" {
  for_each = local.bundles
  bucket   = google_storage_bucket.sources.name
  name     = "functions/${coalesce(each.value, "${each.key}-missing.zip")}" # a changed bundle is a new object, so the function redeploys; an unchanged one does not
  source   = "${var.bundle_dir}/${coalesce(each.value, "${each.key}-missing.zip")}"

  lifecycle {
    precondition {
      condition     = each.value != null
      error_message = "No single bundle for ${each.key} in ${var.bundle_dir}: run `make package` (it writes exactly one ${each.key}-<hash>.zip)."
    }
  }
}
