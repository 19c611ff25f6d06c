"""Importing a function's module loads no heavy library (models, SDKs, parsers wait for the first request that
needs them). The import time itself is measured by `python -m infra.coldstart`, not asserted here."""

from __future__ import annotations

import pytest

from infra.coldstart import FUNCTIONS, measure, measure_file


@pytest.mark.parametrize("function", FUNCTIONS)
def test_importing_a_function_loads_no_heavy_library(function):
    result = measure(function)
    assert result["heavy"] == [], f"{function} imports {result['heavy']} at import time"


def test_the_probe_would_notice_a_heavy_import(tmp_path):
    module = tmp_path / "main.py"
    module.write_text("import json\nimport numpy\n")
    assert measure_file(module)["heavy"] == ["numpy"]
