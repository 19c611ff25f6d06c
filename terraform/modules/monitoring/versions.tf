terraform {
  # optional() object attributes with defaults need 1.3; the root module asks for 1.11 anyway.
  required_version = ">= 1.3"

  required_providers {
    google = {
      source = "hashicorp/google"
      # Written and checked against 8.7.0 (the root's pin); every argument used here exists since 7.0.
      version = ">= 7.0, < 9.0"
    }
  }
}
