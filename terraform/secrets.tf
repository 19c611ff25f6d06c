# --- Secret Manager ---------------------------------------------------------------------------------------------------
# Terraform creates the secrets and who may read them, never their values: a value passed through Terraform would sit
# in its state. Ops add each value once with `gcloud secrets versions add` (README, "Deploy", step 3) and rotate by
# adding a version; a function reads the latest version when an instance starts.
locals {
  secrets = merge(
    var.vector_backend == "pinecone" ? { "pinecone-api-key" = "Pinecone API key (VECTOR_BACKEND=pinecone)." } : {},
    var.gemini.backend == "api_key" ? { "gemini-api-key" = "Gemini API key (gemini.backend = api_key)." } : {},
    var.signed_users ? { "user-token-secret" = "HMAC secret host sites sign user ids with (at least 32 characters)." } : {},
    var.handoff_webhook ? { "handoff-webhook" = "URL hand-off tickets are POSTed to (it may carry a token)." } : {},
  )

  # Which function reads which secret (the same map the functions' secret environment variables come from).
  secret_readers = merge([
    for f in local.function_names : {
      for env, secret in local.function_secrets[f] : "${f}/${secret}" => { function = f, secret = secret }
    }
  ]...)
}

resource "google_secret_manager_secret" "this" {
  for_each  = local.secrets
  project   = var.project_id
  secret_id = "${var.name}-${each.key}"
  labels    = merge({ app = var.name }, var.labels)

  annotations = {
    description = each.value
  }

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_iam_member" "function" {
  for_each  = local.secret_readers
  project   = var.project_id
  secret_id = each.value.secret
  role      = "roles/secretmanager.secretAccessor" # the function reads this secret's value, no other secret's
  member    = local.sa_member[each.value.function]

  depends_on = [google_secret_manager_secret.this]
}
