"""Deliberate mistakes in the product's own Terraform (terraform/), each caught by the check that should catch it:
the behaviour tests in terraform/tests/*.tftest.hcl, validate against the provider schema, and checkov."""

from __future__ import annotations

import pytest

from infra.tfcheck import run_checkov, run_discovery, run_terraform_test, run_validate


def test_tf_deployment_wrong_argument_fails_validate(mutation, real_module):
    mutation(run_validate, real_module, {"sql.tf": (r"^(\s*)ssl_mode(\s*)=", r"\1ssl_modes\2=")},
             r'sql\.tf:\d+: error: Unsupported argument.*"ssl_modes"')


def test_tf_deployment_wrong_block_fails_validate(mutation, real_module):
    mutation(run_validate, real_module, {"triggers.tf": (r"^(\s*)oidc_token \{", r"\1oidc {")},
             r"triggers\.tf:\d+: error: Unsupported block type")


def test_tf_deployment_public_embed_fails_the_tests(mutation, real_module):
    public = {"functions.tf": (r'("embed/tasks"\s*=\s*\{ function = "embed", member = )"[^"]+"', r'\1"allUsers"')}
    mutation(run_terraform_test, real_module, public, r"may only be invoked by service accounts")


def test_tf_deployment_a_public_binding_added_for_embed_fails_checkov(mutation, real_module):
    """A binding outside the invoker map (which the terraform tests watch) is still caught by the static scan."""
    added = ('resource "google_cloud_run_v2_service_iam_member" "embed_public" {\n'
             '  project  = var.project_id\n  location = var.region\n  name     = "support-embed"\n'
             '  role     = "roles/run.invoker"\n  member   = "allUsers"\n}\n')
    mutation(run_checkov, real_module, {"functions.tf": (r"\Z", "\n" + added)}, r"embed_public")


def test_tf_deployment_embed_open_to_the_internet_fails_the_tests(mutation, real_module):
    mutation(run_terraform_test, real_module,
             {"functions.tf": (r'ingress\s*= each.key == "chat" \? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"',
                               'ingress = each.key == "ingest" ? "ALLOW_INTERNAL_ONLY" : "ALLOW_ALL"')},
             r"Only chat may accept traffic from the internet")


def test_tf_deployment_wrong_event_type_fails_the_tests(mutation, real_module):
    mutation(run_terraform_test, real_module,
             {"triggers.tf": (r'"google\.cloud\.storage\.object\.v1\.deleted"',
                              '"google.cloud.storage.object.v1.delete"')},
             r"exactly the finalized, deleted and archived object events")


def test_tf_deployment_missing_ttl_fails_the_tests(mutation, real_module):
    mutation(run_terraform_test, real_module,
             {"firestore.tf": (r'ttl_collections = \["sessions", "messages", "ratelimits"\]',
                               'ttl_collections = ["sessions", "messages"]')},
             r"TTL policy on expires_at for sessions, messages and ratelimits")


def test_tf_deployment_unset_setting_fails_the_tests(mutation, real_module):
    mutation(run_terraform_test, real_module,
             {"functions.tf": (r"^\s*SYNC_CONTACT_URL\s*=.*\n", "")},
             r'neither sets, reads from Secret Manager, nor leaves at a default.*SYNC_CONTACT_URL')


def test_tf_deployment_setting_the_code_does_not_read_fails_the_tests(mutation, real_module):
    mutation(run_terraform_test, real_module,
             {"settings.tf": (r"^(\s*)LOG_LEVEL(\s*)=", r"\1LOG_LEVL\2=")},
             r"settings the code does not read.*LOG_LEVL")


def test_tf_deployment_wrong_oidc_audience_fails_the_tests(mutation, real_module):
    mutation(run_terraform_test, real_module,
             {"triggers.tf": (r"audience\s*= local\.urls\.embed", "audience = local.urls.chat")},
             r"OIDC audience must be embed's URL")


def test_tf_deployment_basic_role_fails_the_tests(mutation, real_module):
    mutation(run_terraform_test, real_module,
             {"iam.tf": (r'"roles/datastore\.user"', '"roles/editor"')},
             r"No basic roles|Only chat may use Firestore")


def test_tf_deployment_shared_service_account_fails_the_tests(mutation, real_module):
    mutation(run_terraform_test, real_module,
             {"functions.tf": (r"service_account\s*= local\.sa\[each\.key\]", 'service_account = local.sa["chat"]')},
             r"Each function must run as its own service account")


def test_tf_deployment_dashboard_rendered_with_a_wrong_enum_fails_discovery(mutation, real_module):
    """The dashboard template has directives (%{ for }), so it is rendered by terraform itself before the check."""
    mutation(run_discovery, real_module,
             {"modules/monitoring/dashboard.json.tftpl": (r'"perSeriesAligner": "ALIGN_DELTA"',
                                                          '"perSeriesAligner": "ALIGN_DELTAS"')},
             r"'ALIGN_DELTAS' is not one of")


def test_tf_deployment_cloudbuild_unknown_field_fails_discovery(mutation, real_module):
    mutation(run_discovery, real_module, {"../cloudbuild.yaml": (r"^timeout: 3600s", "timeout: 3600s\nsecretEnvs: []")},
             r"unknown field 'secretEnvs'")


@pytest.mark.parametrize("check", [run_validate, run_terraform_test])
def test_tf_deployment_the_unmutated_module_passes(check, real_module, run_check):
    result = run_check(check, real_module)
    assert result.ok, str(result)
