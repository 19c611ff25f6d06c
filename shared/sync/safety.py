"""Address safety: the sync fetches addresses a tenant typed or a website redirected to, from inside our network.

Without a check, "https://docs.example.com" could redirect to the metadata server (169.254.169.254), to a database
on a private address, or to localhost, and the sync would store whatever answered in a knowledge base the tenant can
query (server-side request forgery). `check_host` refuses a host when ANY of its addresses is not a public one.

The check resolves the name itself; the HTTP client resolves it again when it connects, so a name whose DNS answer
changes between the two (DNS rebinding) is not caught here.
"""

from __future__ import annotations

import ipaddress
import logging
import socket

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# RFC 6598 carrier-grade NAT space: not "private" to the ipaddress module, but never a public web server.
_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")
# IPv6 forms that carry an IPv4 address a router or translator would reach: NAT64 (RFC 6052) and 6to4 (RFC 3056).
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


class BlockedAddress(Exception):
    """A host resolves to an address the sync must not reach (loopback, private, link-local, ...)."""

    def __init__(self, host: str, address: str, reason: str):
        super().__init__(f"{host} resolves to {address} ({reason}): not a public address")
        self.host = host
        self.address = address
        self.reason = reason


def strip_port(host: str) -> str:
    """`host` lower-case without its port and without the brackets of an IPv6 literal ("[::1]:8080" -> "::1")."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host  # a bare IPv6 literal has several colons and no port


def blocked_reason(address: IPAddress) -> str | None:
    """Why `address` is not a public address (e.g. "loopback"), or None when it is one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and (address in _NAT64 or address in _NAT64_LOCAL):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            reason = blocked_reason(embedded)
            return f"IPv6 form of {embedded}, {reason}" if reason else None
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("shared address space", isinstance(address, ipaddress.IPv4Address) and address in _SHARED_ADDRESS_SPACE),
        ("private", address.is_private),  # last: ipaddress counts most of the classes above as private too
    )
    for reason, applies in checks:
        if applies:
            return reason
    return None


def check_host(host: str, allowed: frozenset[str] = frozenset()) -> None:
    """Raise BlockedAddress unless every address `host` resolves to is public, or `host` is in `allowed`.

    `host` may carry a port and IPv6 brackets; `allowed` holds lower-case hosts without port (for tests and
    on-premises docs a tenant explicitly trusts). Literal IP addresses are checked without DNS. A name that does not
    resolve lets `socket.gaierror` propagate (the fetcher reports it as a "dns" error).
    """
    name = strip_port(host).rstrip(".")
    if name in allowed:
        return
    try:
        addresses = [ipaddress.ip_address(name.split("%", 1)[0])]
    except ValueError:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
        # An IPv6 answer may carry a zone ("fe80::1%eth0"); the zone says nothing about the address class.
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    for address in addresses:
        reason = blocked_reason(address)
        if reason:
            log.warning("blocked %s: %s is %s", name, address, reason)
            raise BlockedAddress(name, str(address), reason)
