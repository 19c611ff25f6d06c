"""The benchmark's website: the 6,114 msdocs articles of ../shared/eval/support-mix served as a docs site.

    site = build_site(Path("../shared/eval/support-mix"))    # a Website (infra/standins/website.py), not started
    with site.site:
        ...                                                   # sync site.site.url, then:
        changed = site.edit(0.05, seed=1)                     # 5% of the pages get a new sentence

Every corpus document whose metadata.source is "msdocs" becomes an HTML page: its Markdown rendered with
markdown-it-py inside `<main><article>`, wrapped in the boilerplate of a real docs site (header nav, a sidebar with
20 links to the next pages, a footer), at a path derived from its id (`page_path`). The site also has a home page,
`/sitemap.xml` (a sitemap index with two child sitemaps, the second gzipped) and a robots.txt pointing at it. Pages
are held in memory (about 60 MB for the full corpus) and carry a fixed build date as Last-Modified and sitemap
lastmod; an edited page gets the edit time in both.

    python -m infra.bench_site [--corpus ../shared/eval/support-mix] [--port 8095]    # serve it
    python -m infra.bench_site --measure 10                                          # requests/s, 8 threads
    python -m infra.bench_site --measure 10 --url http://127.0.0.1:8095              # ... of a site served elsewhere
"""

from __future__ import annotations

import argparse
import gzip
import html
import http.client
import json
import logging
import random
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from infra.standins.website import Website

logger = logging.getLogger(__name__)

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "eval" / "support-mix"
BUILD_DATE = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)  # the site's last full build: every page's lastmod
SIDEBAR_LINKS = 20
SITEMAPS = ("/sitemaps/pages-1.xml", "/sitemaps/pages-2.xml.gz")
SECTIONS = {"ods": "Office and Microsoft 365", "ex": "Exchange", "sp": "SharePoint"}
_UNSAFE = re.compile(r"[^a-z0-9._/-]+")
_FIRST_PARAGRAPH_END = re.compile(r"</p>")
_SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"


@dataclass
class BenchPage:
    """One page of the benchmark site: the corpus document it came from and its rendered main content."""

    doc_id: str
    path: str
    title: str
    main_html: str  # the inside of <article>
    last_modified: datetime = BUILD_DATE


def page_path(doc_id: str) -> str:
    """The URL path of a corpus document: ``msdocs:ods:Exchange/A/x.md`` -> ``/ods/exchange/a/x.html``.

    Lower-cased, with runs of characters outside ``[a-z0-9._/-]`` (spaces, quotes, brackets) as one "-".
    """
    _, collection, name = doc_id.split(":", 2)
    stem = name.lower().removesuffix(".md")
    return "/" + _UNSAFE.sub("-", f"{collection.lower()}/{stem}") + ".html"


class BenchSite:
    """The pages of the benchmark site, kept in memory and published on `site` (a `Website`)."""

    def __init__(self, site: Website, pages: list[BenchPage]) -> None:
        self.site = site
        self.pages: dict[str, BenchPage] = {page.path: page for page in pages}
        self._order = sorted(self.pages)
        self._position = {path: index for index, path in enumerate(self._order)}
        self._edits = 0
        self._nav = "\n        ".join(['<li><a href="/">Home</a></li>'] + [
            f'<li><a href="{path}">{html.escape(SECTIONS.get(section, section))}</a></li>'
            for section, path in self._section_starts().items()])
        self._publish_all()

    @property
    def url(self) -> str:
        """Base URL of the site."""
        return self.site.url

    def edit(self, fraction: float, seed: int) -> list[str]:
        """Change the main text of `fraction` of the pages (chosen by `seed`): one sentence appended to the first
        paragraph. Returns the changed paths, sorted; their Last-Modified and sitemap lastmod move to now."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("fraction must be between 0 and 1")
        chosen = sorted(random.Random(seed).sample(self._order, round(fraction * len(self._order))))
        # Later than the build date and than any previous edit, at HTTP-date (whole second) resolution.
        moment = max(datetime.now(UTC).replace(microsecond=0), BUILD_DATE + timedelta(seconds=1))
        for path in chosen:
            self._edits += 1
            page = self.pages[path]
            sentence = f" Revision {seed}-{self._edits}: this article was reviewed by the support team."
            page.main_html = _append_to_first_paragraph(page.main_html, html.escape(sentence))
            page.last_modified = max(moment, page.last_modified + timedelta(seconds=1))
            self._publish(page)
        self._publish_sitemaps()
        return chosen

    def html(self, path: str) -> str:
        """The full HTML of the page at `path`, as served."""
        return self._render(self.pages[path])

    def _publish_all(self) -> None:
        for page in self.pages.values():
            self._publish(page)
        self._publish_home()
        self._publish_sitemaps()
        self.site.robots = f"User-agent: *\nDisallow: /search\n\nSitemap: {self.site.origin}/sitemap.xml\n"

    def _publish(self, page: BenchPage) -> None:
        self.site.put(page.path, self._render(page), last_modified=page.last_modified)

    def _section_starts(self) -> dict[str, str]:
        """The first page of each section (what the header nav links to)."""
        starts: dict[str, str] = {}
        for path in self._order:
            starts.setdefault(path.split("/")[1], path)
        return starts

    def _render(self, page: BenchPage) -> str:
        index = self._position[page.path]
        neighbours = [self._order[(index + step) % len(self._order)] for step in range(1, SIDEBAR_LINKS + 1)]
        sidebar = "\n".join(f'        <li><a href="{path}">{html.escape(self.pages[path].title)}</a></li>'
                            for path in dict.fromkeys(neighbours) if path != page.path)
        return _page_template(page.title, self.site.origin + page.path, self._nav, sidebar, page.main_html)

    def _publish_home(self) -> None:
        items = "\n".join(f'<li><a href="{path}">{html.escape(SECTIONS.get(section, section))}</a></li>'
                          for section, path in self._section_starts().items())
        main = (f"<h1>Support documentation</h1>\n<p>{len(self.pages):,} articles in "
                f"{len(self._section_starts())} sections.</p>\n<ul>\n{items}\n</ul>")
        first = self._order[:SIDEBAR_LINKS]
        sidebar = "\n".join(f'        <li><a href="{p}">{html.escape(self.pages[p].title)}</a></li>' for p in first)
        self.site.put("/index.html", _page_template("Support documentation", self.site.origin + "/", self._nav,
                                                    sidebar, main), last_modified=BUILD_DATE)

    def _publish_sitemaps(self) -> None:
        half = (len(self._order) + 1) // 2
        for name, paths in zip(SITEMAPS, (self._order[:half], self._order[half:]), strict=True):
            entries = "\n".join(
                f"  <url><loc>{self.site.origin}{path}</loc>"
                f"<lastmod>{self.pages[path].last_modified.strftime('%Y-%m-%dT%H:%M:%SZ')}</lastmod></url>"
                for path in paths)
            xml = f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="{_SITEMAP_NS}">\n{entries}\n</urlset>\n'
            if name.endswith(".gz"):
                self.site.put(name, gzip.compress(xml.encode(), mtime=0))  # mtime=0: same bytes, same ETag
            else:
                self.site.put(name, xml)
        children = "\n".join(f"  <sitemap><loc>{self.site.origin}{name}</loc></sitemap>" for name in SITEMAPS)
        self.site.put("/sitemap.xml", f'<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex xmlns="{_SITEMAP_NS}">'
                                      f"\n{children}\n</sitemapindex>\n")


def _append_to_first_paragraph(main_html: str, sentence: str) -> str:
    match = _FIRST_PARAGRAPH_END.search(main_html)
    if match is None:
        return f"<p>{sentence.strip()}</p>\n{main_html}"
    return main_html[:match.start()] + sentence + main_html[match.start():]


def _page_template(title: str, canonical: str, nav: str, sidebar: str, main_html: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{html.escape(title)} | Support Docs</title>
  <link rel="canonical" href="{html.escape(canonical)}">
  <script>window.telemetry = window.telemetry || [];</script>
</head>
<body>
  <header class="site-header">
    <a class="logo" href="/">Support Docs</a>
    <nav aria-label="Main">
      <ul>
        {nav}
      </ul>
    </nav>
  </header>
  <div class="layout">
    <aside class="sidebar">
      <h2>Related articles</h2>
      <ul>
{sidebar}
      </ul>
    </aside>
    <main>
      <article>
{main_html}
      </article>
    </main>
  </div>
  <footer class="site-footer"><p>&copy; 2026 Support Docs (benchmark copy, CC BY 4.0 content).
    <a href="/privacy">Privacy</a></p></footer>
</body>
</html>
"""


def read_corpus(corpus_path: Path) -> list[dict]:
    """The msdocs documents of a BEIR corpus (a folder holding corpus.jsonl.gz, or the .jsonl[.gz] file)."""
    path = Path(corpus_path)
    if path.is_dir():
        path = path / "corpus.jsonl.gz"
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as lines:
        documents = [json.loads(line) for line in lines if line.strip()]
    return [doc for doc in documents if (doc.get("metadata") or {}).get("source") == "msdocs"]


def build_site(corpus_path: Path, out: Website | None = None) -> BenchSite:
    """Render the msdocs documents of the corpus at `corpus_path` as pages of `out` (a new, unstarted Website on a
    free port when None). Two ids that map to one path keep the first in id order; the other gets a "-2" suffix."""
    from markdown_it import MarkdownIt  # heavy-ish and only needed here

    markdown = MarkdownIt("commonmark", {"html": False}).enable("table")
    pages: list[BenchPage] = []
    taken: set[str] = set()
    for doc in sorted(read_corpus(corpus_path), key=lambda d: d["_id"]):
        path = page_path(doc["_id"])
        suffix = 2
        while path in taken:
            path = page_path(doc["_id"]).removesuffix(".html") + f"-{suffix}.html"
            suffix += 1
        taken.add(path)
        title = doc.get("title") or path.rsplit("/", 1)[-1]
        pages.append(BenchPage(doc["_id"], path, title, markdown.render(doc.get("text") or "")))
    logger.info("bench site: %d pages", len(pages))
    return BenchSite(out if out is not None else Website(), pages)


def measure_throughput(base_url: str, paths: list[str], threads: int = 8, seconds: float = 5.0) -> dict:
    """GET `paths` round-robin from `threads` threads, one keep-alive connection each, for `seconds`.

    Returns {"requests", "seconds", "requests_per_s", "megabytes_per_s", "errors"}.
    """
    address = urlsplit(base_url)
    counts = [0] * threads
    volume = [0] * threads
    errors = [0] * threads
    deadline = time.perf_counter() + seconds

    def client(slot: int) -> None:
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
        position = slot
        while time.perf_counter() < deadline:
            try:
                connection.request("GET", paths[position % len(paths)])
                response = connection.getresponse()
                volume[slot] += len(response.read())
                counts[slot] += 1
                errors[slot] += response.status != 200
            except (OSError, http.client.HTTPException):
                errors[slot] += 1
                connection.close()
                connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
            position += threads
        connection.close()

    started = time.perf_counter()
    workers = [threading.Thread(target=client, args=(slot,)) for slot in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    return {"requests": sum(counts), "seconds": round(elapsed, 2), "requests_per_s": round(sum(counts) / elapsed),
            "megabytes_per_s": round(sum(volume) / elapsed / 1e6, 1), "errors": sum(errors)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="support-mix folder or corpus file")
    parser.add_argument("--port", type=int, default=8095)
    parser.add_argument("--measure", type=float, default=0.0, metavar="SECONDS",
                        help="measure requests/s with --threads clients instead of serving")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--url", default=None, help="with --measure: a bench site already served elsewhere")
    args = parser.parse_args()
    if args.measure and args.url:
        corpus_paths = sorted({page_path(doc["_id"]) for doc in read_corpus(args.corpus)})
        print(json.dumps(measure_throughput(args.url, corpus_paths, args.threads, args.measure)))
        return
    started = time.perf_counter()
    bench = build_site(args.corpus, Website(0 if args.measure else args.port))
    built = time.perf_counter() - started
    with bench.site:
        if args.measure:
            result = measure_throughput(bench.url, sorted(bench.pages), args.threads, args.measure)
            print(json.dumps({"pages": len(bench.pages), "build_s": round(built, 1), **result}))
            return
        print(f"bench site: {bench.url}/ ({len(bench.pages):,} pages, built in {built:.1f} s; "
              f"sitemap {bench.url}/sitemap.xml)", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
