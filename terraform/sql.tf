# --- Cloud SQL for PostgreSQL: documents, chunks (full-text), sync state ------------------------------------------
# Reached only through the Cloud SQL connector with IAM database authentication: the instance has a public IP
# without any authorized network, and it accepts only connections with the connector's client certificates.
resource "google_sql_database_instance" "main" {
  #checkov:skip=CKV_GCP_108:log_hostname makes PostgreSQL resolve every client's name on connect; every client is the connector, whose identity the IAM login already records.
  #checkov:skip=CKV_GCP_60:The public IP accepts no network (no authorized_networks) and only connector connections (client certificates, IAM login); a private IP would need a VPC, Private Service Access and a private Cloud Build pool for the migrations.
  project             = var.project_id
  region              = var.region
  name                = "${var.name}-db"
  database_version    = var.database_version
  deletion_protection = var.database.deletion_protection

  settings {
    tier                        = var.database.tier
    edition                     = "ENTERPRISE"
    availability_type           = var.database.availability
    disk_size                   = var.database.disk_size_gb
    disk_autoresize             = true
    deletion_protection_enabled = var.database.deletion_protection # also refuses deletion outside Terraform
    connector_enforcement       = "REQUIRED"                       # only the Cloud SQL connectors may connect
    retain_backups_on_delete    = true                             # a deleted instance leaves its backups
    user_labels                 = merge({ app = var.name }, var.labels)

    ip_configuration {
      ipv4_enabled = true
      ssl_mode     = "TRUSTED_CLIENT_CERTIFICATE_REQUIRED" # only the connector (or the Cloud SQL Auth Proxy) connects
    }

    backup_configuration {
      enabled                        = true
      start_time                     = var.database.backup_start_time
      point_in_time_recovery_enabled = true
      transaction_log_retention_days = var.database.log_retention_days
      backup_retention_settings {
        retained_backups = var.database.retained_backups
        retention_unit   = "COUNT"
      }
    }

    maintenance_window {
      day          = var.database.maintenance_day
      hour         = var.database.maintenance_hour_utc
      update_track = "stable"
    }

    insights_config {
      query_insights_enabled  = true
      record_application_tags = false
      record_client_address   = false
    }

    database_flags {
      name  = "max_connections" # every function at its default max_instances x DB_POOL_SIZE (scrape: SYNC_CONCURRENCY + 2) is 100
      value = "120"
    }
    database_flags {
      name  = "cloudsql.iam_authentication" # function identities log in as IAM database users, no passwords
      value = "on"
    }
    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }
    database_flags {
      name  = "log_connections"
      value = "on"
    }
    database_flags {
      name  = "log_disconnections"
      value = "on"
    }
    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }
    database_flags {
      name  = "log_min_messages"
      value = "error"
    }
    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }
    database_flags {
      name  = "log_duration" # how long each statement took, without its text
      value = "on"
    }
    database_flags {
      name  = "log_temp_files"
      value = "0"
    }
    database_flags {
      name  = "log_min_duration_statement"
      value = "-1" # statements are not logged with their parameters (questions may hold personal data)
    }
    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }
    database_flags {
      name  = "log_statement"
      value = "ddl" # schema changes (migrations) are logged, data is not
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_sql_database" "knowledge" {
  project  = var.project_id
  instance = google_sql_database_instance.main.name
  name     = "knowledge"
}

# The function identities as IAM database users (the user name is the email without `.gserviceaccount.com`). They
# get their table privileges from the migrations (`python -m infra.migrate --grant`, cloudbuild.yaml).
resource "google_sql_user" "function" {
  for_each = local.sa
  project  = var.project_id
  instance = google_sql_database_instance.main.name
  name     = trimsuffix(each.value, ".gserviceaccount.com")
  type     = "CLOUD_IAM_SERVICE_ACCOUNT"
}

# The deployer applies the migrations: it owns the schema and creates the `vector` extension (pgvector, available
# on Cloud SQL for PostgreSQL), so it is a member of cloudsqlsuperuser.
resource "google_sql_user" "deployer" {
  project        = var.project_id
  instance       = google_sql_database_instance.main.name
  name           = trimsuffix(var.deployer_service_account, ".gserviceaccount.com")
  type           = "CLOUD_IAM_SERVICE_ACCOUNT"
  database_roles = ["cloudsqlsuperuser"]
}
