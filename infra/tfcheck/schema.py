"""The hashicorp/google provider schema, rebuilt offline from the prebuilt CDK package on PyPI.

No Terraform registry is reachable here, so the real provider cannot be installed. The PyPI package
``cdktn-provider-google`` is generated from the provider's own schema and ships it in two forms inside one jsii
tarball, and this module turns them back into the JSON that ``terraform providers schema -json`` prints:

- ``package/lib/<resource>/index.js``: the exact snake_case names; for every attribute its
  ``computed/optional/required`` flags (a comment above each getter), its type (``storageClassType``), and which
  members are nested blocks (``isBlock``) and whether list, set or single, with ``max_items = 1`` when the block
  is reached through an ``OutputReference`` rather than a ``List``.
- ``package/.jsii``: each property's documentation, where the provider lists an enum as ``Possible values: [...]``.
  Those lists are kept on the attribute as ``"enum"`` (not a key Terraform prints) for the stand-in provider.

Read-only attributes of a complex type (lists of objects, values from other modules) are typed ``dynamic``: their
inner structure is not spelt out in ``index.js`` and a wrong guess would reject valid references.

The result is cached under ``.cache/tfcheck/`` keyed by the package version and rebuilt only when missing.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

log = logging.getLogger(__name__)

#: The PyPI package and version, and the hashicorp/google release it was generated from (its ``package.json``).
CDK_PACKAGE = "cdktn-provider-google"
CDK_VERSION = "21.1.0"
PROVIDER_VERSION = "8.7.0"
PROVIDER_ADDRESS = "registry.terraform.io/hashicorp/google"

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache" / "tfcheck"

_MEMBER = re.compile(r"^    // (\w+) - computed: (true|false), optional: (true|false), required: (true|false)\n"
                     r"((?:.*\n){1,3})", re.M)
_HCL_ENTRY = re.compile(r"(\w+): \{\n\s+value: .*\n\s+isBlock: (true|false),\n\s+type: \"(\w+)\",\n"
                        r"\s+storageClassType: \"(\w+)\",")
_NEW_OBJECT = re.compile(r"= new (?:(\w+)\.)?(\w+)\(this, \"\w+\"(?:, (true|false))?\)")
_GETTER = re.compile(r"this\.get(\w+)Attribute\(")
_CLASS_START = re.compile(r"^class (\w+) extends cdktn\.(\w+) \{$", re.M)
_FUNC_START = re.compile(r"^function (\w+)ToHclTerraform\(struct\) \{$", re.M)
_TOP_LEVEL = re.compile(r"^(?:class|function|exports\.) ?", re.M)
_RESOURCE_TYPE = re.compile(r"static tfResourceType = \"(\w+)\";")
_POSSIBLE = re.compile(r"Possible values: \[([^\]]*)\]")
_DOC_ANCHOR = re.compile(r"#(\w+) ")

# storageClassType of a plain (non-block) attribute -> cty element type
_SCALARS = {"string": "string", "number": "number", "boolean": "bool"}
_COLLECTIONS = {"stringList": "string", "numberList": "number", "booleanList": "bool",
                "stringMap": "string", "numberMap": "number", "booleanMap": "bool"}
# getters of read-only attributes -> cty type
_GETTER_TYPES = {"String": "string", "Number": "number", "Boolean": "bool", "List": ["list", "string"],
                 "NumberList": ["list", "number"], "StringMap": ["map", "string"],
                 "NumberMap": ["map", "number"], "BooleanMap": ["map", "bool"]}
_MAP_CLASSES = {"StringMap": ["map", "string"], "NumberMap": ["map", "number"], "BooleanMap": ["map", "bool"],
                "StringMapList": ["list", ["map", "string"]]}


class SchemaError(RuntimeError):
    """The package could not be fetched or did not have the expected shape."""


def schema_path(version: str = CDK_VERSION) -> Path:
    """Where the rebuilt schema for one package version is cached."""
    return CACHE_DIR / f"google-{version}.schema.json"


def ensure_schema(version: str = CDK_VERSION) -> Path:
    """Return the cached schema JSON, downloading the wheel and rebuilding it first if it is missing."""
    target = schema_path(version)
    if target.exists():
        return target
    wheel = _download_wheel(version)
    schema = build_schema(wheel)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename so an interrupted build never leaves a truncated cache behind.
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(schema, separators=(",", ":")))
    os.replace(tmp, target)
    return target


def _download_wheel(version: str) -> Path:
    wheels = CACHE_DIR / "wheels"
    found = sorted(wheels.glob(f"cdktn_provider_google-{version}-*.whl"))
    if found:
        return found[0]
    wheels.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s==%s (about 67 MB, once)", CDK_PACKAGE, version)
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                           "--disable-pip-version-check", "-d", str(wheels), f"{CDK_PACKAGE}=={version}"],
                          capture_output=True, text=True)
    found = sorted(wheels.glob(f"cdktn_provider_google-{version}-*.whl"))
    if proc.returncode != 0 or not found:
        raise SchemaError(f"pip download {CDK_PACKAGE}=={version} failed: {proc.stderr.strip()[-2000:]}")
    return found[0]


def build_schema(wheel: Path) -> dict:
    """Rebuild ``terraform providers schema -json`` for the provider the wheel was generated from."""
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.endswith(".jsii.tgz")]
        if not names:
            raise SchemaError(f"{wheel.name} holds no jsii tarball")
        with tempfile.TemporaryDirectory() as tmp:
            tgz = Path(zf.extract(names[0], tmp))
            return _build_from_tarball(tgz)


def _build_from_tarball(tgz: Path) -> dict:
    enums: dict[tuple[str, str], dict[str, list[str]]] = {}
    resources: dict[str, dict] = {}
    data_sources: dict[str, dict] = {}
    provider: dict | None = None
    generated_from = None
    modules: list = []
    split_modules: dict[str, list[str]] = {}
    # Stream the tarball: .jsii (131 MB) comes first and is reduced to its enum lists before the index.js files.
    with tarfile.open(tgz, "r|gz") as tar:
        for member in tar:
            if member.name == "package/.jsii":
                enums = _enums_from_jsii(tar.extractfile(member).read())
                gc.collect()
            elif member.name == "package/package.json":
                generated_from = json.loads(tar.extractfile(member).read()).get("cdktf", {}).get("provider", {})
            elif member.name.startswith("package/lib/") and member.name.endswith(".js"):
                parts = member.name.split("/")
                if len(parts) < 4:
                    continue
                text = tar.extractfile(member).read().decode()
                # Large resources keep their structs in index-structs/*.js, not always next to index.js in the
                # tarball: hold those modules back until every part has been read.
                if len(parts) > 4 or "./index-structs/" in text:
                    split_modules.setdefault(parts[2], []).append(text)
                elif parts[3] == "index.js":
                    modules.append(_parse_module(parts[2], text, enums))
    modules.extend(_parse_module(module, "\n".join(texts), enums) for module, texts in split_modules.items())
    for parsed in modules:
        if parsed is None:
            continue
        kind, type_name, block = parsed
        if kind == "TerraformResource":
            resources[type_name] = {"version": 0, "block": block}
        elif kind == "TerraformDataSource":
            data_sources[type_name] = {"version": 0, "block": block}
        elif kind == "TerraformProvider":
            provider = {"version": 0, "block": block}
    if provider is None or not resources:
        raise SchemaError("the tarball had no provider or no resources: not a cdktf provider package?")
    if generated_from and generated_from.get("version") not in (None, PROVIDER_VERSION):
        raise SchemaError(f"package was generated from google {generated_from.get('version')}, "
                          f"expected {PROVIDER_VERSION}")
    return {"format_version": "1.0", "provider_schemas": {PROVIDER_ADDRESS: {
        "provider": provider, "resource_schemas": resources, "data_source_schemas": data_sources}}}


def _enums_from_jsii(raw: bytes) -> dict[tuple[str, str], dict[str, list[str]]]:
    """(module dir, struct name) -> {snake_case property: possible values}, from the property docs."""
    types = json.loads(raw)["types"]
    out: dict[tuple[str, str], dict[str, list[str]]] = {}
    for t in types.values():
        if t.get("kind") != "interface" or not t.get("datatype"):
            continue
        filename = t.get("locationInModule", {}).get("filename", "")
        parts = filename.split("/")
        if len(parts) < 3:
            continue
        for prop in t.get("properties", []):
            docs = prop.get("docs", {})
            text = f"{docs.get('summary', '')} {docs.get('remarks', '')}"
            found = _POSSIBLE.search(text)
            anchor = _DOC_ANCHOR.search(text)
            if not found or not anchor:
                continue
            try:
                values = json.loads(f"[{found.group(1)}]")
            except json.JSONDecodeError:
                continue
            if values and all(isinstance(v, str) for v in values):
                out.setdefault((parts[1], t["name"]), {})[anchor.group(1)] = values
    return out


def _sections(text: str, start: re.Pattern) -> dict[str, str]:
    """Name -> source text of each top-level class or function matched by ``start``."""
    bounds = [m.start() for m in _TOP_LEVEL.finditer(text)] + [len(text)]
    out = {}
    for m in start.finditer(text):
        end = next(b for b in bounds if b > m.start())
        out[m.group(1)] = text[m.start():end]
    return out


def _parse_module(module: str, text: str, enums: dict) -> tuple[str, str, dict] | None:
    classes = {}
    kinds = {}
    for m in _CLASS_START.finditer(text):
        kinds[m.group(1)] = m.group(2)
    classes = _sections(text, _CLASS_START)
    functions = _sections(text, _FUNC_START)
    main = next((c for c, k in kinds.items() if k in ("TerraformResource", "TerraformDataSource", "TerraformProvider")),
                None)
    if main is None:
        return None
    body = classes[main]
    type_name = _RESOURCE_TYPE.search(body)
    hcl = body[body.find("synthesizeHclAttributes()"):]
    if type_name is None or not hcl:
        raise SchemaError(f"{module}: no tfResourceType or synthesizeHclAttributes in {main}")
    ctx = _Module(module, classes, functions, enums)
    return kinds[main], type_name.group(1), ctx.block(f"{main}Config", body, hcl)


class _Module:
    """The classes and functions of one index.js, and how to turn a struct of it into a schema block."""

    def __init__(self, module: str, classes: dict[str, str], functions: dict[str, str], enums: dict):
        self.module, self.classes, self.functions, self.enums = module, classes, functions, enums

    def block(self, struct: str, members_src: str, hcl_src: str, ancestors: tuple[str, ...] = ()) -> dict:
        if struct in ancestors:
            # cdktf shortens very long struct names, so a deep nesting can reuse an ancestor's name (a handful of
            # recursive "oneof value" types): stop there with an empty block rather than loop.
            return {"attributes": {}, "block_types": {}}
        ancestors = ancestors + (struct,)
        flags = {m.group(1): (m.group(2) == "true", m.group(3) == "true", m.group(4) == "true", m.group(5))
                 for m in _MEMBER.finditer(members_src)}
        struct_enums = self.enums.get((self.module, struct), {})
        attributes: dict[str, dict] = {}
        block_types: dict[str, dict] = {}
        for m in _HCL_ENTRY.finditer(hcl_src):
            name, is_block, kind, storage = m.group(1), m.group(2) == "true", m.group(3), m.group(4)
            computed, optional, required, getter = flags.get(name, (False, True, False, ""))
            if is_block:
                block_types[name] = self._nested(name, kind, storage, required, getter, ancestors)
                continue
            attr: dict = {"type": _attribute_type(kind, storage)}
            if required:
                attr["required"] = True
            else:
                attr["optional"] = True
                if computed:
                    attr["computed"] = True
            if name in struct_enums:
                attr["enum"] = struct_enums[name]
            attributes[name] = attr
        for name, (computed, optional, required, getter) in flags.items():
            if name in attributes or name in block_types or not computed or optional or required:
                continue
            attributes[name] = {"type": _computed_type(getter), "computed": True}
        return {"attributes": attributes, "block_types": block_types}

    def _nested(self, name: str, kind: str, storage: str, required: bool, getter: str, ancestors: tuple) -> dict:
        struct = storage[:-4] if storage.endswith("List") and kind != "struct" else storage
        fn = self.functions.get(struct[0].lower() + struct[1:])
        members = self.classes.get(f"{struct}OutputReference", "")
        if fn is None:
            raise SchemaError(f"{self.module}: no {struct} ToHclTerraform function for block {name}")
        nested: dict = {"nesting_mode": {"list": "list", "set": "set", "struct": "single"}[kind],
                        "block": self.block(struct, members, fn, ancestors)}
        if kind == "set":
            _drop_dynamic(nested["block"])
        if kind != "struct":
            obj = _NEW_OBJECT.search(getter)
            if obj and obj.group(2).endswith("OutputReference"):
                nested["max_items"] = 1
            if required:
                nested["min_items"] = 1
        return nested


def _drop_dynamic(block: dict) -> None:
    """Terraform rejects dynamic attributes anywhere under a set block: leave those read-only values out."""
    for name in [n for n, a in block["attributes"].items() if a["type"] == "dynamic"]:
        del block["attributes"][name]
    for nested in block["block_types"].values():
        _drop_dynamic(nested["block"])


def _attribute_type(kind: str, storage: str):
    if kind == "simple":
        return _SCALARS.get(storage, "dynamic")
    element = _COLLECTIONS.get(storage, "dynamic")
    return [kind, element] if kind in ("list", "set", "map") else "dynamic"


def _computed_type(getter: str):
    if "Fn.tolist(this.getListAttribute(" in getter:
        return ["set", "string"]
    if "Fn.tolist(this.getNumberListAttribute(" in getter:
        return ["set", "number"]
    found = _GETTER.search(getter)
    if found:
        return _GETTER_TYPES.get(found.group(1), "dynamic")
    obj = _NEW_OBJECT.search(getter)
    if obj and obj.group(1) == "cdktn" and obj.group(2) in _MAP_CLASSES:
        return _MAP_CLASSES[obj.group(2)]
    return "dynamic"


def main() -> int:
    """Build (or find) the cached schema and print its path and size."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    path = ensure_schema()
    schema = json.loads(path.read_text())["provider_schemas"][PROVIDER_ADDRESS]
    print(f"{path}: {len(schema['resource_schemas'])} resources, {len(schema['data_source_schemas'])} data sources")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
