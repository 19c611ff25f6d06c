"""Which links an answer may carry, and a streaming filter that removes the others.

Documents are content, never instructions, and soon they include synced third-party pages: a page must not be able
to put a link in front of the customer as the assistant's own advice ("reset it at https://evil.example"). The rule:

    a link in an answer is kept only when it points at one of the answer's numbered sources' own page URLs, or at a
    URL or e-mail address the tenant's business policies name (a policy URL also admits the pages below it:
    naming https://app.example.com/ admits https://app.example.com/login); http(s) and mailto only.

Anything else loses its URL: a Markdown link `[text](url)` (or image) keeps its text, a bare URL or an autolink
`<url>` becomes "(link removed)". The sources stay reachable through the citations, whose URLs are http(s) or empty,
never a storage path (`web_url`, `public_url`).

`LinkFilter` works on a stream like `CitationFilter`: the output of any split of a text equals that of the whole
text. It holds back the trailing word (a URL may still be growing) and an unfinished `[text](url` or `<url`, never
more than `MAX_HOLD` characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from urllib.parse import quote, urlsplit

from shared.llm.citations import StreamFilter

MAX_HOLD = 2048
REMOVED = "(link removed)"

_TEXT = r"(?:[^\[\]\n]|\[[^\[\]\n]*\])"  # link text; may hold one level of [brackets] (a citation marker)
_URL = r"[^\s<>()]*(?:\([^\s<>()]*\)[^\s<>()]*)*"  # balanced parentheses, as in Markdown
_MARKDOWN = rf"(?P<image>!?)\[(?P<text>{_TEXT}{{1,500}})\]\(\s*<?(?P<url>{_URL})>?(?:\s+\"[^\"\n]*\")?\s*\)"
_AUTOLINK = r"<(?P<auto>[A-Za-z][A-Za-z0-9+.\-]{1,31}:[^\s<>]+)>"
_BARE = r"(?<![\w/@.])(?P<bare>(?:[Hh][Tt][Tt][Pp][Ss]?://|[Ww][Ww][Ww]\.)[^\s<>\"'`]*[^\s<>\"'`.,;:!?)\]}*_])"
_LINK = re.compile(f"{_MARKDOWN}|{_AUTOLINK}|{_BARE}")
# What may still become a link once more text arrives: `[text`, `[text](url`, `![`, `<scheme:...`.
_OPEN = re.compile(rf"!?\[{_TEXT}{{0,500}}"
                   rf"(?:\[[^\[\]\n]*|\](?:\(\s*<?{_URL}(?:\([^\s<>()]*)?>?(?:\s+\"[^\"\n]*\"?)?\s*)?)?"
                   r"|<[A-Za-z][A-Za-z0-9+.\-]{0,31}(?::[^\s<>]*)?")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_WEB_SCHEMES = ("http", "https")


def web_url(value: str | None) -> str:
    """`value` when it is an absolute http(s) URL with a host, else "" (javascript:, data:, relative, garbage)."""
    if not isinstance(value, str):
        return ""
    value = value.strip()
    try:
        parts = urlsplit(value)
    except ValueError:
        return ""
    if parts.scheme.lower() not in _WEB_SCHEMES or not parts.hostname or any(c.isspace() for c in value):
        return ""
    return value


def public_url(url: str | None, source_uri: str | None, bases: Sequence[tuple[str, str]] = ()) -> str:
    """The page a customer may follow to a document, or "" when it has none: its own http(s) page URL (object
    metadata `source_url`), else its source path when that is an http(s) URL, else the base of the longest
    PUBLIC_URL_BASES prefix of its path plus the rest of the path, URL-quoted (`bases`: Settings.url_bases). Never
    a storage path (`gs://…`): what has no public page is shown by its title."""
    if web_url(url) or web_url(source_uri):
        return web_url(url) or web_url(source_uri)
    if not isinstance(source_uri, str):
        return ""
    matching = [(prefix, base) for prefix, base in bases if source_uri.startswith(prefix)]
    if not matching:
        return ""
    prefix, base = max(matching, key=lambda pair: len(pair[0]))
    return web_url(base + quote(source_uri[len(prefix):]))


def urls_in(text: str) -> list[str]:
    """The URLs a text names: Markdown link targets, autolinks and bare http(s)/www URLs."""
    found = []
    for match in _LINK.finditer(text or ""):
        found.append(match.group("url") or match.group("auto") or match.group("bare"))
    return found


class LinkFilter(StreamFilter):
    """Removes links that are not allowed (see the module doc) from a stream of answer text."""

    def __init__(self, source_urls: Iterable[str] = (), policy_text: str = ""):
        self._exact = {key for key in map(_key, source_urls) if key is not None}
        self._prefixes = {key for key in map(_key, urls_in(policy_text)) if key is not None}
        self._prefixes |= {("mailto:", address.lower()) for address in _EMAIL.findall(policy_text or "")}
        self._pending = ""
        self.removed = 0  # links removed so far

    def allowed(self, url: str) -> bool:
        """Whether an answer may link to `url`."""
        key = _key(url)
        if key is None:
            return False
        if key in self._exact:
            return True
        host, path = key
        return any(host == p_host and (path == p_path or path.startswith(p_path.rstrip("/") + "/") or not p_path)
                   for p_host, p_path in self._prefixes)

    def _drain(self, final: bool) -> str:
        text, out, start = self._pending, [], 0
        self._pending = ""
        hold = len(text) if final else _hold_point(text)
        while (match := _LINK.search(text, start)) is not None and match.start() < hold:
            if match.end() >= len(text) and not final:
                hold = match.start()  # a URL at the very end may still grow
                break
            out.append(text[start:match.start()])
            out.append(self._replace(match))
            start = match.end()
            hold = max(hold, start)
        out.append(text[start:hold])
        self._pending = text[hold:]
        return "".join(out)

    def _replace(self, match: re.Match[str]) -> str:
        url = match.group("url") or match.group("auto") or match.group("bare")
        if self.allowed(url):
            return match.group(0)
        self.removed += 1
        if match.group("text") is not None:
            return self._clean(match.group("text"))
        return REMOVED

    def _clean(self, text: str) -> str:
        """A finished piece of text (a link's text) with its own links checked."""
        return _LINK.sub(self._replace, text)


def _hold_point(text: str) -> int:
    """Where the part of `text` that may still become (part of) a link begins; len(text) when none does."""
    floor = max(0, len(text) - MAX_HOLD)
    hold = len(text)
    if text and not text[-1].isspace():
        word = len(text) - len(re.search(r"\S*$", text).group(0))
        hold = max(word, floor)
    for i in range(floor, len(text)):
        if text[i] in "[<!" and _OPEN.fullmatch(text, i):
            return min(hold, i)
    return hold


def _key(url: str | None) -> tuple[str, str] | None:
    """What two URLs must share to be the same link: host and path (scheme http/https alike, no trailing slash);
    None for anything but http(s) and mailto."""
    if not isinstance(url, str):
        return None
    url = url.strip().strip("<>")
    if url.lower().startswith("www."):
        url = "https://" + url
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme == "mailto":
        return ("mailto:", parts.path.strip().lower()) if parts.path.strip() else None
    if scheme not in _WEB_SCHEMES or not parts.hostname:
        return None
    path = parts.path.rstrip("/")
    if parts.query:
        path += "?" + parts.query
    return parts.hostname.lower(), path
