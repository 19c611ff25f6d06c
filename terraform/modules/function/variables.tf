variable "project_id" {
  description = "Project of the function."
  type        = string
}

variable "region" {
  description = "Region of the function."
  type        = string
}

variable "name" {
  description = "Function name (also its Cloud Run service name)."
  type        = string
}

variable "description" {
  description = "What the function does."
  type        = string
}

variable "entry_point" {
  description = "The Python function functions-framework calls (the decorated function in main.py)."
  type        = string
}

variable "source_bucket" {
  description = "Bucket holding the bundle."
  type        = string
}

variable "source_object" {
  description = "Object name of the bundle (content-addressed, so a new name means new code)."
  type        = string
}

variable "build_service_account" {
  description = "Service account Cloud Build builds the function's image as (full resource name)."
  type        = string
}

variable "service_account" {
  description = "Email of the identity the function runs as."
  type        = string
}

variable "environment" {
  description = "Plain environment variables (settings that are not secret)."
  type        = map(string)
  default     = {}
}

variable "secrets" {
  description = "Environment variables read from Secret Manager: { ENV_NAME = \"secret-id\" } (latest version, resolved when an instance starts)."
  type        = map(string)
  default     = {}
}

variable "ingress" {
  description = "ALLOW_ALL for the public chat; ALLOW_INTERNAL_ONLY for functions only Google services in this project call."
  type        = string

  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.ingress)
    error_message = "ingress must be ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

variable "size" {
  description = "memory, cpu, timeout_seconds, concurrency, min_instances, max_instances."
  type = object({
    memory          = string
    cpu             = string
    timeout_seconds = number
    concurrency     = number
    min_instances   = number
    max_instances   = number
  })
}

variable "labels" {
  description = "Labels of the function."
  type        = map(string)
  default     = {}
}
