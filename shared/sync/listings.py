"""Sources that come as one listing: a JSON/CSV `feed` over HTTP (a shop's product catalogue, an FAQ export: one
Markdown document per item, keyed by the item's id) and an `s3` bucket prefix (boto3; the ETag decides what changed).

A listing is all or nothing: a feed that fails or cannot be parsed, or an S3 listing that breaks off, makes the run
partial (no deletions). Items already handled by this run are skipped, so a run that ran out of step time continues
where it was in its next step.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import posixpath
import re
from datetime import timedelta

from shared.sync.engine import Content, StepContext, utcnow

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 4


def slug(text: str, keep_extension: bool = False) -> str:
    """A readable, deterministic object path for an item id or an S3 key (hash-suffixed when it had to change)."""
    stem, ext = (posixpath.splitext(text) if keep_extension else (text, ""))
    parts = [re.sub(r"[^a-z0-9._-]+", "-", p.lower()).strip("-.")[:80] for p in stem.split("/")]
    cleaned = "/".join(p for p in parts if p) or "item"
    if cleaned != stem or len(cleaned) > 200:
        cleaned = f"{cleaned[:200]}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"
    return cleaned + ext.lower()


class _Listing:
    def __init__(self, ctx: StepContext):
        self.ctx = ctx
        self.source = ctx.source
        self.run = ctx.run
        self.settings = ctx.engine.settings

    def fetch(self):
        self.run.phase = "finalize"
        return None

    def close(self) -> None:
        pass

    def _done_in_this_run(self, key: str) -> bool:
        page = self.ctx.state.get_page(self.source.tenant, self.source.name, key)
        return page is not None and page.seen_run == self.run.id and page.status != "deleted"

    def _all_unchanged(self) -> None:
        """The listing is what it was last time (a 304): its items are the pages the last run saw; pages already
        missing then stay missing (and go on towards deletion)."""
        pages = [p for p in self.ctx.state.pages(self.source.tenant, self.source.name) if p.missing_runs == 0]
        for page in pages:
            self.ctx.seen(page.key)
        self.ctx.count("unchanged", len(pages))
        self.ctx.count("discovered", len(pages))


class FeedSource(_Listing):
    def __init__(self, ctx: StepContext):
        super().__init__(ctx)
        self.url = self.source.config["url"]
        self._fetcher = None
        self._ids: set[str] | None = None

    @property
    def fetcher(self):
        if self._fetcher is None:
            from shared.sync.fetch import Fetcher

            self._fetcher = Fetcher(self.settings.user_agent, max_bytes=self.settings.sync_max_page_bytes,
                                    allowed_private_hosts=self.settings.allowed_private_hosts
                                    | frozenset(self.source.config.get("allow_private_hosts", ())),
                                    headers=self.source.secret_json("headers_secret"))
        return self._fetcher

    def close(self) -> None:
        if self._fetcher is not None:
            self._fetcher.close()

    def _get(self, conditional: bool):
        from shared.sync.urls import host_of

        src = self.source
        known = self.ctx.state.get_url(src.tenant, src.name, self.url) if conditional else None
        result = self.fetcher.fetch(self.url, etag=known.etag if known else None,
                                    last_modified=known.last_modified if known else None,
                                    follow=lambda u: host_of(u) == host_of(self.url))
        self.ctx.count("requests", 1 + len(result.redirects))
        self.ctx.count("bytes", len(result.body))
        return result

    def _items(self, result):
        from shared.sync.feeds import parse_feed

        cfg = self.source.config
        return parse_feed(result.body, format=cfg["format"], items_path=cfg.get("items_path", ""),
                          id_field=cfg.get("id_field", "id"))

    def discover(self) -> None:
        from shared.sync.extract import content_digest, render_document
        from shared.sync.feeds import FeedError, render_item

        ctx, run, src, cfg = self.ctx, self.run, self.source, self.source.config
        resuming = bool(run.state.get("feed_started"))
        result = self._get(conditional=not resuming)
        if result.not_modified:
            ctx.count("not_modified")
            self._all_unchanged()
            run.phase = "finalize"
            return True
        if result.error or not result.ok:
            what = result.error or f"HTTP {result.status}"
            attempts = run.state.get("feed_attempts", 0)
            if (result.status == 429 or (result.status or 0) >= 500) and attempts + 1 < MAX_ATTEMPTS:
                run.state["feed_attempts"] = attempts + 1
                delay = result.retry_after if result.retry_after is not None else \
                    self.settings.sync_retry_base_seconds * 2 ** attempts
                run.not_before = utcnow() + timedelta(seconds=delay)
                return False  # this step ends; the next one is scheduled at Retry-After
            ctx.error(result.error or f"http_{result.status}")
            ctx.incomplete(f"the feed {self.url} failed ({what})")
            run.phase = "finalize"
            return True
        try:
            items = self._items(result)
        except FeedError as exc:
            ctx.error("feed")
            ctx.incomplete(f"the feed {self.url} could not be read: {exc}")
            run.phase = "finalize"
            return True
        run.state["feed_started"] = True
        if not resuming:
            ctx.count("discovered", len(items))
        url_field = cfg.get("url_field")
        for item in items:
            if self._done_in_this_run(item.id):
                continue
            if ctx.time_left() <= 0:
                return False  # the next step fetches the feed again and skips what this run did
            title, markdown = render_item(item, cfg.get("template"), cfg.get("title_field", "name"))
            link = item.fields.get(url_field) if url_field else None
            link = link if isinstance(link, str) and link.startswith(("http://", "https://")) else self.url
            ctx.store(Content(key=item.id, url=link, title=title, data=render_document(title, link, markdown).encode(),
                              content_type="text/markdown; charset=utf-8", extension=".md",
                              digest=content_digest(markdown), text_length=len(markdown.strip()), slug=slug(item.id)))
        if not run.dry_run:
            ctx.state.put_url(src.tenant, src.name, self.url, page_key=None, final_url=result.final_url,
                              etag=result.etag, last_modified=result.last_modified, status=result.status)
        run.phase = "finalize"
        return True

    def recheck(self, page) -> tuple[str, str]:
        """Fetch the feed again (once per step): an item still missing from it is gone."""
        from shared.sync.feeds import FeedError

        if self._ids is None:
            result = self._get(conditional=False)
            if result.error or not result.ok:
                return "error", result.error or f"the feed answered {result.status}"
            try:
                self._ids = {item.id for item in self._items(result)}
            except FeedError as exc:
                return "error", str(exc)
        if page.key in self._ids:
            return "present", "the feed lists it again"
        return "gone", "a fresh read of the feed does not list it"


class S3Source(_Listing):
    def __init__(self, ctx: StepContext):
        super().__init__(ctx)
        cfg = self.source.config
        self.bucket, self.prefix = cfg["bucket"], cfg.get("prefix", "")
        self._client = None

    @property
    def client(self):
        if self._client is None:
            import boto3
            from botocore.config import Config

            cfg = self.source.config
            credentials = self.source.secret_json("credentials_secret")
            self._client = boto3.client(
                "s3", endpoint_url=cfg.get("endpoint_url"), region_name=cfg.get("region", "us-east-1"),
                aws_access_key_id=credentials.get("aws_access_key_id"),
                aws_secret_access_key=credentials.get("aws_secret_access_key"),
                aws_session_token=credentials.get("aws_session_token"),
                config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=60))
        return self._client

    def _wanted(self, key: str) -> bool:
        from fnmatch import fnmatchcase

        cfg = self.source.config
        if key.endswith("/") or posixpath.basename(key).startswith("."):
            return False
        relative = key[len(self.prefix):]
        if cfg.get("include") and not any(fnmatchcase(relative, p) for p in cfg["include"]):
            return False
        return not any(fnmatchcase(relative, p) for p in cfg.get("exclude", ()))

    def discover(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        ctx, run, src = self.ctx, self.run, self.source
        objects = []
        try:
            for listing in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                                Prefix=self.prefix):
                ctx.count("requests")
                objects += [o for o in listing.get("Contents", []) if self._wanted(o["Key"])]
        except (BotoCoreError, ClientError) as exc:
            ctx.error("listing")
            ctx.incomplete(f"listing s3://{self.bucket}/{self.prefix} failed: {exc}")
            run.phase = "finalize"
            return True
        if not run.state.get("listed"):
            ctx.count("discovered", len(objects))
            run.state["listed"] = True
        for obj in objects:
            key, etag = obj["Key"], obj.get("ETag", "")
            if self._done_in_this_run(key):
                continue
            if ctx.time_left() <= 0:
                return False
            address = f"s3://{self.bucket}/{key}"
            known = ctx.state.get_url(src.tenant, src.name, address)
            page = ctx.state.get_page(src.tenant, src.name, key)
            if known and etag and known.etag == etag and page and page.status == "active":
                ctx.count("unchanged")
                ctx.seen(key)
                continue
            if obj.get("Size", 0) > self.settings.sync_max_page_bytes:
                ctx.error("too_large")
                continue
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=key)
                body = response["Body"].read()
            except (BotoCoreError, ClientError) as exc:
                ctx.error("get_object")
                ctx.event(key, "error", str(exc))
                if page:
                    ctx.seen(key)
                continue
            ctx.count("requests")
            ctx.count("bytes", len(body))
            relative = key[len(self.prefix):].lstrip("/") or posixpath.basename(key)
            content_type = (response.get("ContentType") or mimetypes.guess_type(key)[0]
                            or "application/octet-stream")
            stem = slug(relative, keep_extension=True)
            base, extension = posixpath.splitext(stem)
            outcome, _ = ctx.store(Content(key=key, url="", title=response.get("Metadata", {}).get("title", ""),
                                           data=body, content_type=content_type, extension=extension, digest=
                                           hashlib.sha256(body).hexdigest(), text_length=len(body), slug=base))
            if not run.dry_run:
                ctx.state.put_url(src.tenant, src.name, address, page_key=key, final_url=address, etag=etag,
                                  last_modified=None, status=200)
        run.phase = "finalize"
        return True

    def recheck(self, page) -> tuple[str, str]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=page.key)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return "gone", "head_object answers 404"
            return "error", code or str(exc)
        except BotoCoreError as exc:
            return "error", str(exc)
        return "present", "head_object finds it"
