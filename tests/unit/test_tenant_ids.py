"""Tenants: ids, origins and site keys (shared/tenants.py); the registry itself is tested against the Firestore
emulator in tests/integration/test_tenants.py."""

import pytest

from shared.errors import BadRequest
from shared.memory.connection import check_tenant
from shared.tenants import SITE_KEY, SingleTenant, Tenant, check_origin, check_tenant_id, new_site_key, normalize_origin


@pytest.mark.parametrize("origin, normal", [
    ("https://Help.Example.com", "https://help.example.com"),
    ("https://help.example.com:443", "https://help.example.com"),
    ("http://localhost:80/", "http://localhost"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("HTTPS://[::1]:8443", "https://[::1]:8443"),
    ("null", "null"),  # sandboxed frames send "null": it matches nothing an operator can list
])
def test_origins_are_compared_as_browsers_send_them(origin, normal):
    assert normalize_origin(origin) == normal


def test_a_tenant_allows_its_own_origins_only():
    tenant = Tenant(id="acme", allowed_origins=frozenset({"https://help.acme.example"}))
    assert tenant.allows_origin("https://HELP.acme.example:443")
    assert not tenant.allows_origin("https://help.acme.example.evil.test")
    assert not tenant.allows_origin("http://help.acme.example")
    assert not tenant.allows_origin("null")
    assert Tenant(id="any", allowed_origins=frozenset({"*"})).allows_origin("https://anything.example")


@pytest.mark.parametrize("bad", ["help.example.com", "ftp://x.example", "https://x.example/path", "https://x.example?q",
                                 "https://user@x.example", "https://x.example:99999", ""])
def test_an_operator_lists_origins_not_urls(bad):
    with pytest.raises(BadRequest):
        check_origin(bad)


def test_tenant_ids_are_lowercase_everywhere():
    assert check_tenant_id("acme-eu_2") == "acme-eu_2"
    for bad in ("Acme", "ACME", "-acme", "a" * 64, "ac/me", ""):
        with pytest.raises(BadRequest):
            check_tenant_id(bad)
        with pytest.raises(BadRequest):
            check_tenant(bad)  # the memory store's paths use the same rule


def test_site_keys_are_random_and_well_formed():
    keys = {new_site_key() for _ in range(100)}
    assert len(keys) == 100 and all(SITE_KEY.fullmatch(k) for k in keys)


def test_without_a_registry_every_request_is_the_default_tenants():
    single = SingleTenant("default", ["http://localhost:8080/"])
    assert single.resolve(None).id == "default" and single.resolve("pk_whatever").id == "default"
    assert single.resolve(None).allows_origin("http://localhost:8080")
