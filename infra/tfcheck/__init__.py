"""Offline checks of the Terraform: fmt, validate and test against a stand-in google provider, checkov, and the
Cloud Build config and dashboards against Google's API schemas. ``python -m infra.tfcheck all``; see checks.py.

The helpers mutation tests use are exported here::

    copy = mutated_copy(src, {"main.tf": (pattern, replacement)}, dest=tmp_path)
    result = run_terraform_test(copy)   # CheckResult(name, ok, output)
    assert_fails(result, r"must not be invocable")
"""

from infra.tfcheck.checks import (
    CHECKS,
    CheckResult,
    assert_fails,
    mutated_copy,
    run_checkov,
    run_discovery,
    run_fmt,
    run_terraform_test,
    run_validate,
)
from infra.tfcheck.toolchain import ToolMissing

__all__ = ["CHECKS", "CheckResult", "ToolMissing", "assert_fails", "mutated_copy", "run_checkov", "run_discovery",
           "run_fmt",
           "run_terraform_test", "run_validate"]
