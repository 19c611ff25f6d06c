variable "project_id" {
  description = "Project that holds the functions, their logs, the log-based metrics, the dashboard and the alert policies."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project id (6-30 lowercase letters, digits and hyphens), not its name or number."
  }
}

variable "name_prefix" {
  description = "Prefix of the metric names, the dashboard title and the alert policy names (the root's `name`, e.g. \"support\")."
  type        = string
  default     = "support"

  validation {
    # Log-based metric names take [A-Za-z0-9_-.,+!*',()%/]; a short lowercase prefix keeps them readable in filters.
    condition     = can(regex("^[a-z][a-z0-9-]{1,13}$", var.name_prefix))
    error_message = "name_prefix must be 2-14 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "services" {
  description = <<-EOT
    Cloud Run service of each function, by function: chat, ingest, embed, scrape. A 2nd-gen Cloud Function runs as the
    Cloud Run service of the same name, so pass the function names (google_cloudfunctions2_function.x.name).
  EOT
  type        = map(string)

  validation {
    condition     = length(setsubtract(keys(var.services), ["chat", "ingest", "embed", "scrape"])) == 0 && length(setsubtract(["chat", "ingest", "embed", "scrape"], keys(var.services))) == 0
    error_message = "services must have exactly the keys chat, ingest, embed and scrape."
  }

  validation {
    condition     = alltrue([for name in values(var.services) : can(regex("^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$", name))])
    error_message = "Each service name must be a Cloud Run service name: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "notification_channels" {
  description = <<-EOT
    Notification channels every alert policy notifies, as full names
    (projects/PROJECT/notificationChannels/ID, the `id` of google_monitoring_notification_channel). Empty: the
    policies still open incidents, visible in the console, but notify nobody.
  EOT
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.notification_channels : can(regex("^projects/[^/]+/notificationChannels/[^/]+$", c))])
    error_message = "Each notification channel must be a full name: projects/PROJECT/notificationChannels/ID."
  }
}

variable "thresholds" {
  description = <<-EOT
    When the alert policies fire, and over which windows ("300s"-style durations, whole minutes):
    chat_p95_ms: chat turn total time, p95 over latency_window, held for latency_duration;
    error_5xx_ratio: share of 5xx responses of one function over error_5xx_window, held for error_5xx_duration;
    ingest_failures: document versions that ended `failed` (ingest or embed) within ingest_failures_window;
    gemini_errors: failed Gemini calls (model_error events) within gemini_errors_window;
    sync_notify_period: at most one notification per source and status per this period for partial/failed sync runs.
    Counts fire when they reach the value (1 = the first failure).
  EOT
  type = object({
    chat_p95_ms            = optional(number, 8000)
    latency_window         = optional(string, "300s")
    latency_duration       = optional(string, "300s")
    error_5xx_ratio        = optional(number, 0.02)
    error_5xx_window       = optional(string, "300s")
    error_5xx_duration     = optional(string, "300s")
    ingest_failures        = optional(number, 1)
    ingest_failures_window = optional(string, "900s")
    gemini_errors          = optional(number, 5)
    gemini_errors_window   = optional(string, "600s")
    sync_notify_period     = optional(string, "3600s")
  })
  default = {}

  validation {
    condition     = var.thresholds.chat_p95_ms > 0
    error_message = "thresholds.chat_p95_ms must be positive (milliseconds)."
  }

  validation {
    condition     = var.thresholds.error_5xx_ratio > 0 && var.thresholds.error_5xx_ratio < 1
    error_message = "thresholds.error_5xx_ratio is a fraction of requests: between 0 and 1 (0.02 = 2 %)."
  }

  validation {
    condition     = var.thresholds.ingest_failures >= 1 && var.thresholds.gemini_errors >= 1
    error_message = "thresholds.ingest_failures and thresholds.gemini_errors are counts of at least 1."
  }

  validation {
    # Alignment periods and durations of alert conditions are whole minutes; windows of 0 or over a day are refused.
    condition = alltrue([
      for w in [
        var.thresholds.latency_window, var.thresholds.error_5xx_window, var.thresholds.ingest_failures_window,
        var.thresholds.gemini_errors_window,
      ] : can(regex("^[0-9]+s$", w)) && try(tonumber(trimsuffix(w, "s")) % 60 == 0 && tonumber(trimsuffix(w, "s")) >= 60 && tonumber(trimsuffix(w, "s")) <= 86400, false)
    ])
    error_message = "The thresholds' windows must be whole minutes in seconds, from \"60s\" to \"86400s\"."
  }

  validation {
    # Log-match alert policies take a notification rate limit of 5 minutes or more.
    condition     = can(regex("^[0-9]+s$", var.thresholds.sync_notify_period)) && try(tonumber(trimsuffix(var.thresholds.sync_notify_period, "s")) >= 300 && tonumber(trimsuffix(var.thresholds.sync_notify_period, "s")) <= 86400, false)
    error_message = "thresholds.sync_notify_period must be seconds from \"300s\" to \"86400s\"."
  }

  validation {
    condition = alltrue([
      for d in [var.thresholds.latency_duration, var.thresholds.error_5xx_duration] :
      can(regex("^[0-9]+s$", d)) && try(tonumber(trimsuffix(d, "s")) % 60 == 0, false)
    ])
    error_message = "thresholds.latency_duration and thresholds.error_5xx_duration must be whole minutes in seconds (\"0s\", \"300s\")."
  }
}

variable "chart_window" {
  description = "Alignment period of the dashboard's charts: each point sums or summarises this long."
  type        = string
  default     = "300s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.chart_window)) && try(tonumber(trimsuffix(var.chart_window, "s")) >= 60, false)
    error_message = "chart_window must be seconds, at least \"60s\"."
  }
}

variable "auto_close" {
  description = "An open incident whose condition has had no data for this long closes by itself."
  type        = string
  default     = "1800s"

  validation {
    # The API takes 30 min to 7 days for auto_close.
    condition     = can(regex("^[0-9]+s$", var.auto_close)) && try(tonumber(trimsuffix(var.auto_close, "s")) >= 1800 && tonumber(trimsuffix(var.auto_close, "s")) <= 604800, false)
    error_message = "auto_close must be seconds from \"1800s\" (30 min) to \"604800s\" (7 days)."
  }
}
