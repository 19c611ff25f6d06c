output "chat_url" {
  description = "The chat API the widget calls."
  value       = module.function["chat"].uri
}

output "widget_snippet" {
  description = "Paste into the pages that show the assistant (before </body>)."
  value       = "<script src=\"${module.function["chat"].uri}/widget/v1/widget.js\" data-title=\"Help\" async></script>"
}

output "knowledge_bucket" {
  description = "Editors drop knowledge files here (gs://)."
  value       = google_storage_bucket.knowledge.name
}

output "sources_bucket" {
  description = "Function bundles."
  value       = google_storage_bucket.sources.name
}

output "function_urls" {
  description = "Every function's URL (embed and scrape refuse callers without the invoker identities)."
  value       = { for f in local.function_names : f => module.function[f].uri }
}

output "database_instance" {
  description = "Cloud SQL instance connection name (CLOUD_SQL_INSTANCE for `python -m infra.migrate`)."
  value       = google_sql_database_instance.main.connection_name
}

output "database_users" {
  description = "IAM database users of the functions (for `python -m infra.migrate --grant`)."
  value       = [for u in google_sql_user.function : u.name]
}

output "service_accounts" {
  description = "The identity of each function and of the invokers."
  value = merge(local.sa, {
    tasks_invoker     = google_service_account.tasks_invoker.email
    scheduler_invoker = google_service_account.scheduler_invoker.email
    eventarc          = google_service_account.eventarc.email
    builder           = google_service_account.builder.email
  })
}

output "deployer_database_user" {
  description = "The deployer's IAM database user, which applies the migrations (DB_USER for `python -m infra.migrate`)."
  value       = google_sql_user.deployer.name
}

output "smoke_origin" {
  description = "The first allowed origin: the smoke test (tests/system) sends it as the widget's page would."
  value       = var.allowed_origins[0]
}

output "pgvector_dimension" {
  description = "With vector_backend = pgvector, the dimension whose index the migrations build (`infra.migrate --vector-dimension`); 0 with Pinecone."
  value       = var.vector_backend == "pgvector" ? var.gemini.dimension : 0
}
