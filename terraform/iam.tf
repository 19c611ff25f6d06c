# Every role this deployment grants, with why. No basic roles (owner, editor, viewer); resource-level bindings where
# the resource type has them. tests/terraform checks the list against a reviewed allow-list (infra/tfcheck).

locals {
  # Project-level roles per function identity.
  project_roles = merge(
    { for f in local.function_names : "${f}/cloudsql.client" => { sa = f, role = "roles/cloudsql.client" } },             # open connector tunnels to the instance
    { for f in local.function_names : "${f}/cloudsql.instanceUser" => { sa = f, role = "roles/cloudsql.instanceUser" } }, # log in as its IAM database user
    { "chat/datastore.user" = { sa = "chat", role = "roles/datastore.user" } },                                           # Firestore: sessions, messages, feedback, tickets, rate limits
    var.gemini.backend == "vertexai" ? {
      "chat/aiplatform.user"  = { sa = "chat", role = "roles/aiplatform.user" },  # Gemini answers and question embeddings through Vertex AI
      "embed/aiplatform.user" = { sa = "embed", role = "roles/aiplatform.user" }, # passage embeddings through Vertex AI
    } : {},
  )
}

resource "google_project_iam_member" "function" {
  for_each = local.project_roles
  project  = var.project_id
  role     = each.value.role
  member   = local.sa_member[each.value.sa]
}

# --- the knowledge bucket ---------------------------------------------------------------------------------------------
resource "google_storage_bucket_iam_member" "ingest_reads" {
  bucket = google_storage_bucket.knowledge.name
  role   = "roles/storage.objectViewer" # ingest reads the file an event names (and its metadata)
  member = local.sa_member.ingest
}

resource "google_storage_bucket_iam_member" "scrape_writes" {
  bucket = google_storage_bucket.knowledge.name
  role   = "roles/storage.objectUser" # the sync writes and deletes its pages; reconciliation lists and reads objects
  member = local.sa_member.scrape
}

# --- queues: who may add tasks, and act as the invoker the tasks carry ----------------------------------------------
resource "google_cloud_tasks_queue_iam_member" "embed_enqueuers" {
  for_each = toset(["ingest", "embed", "scrape"]) # ingest queues new versions, embed its continuations, scrape what reconciliation re-ingests
  project  = var.project_id
  location = var.region
  name     = google_cloud_tasks_queue.embed.name
  role     = "roles/cloudtasks.enqueuer"
  member   = local.sa_member[each.key]
}

resource "google_cloud_tasks_queue_iam_member" "sync_enqueuer" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_tasks_queue.sync.name
  role     = "roles/cloudtasks.enqueuer" # scrape queues each sync run's next step
  member   = local.sa_member.scrape
}

resource "google_service_account_iam_member" "act_as_tasks_invoker" {
  for_each           = toset(["ingest", "embed", "scrape"])
  service_account_id = google_service_account.tasks_invoker.name
  role               = "roles/iam.serviceAccountUser" # a task carrying the invoker's OIDC token needs actAs on it, only on it
  member             = local.sa_member[each.key]
}

# --- Eventarc: Cloud Storage publishes, the trigger identity receives ----------------------------------------------
data "google_storage_project_service_account" "gcs" {
  project    = var.project_id
  depends_on = [google_project_service.apis]
}

resource "google_project_iam_member" "storage_agent_publishes" {
  project = var.project_id
  role    = "roles/pubsub.publisher" # Cloud Storage publishes object events to Eventarc's topic
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

resource "google_project_iam_member" "eventarc_receives" {
  project = var.project_id
  role    = "roles/eventarc.eventReceiver" # the trigger identity accepts events from the storage triggers
  member  = "serviceAccount:${google_service_account.eventarc.email}"
}

resource "google_service_account_iam_member" "pubsub_agent_tokens" {
  service_account_id = google_service_account.eventarc.name
  role               = "roles/iam.serviceAccountTokenCreator" # Pub/Sub signs the push's OIDC token as the trigger identity
  member             = local.pubsub_agent
}

# --- builds -----------------------------------------------------------------------------------------------------------
resource "google_project_iam_member" "builder" {
  for_each = toset([
    "roles/logging.logWriter",       # build logs
    "roles/artifactregistry.writer", # push the function images to gcf-artifacts
  ])
  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.builder.email}"
}

resource "google_storage_bucket_iam_member" "builder_reads_bundles" {
  bucket = google_storage_bucket.sources.name
  role   = "roles/storage.objectViewer" # fetch the bundle to build
  member = "serviceAccount:${google_service_account.builder.email}"
}

# Deploying a function that runs (or builds) as an identity, a trigger or a job that invokes as one, needs actAs on
# that identity: the deployer gets it on these accounts only, not project-wide.
resource "google_service_account_iam_member" "deployer_acts_as" {
  for_each = merge(
    { for f, sa in google_service_account.function : f => sa.name },
    {
      builder   = google_service_account.builder.name
      tasks     = google_service_account.tasks_invoker.name
      scheduler = google_service_account.scheduler_invoker.name
      eventarc  = google_service_account.eventarc.name
    },
  )
  service_account_id = each.value
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${var.deployer_service_account}"
}
