# The whole deployment in one project and region: four Cloud Functions (2nd gen) and what they use.
#
#   editors -> knowledge bucket --Eventarc (finalized, deleted)--> ingest --Cloud Tasks (embed queue)--> embed
#   widget --> chat (public)          Cloud Scheduler --> scrape --Cloud Tasks (sync queue)--> scrape /step
#   Cloud SQL (documents, chunks, full-text, sync state) · Pinecone (vectors) · Firestore (memory) · Gemini

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  project_number = data.google_project.this.number
  function_names = ["chat", "ingest", "embed", "scrape"]

  # Pub/Sub's service agent: it signs Eventarc's pushes to ingest.
  pubsub_agent = "serviceAccount:service-${local.project_number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_project_service" "apis" {
  for_each = toset([
    "aiplatform.googleapis.com",       # Gemini through Vertex AI (gemini.backend = vertexai)
    "artifactregistry.googleapis.com", # the functions' container images
    "cloudbuild.googleapis.com",       # builds the functions from their bundles
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "cloudtasks.googleapis.com",
    "eventarc.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com", # Eventarc's transport for Cloud Storage events
    "run.googleapis.com",    # 2nd-gen functions are Cloud Run services
    "secretmanager.googleapis.com",
    "sqladmin.googleapis.com",
    "storage.googleapis.com",
  ])
  project            = var.project_id
  service            = each.value
  disable_on_destroy = false # a teardown must not switch off APIs other things in the project use
}

# --- identities: one per function, the ones the triggers invoke with, and the builder ------------------------------
resource "google_service_account" "function" {
  for_each     = toset(local.function_names)
  project      = var.project_id
  account_id   = "${var.name}-${each.key}"
  display_name = "${var.name} ${each.key} function"
  description  = "Runs the ${each.key} Cloud Function; holds only the roles that function needs."
  depends_on   = [google_project_service.apis]
}

resource "google_service_account" "tasks_invoker" {
  project      = var.project_id
  account_id   = "${var.name}-tasks"
  display_name = "${var.name} Cloud Tasks invoker"
  description  = "The OIDC identity Cloud Tasks calls embed and scrape /step with. May invoke those two, nothing else."
  depends_on   = [google_project_service.apis]
}

resource "google_service_account" "scheduler_invoker" {
  project      = var.project_id
  account_id   = "${var.name}-scheduler"
  display_name = "${var.name} Cloud Scheduler invoker"
  description  = "The OIDC identity Cloud Scheduler starts the nightly sync with. May invoke scrape, nothing else."
  depends_on   = [google_project_service.apis]
}

resource "google_service_account" "eventarc" {
  project      = var.project_id
  account_id   = "${var.name}-eventarc"
  display_name = "${var.name} Eventarc trigger"
  description  = "The identity the storage triggers deliver events to ingest with. Receives events, invokes ingest."
  depends_on   = [google_project_service.apis]
}

resource "google_service_account" "builder" {
  project      = var.project_id
  account_id   = "${var.name}-builder"
  display_name = "${var.name} function builds"
  description  = "Cloud Build builds the functions' images as this identity (instead of the default compute account)."
  depends_on   = [google_project_service.apis]
}

locals {
  sa        = { for k, v in google_service_account.function : k => v.email }
  sa_member = { for k, v in google_service_account.function : k => "serviceAccount:${v.email}" }
}
