"""Validate JSON-shaped Google API payloads against the API's discovery document, offline.

google-api-python-client ships Google's discovery documents (in ``.venv-tfcheck``); each has the REST schemas of its
API. Two files of the product are such payloads: ``cloudbuild.yaml`` is a cloudbuild v1 ``Build`` and a dashboard
template is a monitoring v1 ``Dashboard``. The check walks the value recursively: unknown field names, wrong JSON
types, values outside an ``enum``, malformed ``int64``/``google-duration`` strings, and fields the API marks
output-only.
Required fields are not checked: discovery documents do not mark them.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from infra.tfcheck import toolchain

_DURATION = re.compile(r"^-?\d+(\.\d{1,9})?s$")
_INT = re.compile(r"^-?\d+$")
# Terraform templatefile placeholders and directives.
_PLACEHOLDER = re.compile(r"\$\{[^}]*\}")
_DIRECTIVE = re.compile(r"%\{[^}]*\}")


@lru_cache(maxsize=None)
def _schemas(api: str) -> dict:
    return json.loads(toolchain.discovery_document(api).read_text())["schemas"]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def validate(value: Any, api: str, schema_name: str, where: str = "") -> list[str]:
    """Problems of ``value`` as an instance of ``schema_name`` in the discovery document ``api`` (``monitoring.v1``)."""
    schemas = _schemas(api)
    return _check(value, {"$ref": schema_name}, schemas, where or schema_name, accept_snake=False)


def _check(value: Any, spec: dict, schemas: dict, path: str, accept_snake: bool) -> list[str]:
    if "$ref" in spec:
        spec = schemas[spec["$ref"]]
    kind = spec.get("type")
    if kind == "any" or kind is None and "properties" not in spec:
        return []
    if kind == "object" or "properties" in spec:
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {_show(value)}"]
        problems = []
        props = spec.get("properties", {})
        extra = spec.get("additionalProperties")
        for key, item in value.items():
            name = key if key in props or not accept_snake else _camel(str(key))
            if name in props:
                prop = props[name]
                if prop.get("readOnly") or prop.get("description", "").startswith("Output only"):
                    problems.append(f"{path}.{key}: output-only field, the API sets it")
                    continue
                problems += _check(item, prop, schemas, f"{path}.{key}", accept_snake)
            elif extra is not None:
                problems += _check(item, extra, schemas, f"{path}.{key}", accept_snake)
            else:
                known = ", ".join(sorted(props))
                problems.append(f"{path}: unknown field {key!r} (known: {known})")
        return problems
    if kind == "array":
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {_show(value)}"]
        problems = []
        for i, item in enumerate(value):
            problems += _check(item, spec.get("items", {}), schemas, f"{path}[{i}]", accept_snake)
        return problems
    if kind == "string":
        fmt = spec.get("format")
        if fmt in ("int64", "uint64") and isinstance(value, int) and not isinstance(value, bool):
            return []
        if not isinstance(value, str):
            return [f"{path}: expected a string, got {_show(value)}"]
        if "enum" in spec and value not in spec["enum"]:
            return [f"{path}: {value!r} is not one of {', '.join(spec['enum'])}"]
        if fmt in ("int64", "uint64") and not _INT.match(value):
            return [f"{path}: {value!r} is not an integer"]
        if fmt == "google-duration" and not _DURATION.match(value):
            return [f"{path}: {value!r} is not a duration such as \"600s\""]
        return []
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{path}: expected an integer, got {_show(value)}"]
        return []
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return [f"{path}: expected a number, got {_show(value)}"]
        return []
    if kind == "boolean":
        if not isinstance(value, bool):
            return [f"{path}: expected true or false, got {_show(value)}"]
        return []
    return []


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def check_cloudbuild(path: Path) -> list[str]:
    """``cloudbuild.yaml`` as a cloudbuild v1 ``Build`` (Cloud Build also reads snake_case field names)."""
    try:
        value = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        return [f"{path}: not YAML: {exc}"]
    schemas = _schemas("cloudbuild.v1")
    return [f"{path}: {p}" for p in _check(value, {"$ref": "Build"}, schemas, "Build", accept_snake=True)]


def render_placeholders(template: str) -> str:
    """A templatefile template with its placeholders filled: ``x`` inside JSON strings, ``1`` where a bare value."""
    if _DIRECTIVE.search(template):
        raise ValueError("template directives (%{...}) are not supported by the discovery check")
    out, in_string, i = [], False, 0
    while i < len(template):
        ch = template[i]
        if ch == "\\" and in_string:
            out.append(template[i:i + 2])
            i += 2
            continue
        if ch == '"':
            in_string = not in_string
        if template.startswith("${", i):
            end = template.index("}", i)
            out.append("x" if in_string else "1")
            i = end + 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def check_dashboard(text: str, origin: Path) -> list[str]:
    """A rendered dashboard JSON as a monitoring v1 ``Dashboard``; problems are reported against ``origin``."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return [f"{origin}: the rendered dashboard is not JSON: {exc}"]
    return [f"{origin}: {p}" for p in validate(value, "monitoring.v1", "Dashboard")]


def check_dashboard_template(path: Path) -> list[str]:
    """A dashboard ``*.json.tftpl`` as a monitoring v1 ``Dashboard``, placeholders filled with dummies."""
    try:
        value = json.loads(render_placeholders(path.read_text()))
    except (ValueError, json.JSONDecodeError) as exc:
        return [f"{path}: not a JSON template: {exc}"]
    return [f"{path}: {p}" for p in validate(value, "monitoring.v1", "Dashboard")]
