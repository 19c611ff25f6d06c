terraform {
  # Write-only arguments and `terraform test` with mock providers need 1.11.
  required_version = ">= 1.11"

  required_providers {
    google = {
      source = "hashicorp/google"
      # Exact pin: `make test` checks this configuration against this version's schema (infra/tfcheck).
      version = "8.7.0"
    }
  }

  # Partial configuration: `terraform init -backend-config="bucket=STATE_BUCKET"` (README, "Deploy").
  backend "gcs" {
    prefix = "support-agent"
  }
}

provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = merge({ app = var.name }, var.labels)
}
