# --- Firestore (native mode): conversation memory ---------------------------------------------------------------
resource "google_firestore_database" "memory" {
  project                           = var.project_id
  name                              = "(default)"
  location_id                       = coalesce(var.firestore_location, var.region)
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "OPTIMISTIC"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = "DELETE_PROTECTION_ENABLED"
  deletion_policy                   = "ABANDON" # `terraform destroy` leaves the data; delete it by hand (README, "Teardown")

  depends_on = [google_project_service.apis]
}

# Every collection group whose documents carry `expires_at` (shared/memory: sessions and their messages slide it on
# each turn, rate-limit counters set it to the end of the window after their own). TTL deletes them up to a day late;
# the code checks `expires_at` itself on every read. tests/terraform compares this list with what the code writes.
locals {
  ttl_collections = ["sessions", "messages", "ratelimits"]
}

resource "google_firestore_field" "ttl" {
  for_each   = toset(local.ttl_collections)
  project    = var.project_id
  database   = google_firestore_database.memory.name
  collection = each.value
  field      = "expires_at"

  ttl_config {}

  # A TTL field needs no index: skip the automatic single-field indexes (they cost writes on every turn).
  index_config {}
}
