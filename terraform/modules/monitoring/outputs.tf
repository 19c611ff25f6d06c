output "dashboard_id" {
  description = "The dashboard's id: projects/PROJECT_NUMBER/dashboards/ID."
  value       = google_monitoring_dashboard.this.id
}

output "metric_types" {
  description = "Metric type of each log-based metric, by key (chat_turns, chat_total_ms, ...), for charts and alert filters elsewhere."
  value       = local.metric_types
}

output "alert_policy_names" {
  description = "Resource name (projects/PROJECT/alertPolicies/ID) of each alert policy, by key (error_5xx_chat, ..., chat_latency)."
  value = merge(
    { for fn, p in google_monitoring_alert_policy.error_5xx : "error_5xx_${fn}" => p.name },
    {
      chat_latency    = google_monitoring_alert_policy.chat_latency.name
      ingest_failures = google_monitoring_alert_policy.ingest_failures.name
      sync_runs       = google_monitoring_alert_policy.sync_runs.name
      gemini_errors   = google_monitoring_alert_policy.gemini_errors.name
    },
  )
}

output "dashboard_json" {
  description = "The dashboard as the Monitoring API receives it (infra/tfcheck validates it against the API's schema)."
  value       = local.dashboard_json
}
