"""Page addresses: the canonical form that identifies a page, the crawl scope of a source, and object names.

`normalize` is the page identity used everywhere in the sync: two spellings of one address must normalize to the same
string, or the same page is ingested twice (the `#!` and fragment duplicates other crawlers suffered from), and two
different pages must never normalize to the same string. It deliberately does NOT merge `/docs/` with
`/docs/index.html` or `http` with `https`: only the page itself can say that (its canonical link), which is the
engine's job.

Written from RFC 3986 (sections 6.2.2 and 5.2.4) with the standard library only; w3lib is not used, because its
`canonicalize_url` sorts query parameters by key AND value, while a page identity must keep the order of repeated
keys (`?tag=b&tag=a` is not always `?tag=a&tag=b`).
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

log = logging.getLogger(__name__)

# Longer addresses are treated as invalid: no documentation page needs one, and crawler traps generate them.
MAX_URL_LENGTH = 8192

TRACKING_PARAMETERS = frozenset(
    {"gclid", "fbclid", "msclkid", "mc_cid", "mc_eid", "_ga", "_gl", "yclid", "igshid", "ref_src"}
)
TRACKING_PREFIXES = ("utm_",)

DEFAULT_PORTS = {"http": 80, "https": 443}

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_SUB_DELIMS = frozenset("!$&'()*+,;=")
# Characters that may appear literally in each component; anything else is percent-encoded (as UTF-8).
_PATH_SAFE = _UNRESERVED | _SUB_DELIMS | frozenset(":@/")
_QUERY_PART_SAFE = (_UNRESERVED | _SUB_DELIMS | frozenset(":@/?")) - frozenset("&=")
_HEX = frozenset("0123456789abcdefABCDEF")
_HOST_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$")


def normalize(url: str, base: str | None = None) -> str | None:
    """The canonical absolute form of `url` (resolved against `base`), or None if it is not an http(s) address.

    Scheme and host lower-case, IDN host in punycode, default port dropped, dot segments removed, empty path "/",
    fragment (including `#!`) dropped, tracking parameters removed, the remaining parameters sorted by key (repeated
    keys keep their order), percent-encoding normalised (unreserved characters decoded, hex upper-case, unsafe
    characters encoded). User information (`user:password@`) is dropped: credentials are never part of an identity.
    Never raises.
    """
    try:
        return _normalize(url, base)
    except (ValueError, UnicodeError, TypeError, AttributeError):
        return None


def _normalize(url: str, base: str | None) -> str | None:
    if not isinstance(url, str):
        return None
    url = url.strip()
    if base:
        url = urljoin(base.strip(), url)
    if not url or len(url) > MAX_URL_LENGTH:
        return None
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        return None
    host = _normalize_host(parts.hostname or "")
    if not host:
        return None
    port = parts.port  # raises ValueError for a non-numeric or out-of-range port
    netloc = host if port is None or port == DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = _remove_dot_segments(_normalize_percent(parts.path, _PATH_SAFE)) or "/"
    query = _normalize_query(parts.query)
    return urlunsplit((scheme, netloc, path, query, ""))


def _normalize_host(hostname: str) -> str | None:
    """Lower-case ASCII host (punycode for IDN, brackets for IPv6), or None when it cannot be a host name."""
    host = hostname.rstrip(".")
    if not host:
        return None
    if ":" in host:  # urlsplit already removed the brackets of an IPv6 literal
        import ipaddress

        return f"[{ipaddress.IPv6Address(host.split('%', 1)[0]).compressed}]"
    if not host.isascii():
        host = _to_punycode(host)
    host = host.lower()
    if not all(_HOST_LABEL.match(label) for label in host.split(".")):
        return None
    return host


def _to_punycode(host: str) -> str:
    # UTS #46 (what browsers do) when the idna package is present; the standard library's IDNA 2003 codec otherwise.
    try:
        import idna
    except ImportError:  # pragma: no cover - idna ships with httpx
        return host.encode("idna").decode("ascii")
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(f"not an IDN host: {host!r}") from exc


def _normalize_percent(text: str, safe: frozenset[str]) -> str:
    """Decode escapes of unreserved characters, upper-case other escapes, and encode characters not in `safe`."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "%" and i + 2 < len(text) and text[i + 1] in _HEX and text[i + 2] in _HEX:
            decoded = chr(int(text[i + 1 : i + 3], 16))
            out.append(decoded if decoded in _UNRESERVED else "%" + text[i + 1 : i + 3].upper())
            i += 3
            continue
        if char in safe:
            out.append(char)
        else:
            # A lone "%" becomes %25; spaces, quotes and non-ASCII characters are encoded as UTF-8 bytes.
            out.append("".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass")))
        i += 1
    return "".join(out)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4: resolve "." and ".." segments (a ".." above the root stays at the root)."""
    if not path:
        return path
    output: list[str] = []
    segments = path.split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
        elif segment == "..":
            if len(output) > 1:
                output.pop()
            if last:
                output.append("")
        else:
            output.append(segment)
    result = "/".join(output)
    if path.startswith("/") and not result.startswith("/"):
        result = "/" + result
    return result


def _normalize_query(query: str) -> str:
    pairs: list[tuple[str, str]] = []
    for item in query.split("&"):
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = _normalize_percent(key, _QUERY_PART_SAFE)
        if _is_tracking(key):
            continue
        pairs.append((key, sep + _normalize_percent(value, _QUERY_PART_SAFE)))
    pairs.sort(key=lambda pair: pair[0])  # sort() is stable: repeated keys keep their order
    return "&".join(key + rest for key, rest in pairs)


def _is_tracking(key: str) -> bool:
    name = unquote(key).lower()
    return name in TRACKING_PARAMETERS or name.startswith(TRACKING_PREFIXES)


def host_of(url: str) -> str:
    """The lower-case `host[:port]` of `url` as it appears in its normalized form; "" for an invalid address."""
    normalized = normalize(url)
    return urlsplit(normalized).netloc if normalized else ""


@dataclass(frozen=True)
class Scope:
    """Which addresses belong to a source: its hosts, path prefixes, and include/exclude glob patterns.

    Patterns are `fnmatch` globs (case-sensitive) matched against the normalized path plus "?query" when there is
    one, e.g. `/docs/*`, `*/changelog*`, `*.zip`. Prefixes are plain string prefixes of the normalized path (so
    "/docs/" does not contain "/docs" itself; use "/docs" if it should). Hosts are `host[:port]` as `host_of` gives.
    """

    hosts: frozenset[str]
    prefixes: tuple[str, ...] = ("/",)
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def __post_init__(self):
        # Hosts typed by a person ("Docs.Example.com") must still match what host_of returns.
        object.__setattr__(self, "hosts", frozenset(host.strip().lower().rstrip(".") for host in self.hosts))

    def contains(self, url: str) -> bool:
        """True when `url` is on one of the hosts, under a prefix, included (if include patterns exist), not
        excluded."""
        normalized = normalize(url)
        if normalized is None:
            return False
        parts = urlsplit(normalized)
        if parts.netloc not in self.hosts:
            return False
        if not parts.path.startswith(self.prefixes):
            return False
        target = parts.path + ("?" + parts.query if parts.query else "")
        if self.include and not any(fnmatch.fnmatchcase(target, pattern) for pattern in self.include):
            return False
        return not any(fnmatch.fnmatchcase(target, pattern) for pattern in self.exclude)


MAX_SEGMENT_LENGTH = 80
MAX_SLUG_LENGTH = 300
_STRIPPED_EXTENSIONS = (".html", ".htm", ".php", ".asp", ".aspx", ".md")
_UNSAFE_RUN = re.compile(r"[^a-z0-9._-]+")
_DOT_RUN = re.compile(r"\.{2,}")


def _hash8(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def object_slug(url: str, *, include_host: bool = False) -> str:
    """A readable, deterministic relative object path for the page at `url`, safe as part of a GCS object name.

    "https://x.test/Docs/Getting%20Started.html" -> "docs/getting-started"; "/" and a trailing slash -> ".../index";
    a query adds "-q" + 8 hex of its sha1. Segments keep only [a-z0-9._-] (accents folded, other runs -> "-"), at most
    80 characters each (longer ones are cut and get 8 hex of their sha1), the whole path at most 300 (cut + "-" + 8
    hex of the URL's sha1). The result never starts with ".", never contains "..", "//" or an empty segment. The caller
    adds the extension and a prefix. `include_host` puts the host first, for sources whose scope spans several hosts
    (otherwise "/a" on two hosts gets one slug).
    """
    normalized = normalize(url) or str(url)
    parts = urlsplit(normalized)
    trailing_slash = parts.path.endswith("/") or not parts.path
    segments = [_slug_segment(unquote(segment)) for segment in parts.path.split("/") if segment]
    segments = [segment for segment in segments if segment]
    if trailing_slash or not segments:
        segments.append("index")
    else:
        last = segments[-1]
        for extension in _STRIPPED_EXTENSIONS:
            if last.endswith(extension):
                last = last[: -len(extension)].rstrip(".-")
                break
        segments[-1] = last or "index"
    if parts.query:
        segments[-1] = f"{segments[-1]}-q{_hash8(parts.query)}"
    if include_host and parts.netloc:
        segments.insert(0, _slug_segment(parts.netloc) or "host")
    slug = "/".join(segments)
    if len(slug) > MAX_SLUG_LENGTH:
        slug = slug[: MAX_SLUG_LENGTH - 9].rstrip("/.-") + "-" + _hash8(normalized)
    return slug


def _slug_segment(segment: str) -> str:
    """One path segment reduced to [a-z0-9._-]; a segment with nothing readable left becomes "u-" + its hash."""
    folded = unicodedata.normalize("NFKD", segment).encode("ascii", "ignore").decode("ascii").lower()
    reduced = _DOT_RUN.sub(".", _UNSAFE_RUN.sub("-", folded)).strip(".-")
    if not reduced:
        # Non-Latin segments ("日本語") fold to nothing; a hash keeps two of them apart.
        return f"u-{_hash8(segment)}" if segment.strip(". ") else ""
    if len(reduced) > MAX_SEGMENT_LENGTH:
        reduced = reduced[: MAX_SEGMENT_LENGTH - 9].rstrip(".-") + "-" + _hash8(segment)
    return reduced
