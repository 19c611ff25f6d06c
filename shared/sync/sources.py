"""Sync sources are data: an operator adds, lists, changes, pauses and removes them per tenant (`make sources`,
`python -m infra.sync sources ...`), no code change. Each has a kind, a topic (the top-level folder of its objects,
so topic filters and citations work as for uploaded files) and a configuration validated here: a bad definition is
refused with a message naming the field.

    website  url (start page) · hosts · prefixes · include / exclude (globs on path?query) · sitemaps · follow_links
             · max_depth · max_pages · selector (CSS of the main content) · headers_secret · allow_private_hosts
             · concurrency · grace_runs · max_deletes
    feed     url · format (json | csv) · items_path · id_field · title_field · url_field · template · headers_secret
             · allow_private_hosts · grace_runs · max_deletes
    s3       bucket · prefix · endpoint_url · region · include / exclude · credentials_secret · grace_runs
             · max_deletes

`headers_secret` / `credentials_secret` name an environment variable holding a JSON object (in production a Secret
Manager secret mounted as that variable by Terraform), so no secret is stored in the database.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from shared.errors import BadRequest, NotFound
from shared.tenants import TENANT_ID

SOURCE_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")
TOPIC = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
SECRET_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,127}")
KINDS = ("website", "feed", "s3")


class InvalidSource(BadRequest):
    """A source definition that cannot be used; the message names the field."""


@dataclass(frozen=True)
class Source:
    tenant: str
    name: str
    kind: str
    topic: str
    config: dict = field(default_factory=dict)
    paused: bool = False

    @property
    def object_prefix(self) -> str:
        """Where its objects live in the knowledge bucket: `{topic}/{name}/` for the default tenant's sources,
        `{topic}/{tenant}/{name}/` for others (object names are global to the bucket, sources are per tenant)."""
        from shared.config import Settings

        middle = self.name if self.tenant == Settings.from_env().default_tenant else f"{self.tenant}/{self.name}"
        return f"{self.topic}/{middle}/"

    def get(self, key: str, default=None):
        return self.config.get(key, default)

    def secret_json(self, key: str) -> dict:
        """The JSON object in the environment variable named by config[key] ({} when not configured)."""
        name = self.config.get(key)
        if not name:
            return {}
        raw = os.environ.get(name)
        if raw is None:
            raise InvalidSource(f"source {self.name}: {key} names {name}, which is not set in this environment")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            raise InvalidSource(f"source {self.name}: {key} {name} does not hold a JSON object") from None
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise InvalidSource(f"source {self.name}: {key} {name} must be a JSON object of strings")
        return value

    def summary(self) -> dict:
        return {"tenant": self.tenant, "name": self.name, "kind": self.kind, "topic": self.topic,
                "paused": self.paused, "config": self.config}


# -- validation --------------------------------------------------------------------------------------------------

def _fail(name: str, message: str):
    raise InvalidSource(f"field '{name}': {message}")


def _http_url(name: str, value) -> str:
    if not isinstance(value, str) or not value.strip():
        _fail(name, "must be an http(s) URL")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        _fail(name, f"must be an http(s) URL with a host, not {value!r}")
    return value.strip()


def _string_list(name: str, value, check=None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        _fail(name, "must be a list of non-empty strings")
    items = [v.strip() for v in value]
    for item in items:
        if check:
            check(item)
    return items


def _int(name: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        else:
            _fail(name, f"must be a whole number from {low} to {high}")
    if not low <= value <= high:
        _fail(name, f"must be from {low} to {high}, not {value}")
    return value


def _bool(name: str, value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
        return value.lower() in ("true", "yes", "1")
    _fail(name, "must be true or false")


def _secret(name: str, value) -> str:
    if not isinstance(value, str) or not SECRET_NAME.fullmatch(value):
        _fail(name, "must name an environment variable (A-Z, 0-9, _) that holds a JSON object")
    return value


def _host_list(name: str, value) -> list[str]:
    def check(host):
        if "/" in host or " " in host:
            _fail(name, f"{host!r} is not a host name")
    return [h.lower() for h in _string_list(name, value, check)]


def _prefix(name: str):
    def check(prefix):
        if not prefix.startswith("/"):
            _fail(name, f"{prefix!r} must start with /")
    return check


_COMMON = {"grace_runs", "max_deletes"}
_ALLOWED = {
    "website": {"url", "hosts", "prefixes", "include", "exclude", "sitemaps", "follow_links", "max_depth",
                "max_pages", "selector", "headers_secret", "allow_private_hosts", "concurrency"} | _COMMON,
    "feed": {"url", "format", "items_path", "id_field", "title_field", "url_field", "template", "headers_secret",
             "allow_private_hosts"} | _COMMON,
    "s3": {"bucket", "prefix", "endpoint_url", "region", "include", "exclude", "credentials_secret"} | _COMMON,
}


def validate_config(kind: str, config) -> dict:
    """The configuration with defaults filled in, or InvalidSource naming the field."""
    if kind not in KINDS:
        _fail("kind", f"must be one of {', '.join(KINDS)}, not {kind!r}")
    if not isinstance(config, dict):
        _fail("config", "must be a JSON object")
    unknown = sorted(set(config) - _ALLOWED[kind])
    if unknown:
        _fail(unknown[0], f"is not a {kind} setting (known: {', '.join(sorted(_ALLOWED[kind]))})")
    out: dict = {}
    if "grace_runs" in config:
        out["grace_runs"] = _int("grace_runs", config["grace_runs"], 1, 100)
    if "max_deletes" in config:
        out["max_deletes"] = _int("max_deletes", config["max_deletes"], 0, 1_000_000)
    if kind == "website":
        url = _http_url("url", config.get("url"))
        parts = urlsplit(url)
        out["url"] = url
        out["hosts"] = sorted({parts.netloc.lower(), *_host_list("hosts", config.get("hosts"))})
        directory = parts.path.rsplit("/", 1)[0] + "/" if parts.path else "/"
        out["prefixes"] = _string_list("prefixes", config.get("prefixes"), _prefix("prefixes")) or [directory]
        out["include"] = _string_list("include", config.get("include"))
        out["exclude"] = _string_list("exclude", config.get("exclude"))
        out["sitemaps"] = [_http_url("sitemaps", s) for s in _string_list("sitemaps", config.get("sitemaps"))]
        out["follow_links"] = _bool("follow_links", config.get("follow_links", True))
        out["max_depth"] = _int("max_depth", config.get("max_depth", 5), 0, 50)
        out["max_pages"] = _int("max_pages", config.get("max_pages", 10_000), 1, 1_000_000)
        out["concurrency"] = _int("concurrency", config.get("concurrency", 4), 1, 32)
        if config.get("selector") is not None:
            selector = config["selector"]
            if not isinstance(selector, str) or not selector.strip():
                _fail("selector", "must be a CSS selector")
            from shared.sync.extract import validate_selector

            try:
                validate_selector(selector)
            except ValueError as exc:
                _fail("selector", str(exc))
            out["selector"] = selector.strip()
    elif kind == "feed":
        url = _http_url("url", config.get("url"))
        out["url"] = url
        fmt = config.get("format") or ("csv" if urlsplit(url).path.lower().endswith(".csv") else "json")
        if fmt not in ("json", "csv"):
            _fail("format", f"must be json or csv, not {fmt!r}")
        out["format"] = fmt
        for key, default in (("items_path", ""), ("id_field", "id"), ("title_field", "name"), ("url_field", "")):
            value = config.get(key, default)
            if not isinstance(value, str):
                _fail(key, "must be a string")
            out[key] = value.strip()
        if not out["id_field"]:
            _fail("id_field", "must name the field that identifies an item")
        if config.get("template") is not None:
            from shared.sync.feeds import FeedError, validate_template

            if not isinstance(config["template"], str) or not config["template"].strip():
                _fail("template", "must be a non-empty template string")
            try:
                validate_template(config["template"])
            except FeedError as exc:
                _fail("template", str(exc))
            out["template"] = config["template"]
    else:
        bucket = config.get("bucket")
        if not isinstance(bucket, str) or not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
            _fail("bucket", "must be an S3 bucket name")
        out["bucket"] = bucket
        prefix = config.get("prefix", "")
        if not isinstance(prefix, str) or prefix.startswith("/"):
            _fail("prefix", "must be a key prefix without a leading /")
        out["prefix"] = prefix
        if config.get("endpoint_url"):
            out["endpoint_url"] = _http_url("endpoint_url", config["endpoint_url"])
        region = config.get("region", "us-east-1")
        if not isinstance(region, str) or not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", region):
            _fail("region", f"must be an AWS region like eu-west-1, not {region!r}")
        out["region"] = region
        out["include"] = _string_list("include", config.get("include"))
        out["exclude"] = _string_list("exclude", config.get("exclude"))
        if config.get("credentials_secret"):
            out["credentials_secret"] = _secret("credentials_secret", config["credentials_secret"])
    if kind in ("website", "feed"):
        if config.get("headers_secret"):
            out["headers_secret"] = _secret("headers_secret", config["headers_secret"])
        out["allow_private_hosts"] = _host_list("allow_private_hosts", config.get("allow_private_hosts"))
    return out


def validate_source(tenant: str, name: str, kind: str, topic: str, config, paused: bool = False) -> Source:
    if not isinstance(tenant, str) or not TENANT_ID.fullmatch(tenant):
        _fail("tenant", f"must be a tenant id (lower-case letters, digits, -), not {tenant!r}")
    if not isinstance(name, str) or not SOURCE_NAME.fullmatch(name):
        _fail("name", "must be 1-40 lower-case letters, digits or -, starting and ending with a letter or digit")
    if not isinstance(topic, str) or not TOPIC.fullmatch(topic) or posixpath.basename(topic) != topic:
        _fail("topic", "must be a folder name: lower-case letters, digits, - or _ (it becomes the top-level folder)")
    return Source(tenant, name, kind, topic, validate_config(kind, config), bool(paused))


# -- storage -----------------------------------------------------------------------------------------------------

class SourceStore:
    """The sync_sources table."""

    def __init__(self, db):
        self._db = db

    def _row(self, row) -> Source:
        tenant, name, kind, topic, config, paused = row
        return Source(tenant, name, kind, topic, config if isinstance(config, dict) else json.loads(config), paused)

    def list(self, tenant: str | None = None) -> list[Source]:
        sql = "SELECT tenant, name, kind, topic, config, paused FROM sync_sources"
        with self._db.transaction() as cur:
            if tenant:
                cur.execute(sql + " WHERE tenant = %s ORDER BY tenant, name", (tenant,))
            else:
                cur.execute(sql + " ORDER BY tenant, name")
            return [self._row(r) for r in cur.fetchall()]

    def get(self, tenant: str, name: str) -> Source:
        with self._db.transaction() as cur:
            cur.execute("SELECT tenant, name, kind, topic, config, paused FROM sync_sources "
                        "WHERE tenant = %s AND name = %s", (tenant, name))
            row = cur.fetchone()
        if row is None:
            raise NotFound(f"no sync source {name!r} in tenant {tenant!r}")
        return self._row(row)

    def add(self, source: Source, *, replace: bool = False) -> Source:
        """Insert (or with `replace`, insert or update) a validated source. A source's topic and kind decide where
        its objects are, so they cannot change on an existing source (remove it and add it again)."""
        with self._db.transaction() as cur:
            cur.execute("SELECT kind, topic FROM sync_sources WHERE tenant = %s AND name = %s FOR UPDATE",
                        (source.tenant, source.name))
            row = cur.fetchone()
            if row and not replace:
                raise InvalidSource(f"field 'name': a source named {source.name!r} exists in tenant "
                                    f"{source.tenant!r} (use update)")
            if row and (row[0] != source.kind or row[1] != source.topic):
                raise InvalidSource("field 'topic': the kind and topic of an existing source cannot change "
                                    "(its objects live under the topic): remove the source and add it again")
            cur.execute(
                "INSERT INTO sync_sources (tenant, name, kind, topic, config, paused) VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (tenant, name) DO UPDATE SET config = EXCLUDED.config, paused = EXCLUDED.paused, "
                "updated_at = now()",
                (source.tenant, source.name, source.kind, source.topic, json.dumps(source.config), source.paused))
        return source

    def set_paused(self, tenant: str, name: str, paused: bool) -> None:
        with self._db.transaction() as cur:
            cur.execute("UPDATE sync_sources SET paused = %s, updated_at = now() WHERE tenant = %s AND name = %s",
                        (paused, tenant, name))
            if cur.rowcount == 0:
                raise NotFound(f"no sync source {name!r} in tenant {tenant!r}")

    def remove(self, tenant: str, name: str) -> None:
        with self._db.transaction() as cur:
            cur.execute("DELETE FROM sync_sources WHERE tenant = %s AND name = %s", (tenant, name))
            if cur.rowcount == 0:
                raise NotFound(f"no sync source {name!r} in tenant {tenant!r}")
