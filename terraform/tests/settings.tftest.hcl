# Every setting the code reads (code_settings.json, written from shared/config.py by
# `python -m infra.settings_manifest`) is set for every function, read from Secret Manager, or left at its default
# with a reason (settings.tf). A new setting fails here until the deployment decides about it.

mock_provider "google" {
  mock_data "google_project" {
    defaults = {
      number = "123456789012"
    }
  }
}

variables {
  project_id               = "acme-support"
  allowed_origins          = ["https://www.acme.example"]
  deployer_service_account = "deployer@acme-support.iam.gserviceaccount.com"
  bundle_dir               = "tests/bundles"
  pinecone_index_host      = "https://support-kb-abc123.svc.aped-4627-b74a.pinecone.io"
  code_settings            = jsondecode(file("code_settings.json")).settings
}

run "every_setting_decided" {
  command = apply

  # The mock provider makes up each function's URL, so the deploy-time check that it equals the deterministic Cloud
  # Run URL the settings use fails here by construction; expecting it proves the check exists and is evaluated.
  expect_failures = [check.function_urls]

  assert {
    condition = alltrue([for f in ["chat", "ingest", "embed", "scrape"] : length(setsubtract(toset(var.code_settings), setunion(
    toset(output.settings.environment[f]), toset(output.settings.as_secrets), toset(output.settings.left_default)))) == 0])
    error_message = "Settings the code reads that the deployment neither sets, reads from Secret Manager, nor leaves at a default with a reason (settings.tf): ${jsonencode(setsubtract(toset(var.code_settings), setunion(toset(output.settings.environment["chat"]), toset(output.settings.as_secrets), toset(output.settings.left_default))))}."
  }
  assert {
    condition     = length(setsubtract(setunion(toset(output.settings.environment["chat"]), toset(output.settings.as_secrets), toset(output.settings.left_default)), toset(var.code_settings))) == 0
    error_message = "The deployment sets or lists settings the code does not read (a typo, or a removed setting): ${jsonencode(setsubtract(setunion(toset(output.settings.environment["chat"]), toset(output.settings.as_secrets), toset(output.settings.left_default)), toset(var.code_settings)))}."
  }
  assert {
    condition     = length(setintersection(toset(output.settings.environment["chat"]), toset(output.settings.left_default))) == 0
    error_message = "A setting is both set and listed as left at its default: ${jsonencode(setintersection(toset(output.settings.environment["chat"]), toset(output.settings.left_default)))}."
  }
}

run "secrets_follow_features" {
  command = apply

  # The mock provider makes up each function's URL, so the deploy-time check that it equals the deterministic Cloud
  # Run URL the settings use fails here by construction; expecting it proves the check exists and is evaluated.
  expect_failures = [check.function_urls]

  variables {
    gemini          = { backend = "api_key" }
    signed_users    = true
    handoff_webhook = true
  }

  assert {
    condition     = toset(output.settings.secrets["chat"]) == toset(["PINECONE_API_KEY", "GEMINI_API_KEY", "USER_TOKEN_SECRET", "HANDOFF_WEBHOOK_URL"])
    error_message = "With every feature on, chat reads the Pinecone key, the Gemini key, the user-token secret and the webhook from Secret Manager."
  }
  assert {
    condition     = toset(output.settings.secrets["embed"]) == toset(["PINECONE_API_KEY", "GEMINI_API_KEY"])
    error_message = "embed reads only the Pinecone and Gemini keys."
  }
}

run "a_misspelt_setting_override_is_refused" {
  command = plan

  variables {
    settings = { RATE_LIMIT_CLIENT_PER_MINUT = "30" }
  }

  expect_failures = [var.settings]
}

run "pinecone_needs_its_index_host" {
  command = plan

  variables {
    pinecone_index_host = ""
  }

  expect_failures = [var.pinecone_index_host]
}
