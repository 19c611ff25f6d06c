"""The offline Terraform checks (infra/tfcheck) on the real ``terraform/`` module, and proof that each one bites:
the tool's fixture module passes every check, and a copy with one deliberate mistake fails the right one with the
right message. Module-specific mutations use the same ``mutation`` fixture (see conftest.py)."""

from __future__ import annotations

import functools

import pytest

from infra.tfcheck import (
    CHECKS,
    mutated_copy,
    run_checkov,
    run_discovery,
    run_fmt,
    run_terraform_test,
    run_validate,
)
from infra.tfcheck.checks import RUNNERS
from infra.tfcheck.discovery import render_placeholders

FUNCTION_TF = "modules/function/main.tf"
DASHBOARD = "modules/monitoring/dashboard.json.tftpl"
CLOUDBUILD = "../cloudbuild.yaml"


@pytest.mark.parametrize("check", CHECKS)
def test_tf_real_module_passes(check, real_module, run_check):
    result = run_check(RUNNERS[check], real_module)
    assert result.ok, str(result)


@pytest.mark.parametrize("check", CHECKS)
def test_tf_fixture_module_passes(check, fixture_module, run_check):
    # The baseline of every mutation below: without the mistake, the same check passes.
    result = run_check(RUNNERS[check], fixture_module)
    assert result.ok, str(result)
    if check == "test":
        # tests/standin.tftest.hcl runs against the stand-in provider itself (no mock_provider): its plan, apply,
        # state read and destroy.
        assert 'run "second_apply_reads_the_state"... pass' in result.output


def test_tf_validate_rejects_unknown_argument(mutation, fixture_module):
    result = mutation(run_validate, fixture_module,
                      {FUNCTION_TF: (r"^(\s+)timeout_seconds(\s+)=", r"\1timeout_second\2 =")},
                      r'Unsupported argument: An argument named "timeout_second" is not expected here')
    assert f"{FUNCTION_TF}:" in result.output  # file:line of the mistake


def test_tf_validate_rejects_wrong_enum(mutation, fixture_module):
    mutation(run_validate, fixture_module, {FUNCTION_TF: (r'"ALLOW_INTERNAL_ONLY"', '"INTERNAL_ONLY"')},
             r'ingress_settings to be one of \["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"\], '
             r'got "INTERNAL_ONLY"')


def test_tf_validate_rejects_read_only_attribute(mutation, fixture_module):
    mutation(run_validate, fixture_module, {FUNCTION_TF: (r"^(\s+)timeout_seconds(\s+)= 300", r'\1uri = "x"')},
             r'Invalid Configuration for Read-Only Attribute|"uri" is not expected here')


def test_tf_validate_rejects_role_without_prefix(mutation, fixture_module):
    mutation(run_validate, fixture_module,
             {FUNCTION_TF: (r'"roles/cloudfunctions.invoker"', '"cloudfunctions.invoker"')},
             r'"cloudfunctions.invoker" is not a role')


def test_tf_validate_rejects_second_single_block(mutation, fixture_module):
    # service_config is a max-1 block in the provider schema.
    mutation(run_validate, fixture_module,
             {FUNCTION_TF: (r"^  service_config \{", "  service_config {\n  }\n\n  service_config {")},
             r"Too many service_config blocks")


def test_tf_fmt_rejects_unformatted_file(mutation, fixture_module):
    mutation(run_fmt, fixture_module, {"main.tf": (r"^  location( +)= var.region", "  location = var.region")},
             r"(?s)main\.tf.*-  location = var\.region")


def test_tf_discovery_rejects_unknown_cloudbuild_field(mutation, fixture_module):
    mutation(run_discovery, fixture_module, {CLOUDBUILD: (r"secretEnv:", "secretEnvs:")},
             r"cloudbuild\.yaml: Build\.steps\[1\]: unknown field 'secretEnvs'")


def test_tf_discovery_rejects_wrong_cloudbuild_enum(mutation, fixture_module):
    mutation(run_discovery, fixture_module, {CLOUDBUILD: (r"CLOUD_LOGGING_ONLY", "CLOUD_LOGGING")},
             r"Build\.options\.logging: 'CLOUD_LOGGING' is not one of")


def test_tf_discovery_rejects_unknown_dashboard_field(mutation, fixture_module):
    mutation(run_discovery, fixture_module, {DASHBOARD: (r'"plotType"', '"plotTyp"')},
             r"dashboard\.json\.tftpl: Dashboard\.mosaicLayout\.tiles\[0\]\.widget\.xyChart\.dataSets\[0\]: "
             r"unknown field 'plotTyp'")


def test_tf_discovery_rejects_wrong_dashboard_enum(mutation, fixture_module):
    mutation(run_discovery, fixture_module, {DASHBOARD: (r"ALIGN_PERCENTILE_95", "ALIGN_RATES")},
             r"perSeriesAligner: 'ALIGN_RATES' is not one of")


def test_tf_discovery_reports_missing_cloudbuild(fixture_module, run_check, tmp_path):
    copy = mutated_copy(fixture_module, {}, tmp_path)
    (tmp_path / "cloudbuild.yaml").unlink()
    result = run_check(run_discovery, copy)
    assert not result.ok and "cloudbuild.yaml: not found" in result.output


def test_tf_public_invoker_fails_checkov(mutation, fixture_module):
    mutation(run_checkov, fixture_module, {"main.tf": (r"invoker_member = .*", 'invoker_member = "allUsers"')},
             r"CKV_GCP_107: Cloud functions should not be public")


def test_tf_public_invoker_fails_terraform_test(mutation, fixture_module):
    mutation(functools.partial(run_terraform_test, args=["-filter=tests/module.tftest.hcl"]), fixture_module,
             {"main.tf": (r"invoker_member = .*", 'invoker_member = "allUsers"')},
             r"(?s)run \"embed_is_private\"\.\.\. fail.*must not be invocable by everyone")


def test_tf_mutated_copy_refuses_a_pattern_that_matches_nothing(fixture_module, tmp_path):
    with pytest.raises(ValueError, match="matched nothing in main.tf"):
        mutated_copy(fixture_module, {"main.tf": (r"no such text", "x")}, tmp_path)


def test_tf_mutated_copy_leaves_the_source_alone(fixture_module, tmp_path):
    before = (fixture_module.parent / "cloudbuild.yaml").read_text()
    copy = mutated_copy(fixture_module, {CLOUDBUILD: (r"secretEnv:", "secretEnvs:")}, tmp_path)
    assert (fixture_module.parent / "cloudbuild.yaml").read_text() == before
    assert "secretEnvs:" in (copy.parent / "cloudbuild.yaml").read_text()


def test_tf_dashboard_placeholders_become_dummies():
    assert render_placeholders('{"a": "${name}-x", "b": ${n}}') == '{"a": "x-x", "b": 1}'


def test_tf_missing_terraform_is_named(monkeypatch, fixture_module, capsys):
    from infra.tfcheck import ToolMissing
    from infra.tfcheck.__main__ import main

    monkeypatch.setenv("TERRAFORM", "no-such-terraform-binary")
    with pytest.raises(ToolMissing, match="terraform is not installed"):
        run_fmt(fixture_module)
    assert main(["fmt", "--dir", str(fixture_module)]) == 1
    assert "fmt: TOOL MISSING: terraform is not installed" in capsys.readouterr().out


def test_tf_missing_tool_fails_under_ci(monkeypatch, fixture_module, run_check):
    monkeypatch.setenv("TERRAFORM", "no-such-terraform-binary")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true and a tool is missing"):
        run_check(run_fmt, fixture_module)



def test_tf_discovery_rejects_wrong_types(mutation, fixture_module):
    mutation(run_discovery, fixture_module,
             {DASHBOARD: (r'"columns": 48', '"columns": "wide"'), CLOUDBUILD: (r"^timeout: 1200s", "timeout: 20m")},
             r"(?s)Build\.timeout: '20m' is not a duration.*Dashboard\.mosaicLayout\.columns: expected an integer")
