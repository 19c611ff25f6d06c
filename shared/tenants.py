"""Tenants (sites) and how a chat request is bound to one: by the public site key the widget sends, never by a
tenant id the caller names.

    Tenant              id, site key, allowed origins, per-tenant limits
    TenantRegistry      port: resolve(site_key) -> Tenant; SingleTenant | FirestoreTenantRegistry (TENANT_REGISTRY)
    TenantAdmin         what the operator command (`python -m infra.tenants`) does: add, rotate a key, edit origins
                        and limits, disable

A site key is public (it is written in the host page's HTML, like other chat widgets' app ids): it says which
knowledge base and which limits apply, and the tenant's origin list says which sites' browsers may use it. What is
private in a tenant (transcripts, a signed user's history) is reached only with the random session id, and for a
signed user, with that user's token.

Firestore layout (the registry lives on the tenant document whose subcollections hold its sessions and config):

    tenants/{tenant}   site_key, allowed_origins [..], limits {client_per_minute, session_per_minute, ...},
                       disabled, created_at, updated_at, key_rotated_at

With TENANT_REGISTRY empty (the default) there is one tenant, DEFAULT_TENANT, whose origins are CHAT_ALLOWED_ORIGINS
and whose limits are the RATE_LIMIT_* settings: a single-site deployment needs no registry and no key.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import secrets
import threading
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from shared.errors import AppError, BadRequest, NotFound

log = logging.getLogger(__name__)

TENANT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
SITE_KEY = re.compile(r"pk_[A-Za-z0-9_-]{24}")
# The limits a tenant may set for itself; absent ones fall back to the deployment's RATE_LIMIT_* settings.
LIMIT_NAMES = ("client_per_minute", "session_per_minute", "handoff_per_hour", "feedback_per_minute")
_NEGATIVE_CACHE_SIZE = 1024


class UnknownSiteKey(AppError):
    """A site key that no tenant has (a typo, a rotated key, or a tenant that was disabled)."""

    status = 403
    public_message = "unknown site key: check the widget's data-site-key"


@dataclass(frozen=True)
class Tenant:
    id: str
    site_key: str = ""
    allowed_origins: frozenset[str] = frozenset()
    limits: dict[str, int] = field(default_factory=dict)
    disabled: bool = False

    def allows_origin(self, origin: str) -> bool:
        """Whether a browser on `origin` may call the chat API for this tenant (`*` in the list allows any)."""
        return "*" in self.allowed_origins or normalize_origin(origin) in self.allowed_origins

    def limit(self, name: str, default: int) -> int:
        return int(self.limits.get(name) or default)


def check_tenant_id(value: str) -> str:
    """A tenant id: 1-63 of lowercase a-z, 0-9, '_' and '-', starting with a letter or digit. Lowercase only, so
    'Acme' can never become a second tenant beside 'acme'."""
    if not isinstance(value, str) or not TENANT_ID.fullmatch(value):
        raise BadRequest("a tenant id is 1-63 lowercase letters, digits, '_' or '-', starting with a letter or digit")
    return value


def normalize_origin(origin: str) -> str:
    """`scheme://host[:port]` as browsers send it in `Origin`: lowercase scheme and host, no default port, no path."""
    parts = urllib.parse.urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return origin.strip().rstrip("/")
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[parts.scheme]
    try:
        port = parts.port
    except ValueError:
        return origin.strip().rstrip("/")
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def check_origin(value: str) -> str:
    """An origin an operator lists: `https://help.example.com` (scheme and host, optional port, nothing else), or
    `*` for any."""
    if value == "*":
        return value
    parts = urllib.parse.urlsplit(value.strip())
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise BadRequest(f"origin {value!r} has a bad port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") \
            or parts.query or parts.fragment or parts.username or parts.password:
        raise BadRequest(f"origin {value!r} must be scheme://host[:port], e.g. https://help.example.com")
    return normalize_origin(value)


def new_site_key() -> str:
    return "pk_" + secrets.token_urlsafe(18)


class SingleTenant:
    """No registry: every request is DEFAULT_TENANT's, with CHAT_ALLOWED_ORIGINS and the RATE_LIMIT_* settings."""

    requires_key = False

    def __init__(self, tenant_id: str, allowed_origins: Iterable[str]):
        self._tenant = Tenant(id=tenant_id, allowed_origins=frozenset(normalize_origin(o) for o in allowed_origins))

    def resolve(self, site_key: str | None) -> Tenant:
        """The one tenant; a site key is not needed and, if sent, not checked."""
        return self._tenant


class FirestoreTenantRegistry:
    """Tenants in Firestore, looked up by site key and cached per instance for `ttl_seconds` (an edit or a rotated
    key takes effect on every instance within it). Unknown keys are cached too (briefly, and a bounded number), so
    a flood of made-up keys costs no Firestore reads. When Firestore is unavailable, a tenant already cached is
    served from the cache; otherwise the error (503) propagates."""

    requires_key = True

    def __init__(self, connection, ttl_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self._connection = connection
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, Tenant]] = {}
        self._unknown: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def resolve(self, site_key: str | None) -> Tenant:
        if not site_key:
            raise BadRequest("site_key is required: set data-site-key on the widget's script tag")
        if not isinstance(site_key, str) or not SITE_KEY.fullmatch(site_key):
            raise UnknownSiteKey("malformed site key")
        now = self._clock()
        with self._lock:
            cached = self._cache.get(site_key)
            unknown_at = self._unknown.get(site_key)
        if cached is not None and now - cached[0] < self._ttl:
            return _usable(cached[1])
        if unknown_at is not None and now - unknown_at < min(self._ttl, 10.0):
            raise UnknownSiteKey("unknown site key (cached)")
        from shared.memory.connection import MemoryUnavailable

        try:
            tenant = self._lookup(site_key)
        except MemoryUnavailable:
            if cached is None:
                raise
            log.warning("tenant registry unavailable; serving the cached tenant %s", cached[1].id)
            return _usable(cached[1])
        with self._lock:
            if tenant is None:
                self._cache.pop(site_key, None)
                self._unknown[site_key] = now
                while len(self._unknown) > _NEGATIVE_CACHE_SIZE:
                    self._unknown.popitem(last=False)
            else:
                self._cache[site_key] = (now, tenant)
                self._unknown.pop(site_key, None)
        if tenant is None:
            raise UnknownSiteKey("unknown site key")
        return _usable(tenant)

    def _lookup(self, site_key: str) -> Tenant | None:
        from google.cloud.firestore_v1 import FieldFilter

        from shared.memory.connection import firestore_errors

        query = self._connection.client.collection("tenants").where(
            filter=FieldFilter("site_key", "==", site_key)).limit(2)
        with firestore_errors("look up a site key"):
            snapshots = list(query.stream())
        if len(snapshots) > 1:
            log.error("site key shared by tenants %s: refusing it", [s.id for s in snapshots])
            return None
        return tenant_from(snapshots[0].id, snapshots[0].to_dict()) if snapshots else None


def _usable(tenant: Tenant) -> Tenant:
    if tenant.disabled:
        raise UnknownSiteKey(f"tenant {tenant.id} is disabled")
    return tenant


def tenant_from(tenant_id: str, data: dict) -> Tenant:
    limits = {k: int(v) for k, v in (data.get("limits") or {}).items() if k in LIMIT_NAMES and v}
    return Tenant(id=tenant_id, site_key=data.get("site_key") or "",
                  allowed_origins=frozenset(data.get("allowed_origins") or ()), limits=limits,
                  disabled=bool(data.get("disabled")))


def create_registry(settings, connection_factory: Callable[[], object]):
    """SingleTenant unless TENANT_REGISTRY=firestore."""
    if settings.tenant_registry == "firestore":
        return FirestoreTenantRegistry(connection_factory(), ttl_seconds=settings.tenant_cache_seconds)
    return SingleTenant(settings.default_tenant, settings.allowed_origins)


class TenantAdmin:
    """The operator's edits of the registry (the `python -m infra.tenants` command). Each edit is one write of the
    tenant document; a rotated key replaces the old one at once (pages still embedding the old key get 403 within
    TENANT_CACHE_SECONDS, so update the embed snippet first or right after)."""

    def __init__(self, connection, now: Callable[[], datetime]):
        self._connection = connection
        self._now = now

    def _ref(self, tenant_id: str):
        return self._connection.client.collection("tenants").document(check_tenant_id(tenant_id))

    def get(self, tenant_id: str) -> Tenant:
        from shared.memory.connection import firestore_errors

        with firestore_errors("read a tenant"):
            snapshot = self._ref(tenant_id).get()
        data = snapshot.to_dict() if snapshot.exists else None
        if not data or not data.get("site_key"):
            raise NotFound(f"no tenant {tenant_id!r} in the registry")
        return tenant_from(tenant_id, data)

    def list(self) -> list[Tenant]:
        from shared.memory.connection import firestore_errors

        with firestore_errors("list tenants"):
            snapshots = list(self._connection.client.collection("tenants").stream())
        return sorted((tenant_from(s.id, s.to_dict()) for s in snapshots if (s.to_dict() or {}).get("site_key")),
                      key=lambda t: t.id)

    def add(self, tenant_id: str, origins: Iterable[str], limits: dict[str, int] | None = None) -> Tenant:
        """Register a tenant with a fresh site key; BadRequest if it exists already (in the registry)."""
        from google.api_core import exceptions

        from shared.memory.connection import firestore_errors

        ref = self._ref(tenant_id)
        origins = sorted({check_origin(o) for o in origins})
        limits = _check_limits(limits or {})
        now = self._now()
        data = {"site_key": new_site_key(), "allowed_origins": origins, "limits": limits, "disabled": False,
                "created_at": now, "updated_at": now, "key_rotated_at": now}
        with firestore_errors("add a tenant"):
            snapshot = ref.get()
            if snapshot.exists and (snapshot.to_dict() or {}).get("site_key"):
                raise BadRequest(f"tenant {tenant_id!r} exists already (rotate-key, origins and limits edit it)")
            try:
                if snapshot.exists:  # a tenant document with data under it (sessions, policies) but no registry entry
                    ref.update(data, option=self._connection.client.write_option(
                        last_update_time=snapshot.update_time))
                else:
                    ref.create(data)
            except (exceptions.Conflict, exceptions.FailedPrecondition):
                raise BadRequest(f"tenant {tenant_id!r} was added meanwhile") from None
        return tenant_from(tenant_id, data)

    def rotate_key(self, tenant_id: str) -> Tenant:
        self.get(tenant_id)
        now = self._now()
        return self._update(tenant_id, {"site_key": new_site_key(), "key_rotated_at": now})

    def edit_origins(self, tenant_id: str, add: Iterable[str] = (), remove: Iterable[str] = ()) -> Tenant:
        current = self.get(tenant_id)
        removing = {check_origin(o) for o in remove}
        origins = (set(current.allowed_origins) - removing) | {check_origin(o) for o in add}
        return self._update(tenant_id, {"allowed_origins": sorted(origins)})

    def set_limits(self, tenant_id: str, limits: dict[str, int | None]) -> Tenant:
        """Set (a positive number) or clear (None or 0: back to the deployment's default) per-tenant limits."""
        current = dict(self.get(tenant_id).limits)
        for name, value in limits.items():
            if name not in LIMIT_NAMES:
                raise BadRequest(f"unknown limit {name!r}; known: {', '.join(LIMIT_NAMES)}")
            if value:
                current.update(_check_limits({name: value}))
            else:
                current.pop(name, None)
        return self._update(tenant_id, {"limits": current})

    def set_disabled(self, tenant_id: str, disabled: bool) -> Tenant:
        self.get(tenant_id)
        return self._update(tenant_id, {"disabled": disabled})

    def _update(self, tenant_id: str, changes: dict) -> Tenant:
        from shared.memory.connection import firestore_errors

        ref = self._ref(tenant_id)
        with firestore_errors("update a tenant"):
            ref.update({**changes, "updated_at": self._now()})
            return tenant_from(tenant_id, ref.get().to_dict())


def _check_limits(limits: dict[str, int]) -> dict[str, int]:
    checked = {}
    for name, value in limits.items():
        if name not in LIMIT_NAMES:
            raise BadRequest(f"unknown limit {name!r}; known: {', '.join(LIMIT_NAMES)}")
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 100_000:
            raise BadRequest(f"limit {name} must be a whole number from 1 to 100000")
        checked[name] = value
    return checked


def as_json(tenant: Tenant) -> dict:
    """A tenant for the operator command's output."""
    data = dataclasses.asdict(tenant)
    data["allowed_origins"] = sorted(tenant.allowed_origins)
    return data
