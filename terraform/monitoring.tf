# --- logs-based metrics, the dashboard, alerts (terraform/modules/monitoring) ----------------------------------------
module "monitoring" {
  source = "./modules/monitoring"

  project_id            = var.project_id
  name_prefix           = var.name
  services              = { for f in local.function_names : f => "${var.name}-${f}" }
  notification_channels = var.notification_channels
  thresholds            = var.alert_thresholds

  depends_on = [google_project_service.apis]
}
