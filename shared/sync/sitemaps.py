"""Sitemaps (sitemaps.org): XML `urlset` and `sitemapindex` (with or without the namespace), gzip, and text sitemaps;
RSS 2.0 and Atom feeds are read too, as search engines accept them as sitemaps.

A body that is not a sitemap raises SitemapError instead of yielding an empty list: an HTML error page or a broken
file read as "no pages" would make the engine believe every page was deleted. Bounds follow the protocol: 50 MB
uncompressed and 50,000 entries per file. lxml is imported on first parse and never resolves entities, reads a DTD
or touches the network (no XXE, no entity bombs).
"""

from __future__ import annotations

import logging
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

log = logging.getLogger(__name__)

MAX_SITEMAP_BYTES = 50 * 1024 * 1024
MAX_SITEMAP_ENTRIES = 50_000
# lastmod is only a hint; when this share of dated entries carries one value, it is a build date, not a change date.
BUILD_DATE_SHARE = 0.9

_GZIP_MAGIC = b"\x1f\x8b"


class SitemapError(ValueError):
    """The body is not a sitemap we can read (malformed, HTML, too big, too many entries); the message says why."""


@dataclass
class SitemapEntry:
    """One page of a sitemap: its address as written and its last modification, if the sitemap gives a readable one."""

    url: str
    lastmod: datetime | None = None


@dataclass
class Sitemap:
    """A parsed sitemap file: page entries (urlset, text, feed) and child sitemap addresses (sitemapindex)."""

    entries: list[SitemapEntry] = field(default_factory=list)
    children: list[str] = field(default_factory=list)


def parse_sitemap(body: bytes, url: str, content_type: str = "") -> Sitemap:
    """Parse one sitemap file fetched from `url` (used in messages); raise SitemapError if it is not one."""
    data = _gunzip(body, url) if body[:2] == _GZIP_MAGIC else body
    if len(data) > MAX_SITEMAP_BYTES:
        raise SitemapError(f"{url}: sitemap is {len(data)} bytes, over the {MAX_SITEMAP_BYTES} byte limit")
    head = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    looks_like_sitemap = b"<urlset" in head or b"<sitemapindex" in head
    if head.startswith((b"<!doctype html", b"<html")) or (b"<html" in head and not looks_like_sitemap):
        raise SitemapError(f"{url}: an HTML page, not a sitemap")
    if head.startswith(b"<"):
        return _parse_xml(data, url)
    if "html" in content_type.lower():
        raise SitemapError(f"{url}: served as {content_type}, and not XML")
    return _parse_text(data, url)


def _gunzip(body: bytes, url: str) -> bytes:
    """Decompress gzip (all members) without ever holding more than the 50 MB bound."""
    out = bytearray()
    data = body
    try:
        while data[:2] == _GZIP_MAGIC:
            decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
            chunk = decompressor.decompress(data, MAX_SITEMAP_BYTES + 1 - len(out))
            out += chunk
            if len(out) > MAX_SITEMAP_BYTES or decompressor.unconsumed_tail:
                raise SitemapError(f"{url}: gzip sitemap expands past the {MAX_SITEMAP_BYTES} byte limit")
            if not decompressor.eof:
                raise SitemapError(f"{url}: truncated gzip data")
            data = decompressor.unused_data
    except zlib.error as exc:
        raise SitemapError(f"{url}: corrupt gzip data ({exc})") from exc
    return bytes(out)


def _local(tag) -> str:
    # Comments and processing instructions have a non-string tag; namespaces are ignored on purpose (sitemaps in
    # the wrong or no namespace are common and harmless).
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _child_text(element, name: str) -> str | None:
    for child in element:
        if _local(child.tag) == name:
            return (child.text or "").strip()
    return None


def _parse_xml(data: bytes, url: str) -> Sitemap:
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False,
                             remove_comments=True, remove_pis=True)
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise SitemapError(f"{url}: malformed XML ({exc})") from exc
    if root is None:
        raise SitemapError(f"{url}: empty XML document")
    kind = _local(root.tag)
    sitemap = Sitemap()
    if kind == "urlset":
        for element in _limited(root, "url", url):
            loc = _child_text(element, "loc")
            if loc:
                sitemap.entries.append(SitemapEntry(loc, parse_lastmod(_child_text(element, "lastmod"))))
    elif kind == "sitemapindex":
        for element in _limited(root, "sitemap", url):
            loc = _child_text(element, "loc")
            if loc:
                sitemap.children.append(loc)
    elif kind == "rss":
        for element in _limited(root.iter("{*}item"), "item", url):
            link = _child_text(element, "link")
            if link:
                sitemap.entries.append(SitemapEntry(link, _parse_rfc822(_child_text(element, "pubdate"))))
    elif kind == "feed":
        for element in _limited(root, "entry", url):
            link = _atom_link(element)
            if link:
                sitemap.entries.append(SitemapEntry(link, parse_lastmod(_child_text(element, "updated"))))
    elif kind == "html":
        raise SitemapError(f"{url}: an HTML page, not a sitemap")
    else:
        raise SitemapError(f"{url}: root element <{kind}> is neither <urlset> nor <sitemapindex>")
    return sitemap


def _limited(elements, name: str, url: str):
    """The children called `name`, raising SitemapError past the 50,000 entries a sitemap file may hold."""
    count = 0
    for element in elements:
        if _local(element.tag) != name:
            continue
        count += 1
        if count > MAX_SITEMAP_ENTRIES:
            raise SitemapError(f"{url}: more than {MAX_SITEMAP_ENTRIES} <{name}> entries in one file")
        yield element


def _atom_link(entry) -> str | None:
    fallback = None
    for child in entry:
        if _local(child.tag) == "link" and child.get("href"):
            if child.get("rel", "alternate") == "alternate":
                return child.get("href").strip()
            fallback = fallback or child.get("href").strip()
    return fallback


def _parse_text(data: bytes, url: str) -> Sitemap:
    text = data.decode("utf-8-sig", errors="replace")
    sitemap = Sitemap()
    for line in text.splitlines():
        line = line.strip()
        if not line.lower().startswith(("http://", "https://")):
            continue
        if len(sitemap.entries) >= MAX_SITEMAP_ENTRIES:
            raise SitemapError(f"{url}: more than {MAX_SITEMAP_ENTRIES} URLs in one text sitemap")
        sitemap.entries.append(SitemapEntry(line))
    if not sitemap.entries and text.strip():
        # Text that holds no address is an error page or a wrong file, not an empty site.
        raise SitemapError(f"{url}: neither XML nor a text sitemap (no http(s) line)")
    return sitemap


_W3C_DATETIME = re.compile(
    r"^(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:[T ](?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:[.,](?P<fraction>\d+))?)?"
    r"\s*(?P<zone>Z|[+-]\d{2}(?::?\d{2})?)?)?)?)?$",
    re.IGNORECASE,
)


def parse_lastmod(value: str | None) -> datetime | None:
    """A W3C datetime ("2024", "2024-05", "2024-05-01", "2024-05-01T10:00Z", "2024-05-01T10:00:30.5+02:00") as an
    aware datetime (UTC when no zone is given); None when absent or unreadable."""
    if not value:
        return None
    match = _W3C_DATETIME.match(value.strip())
    if not match:
        return None
    parts = match.groupdict()
    zone = parts["zone"]
    try:
        tz = timezone.utc
        if zone and zone.upper() != "Z":
            digits = zone[1:].replace(":", "")
            offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
            tz = timezone(offset if zone[0] == "+" else -offset)
        fraction = parts["fraction"] or ""
        return datetime(
            int(parts["year"]), int(parts["month"] or 1), int(parts["day"] or 1), int(parts["hour"] or 0),
            int(parts["minute"] or 0), int(parts["second"] or 0), int((fraction + "000000")[:6]), tzinfo=tz,
        )
    except ValueError:  # month 13, hour 25, offset of 24 hours
        return None


def _parse_rfc822(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def lastmod_is_useful(entries: list[SitemapEntry]) -> bool:
    """False when lastmod cannot tell changed pages apart: no entry has one, or (nearly) every dated entry carries
    the same value to the minute (a site generator stamping its build date on every page)."""
    dated = [entry.lastmod.astimezone(timezone.utc).replace(second=0, microsecond=0)
             for entry in entries if entry.lastmod is not None]
    if not dated:
        return False
    if len(dated) == 1:
        return True
    most_common = Counter(dated).most_common(1)[0][1]
    return most_common / len(dated) < BUILD_DATE_SHARE
