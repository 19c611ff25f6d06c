# Behaviour of the deployment, planned and applied against a mock of the real hashicorp/google provider schema
# (`make test` runs it through infra/tfcheck, offline). Each assertion is something a wrong edit would break.

mock_provider "google" {
  mock_data "google_project" {
    defaults = {
      number = "123456789012"
    }
  }
  mock_data "google_storage_project_service_account" {
    defaults = {
      email_address = "service-123456789012@gs-project-accounts.iam.gserviceaccount.com"
    }
  }
}

variables {
  project_id               = "acme-support"
  allowed_origins          = ["https://www.acme.example"]
  deployer_service_account = "deployer@acme-support.iam.gserviceaccount.com"
  bundle_dir               = "tests/bundles"
  pinecone_index_host      = "https://support-kb-abc123.svc.aped-4627-b74a.pinecone.io"
}

run "deployment" {
  command = apply

  # The mock provider makes up each function's URL, so the deploy-time check that it equals the deterministic Cloud
  # Run URL the settings use fails here by construction; expecting it proves the check exists and is evaluated.
  expect_failures = [check.function_urls]

  # --- who may call what ---
  assert {
    condition     = alltrue([for m in google_cloud_run_v2_service_iam_member.private_invoker : startswith(m.member, "serviceAccount:")])
    error_message = "ingest, embed and scrape may only be invoked by service accounts (never allUsers or allAuthenticatedUsers)."
  }
  assert {
    condition = toset([for m in google_cloud_run_v2_service_iam_member.private_invoker : m.member if m.name == module.function["embed"].name]) == toset([
    "serviceAccount:${google_service_account.tasks_invoker.email}"])
    error_message = "embed must be invokable by the Cloud Tasks invoker identity and nobody else."
  }
  assert {
    condition = toset([for m in google_cloud_run_v2_service_iam_member.private_invoker : m.member if m.name == module.function["scrape"].name]) == toset([
      "serviceAccount:${google_service_account.tasks_invoker.email}",
    "serviceAccount:${google_service_account.scheduler_invoker.email}"])
    error_message = "scrape must be invokable by the Cloud Tasks and Cloud Scheduler invokers and nobody else."
  }
  assert {
    condition     = google_cloud_run_v2_service_iam_member.chat_public.member == "allUsers" && google_cloud_run_v2_service_iam_member.chat_public.name == module.function["chat"].name
    error_message = "chat must be public: the widget calls it from visitors' browsers."
  }
  assert {
    condition     = alltrue([for f in ["ingest", "embed", "scrape"] : module.function[f].ingress == "ALLOW_INTERNAL_ONLY"]) && module.function["chat"].ingress == "ALLOW_ALL"
    error_message = "Only chat may accept traffic from the internet; ingest, embed and scrape are internal-only."
  }

  # --- Cloud Tasks carry the invoker's OIDC token for the function they call ---
  assert {
    condition     = google_cloud_tasks_queue.embed.http_target[0].oidc_token[0].service_account_email == google_service_account.tasks_invoker.email
    error_message = "Embed tasks must carry the Cloud Tasks invoker's OIDC token."
  }
  assert {
    condition     = google_cloud_tasks_queue.embed.http_target[0].oidc_token[0].audience == "https://support-embed-123456789012.europe-west1.run.app"
    error_message = "The embed queue's OIDC audience must be embed's URL (its Cloud Run service URL)."
  }
  assert {
    condition     = module.function["ingest"].environment["EMBED_URL"] == google_cloud_tasks_queue.embed.http_target[0].oidc_token[0].audience && module.function["embed"].environment["EMBED_URL"] == google_cloud_tasks_queue.embed.http_target[0].oidc_token[0].audience
    error_message = "EMBED_URL (where the code sends embed tasks) must be the queue's OIDC audience."
  }
  assert {
    condition     = google_cloud_tasks_queue.sync.http_target[0].oidc_token[0].audience == "https://support-scrape-123456789012.europe-west1.run.app" && module.function["scrape"].environment["SCRAPE_URL"] == google_cloud_tasks_queue.sync.http_target[0].oidc_token[0].audience
    error_message = "The sync queue's OIDC audience must be scrape's URL, the SCRAPE_URL its steps are sent to."
  }
  assert {
    condition     = alltrue([for q in [google_cloud_tasks_queue.embed, google_cloud_tasks_queue.sync] : q.retry_config[0].max_attempts > 0 && q.retry_config[0].max_attempts <= 20])
    error_message = "Both queues must bound their attempts (1-20)."
  }
  assert {
    condition     = alltrue([for f in ["ingest", "embed", "scrape"] : module.function[f].environment["TASKS_SERVICE_ACCOUNT"] == google_service_account.tasks_invoker.email])
    error_message = "The functions that create tasks must name the invoker identity (TASKS_SERVICE_ACCOUNT)."
  }

  # --- Cloud Scheduler reaches scrape with OIDC ---
  assert {
    condition     = google_cloud_scheduler_job.nightly_sync.http_target[0].uri == "https://support-scrape-123456789012.europe-west1.run.app"
    error_message = "The nightly job must call scrape."
  }
  assert {
    condition     = google_cloud_scheduler_job.nightly_sync.http_target[0].oidc_token[0].service_account_email == google_service_account.scheduler_invoker.email && google_cloud_scheduler_job.nightly_sync.http_target[0].oidc_token[0].audience == google_cloud_scheduler_job.nightly_sync.http_target[0].uri
    error_message = "The nightly job must send the scheduler invoker's OIDC token with scrape's URL as audience."
  }
  assert {
    condition     = google_cloud_scheduler_job.nightly_sync.schedule == "30 2 * * *" && google_cloud_scheduler_job.nightly_sync.time_zone == "Etc/UTC"
    error_message = "The nightly job must use the schedule and time zone variables."
  }

  # --- Eventarc: the exact storage event types on the knowledge bucket, to ingest ---
  assert {
    condition = toset([for t in google_eventarc_trigger.knowledge : one([for c in t.matching_criteria : c.value if c.attribute == "type"])]) == toset([
      "google.cloud.storage.object.v1.finalized",
      "google.cloud.storage.object.v1.deleted",
      "google.cloud.storage.object.v1.archived",
    ])
    error_message = "ingest must receive exactly the finalized, deleted and archived object events."
  }
  assert {
    condition     = alltrue([for t in google_eventarc_trigger.knowledge : one([for c in t.matching_criteria : c.value if c.attribute == "bucket"]) == google_storage_bucket.knowledge.name && t.destination[0].cloud_run_service[0].service == module.function["ingest"].name && t.service_account == google_service_account.eventarc.email])
    error_message = "Every storage trigger must watch the knowledge bucket and deliver to ingest as the Eventarc identity."
  }
  assert {
    condition     = google_project_iam_member.storage_agent_publishes.role == "roles/pubsub.publisher" && google_project_iam_member.storage_agent_publishes.member == "serviceAccount:service-123456789012@gs-project-accounts.iam.gserviceaccount.com"
    error_message = "The Cloud Storage service agent must be able to publish the events."
  }

  # --- identities and roles ---
  assert {
    condition     = length(toset([for f in ["chat", "ingest", "embed", "scrape"] : module.function[f].service_account])) == 4
    error_message = "Each function must run as its own service account."
  }
  assert {
    condition     = alltrue([for m in google_project_iam_member.function : !contains(["roles/owner", "roles/editor", "roles/viewer"], m.role)]) && alltrue([for m in google_project_iam_member.builder : !contains(["roles/owner", "roles/editor", "roles/viewer"], m.role)])
    error_message = "No basic roles (owner, editor, viewer)."
  }
  assert {
    condition     = length([for m in google_project_iam_member.function : m if m.role == "roles/datastore.user"]) == 1 && google_project_iam_member.function["chat/datastore.user"].member == "serviceAccount:${module.function["chat"].service_account}"
    error_message = "Only chat may use Firestore."
  }

  # --- Firestore TTL on every collection whose documents carry expires_at ---
  assert {
    condition     = toset([for f in google_firestore_field.ttl : f.collection if f.field == "expires_at" && length(f.ttl_config) == 1]) == toset(["sessions", "messages", "ratelimits"])
    error_message = "Firestore needs a TTL policy on expires_at for sessions, messages and ratelimits (shared/memory)."
  }
  assert {
    condition     = google_firestore_database.memory.point_in_time_recovery_enablement == "POINT_IN_TIME_RECOVERY_ENABLED" && google_firestore_database.memory.delete_protection_state == "DELETE_PROTECTION_ENABLED" && google_firestore_database.memory.type == "FIRESTORE_NATIVE"
    error_message = "Firestore must be native mode with point-in-time recovery and delete protection."
  }

  # --- Cloud SQL ---
  assert {
    condition     = contains([for f in google_sql_database_instance.main.settings[0].database_flags : "${f.name}=${f.value}"], "cloudsql.iam_authentication=on")
    error_message = "Cloud SQL must accept IAM database authentication."
  }
  assert {
    condition     = toset([for u in google_sql_user.function : u.type]) == toset(["CLOUD_IAM_SERVICE_ACCOUNT"]) && length(google_sql_user.function) == 4 && alltrue([for f in ["chat", "ingest", "embed", "scrape"] : module.function[f].environment["DB_USER"] == google_sql_user.function[f].name])
    error_message = "Each function must log in as its own IAM database user, the DB_USER it is given."
  }
  assert {
    condition     = google_sql_database_instance.main.settings[0].backup_configuration[0].enabled && google_sql_database_instance.main.settings[0].backup_configuration[0].point_in_time_recovery_enabled && google_sql_database_instance.main.deletion_protection
    error_message = "Cloud SQL needs automated backups, point-in-time recovery and deletion protection."
  }
  assert {
    condition     = length(google_sql_database_instance.main.settings[0].ip_configuration[0].authorized_networks) == 0 && google_sql_database_instance.main.settings[0].ip_configuration[0].ssl_mode == "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"
    error_message = "The public IP must accept no network and only the connector's certificates."
  }

  # --- buckets ---
  assert {
    condition     = google_storage_bucket.knowledge.uniform_bucket_level_access && google_storage_bucket.knowledge.public_access_prevention == "enforced" && google_storage_bucket.knowledge.versioning[0].enabled
    error_message = "The knowledge bucket needs uniform access, public access prevention and versioning."
  }
  assert {
    condition     = google_storage_bucket_object.bundle["chat"].name == "functions/chat-000000000000.zip" && module.function["chat"].source_object == google_storage_bucket_object.bundle["chat"].name
    error_message = "Bundles must keep their content-addressed names, and each function must build from its own."
  }

  # --- production uses Pinecone and Gemini ---
  assert {
    condition     = alltrue([for f in ["chat", "ingest", "embed", "scrape"] : module.function[f].environment["VECTOR_BACKEND"] == "pinecone" && module.function[f].environment["EMBEDDER"] == "gemini" && contains(keys(module.function[f].secrets), "PINECONE_API_KEY")])
    error_message = "Production must use Pinecone for vectors and Gemini for embeddings, with the Pinecone key from Secret Manager."
  }

  # --- outputs ---
  assert {
    condition     = strcontains(output.widget_snippet, "/widget/v1/widget.js") && output.chat_url == module.function["chat"].uri
    error_message = "The outputs must give the chat URL and the widget's embed snippet."
  }
}
