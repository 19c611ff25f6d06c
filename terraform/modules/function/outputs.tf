output "name" {
  description = "Function name."
  value       = google_cloudfunctions2_function.this.name
}

output "uri" {
  description = "The function's HTTPS URL (its Cloud Run service URL)."
  value       = google_cloudfunctions2_function.this.service_config[0].uri
}

output "service" {
  description = "The Cloud Run service behind the function (what IAM invoker bindings and Eventarc target)."
  value       = google_cloudfunctions2_function.this.service_config[0].service
}

output "environment" {
  description = "The plain environment variables set."
  value       = google_cloudfunctions2_function.this.service_config[0].environment_variables
}

output "secrets" {
  description = "Environment variables read from Secret Manager, and their secrets."
  value       = var.secrets
}

output "ingress" {
  description = "Who may reach the function on the network."
  value       = google_cloudfunctions2_function.this.service_config[0].ingress_settings
}

output "service_account" {
  description = "The identity the function runs as."
  value       = google_cloudfunctions2_function.this.service_config[0].service_account_email
}

output "source_object" {
  description = "The bundle the function is built from."
  value       = google_cloudfunctions2_function.this.build_config[0].source[0].storage_source[0].object
}
