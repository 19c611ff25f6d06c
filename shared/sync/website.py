"""A `website` source: a docs site or help centre, crawled politely and changed only where its content changed.

Discovery: robots.txt of each host (RFC 9309: a 4xx file allows everything; 5xx or unreachable disallows everything
for the run, which then fetches nothing and deletes nothing), the sitemaps it names or /sitemap.xml (indexes, gzip,
text), the start page, every URL that led to a page last time (revisited with a conditional GET, so a page that is
no longer linked is still checked), and links inside the scope up to `max_depth` and `max_pages`.

Each URL is fetched with If-None-Match / If-Modified-Since from its last response; a 304 costs no parsing. A 200 is
reduced to its main content as Markdown (the site's own Markdown when it links one), and the hash of that content,
never Last-Modified, decides whether the object is written. A page is identified by its canonical URL when that stays
inside the source, else by its final URL after redirects; an old URL that now redirects moves its page.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from posixpath import basename
from urllib.parse import urlsplit

from shared.sync.engine import Content, StepContext, utcnow

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 4  # a URL answering 429/5xx is tried this many times in a run (backoff or Retry-After between)
TRANSIENT = ("timeout", "connection")
DOWN_ERRORS = ("timeout", "connection", "dns")
MIN_ERRORS_FOR_RATE = 5  # the error-rate rule needs this many errors (three 503s of ten pages are not an outage)
HTML_TYPES = ("text/html", "application/xhtml+xml")
MARKDOWN_TYPES = ("text/markdown", "text/x-markdown", "text/plain")
UNKNOWN_TYPES = ("", "application/octet-stream", "text/plain", "binary/octet-stream")


def looks_like_html(body: bytes) -> bool:
    """A mislabelled HTML page (servers send octet-stream or text/plain more often than one would think)."""
    head = body[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head[:200]


def backoff(attempts: int, base: float = 5.0) -> float:
    return min(300.0, base * 2 ** attempts)


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class WebsiteSource:
    def __init__(self, ctx: StepContext):
        from shared.sync.urls import Scope

        self.ctx = ctx
        self.source = ctx.source
        self.run = ctx.run
        self.settings = ctx.engine.settings
        cfg = self.source.config
        self.hosts = frozenset(h.lower() for h in cfg["hosts"])
        self.scope = Scope(hosts=self.hosts, prefixes=tuple(cfg["prefixes"]), include=tuple(cfg.get("include", ())),
                           exclude=tuple(cfg.get("exclude", ())))
        self.start_url = self._normalize(cfg["url"]) or cfg["url"]
        self._fetcher = None
        self._breaker = None
        self._robots: dict[str, object] = {}
        self._lock = threading.Lock()
        self._wait_until: datetime | None = None
        self._page_items: int | None = None
        self._links: dict[int, dict[str, None]] = {}

    # -- plumbing ------------------------------------------------------------------------------------------------
    @staticmethod
    def _normalize(url: str, base: str | None = None) -> str | None:
        from shared.sync.urls import normalize

        return normalize(url, base)

    @property
    def fetcher(self):
        if self._fetcher is None:
            from shared.sync.fetch import CircuitBreaker, Fetcher

            cfg = self.source.config
            self._fetcher = Fetcher(self.settings.user_agent, max_bytes=self.settings.sync_max_page_bytes,
                                    allowed_private_hosts=self.settings.allowed_private_hosts
                                    | frozenset(cfg.get("allow_private_hosts", ())),
                                    headers=self.source.secret_json("headers_secret"),
                                    concurrency_per_host=cfg.get("concurrency", 4))
            self._breaker = CircuitBreaker()
            for host, delay in (self.run.state.get("crawl_delay") or {}).items():
                self._fetcher.set_delay(host, float(delay))
        return self._fetcher

    def close(self) -> None:
        if self._fetcher is not None:
            self._fetcher.close()

    def slug(self, url: str) -> str:
        """The object path of a page below the source's folder: its path after the scope prefix it falls under
        (`https://docs.example.com/docs/billing/refunds.html` with prefix /docs/ -> `billing/refunds`), and the
        host first when the source spans several."""
        from shared.sync.urls import host_of, object_slug

        parts = urlsplit(url)
        path = parts.path
        for prefix in sorted(self.scope.prefixes, key=len, reverse=True):
            if path.startswith(prefix):
                path = "/" + path[len(prefix):]
                break
        host = host_of(url)
        lead = "" if host == host_of(self.start_url) else "/" + host.replace(":", "-")
        return object_slug(f"{parts.scheme}://{parts.netloc}{lead}{path}" + (f"?{parts.query}" if parts.query else ""))

    def _hop_ok(self, url: str) -> bool:
        from shared.sync.urls import host_of

        return host_of(url) in self.hosts

    def _fetch(self, url: str, **kwargs):
        result = self.fetcher.fetch(url, follow=self._hop_ok, **kwargs)
        self.ctx.count("requests", 1 + len(result.redirects))
        self.ctx.count("bytes", len(result.body))
        from shared.sync.urls import host_of

        down = result.error in DOWN_ERRORS or (result.status is not None and result.status >= 500
                                               and result.status != 503)
        self._breaker.record(host_of(url), not down)
        return result

    def robots(self, url: str):
        from shared.sync.robots import Robots
        from shared.sync.urls import host_of

        host = host_of(url)
        with self._lock:
            if host not in self._robots:
                saved = (self.run.state.get("robots") or {}).get(host)
                self._robots[host] = Robots.from_dict(saved) if saved else None
            return self._robots[host]

    def allowed(self, url: str) -> bool:
        robots = self.robots(url)
        return robots is None or robots.allowed(url, self.settings.user_agent)

    # -- discover ------------------------------------------------------------------------------------------------
    def discover(self) -> None:
        from shared.sync.robots import Robots
        from shared.sync.urls import host_of

        run, ctx, cfg = self.run, self.ctx, self.source.config
        robots_state, delays = {}, {}
        origins = sorted({origin_of(self.start_url)} | {f"{urlsplit(self.start_url).scheme}://{h}" for h in self.hosts})
        declared: list[str] = []
        for origin in origins:
            result = self.fetcher.fetch(origin + "/robots.txt", follow=lambda _url: True)
            ctx.count("requests", 1 + len(result.redirects))
            status = None if result.error else result.status
            robots = Robots.from_response(status, result.body if result.ok else None, result.error or "")
            host = host_of(origin)
            robots_state[host] = robots.to_dict()
            self._robots[host] = robots
            if robots.unavailable:
                ctx.incomplete(f"robots.txt of {origin} unavailable ({robots.reason}): nothing fetched from it")
                continue
            delay = robots.crawl_delay(self.settings.user_agent)
            if delay:
                delays[host] = delay
                self.fetcher.set_delay(host, delay)
            declared += [u for u in robots.sitemaps if self._normalize(u) and self._hop_ok(self._normalize(u))]
        run.state["robots"], run.state["crawl_delay"] = robots_state, delays
        if self._robots[host_of(self.start_url)].unavailable:
            run.phase = "finalize"  # RFC 9309: assume everything is disallowed; no fetch, no deletion
            return True
        sitemaps = cfg.get("sitemaps") or declared
        optional = []
        if not cfg.get("sitemaps"):
            default = origin_of(self.start_url) + "/sitemap.xml"
            if default not in sitemaps:
                sitemaps = [*sitemaps, default]
                optional.append(default)  # a site without one answers 404: that is not a failure
        llms = origin_of(self.start_url) + "/llms.txt"
        run.state["optional"] = optional
        items = [(u, "sitemap", 0, 0.0) for u in dict.fromkeys(self._normalize(s) for s in sitemaps) if u]
        if self.allowed(llms):
            self._llms(llms)  # before any page: its pages are read from their Markdown from the first fetch
        items.append((self.start_url, "page", 0, 1e12))  # first among the pages
        run.state["start"] = self.start_url
        known = self._known_urls()
        items += [(u, "page", 1, 0.0) for u in known if u != self.start_url]
        self.ctx.state.add_items(run.id, items)
        ctx.count("discovered", 1 + len([u for u in known if u != self.start_url]))
        return True

    def _known_urls(self) -> list[str]:
        """URLs that led to a live page last time: revisited (conditionally) whether or not still linked."""
        with self.ctx.engine.db.autocommit() as cur:
            cur.execute("SELECT u.url FROM sync_urls u JOIN sync_pages p ON p.tenant = u.tenant AND p.source = "
                        "u.source AND p.key = u.page_key WHERE u.tenant = %s AND u.source = %s AND p.status <> "
                        "'deleted' ORDER BY u.url", (self.source.tenant, self.source.name))
            return [r[0] for r in cur.fetchall() if self.scope.contains(r[0])]

    def _add_pages(self, urls: list[str], depth: int, priorities: list[float] | None = None) -> None:
        """Queue pages (in scope, deduplicated), keeping the run within `max_pages`."""
        if not urls:
            return
        max_pages = self.source.config.get("max_pages", 10_000)
        items = [(u, "page", depth, (priorities[i] if priorities else 0.0)) for i, u in enumerate(urls)]
        with self._lock:  # reserve room under the lock; the insert itself runs outside it
            if self._page_items is None:
                self._page_items = self.ctx.state.count_items(self.run.id, "page")
            room = max_pages - self._page_items
            if len(items) > room:  # near the limit: only URLs the work list does not hold yet count
                held = self.ctx.state.held_items(self.run.id, [u for u, *_ in items])
                items = [i for i in items if i[0] not in held]
            if len(items) > room:
                self.ctx.incomplete(f"the page limit was reached (max_pages={max_pages})")
                items = items[:max(0, room)]
            self._page_items += len(items)
        if not items:
            return
        added = self.ctx.state.add_items(self.run.id, items)
        with self._lock:
            self._page_items -= len(items) - added  # those were in the work list already
        self.ctx.count("discovered", added)

    # -- fetch ---------------------------------------------------------------------------------------------------
    def fetch(self) -> datetime | None:
        """Work through the frontier until it is empty (-> finalize), the step's time is up, or a host asked to
        wait (returns when the next step may run)."""
        from shared.sync.urls import host_of

        ctx, run, state = self.ctx, self.run, self.ctx.state
        workers = max(1, self.settings.sync_concurrency)
        with ThreadPoolExecutor(workers, thread_name_prefix="sync") as pool:
            while True:
                items = state.next_items(run.id, workers * 4)
                if not items:
                    waiting = state.waiting_until(run.id)
                    if waiting is not None:
                        return max(waiting, self._wait_until or waiting)
                    self._check_error_rate()
                    run.phase = "finalize"
                    return None
                outcomes = list(pool.map(self._process_safely, items))
                self._queue_links()
                ctx.flush_seen()
                state.finish_items(run.id, [i.url for i, o in zip(items, outcomes) if o != "retry"])
                down = [h for h in {host_of(i.url) for i in items} if self._breaker.open(h)]
                if down:
                    ctx.incomplete(f"{', '.join(sorted(down))} stopped answering mid-run (circuit breaker): the "
                                   "rest waits for the next run")
                    run.phase = "finalize"
                    return None
                if self._wait_until is not None:
                    return self._wait_until
                if ctx.time_left() <= 0:
                    return None  # the step's budget is spent: a successor task goes on

    def _check_error_rate(self) -> None:
        counts = {**self.run.counts}
        for name, n in self.ctx.counts.items():
            counts[name] = counts.get(name, 0) + n
        fetched = counts.get("requests", 0)
        errors = counts.get("errors", 0)
        if errors >= MIN_ERRORS_FOR_RATE and fetched and errors / fetched > self.settings.sync_error_rate_limit:
            self.ctx.incomplete(f"{errors} of {fetched} requests failed (over SYNC_ERROR_RATE_LIMIT="
                                f"{self.settings.sync_error_rate_limit:g})")

    def _process_safely(self, item) -> str:
        try:
            if item.kind == "sitemap":
                return self._sitemap(item)
            return self._page(item)
        except Exception as exc:  # noqa: BLE001 - one bad page must not end the run; it is counted and logged
            if getattr(exc, "retryable", False) and item.attempts + 1 < MAX_ATTEMPTS:
                self.ctx.state.retry_item(self.run.id, item.url, self._backoff_until(item))
                return "retry"  # storage or database trouble: the item is tried again
            log.exception("sync %s: %s failed", self.source.name, item.url)
            self.ctx.error(type(exc).__name__)
            self.ctx.event(item.url, "error", f"{type(exc).__name__}: {exc}")
            return "done"

    def _backoff_until(self, item) -> datetime:
        return utcnow() + timedelta(seconds=backoff(item.attempts, self.settings.sync_retry_base_seconds))

    def _retry_later(self, item, result) -> str | None:
        """429 / 5xx: try again after Retry-After (or a backoff). None when the item has had its attempts."""
        if item.attempts + 1 >= MAX_ATTEMPTS:
            return None
        delay = result.retry_after if result.retry_after is not None else \
            backoff(item.attempts, self.settings.sync_retry_base_seconds)
        when = utcnow() + timedelta(seconds=delay)
        self.ctx.state.retry_item(self.run.id, item.url, when)
        self.ctx.count("retried")
        if result.status in (429, 503):
            with self._lock:  # this host asked us to wait: the step ends and the next one is scheduled for then
                self._wait_until = max(self._wait_until or when, when)
        return "retry"

    def _sitemap(self, item) -> str:
        from shared.sync.sitemaps import SitemapError, lastmod_is_useful, parse_sitemap

        ctx, url = self.ctx, item.url
        optional = url in self.run.state.get("optional", [])
        result = self._fetch(url)
        if result.error or result.status != 200:
            if result.status in (429, 500, 502, 503, 504) and self._retry_later(item, result):
                return "retry"
            if optional and result.status in (404, 410):
                return "done"
            ctx.error(result.error or f"http_{result.status}")
            ctx.incomplete(f"sitemap {url} failed ({result.error or result.status})")
            return "done"
        try:
            sitemap = parse_sitemap(result.body, url, result.content_type)
        except SitemapError as exc:
            if not optional:
                ctx.error("sitemap")
                ctx.incomplete(f"sitemap {url} could not be read: {exc}")
            return "done"
        children = [u for u in (self._normalize(c, url) for c in sitemap.children) if u and self._hop_ok(u)]
        ctx.state.add_items(self.run.id, [(c, "sitemap", 0, 0.0) for c in children])
        useful = lastmod_is_useful(sitemap.entries)
        urls, priorities = [], []
        for entry in sitemap.entries:
            page = self._normalize(entry.url, url)
            if page and self.scope.contains(page):
                urls.append(page)
                priorities.append(entry.lastmod.timestamp() if useful and entry.lastmod else 0.0)
        self._add_pages(urls, 0, priorities)
        ctx.count("sitemaps")
        return "done"

    def _llms(self, url: str) -> None:
        """/llms.txt: where a site lists the Markdown of its pages (`/docs/a.html.md` or `/docs/a.md` for
        `/docs/a.html`). Those pages are then read from their Markdown. A missing llms.txt is the common case."""
        from shared.sync.extract import extract_markdown

        result = self._fetch(url)
        if not result.ok:
            return
        markdown_for = {}
        for link in extract_markdown(result.body, url).links:
            markdown = self._normalize(link)
            if not markdown or not markdown.endswith(".md") or not self._hop_ok(markdown):
                continue
            stem = markdown[:-3]
            for page in (stem, stem + ".html", stem.removesuffix("/index.html") + "/"
                         if stem.endswith("/index.html") else None):
                if page and self.scope.contains(page):
                    markdown_for[page] = markdown
        with self._lock:
            self.run.state.setdefault("markdown_for", {}).update(markdown_for)
        self.ctx.count("llms_txt_pages", len(markdown_for))

    def _page(self, item) -> str:
        from shared.sync.extract import content_digest, extract_html, extract_markdown, render_document

        ctx, state, url, src = self.ctx, self.ctx.state, item.url, self.source
        if not self.allowed(url):
            ctx.count("blocked_by_robots")
            return "done"
        known = state.get_url(src.tenant, src.name, url)
        result = self._fetch(url, etag=known.etag if known else None,
                             last_modified=known.last_modified if known else None)
        is_start = url == self.run.state.get("start")
        if result.error:
            if result.error in TRANSIENT and item.attempts + 1 < MAX_ATTEMPTS:
                state.retry_item(self.run.id, url, self._backoff_until(item))
                return "retry"
            ctx.error(result.error)
            if known and known.page_key:
                ctx.seen(known.page_key)  # an error is not a removal
            if is_start:
                ctx.incomplete(f"the start page {url} failed ({result.error})")
            return "done"
        status = result.status
        if status == 429 or status >= 500:
            if self._retry_later(item, result):
                return "retry"
            ctx.error(f"http_{status}")
            if known and known.page_key:
                ctx.seen(known.page_key)
            if is_start:
                ctx.incomplete(f"the start page {url} answered {status}")
            return "done"
        if result.not_modified:
            if known and known.page_key:
                ctx.count("unchanged")
                ctx.count("not_modified")
                ctx.seen(known.page_key)
            return "done"
        if is_start and status != 200:
            ctx.incomplete(f"the start page {url} answered {status}")
        if status in (404, 410):
            ctx.count("not_found")
            return "done"  # not seen: the deletion rules decide, after the grace runs and a re-check
        if not result.ok:
            ctx.error(f"http_{status}")
            if known and known.page_key:
                ctx.seen(known.page_key)
            return "done"
        final = self._normalize(result.final_url) or url
        if not self.scope.contains(final):
            ctx.count("off_scope")
            return "done"
        if final != url:
            state.finish_items(self.run.id, [final])  # fetched through the redirect: not again in this run
        ctype = result.content_type
        flag = None
        if ctype == "application/pdf" or result.body[:5] == b"%PDF-":
            key = final
            content = Content(key=key, url=final, title="", data=result.body, content_type="application/pdf",
                              extension=".pdf", digest=hashlib.sha256(result.body).hexdigest(),
                              text_length=len(result.body), slug=self.slug(final).removesuffix(".pdf"))
        elif ctype in HTML_TYPES or (ctype in UNKNOWN_TYPES and looks_like_html(result.body)):
            page = extract_html(result.body, final, headers=result.headers, selector=src.config.get("selector"))
            self._follow_links(page.links, item.depth, final)
            if page.noindex:
                ctx.count("noindex")
                if not self.run.dry_run:
                        state.put_url(src.tenant, src.name, url, page_key=None, final_url=final, etag=None,
                                  last_modified=None, status=status)
                return "done"  # not seen: an indexed page that turns noindex is deleted by the rules
            canonical = self._normalize(page.canonical, final) if page.canonical else None
            key = canonical if canonical and self.scope.contains(canonical) else final
            title, markdown, length = page.title, page.markdown, page.text_length
            alternate_url = page.markdown_alternate or self.run.state.get("markdown_for", {}).get(final)
            if alternate_url:
                alternate = self._normalize(alternate_url, final)
                if alternate and self._hop_ok(alternate) and self.allowed(alternate):
                    alt = self._fetch(alternate)
                    if alt.ok:
                        own = extract_markdown(alt.body, alternate)
                        if own.markdown.strip():  # the site's own Markdown beats our reading of its HTML
                            title, markdown = own.title or title, own.markdown
                            length = max(length, own.text_length)
                            page.javascript_shell = False
            if page.javascript_shell:
                flag = "javascript_shell"
            elif "selector_missed" in page.flags:
                flag = "selector_missed"
            content = Content(key=key, url=key, title=title, data=render_document(title, key, markdown).encode(),
                              content_type="text/markdown; charset=utf-8", extension=".md",
                              digest=content_digest(markdown), text_length=length if markdown.strip() else 0,
                              slug=self.slug(key), flag=flag)
        elif ctype in MARKDOWN_TYPES or final.lower().endswith((".md", ".markdown")):
            page = extract_markdown(result.body, final)
            content = Content(key=final, url=final, title=page.title or basename(urlsplit(final).path),
                              data=render_document(page.title, final, page.markdown).encode(),
                              content_type="text/markdown; charset=utf-8", extension=".md",
                              digest=content_digest(page.markdown), text_length=page.text_length,
                              slug=self.slug(final))
        else:
            ctx.count("unsupported")
            return "done"
        if known and known.page_key and known.page_key != content.key:
            ctx.move(known.page_key, content.key)
        outcome, key = ctx.store(content)
        if self.run.dry_run:
            return "done"  # a dry run keeps no validators: the real run fetches as it would have
        keep_validators = outcome != "flagged"
        state.put_urls(src.tenant, src.name, [url, final], page_key=key, final_url=final,
                       etag=result.etag if keep_validators else None,
                       last_modified=result.last_modified if keep_validators else None, status=status)
        return "done"

    def _follow_links(self, links: list[str], depth: int, base: str) -> None:
        """Links inside the scope join the work list after the batch (one insert per batch and depth)."""
        cfg = self.source.config
        if not cfg.get("follow_links", True) or depth >= cfg.get("max_depth", 5):
            return
        found = []
        for link in links:
            url = self._normalize(link, base)
            if url and self.scope.contains(url):
                found.append(url)
        with self._lock:
            self._links.setdefault(depth + 1, {}).update(dict.fromkeys(found))

    def _queue_links(self) -> None:
        with self._lock:
            links, self._links = self._links, {}
        for depth in sorted(links):
            self._add_pages(list(links[depth]), depth)

    # -- re-check before a deletion ------------------------------------------------------------------------------
    def recheck(self, page) -> tuple[str, str]:
        """('gone' | 'present' | 'error', detail) from a direct GET of the page's URL."""
        from shared.sync.extract import extract_html

        if not self.allowed(page.url):
            return "present", "robots.txt now disallows it (kept, not fetched)"
        result = self._fetch(page.url)
        if result.error:
            return "error", result.error
        if result.status in (404, 410):
            return "gone", f"a direct re-check answered {result.status}"
        if not result.ok:
            return "error", f"a direct re-check answered {result.status}"
        final = self._normalize(result.final_url) or page.url
        if result.content_type in HTML_TYPES or looks_like_html(result.body):
            extracted = extract_html(result.body, final, headers=result.headers)
            if extracted.noindex:
                return "gone", "the page is now noindex"
            canonical = self._normalize(extracted.canonical, final) if extracted.canonical else None
            final = canonical if canonical and self.scope.contains(canonical) else final
        if final != page.key:
            other = self.ctx.state.get_page(self.source.tenant, self.source.name, final)
            if other is not None and other.status == "active":
                return "gone", f"now served as {final}, which is synced"
        return "present", f"a direct re-check answered {result.status}"

