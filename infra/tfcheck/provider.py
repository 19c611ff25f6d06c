"""A stand-in hashicorp/google provider plugin that serves the rebuilt schema, so ``terraform validate`` and
``terraform test`` run here with no registry and no Google Cloud.

Terraform starts it as ``terraform-provider-google_v<version>`` from a ``-plugin-dir`` (a shell wrapper that execs
this file in ``.venv-tfcheck``); it speaks plugin protocol 6 through PyPI ``tf`` (its gRPC stubs, handshake and
certificate). What it answers:

- GetProviderSchema / GetMetadata: the schema from :mod:`infra.tfcheck.schema`. Terraform itself then checks
  argument names, types, required arguments, block counts and read-only attributes.
- ValidateResourceConfig / ValidateDataResourceConfig: what the schema adds beyond types, which the real provider
  also checks at validate time: enum values (``Possible values``), and IAM roles of the form ``roles/...``.
- PlanResourceChange: the proposed state with every unset computed attribute unknown (as the real provider
  plans a create); ApplyResourceChange: the planned state with unknowns settled to made-up values of their type.
- ReadResource, UpgradeResourceState: pass the given state back; ReadDataSource: the config, computed
  attributes made up.

It knows nothing Google Cloud knows: cross-field rules, regex validators and whether a role or API exists.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import sys
import tempfile
import uuid
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import msgpack
from tf.gen import grpc_controller_pb2 as controller_pb
from tf.gen import grpc_controller_pb2_grpc as controller_rpc
from tf.gen import grpc_stdio_pb2_grpc as stdio_rpc
from tf.gen import tfplugin_pb2 as pb
from tf.gen import tfplugin_pb2_grpc as rpc
from tf.runner import _self_signed_cert
from tf.types import Unknown
from tf.utils import read_dynamic_value, to_dynamic_value

log = logging.getLogger("tfcheck.provider")

_NESTING = {"single": pb.Schema.NestedBlock.SINGLE, "list": pb.Schema.NestedBlock.LIST,
            "set": pb.Schema.NestedBlock.SET, "map": pb.Schema.NestedBlock.MAP,
            "group": pb.Schema.NestedBlock.GROUP}
# IAM role arguments the real provider rejects unless they name a predefined or custom role.
_ROLE_PREFIXES = ("roles/", "projects/", "organizations/")
_NULL = msgpack.packb(None)


def _block_pb(block: dict) -> pb.Schema.Block:
    attrs = [pb.Schema.Attribute(name=name, type=json.dumps(a["type"]).encode(), required=a.get("required", False),
                                 optional=a.get("optional", False), computed=a.get("computed", False),
                                 sensitive=a.get("sensitive", False))
             for name, a in sorted(block.get("attributes", {}).items())]
    blocks = [pb.Schema.NestedBlock(type_name=name, block=_block_pb(b["block"]), nesting=_NESTING[b["nesting_mode"]],
                                    min_items=b.get("min_items", 0), max_items=b.get("max_items", 0))
              for name, b in sorted(block.get("block_types", {}).items())]
    return pb.Schema.Block(attributes=attrs, block_types=blocks)


def _schema_pb(entry: dict) -> pb.Schema:
    return pb.Schema(version=entry.get("version", 0), block=_block_pb(entry["block"]))


def _nested_objects(value: Any, nesting: str) -> list:
    """The objects of a nested block value, whatever its nesting mode."""
    if value is None or value is Unknown:
        return []
    if nesting == "single" or nesting == "group":
        return [value]
    if nesting == "map":
        return list(value.values())
    return [v for v in value if isinstance(v, dict)]


def check_block(block: dict, value: dict | None, path: list) -> list[tuple[str, str, list]]:
    """(summary, detail, attribute path) for each value the provider would reject: a read-only attribute set
    inside a block, a value outside its enum, an IAM role not naming a role."""
    problems: list[tuple[str, str, list]] = []
    if not isinstance(value, dict):
        return problems
    for name, attr in block.get("attributes", {}).items():
        v = value.get(name)
        read_only = attr.get("computed") and not attr.get("optional") and not attr.get("required")
        # Terraform itself rejects read-only attributes at the top level only; inside blocks the provider does.
        if path and read_only and v is not None:
            problems.append((f"Invalid Configuration for Read-Only Attribute {name}",
                             f"{name} is set by the provider and cannot be configured", path + [name]))
        if not isinstance(v, str):
            continue
        allowed = attr.get("enum")
        if allowed and v not in allowed:
            problems.append((f"Invalid value for {name}",
                             f'expected {name} to be one of {json.dumps(allowed)}, got "{v}"', path + [name]))
        if name == "role" and not v.startswith(_ROLE_PREFIXES):
            problems.append((f"Invalid value for {name}",
                             f'"{v}" is not a role: expected roles/..., projects/.../roles/... or '
                             f"organizations/.../roles/...", path + [name]))
    for name, nested in block.get("block_types", {}).items():
        for i, obj in enumerate(_nested_objects(value.get(name), nested["nesting_mode"])):
            problems.extend(check_block(nested["block"], obj, path + [name, i]))
    return problems


def plan_unknowns(block: dict, proposed: Any, creating: bool) -> Any:
    """The proposed state with unset computed attributes unknown (all of them on create, read-only ones else)."""
    if not isinstance(proposed, dict):
        return proposed
    out = dict(proposed)
    for name, attr in block.get("attributes", {}).items():
        if attr.get("computed") and out.get(name) is None and (creating or not attr.get("optional")):
            out[name] = Unknown
    for name, nested in block.get("block_types", {}).items():
        v = out.get(name)
        if v is None or v is Unknown:
            continue
        mode = nested["nesting_mode"]
        if mode in ("single", "group"):
            out[name] = plan_unknowns(nested["block"], v, creating)
        elif mode == "map":
            out[name] = {k: plan_unknowns(nested["block"], o, creating) for k, o in v.items()}
        else:
            out[name] = [plan_unknowns(nested["block"], o, creating) for o in v]
    return out


def _made_up(cty_type: Any) -> Any:
    """A value of ``cty_type`` for a computed attribute after apply, as Terraform's own mock provider makes them."""
    if cty_type == "string":
        return uuid.uuid4().hex[:8]
    if cty_type == "number":
        return 0
    if cty_type == "bool":
        return False
    if isinstance(cty_type, list) and cty_type[0] in ("list", "set"):
        return []
    if isinstance(cty_type, list) and cty_type[0] == "map":
        return {}
    return None


def settle(block: dict, value: Any) -> Any:
    """Apply: every attribute still unknown gets a made-up value of its type (an email, a URI, a number...)."""
    if value is Unknown:
        return None
    if not isinstance(value, dict):
        return value
    out = dict(value)
    for name, attr in block.get("attributes", {}).items():
        if out.get(name) is Unknown:
            out[name] = _made_up(attr["type"])
    for name, nested in block.get("block_types", {}).items():
        v = out.get(name)
        mode = nested["nesting_mode"]
        if v is None or v is Unknown:
            out[name] = None if mode in ("single", "group") else ({} if mode == "map" else [])
        elif mode in ("single", "group"):
            out[name] = settle(nested["block"], v)
        elif mode == "map":
            out[name] = {k: settle(nested["block"], o) for k, o in v.items()}
        else:
            out[name] = [settle(nested["block"], o) for o in v]
    return out


def _diagnostics(problems: list[tuple[str, str, list]]) -> list[pb.Diagnostic]:
    out = []
    for summary, detail, path in problems:
        steps = [pb.AttributePath.Step(element_key_int=s) if isinstance(s, int)
                 else pb.AttributePath.Step(attribute_name=s) for s in path]
        out.append(pb.Diagnostic(severity=pb.Diagnostic.ERROR, summary=summary, detail=detail,
                                 attribute=pb.AttributePath(steps=steps)))
    return out


def _error(summary: str) -> list[pb.Diagnostic]:
    return [pb.Diagnostic(severity=pb.Diagnostic.ERROR, summary=summary)]


def _state(value: Any) -> pb.DynamicValue:
    # An explicit msgpack nil: an empty DynamicValue is not a null object to Terraform.
    return pb.DynamicValue(msgpack=_NULL) if value is None else to_dynamic_value(value)


class GoogleStandIn(rpc.ProviderServicer):
    """The plugin protocol 6 server: schema from the rebuilt JSON, no calls to any API."""

    def __init__(self, schema_file: Path):
        self.schema_file = schema_file
        self._schema: dict | None = None
        self._schema_response: pb.GetProviderSchema.Response | None = None

    def _load(self) -> dict:
        # Terraform starts the plugin several times per command, mostly only to ask for the schema: the JSON is
        # read on the first call that needs it, the schema response comes from a serialized copy (see below).
        if self._schema is None:
            data = json.loads(self.schema_file.read_text())
            self._schema = next(iter(data["provider_schemas"].values()))
        return self._schema

    @property
    def provider(self) -> dict:
        return self._load()["provider"]

    @property
    def resources(self) -> dict:
        return self._load()["resource_schemas"]

    @property
    def data_sources(self) -> dict:
        return self._load()["data_source_schemas"]

    def _capabilities(self) -> pb.ServerCapabilities:
        return pb.ServerCapabilities(plan_destroy=True, get_provider_schema_optional=False)

    def GetMetadata(self, request, context):
        full = self.GetProviderSchema(request, context)
        return pb.GetMetadata.Response(
            server_capabilities=self._capabilities(),
            resources=[pb.GetMetadata.ResourceMetadata(type_name=n) for n in full.resource_schemas],
            data_sources=[pb.GetMetadata.DataSourceMetadata(type_name=n) for n in full.data_source_schemas])

    def GetProviderSchema(self, request, context):
        if self._schema_response is None:
            cached = self.schema_file.with_suffix(".pb")
            if cached.exists() and cached.stat().st_mtime >= self.schema_file.stat().st_mtime:
                self._schema_response = pb.GetProviderSchema.Response.FromString(cached.read_bytes())
            else:
                self._schema_response = pb.GetProviderSchema.Response(
                    provider=_schema_pb(self.provider),
                    resource_schemas={n: _schema_pb(s) for n, s in self.resources.items()},
                    data_source_schemas={n: _schema_pb(s) for n, s in self.data_sources.items()},
                    server_capabilities=self._capabilities())
                tmp = cached.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_bytes(self._schema_response.SerializeToString())
                os.replace(tmp, cached)
        return self._schema_response

    def ValidateProviderConfig(self, request, context):
        config = read_dynamic_value(request.config)
        return pb.ValidateProviderConfig.Response(
            diagnostics=_diagnostics(check_block(self.provider["block"], config, [])))

    def ValidateResourceConfig(self, request, context):
        schema = self.resources.get(request.type_name)
        if schema is None:
            return pb.ValidateResourceConfig.Response(diagnostics=_error(f"unknown resource {request.type_name}"))
        config = read_dynamic_value(request.config)
        return pb.ValidateResourceConfig.Response(diagnostics=_diagnostics(check_block(schema["block"], config, [])))

    def ValidateDataResourceConfig(self, request, context):
        schema = self.data_sources.get(request.type_name)
        if schema is None:
            return pb.ValidateDataResourceConfig.Response(
                diagnostics=_error(f"unknown data source {request.type_name}"))
        config = read_dynamic_value(request.config)
        return pb.ValidateDataResourceConfig.Response(
            diagnostics=_diagnostics(check_block(schema["block"], config, [])))

    def ConfigureProvider(self, request, context):
        return pb.ConfigureProvider.Response()

    def UpgradeResourceState(self, request, context):
        # The state was written by this stand-in with the same schema: hand it back as it is.
        return pb.UpgradeResourceState.Response(upgraded_state=pb.DynamicValue(json=request.raw_state.json))

    def ReadResource(self, request, context):
        return pb.ReadResource.Response(new_state=request.current_state, private=request.private)

    def PlanResourceChange(self, request, context):
        schema = self.resources.get(request.type_name)
        if schema is None:
            return pb.PlanResourceChange.Response(diagnostics=_error(f"unknown resource {request.type_name}"))
        proposed = read_dynamic_value(request.proposed_new_state)
        if proposed is None:
            return pb.PlanResourceChange.Response(planned_state=_state(None))
        prior = read_dynamic_value(request.prior_state)
        planned = plan_unknowns(schema["block"], proposed, creating=prior is None)
        return pb.PlanResourceChange.Response(planned_state=_state(planned), planned_private=request.prior_private)

    def ApplyResourceChange(self, request, context):
        planned = read_dynamic_value(request.planned_state)
        if planned is None:
            return pb.ApplyResourceChange.Response(new_state=_state(None))
        if planned.get("id") is Unknown:
            planned["id"] = f"stand-in/{request.type_name}/{uuid.uuid4().hex[:12]}"
        schema = self.resources.get(request.type_name, {"block": {}})
        return pb.ApplyResourceChange.Response(new_state=_state(settle(schema["block"], planned)),
                                               private=request.planned_private)

    def ImportResourceState(self, request, context):
        return pb.ImportResourceState.Response(diagnostics=_error("the stand-in provider cannot import"))

    def ReadDataSource(self, request, context):
        schema = self.data_sources.get(request.type_name)
        if schema is None:
            return pb.ReadDataSource.Response(diagnostics=_error(f"unknown data source {request.type_name}"))
        config = read_dynamic_value(request.config)
        return pb.ReadDataSource.Response(state=_state(settle(schema["block"], plan_unknowns(schema["block"], config,
                                                                                              True))))

    def GetFunctions(self, request, context):
        return pb.GetFunctions.Response()

    def StopProvider(self, request, context):
        return pb.StopProvider.Response()


def serve(schema_file: Path) -> None:
    """Start the gRPC server, print go-plugin's handshake line on stdout, and run until Terraform stops us."""
    stopped = futures.Future()

    class Controller(controller_rpc.GRPCControllerServicer):
        def Shutdown(self, request, context):
            if not stopped.done():
                stopped.set_result(True)
            return controller_pb.Empty()

    class Stdio(stdio_rpc.GRPCStdioServicer):
        def StreamStdio(self, request, context):
            return iter([])

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    rpc.add_ProviderServicer_to_server(GoogleStandIn(schema_file), server)
    controller_rpc.add_GRPCControllerServicer_to_server(Controller(), server)
    stdio_rpc.add_GRPCStdioServicer_to_server(Stdio(), server)
    with tempfile.TemporaryDirectory(prefix="tfcheck-plugin-") as tmp:
        sock = f"{tmp}/plugin.sock"
        chain, credentials = _self_signed_cert()
        server.add_secure_port(f"unix://{sock}", credentials)
        server.start()

        cert = base64.b64encode(chain).decode().rstrip("=")
        sys.stdout.write(f"1|6|unix|{sock}|grpc|{cert}\n")
        sys.stdout.flush()
        try:
            # Terraform ends a plugin by Shutdown or by killing it; both end this wait.
            stopped.result()
        except KeyboardInterrupt:
            pass
        server.stop(grace=0)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the plugin wrapper: ``provider.py --schema FILE``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schema", type=Path, required=True, help="the rebuilt provider schema JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("TFCHECK_PROVIDER_LOG", "WARNING"), stream=sys.stderr)
    serve(args.schema)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
