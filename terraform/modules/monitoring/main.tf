# Monitoring of the support agent: log-based metrics from the functions' structured events (the field names are fixed by
# the events contract, shared/logs.py writes them), one dashboard, and the alert policies an operator acts on.

locals {
  log_resource = "resource.type=\"cloud_run_revision\""

  # One log filter term per function: the same event name may be logged by another deployment in the project.
  on_service     = { for fn, name in var.services : fn => "resource.labels.service_name=\"${name}\"" }
  on_any_service = "(${join(" OR ", [for fn in sort(keys(var.services)) : local.on_service[fn]])})"

  # Counters: one point per matching log entry. Labels stay few-valued (no tenant, session or document ids) so the
  # number of time series stays small.
  counters = {
    chat_turns = {
      display_name = "Chat turns"
      description  = "Chat turns (chat_turn events) by how they ended and the model that generated them."
      filter       = "${local.log_resource} AND ${local.on_service["chat"]} AND jsonPayload.event=\"chat_turn\""
      labels = {
        action = { extractor = "EXTRACT(jsonPayload.action)", description = "How the turn ended: answer, dont_know, handoff, clarify, refused, error." }
        model  = { extractor = "EXTRACT(jsonPayload.model)", description = "Generation model of the turn, or extractive." }
      }
    }
    feedback = {
      display_name = "Chat feedback"
      description  = "Feedback votes (feedback events) by rating."
      filter       = "${local.log_resource} AND ${local.on_service["chat"]} AND jsonPayload.event=\"feedback\""
      labels = {
        rating = { extractor = "EXTRACT(jsonPayload.rating)", description = "up or down." }
      }
    }
    ingest_versions = {
      display_name = "Document versions by outcome"
      description  = "Document versions reaching an outcome in ingest or embed (ingest_version events)."
      filter       = "${local.log_resource} AND (${local.on_service["ingest"]} OR ${local.on_service["embed"]}) AND jsonPayload.event=\"ingest_version\""
      labels = {
        stage   = { extractor = "EXTRACT(jsonPayload.stage)", description = "ingest or embed." }
        outcome = { extractor = "EXTRACT(jsonPayload.outcome)", description = "The code's outcome name: queued, indexed, failed, skipped, deleted..." }
      }
    }
    sync_runs = {
      display_name = "Website sync runs"
      description  = "Finished website sync runs (sync_run events) by status."
      filter       = "${local.log_resource} AND ${local.on_service["scrape"]} AND jsonPayload.event=\"sync_run\""
      labels = {
        status = { extractor = "EXTRACT(jsonPayload.status)", description = "complete, partial, failed or dry_run." }
      }
    }
    model_errors = {
      display_name = "Gemini errors"
      description  = "Failed Gemini calls in any function (model_error events); WARNING when retried or answered by a fallback, ERROR when the turn or batch failed."
      filter       = "${local.log_resource} AND ${local.on_any_service} AND jsonPayload.event=\"model_error\""
      labels = {
        operation = { extractor = "EXTRACT(jsonPayload.operation)", description = "generate, stream, embed, rewrite or summary." }
        code      = { extractor = "EXTRACT(jsonPayload.code)", description = "HTTP status of the failed call, 0 without one." }
        severity  = { extractor = "EXTRACT(severity)", description = "WARNING (retried or fallback) or ERROR (the turn or batch failed)." }
      }
    }
  }

  # Distributions of one numeric event field. Entries without the field (no text sent, no retrieval, no usage
  # reported) are left out by the filter instead of counting as zero. The latency buckets are explicit so the alert
  # threshold (8 s by default) is a bucket bound and the p95 around it is not interpolated across a wide bucket.
  latency_bounds = [100, 250, 500, 750, 1000, 1500, 2000, 3000, 4000, 5000, 6000, 8000, 10000, 12000, 15000, 20000, 30000, 45000, 60000, 90000, 120000]
  distributions = {
    chat_total_ms = {
      display_name = "Chat turn total time"
      description  = "Time from request to the end of the turn (chat_turn.total_ms)."
      event        = "chat_turn"
      service      = "chat"
      field        = "total_ms"
      unit         = "ms"
      explicit     = local.latency_bounds
      exponential  = null
    }
    chat_first_delta_ms = {
      display_name = "Chat time to first text"
      description  = "Time from request to the first streamed text (chat_turn.first_delta_ms; turns that sent text)."
      event        = "chat_turn"
      service      = "chat"
      field        = "first_delta_ms"
      unit         = "ms"
      explicit     = local.latency_bounds
      exponential  = null
    }
    chat_retrieval_ms = {
      display_name = "Chat retrieval time"
      description  = "Time spent retrieving sources for a turn (chat_turn.retrieval_ms; turns that retrieved)."
      event        = "chat_turn"
      service      = "chat"
      field        = "retrieval_ms"
      unit         = "ms"
      explicit     = null
      # 5 ms .. 5 * 1.5^20 (about 17 s).
      exponential = { num_finite_buckets = 20, growth_factor = 1.5, scale = 5 }
    }
    chat_tokens_in = {
      display_name = "Chat prompt tokens"
      description  = "Prompt tokens Gemini reported for a turn (chat_turn.tokens_in)."
      event        = "chat_turn"
      service      = "chat"
      field        = "tokens_in"
      unit         = "1"
      explicit     = null
      # 16 .. 16 * 2^14 (about 262k) tokens.
      exponential = { num_finite_buckets = 14, growth_factor = 2, scale = 16 }
    }
    chat_tokens_out = {
      display_name = "Chat output tokens"
      description  = "Output tokens Gemini reported for a turn (chat_turn.tokens_out)."
      event        = "chat_turn"
      service      = "chat"
      field        = "tokens_out"
      unit         = "1"
      explicit     = null
      # 4 .. 4 * 2^12 (about 16k) tokens.
      exponential = { num_finite_buckets = 12, growth_factor = 2, scale = 4 }
    }
  }
}

resource "google_logging_metric" "counter" {
  for_each = local.counters

  project     = var.project_id
  name        = "${var.name_prefix}_${each.key}"
  description = each.value.description
  filter      = each.value.filter

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "${var.name_prefix}: ${each.value.display_name}"

    dynamic "labels" {
      for_each = each.value.labels
      content {
        key         = labels.key
        value_type  = "STRING"
        description = labels.value.description
      }
    }
  }

  label_extractors = { for key, label in each.value.labels : key => label.extractor }
}

resource "google_logging_metric" "distribution" {
  for_each = local.distributions

  project         = var.project_id
  name            = "${var.name_prefix}_${each.key}"
  description     = each.value.description
  filter          = "${local.log_resource} AND ${local.on_service[each.value.service]} AND jsonPayload.event=\"${each.value.event}\" AND jsonPayload.${each.value.field}:*"
  value_extractor = "EXTRACT(jsonPayload.${each.value.field})"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = each.value.unit
    display_name = "${var.name_prefix}: ${each.value.display_name}"
  }

  bucket_options {
    dynamic "explicit_buckets" {
      for_each = each.value.explicit == null ? [] : [each.value.explicit]
      content {
        bounds = explicit_buckets.value
      }
    }

    dynamic "exponential_buckets" {
      for_each = each.value.exponential == null ? [] : [each.value.exponential]
      content {
        num_finite_buckets = exponential_buckets.value.num_finite_buckets
        growth_factor      = exponential_buckets.value.growth_factor
        scale              = exponential_buckets.value.scale
      }
    }
  }
}

locals {
  # Log-based metrics are written as logging.googleapis.com/user/NAME against the entry's monitored resource
  # (cloud_run_revision, so resource.label.service_name is there to group by).
  metric_types = merge(
    { for key, m in google_logging_metric.counter : key => "logging.googleapis.com/user/${m.name}" },
    { for key, m in google_logging_metric.distribution : key => "logging.googleapis.com/user/${m.name}" },
  )
  metric_filters = { for key, type in local.metric_types : key => "metric.type=\"${type}\" AND resource.type=\"cloud_run_revision\"" }
  # The same filters from the names alone, known before apply, so the dashboard can be rendered and checked offline
  # (`terraform console`, infra/tfcheck); the dashboard waits for the metrics with depends_on instead.
  dashboard_filters = { for key in concat(keys(local.counters), keys(local.distributions)) :
  key => "metric.type=\"logging.googleapis.com/user/${var.name_prefix}_${key}\" AND resource.type=\"cloud_run_revision\"" }

  request_count = "metric.type=\"run.googleapis.com/request_count\" AND resource.type=\"cloud_run_revision\""
  # Monitoring filters (not log filters) take one_of() for a set of values.
  any_service_filter = "resource.label.service_name=one_of(${join(", ", [for fn in sort(keys(var.services)) : "\"${var.services[fn]}\""])})"
}

locals {
  # The dashboard as the Monitoring API receives it (output dashboard_json; infra/tfcheck validates it).
  dashboard_json = templatefile("${path.module}/dashboard.json.tftpl", {
    display_name     = "${var.name_prefix}: support agent"
    window           = var.chart_window
    f                = local.dashboard_filters
    requests         = "${local.request_count} AND ${local.any_service_filter}"
    chat_p95_ms      = var.thresholds.chat_p95_ms
    error_5xx_ratio  = var.thresholds.error_5xx_ratio
    services_summary = join(", ", [for fn in sort(keys(var.services)) : "${fn} = `${var.services[fn]}`"])
  })
}

resource "google_monitoring_dashboard" "this" {
  project        = var.project_id
  dashboard_json = local.dashboard_json

  depends_on = [google_logging_metric.counter, google_logging_metric.distribution]
}

locals {
  # What to look at first when one function answers 5xx: chat's callers see the errors; the others are retried by
  # their triggers, so a 5xx there is either a transient failure doing its job or a permanent one retried forever.
  error_5xx_hints = {
    chat   = "Visitors see these errors. Read the chat service's ERROR logs; a `model_error` burst points at Gemini, connection errors at Cloud SQL or the vector store."
    ingest = "Eventarc retries every 5xx. ingest returns 5xx only for transient trouble (timeouts, 429, 503); a steady 5xx rate means a permanent failure is being retried: find the document in the ERROR logs and fix or remove it."
    embed  = "Cloud Tasks retries every 5xx. A steady rate means the embedding model or the vector store keeps failing: check `model_error` events with operation=embed and the queue's retry backlog."
    scrape = "Cloud Scheduler or the sync step retries. Check the scrape service's ERROR logs and the `sync_run` events of the affected source."
  }

  documentation_footer = <<-EOT

    Dashboard: "${var.name_prefix}: support agent" in Cloud Monitoring. Structured events: `jsonPayload.event` in the
    functions' logs (`resource.type="cloud_run_revision"`).
  EOT
}

resource "google_monitoring_alert_policy" "error_5xx" {
  for_each = var.services

  project               = var.project_id
  display_name          = "${var.name_prefix}: ${each.key} 5xx ratio above ${var.thresholds.error_5xx_ratio * 100} %"
  combiner              = "OR"
  severity              = each.key == "chat" ? "CRITICAL" : "ERROR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "${each.key} (${each.value}) 5xx / all requests > ${var.thresholds.error_5xx_ratio}"

    condition_threshold {
      filter             = "${local.request_count} AND resource.label.service_name=\"${each.value}\" AND metric.label.response_code_class=\"5xx\""
      denominator_filter = "${local.request_count} AND resource.label.service_name=\"${each.value}\""
      comparison         = "COMPARISON_GT"
      threshold_value    = var.thresholds.error_5xx_ratio
      duration           = var.thresholds.error_5xx_duration
      # No requests is no error: an idle function must not hold an incident open.
      evaluation_missing_data = "EVALUATION_MISSING_DATA_INACTIVE"

      # Numerator and denominator must align alike and keep the same labels.
      aggregations {
        alignment_period     = var.thresholds.error_5xx_window
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }

      denominator_aggregations {
        alignment_period     = var.thresholds.error_5xx_window
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "${var.name_prefix}: ${each.key} answers 5xx"
    content   = <<-EOT
      ## ${each.key}: more than ${var.thresholds.error_5xx_ratio * 100} % of requests answered 5xx

      Over ${var.thresholds.error_5xx_window} windows, for ${var.thresholds.error_5xx_duration}, the Cloud Run service
      `${each.value}` answered more than ${var.thresholds.error_5xx_ratio * 100} % of its requests with a 5xx status
      (`run.googleapis.com/request_count`, `response_code_class="5xx"`). With little traffic one error is a large share.

      **What to do:** ${local.error_5xx_hints[each.key]}
      A new revision that started failing can be rolled back by sending traffic to the previous revision.
      ${local.documentation_footer}
    EOT
  }

  alert_strategy {
    auto_close = var.auto_close
  }
}

resource "google_monitoring_alert_policy" "chat_latency" {
  project               = var.project_id
  display_name          = "${var.name_prefix}: chat p95 turn time above ${var.thresholds.chat_p95_ms} ms"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = var.notification_channels

  conditions {
    display_name = "chat_turn total_ms p95 > ${var.thresholds.chat_p95_ms} ms"

    condition_threshold {
      filter                  = local.metric_filters["chat_total_ms"]
      comparison              = "COMPARISON_GT"
      threshold_value         = var.thresholds.chat_p95_ms
      duration                = var.thresholds.latency_duration
      evaluation_missing_data = "EVALUATION_MISSING_DATA_INACTIVE"

      # Merge the revisions' distributions per window, then take the 95th percentile of the merged one.
      aggregations {
        alignment_period     = var.thresholds.latency_window
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_PERCENTILE_95"
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "${var.name_prefix}: chat turns are slow"
    content   = <<-EOT
      ## Chat: 95th percentile of the turn time above ${var.thresholds.chat_p95_ms} ms

      Over ${var.thresholds.latency_window} windows, for ${var.thresholds.latency_duration}, the slowest 5 % of chat
      turns took longer than ${var.thresholds.chat_p95_ms} ms from request to the end of the turn
      (`chat_turn.total_ms`, metric `${local.metric_types["chat_total_ms"]}`).

      **What to do:** compare the dashboard's "time to first text" and "retrieval p95" charts. Slow retrieval points at
      Cloud SQL or the vector store (CPU, connections); slow first text with normal retrieval points at Gemini
      (`model_error` events, quota, region) or at cold starts (instances scaling from zero: raise `min_instances`).
      ${local.documentation_footer}
    EOT
  }

  alert_strategy {
    auto_close = var.auto_close
  }
}

resource "google_monitoring_alert_policy" "ingest_failures" {
  project               = var.project_id
  display_name          = "${var.name_prefix}: document ingest failures"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = var.notification_channels

  conditions {
    display_name = "ingest_version outcome=failed >= ${var.thresholds.ingest_failures} in ${var.thresholds.ingest_failures_window}"

    condition_threshold {
      filter = "${local.metric_filters["ingest_versions"]} AND metric.label.outcome=\"failed\""
      # The API compares only with > or <; counts are whole numbers, so "> N - 0.5" is "reaches N".
      comparison              = "COMPARISON_GT"
      threshold_value         = var.thresholds.ingest_failures - 0.5
      duration                = "0s"
      evaluation_missing_data = "EVALUATION_MISSING_DATA_INACTIVE"

      aggregations {
        alignment_period     = var.thresholds.ingest_failures_window
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.stage"]
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "${var.name_prefix}: documents failed to ingest"
    content   = <<-EOT
      ## Documents failed in ingest or embed

      At least ${var.thresholds.ingest_failures} document version(s) ended with outcome `failed` within
      ${var.thresholds.ingest_failures_window} (`ingest_version` events; the `stage` label says ingest or embed).
      A failed version is acknowledged, not retried: the document stays out of the answers until it is fixed.

      **What to do:** find the events with
      `jsonPayload.event="ingest_version" AND jsonPayload.outcome="failed"` in Logs Explorer; `jsonPayload.reason`
      says why and `jsonPayload.document_id` which document. Corrupt or unsupported files need a new upload; a burst
      of embed failures usually follows `model_error` events with operation=embed.
      ${local.documentation_footer}
    EOT
  }

  alert_strategy {
    auto_close = var.auto_close
  }
}

resource "google_monitoring_alert_policy" "sync_runs" {
  project               = var.project_id
  display_name          = "${var.name_prefix}: website sync run partial or failed"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = var.notification_channels

  conditions {
    display_name = "sync_run status partial or failed"

    # A log match (not a metric) so the notification names the tenant and source of the run.
    condition_matched_log {
      filter = "${local.log_resource} AND ${local.on_service["scrape"]} AND jsonPayload.event=\"sync_run\" AND (jsonPayload.status=\"partial\" OR jsonPayload.status=\"failed\")"
      label_extractors = {
        tenant = "EXTRACT(jsonPayload.tenant)"
        source = "EXTRACT(jsonPayload.source)"
        status = "EXTRACT(jsonPayload.status)"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "${var.name_prefix}: sync of $${log.extracted_label.source} ended $${log.extracted_label.status}"
    content   = <<-EOT
      ## Website sync ended partial or failed

      A sync run of source `$${log.extracted_label.source}` (tenant `$${log.extracted_label.tenant}`) ended with
      status `$${log.extracted_label.status}`: `partial` means some pages could not be fetched or were withheld,
      `failed` that the run stopped. Pages not re-fetched keep their previous version in the index.

      **What to do:** open the `sync_run` event (`jsonPayload.event="sync_run"`) for its counters (`errors`,
      `withheld`, `fetched`) and the scrape service's WARNING/ERROR logs around it; a site that blocks or times out
      needs its source settings checked. At most one notification per source and status every
      ${var.thresholds.sync_notify_period}.
      ${local.documentation_footer}
    EOT
  }

  alert_strategy {
    # Required for log-match conditions.
    notification_rate_limit {
      period = var.thresholds.sync_notify_period
    }
    auto_close = var.auto_close
  }
}

resource "google_monitoring_alert_policy" "gemini_errors" {
  project               = var.project_id
  display_name          = "${var.name_prefix}: Gemini errors"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "model_error events >= ${var.thresholds.gemini_errors} in ${var.thresholds.gemini_errors_window}"

    condition_threshold {
      filter = local.metric_filters["model_errors"]
      # Whole counts compared with "> N - 0.5": fires when the count reaches N.
      comparison              = "COMPARISON_GT"
      threshold_value         = var.thresholds.gemini_errors - 0.5
      duration                = "0s"
      evaluation_missing_data = "EVALUATION_MISSING_DATA_INACTIVE"

      aggregations {
        alignment_period     = var.thresholds.gemini_errors_window
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "${var.name_prefix}: Gemini calls are failing"
    content   = <<-EOT
      ## Gemini: ${var.thresholds.gemini_errors} or more failed calls within ${var.thresholds.gemini_errors_window}

      Calls to Gemini failed (`model_error` events from any function, metric `${local.metric_types["model_errors"]}`,
      labels `operation`, `code`, `severity`). WARNING events were retried or answered by the extractive fallback;
      ERROR events failed a chat turn or an embedding batch.

      **What to do:** group the dashboard's "Gemini errors" chart by `code`: 429 is quota (raise it or lower
      traffic), 5xx and 0 (no response) are the service or the network (check the Google Cloud status page, wait or
      switch region), 400/403 are configuration (model name, API enabled, the function's service account roles).
      ${local.documentation_footer}
    EOT
  }

  alert_strategy {
    auto_close = var.auto_close
  }
}
