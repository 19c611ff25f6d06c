"""robots.txt as RFC 9309 says to read it, with what an unreachable file means spelled out.

    2xx                                        parse the first 500 KiB (protego: wildcards, `$`, crawl-delay,
                                               request-rate, sitemaps)
    4xx (404, 403, 410, ...) except 429        no restrictions
    429, 5xx, an unfollowed 3xx, no response   disallow everything (`unavailable`, `reason` says why): a robots.txt
    (timeout, refused, DNS) or any fetch       that cannot be read is not a permission (a crawler that read a
    error (redirect loop, too many, ...)       timeout as "allow all" crawled what it should not have)

429 is read as "unreachable" rather than as a 4xx because it says "come back later", not "there is no file".
A `Robots` survives a JSON round trip (`to_dict` / `from_dict`) so the engine can keep it between Cloud Tasks steps;
RFC 9309 says to cache it no longer than 24 hours (`is_stale`).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # protego is imported on first parse
    from protego import Protego

log = logging.getLogger(__name__)

MAX_ROBOTS_BYTES = 500 * 1024
MAX_CACHE_SECONDS = 24 * 3600
_FORMAT_VERSION = 1

_ALLOW_ALL = "allow_all"
_DISALLOW_ALL = "disallow_all"
_RULES = "rules"


def product_token(user_agent: str) -> str:
    """The product token robots.txt groups match: "BrightwaveDocsSync/1.0 (+https://...)" -> "BrightwaveDocsSync"."""
    stripped = user_agent.strip()
    token = stripped.split("/", 1)[0].split(None, 1)[0] if stripped else ""
    return token or "*"


class Robots:
    """The robots.txt rules of one origin; build it with `Robots.from_response` or `Robots.from_dict`."""

    def __init__(self, mode: str, text: str = "", *, status: int | None = None, reason: str = "",
                 fetched_at: float | None = None):
        self._mode = mode
        self._text = text
        self.status = status
        self.reason = reason
        self.fetched_at = time.time() if fetched_at is None else fetched_at
        self._parser: Protego | None = None
        if mode == _RULES:
            from protego import Protego

            self._parser = Protego.parse(text)

    @classmethod
    def from_response(cls, status: int | None, text: str | bytes | None, error: str = "") -> Robots:
        """The rules implied by fetching robots.txt: its final status (None when nothing answered), its body, and the
        fetcher's error class ("timeout", "redirect_loop", ...) if any."""
        if error == "too_large" and status is not None and 200 <= status < 300:
            error = ""  # RFC 9309 asks for the first 500 KiB of a large file, which the cut body still holds
        if error:
            return cls(_DISALLOW_ALL, status=status, reason=f"robots.txt could not be fetched ({error})")
        if status is None:
            return cls(_DISALLOW_ALL, reason="robots.txt could not be fetched (no response)")
        if 200 <= status < 300:
            return cls(_RULES, _compact(_decode(text)), status=status, reason=f"robots.txt answered {status}")
        if status == 429 or status >= 500:
            return cls(_DISALLOW_ALL, status=status, reason=f"robots.txt answered {status}: server unavailable")
        if 400 <= status < 500:
            return cls(_ALLOW_ALL, status=status, reason=f"robots.txt answered {status}: no restrictions")
        # A 3xx the fetcher did not follow, or a 1xx: no rules were read, so nothing is known to be permitted.
        return cls(_DISALLOW_ALL, status=status, reason=f"robots.txt answered {status} without a file")

    @property
    def unavailable(self) -> bool:
        """True when robots.txt could not be read, so everything is disallowed."""
        return self._mode == _DISALLOW_ALL

    def allowed(self, url: str, user_agent: str) -> bool:
        """Whether `user_agent` (full header value or product token) may fetch `url`."""
        if self._mode == _ALLOW_ALL:
            return True
        if self._parser is None:
            return False
        return self._parser.can_fetch(url, product_token(user_agent))

    def crawl_delay(self, user_agent: str) -> float | None:
        """Seconds to wait between requests: the larger of Crawl-delay and Request-rate's interval, or None."""
        if self._parser is None:
            return None
        token = product_token(user_agent)
        delays = []
        delay = self._parser.crawl_delay(token)
        if delay is not None:
            delays.append(float(delay))
        rate = self._parser.request_rate(token)
        if rate is not None and rate.requests > 0:
            delays.append(rate.seconds / rate.requests)
        return max(delays) if delays else None

    @property
    def sitemaps(self) -> list[str]:
        """The Sitemap: lines, as written."""
        return list(self._parser.sitemaps) if self._parser is not None else []

    def is_stale(self, now: float | None = None, max_age: float = MAX_CACHE_SECONDS) -> bool:
        """True once these rules are older than `max_age` seconds (RFC 9309: cache at most 24 hours)."""
        return ((time.time() if now is None else now) - self.fetched_at) > max_age

    def to_dict(self) -> dict:
        """A JSON-safe dict `from_dict` rebuilds these rules from (comments and blank lines are not kept)."""
        return {"version": _FORMAT_VERSION, "mode": self._mode, "text": self._text, "status": self.status,
                "reason": self.reason, "fetched_at": self.fetched_at}

    @classmethod
    def from_dict(cls, data: dict) -> Robots:
        """Rebuild what `to_dict` stored; an unknown format reads as unavailable (disallow) rather than failing open."""
        mode = data.get("mode")
        if data.get("version") != _FORMAT_VERSION or mode not in (_ALLOW_ALL, _DISALLOW_ALL, _RULES):
            return cls(_DISALLOW_ALL, reason="stored robots.txt rules in an unknown format")
        return cls(mode, str(data.get("text") or ""), status=data.get("status"), reason=str(data.get("reason", "")),
                   fetched_at=float(data.get("fetched_at") or 0.0))

    def __repr__(self) -> str:
        return f"Robots({self._mode}, status={self.status}, reason={self.reason!r})"


def _decode(text: str | bytes | None) -> str:
    """The first 500 KiB as text, without a partial last line (half a rule could mean the opposite rule)."""
    if text is None:
        return ""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    if len(data) > MAX_ROBOTS_BYTES:
        log.info("robots.txt is %d bytes; reading the first %d", len(data), MAX_ROBOTS_BYTES)
        data = data[:MAX_ROBOTS_BYTES]
        cut = max(data.rfind(b"\n"), data.rfind(b"\r"))
        data = data[: cut + 1] if cut >= 0 else b""
    return data.decode("utf-8-sig", errors="replace")


def _compact(text: str) -> str:
    """The lines that carry directives: the parser ignores comments and blank lines, so the stored copy drops them."""
    lines = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return "\n".join(lines)
