-- The nightly sync (shared/sync): sources an operator configures, the runs that sync them, each run's work list,
-- what is known of every synced page (validators, content hash, object), which URLs lead to which page, and an
-- audit trail of page events. Every row carries a tenant.

CREATE TABLE sync_sources (
    tenant      text NOT NULL,
    name        text NOT NULL,                       -- [a-z0-9-], unique per tenant
    kind        text NOT NULL CHECK (kind IN ('website', 'feed', 's3')),
    topic       text NOT NULL,                       -- top-level folder of its objects in the knowledge bucket
    config      jsonb NOT NULL,                      -- validated by shared/sync/sources.py
    paused      boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, name)
);

CREATE TABLE sync_runs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant       text NOT NULL,
    source       text NOT NULL,
    kind         text NOT NULL,
    trigger      text NOT NULL,                      -- schedule | operator | approve
    dry_run      boolean NOT NULL DEFAULT false,
    phase        text NOT NULL DEFAULT 'discover' CHECK (phase IN ('discover', 'fetch', 'finalize', 'done')),
    outcome      text NOT NULL DEFAULT 'running' CHECK (outcome IN ('running', 'complete', 'partial', 'failed')),
    reasons      text[] NOT NULL DEFAULT '{}',       -- why discovery was incomplete (no deletions then)
    counts       jsonb NOT NULL DEFAULT '{}',
    errors       jsonb NOT NULL DEFAULT '{}',        -- error class -> count
    state        jsonb NOT NULL DEFAULT '{}',        -- robots.txt, sitemap progress: what the next step needs
    step         integer NOT NULL DEFAULT 0,         -- the step task that may run next (older ones are duplicates)
    lease_owner  text,
    lease_until  timestamptz,
    not_before   timestamptz,                        -- the next step waits for this (Retry-After)
    started_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    FOREIGN KEY (tenant, source) REFERENCES sync_sources (tenant, name) ON DELETE CASCADE
);
-- One unfinished run per source: an overlapping start joins the running one.
CREATE UNIQUE INDEX sync_runs_active_idx ON sync_runs (tenant, source) WHERE finished_at IS NULL;
CREATE INDEX sync_runs_source_idx ON sync_runs (tenant, source, id DESC);

CREATE TABLE sync_frontier (
    run_id      bigint NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    url         text NOT NULL,                       -- normalized URL (website), item id (feed), key (s3)
    kind        text NOT NULL DEFAULT 'page',        -- robots | sitemap | page | feed | listing
    depth       integer NOT NULL DEFAULT 0,
    priority    double precision NOT NULL DEFAULT 0, -- higher first (sitemap lastmod orders the work)
    state       text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done')),
    attempts    integer NOT NULL DEFAULT 0,
    not_before  timestamptz,
    PRIMARY KEY (run_id, url)
);
CREATE INDEX sync_frontier_next_idx ON sync_frontier (run_id, state, priority DESC);

CREATE TABLE sync_pages (
    tenant         text NOT NULL,
    source         text NOT NULL,
    key            text NOT NULL,                    -- identity: canonical URL, feed item id, S3 key
    url            text NOT NULL DEFAULT '',         -- the live URL citations link to
    object_name    text NOT NULL,                    -- in the knowledge bucket; kept across moves
    title          text NOT NULL DEFAULT '',
    content_hash   text,                             -- of the extracted content (or the bytes of a PDF/S3 object)
    good_length    integer NOT NULL DEFAULT 0,       -- text length of the last version written (quality gate)
    generation     bigint,
    status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'flagged', 'deleted')),
    flag           text,                             -- why it is flagged (collapsed, javascript_shell, ...)
    missing_runs   integer NOT NULL DEFAULT 0,       -- complete runs in a row that did not see it
    withheld_run   bigint,                           -- a deletion held back by the cap or a sharp fall
    seen_run       bigint,                           -- the last run that saw it
    first_seen     timestamptz NOT NULL DEFAULT now(),
    last_seen      timestamptz,
    changed_at     timestamptz,
    PRIMARY KEY (tenant, source, key),
    FOREIGN KEY (tenant, source) REFERENCES sync_sources (tenant, name) ON DELETE CASCADE
);
CREATE UNIQUE INDEX sync_pages_object_idx ON sync_pages (object_name);
CREATE INDEX sync_pages_hash_idx ON sync_pages (tenant, source, content_hash);

-- Every URL fetched, with the validators of its last response and the page it leads to (redirect sources, canonical
-- variants and duplicates all lead to one page).
CREATE TABLE sync_urls (
    tenant         text NOT NULL,
    source         text NOT NULL,
    url            text NOT NULL,
    page_key       text,
    final_url      text,
    etag           text,
    last_modified  text,
    status         integer,
    checked_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, source, url),
    FOREIGN KEY (tenant, source) REFERENCES sync_sources (tenant, name) ON DELETE CASCADE
);

CREATE TABLE sync_page_events (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant   text NOT NULL,
    source   text NOT NULL,
    key      text NOT NULL,
    run_id   bigint,
    at       timestamptz NOT NULL DEFAULT now(),
    event    text NOT NULL,                          -- new | changed | moved | deleted | withheld | flagged | kept ...
    detail   text NOT NULL DEFAULT ''
);
CREATE INDEX sync_page_events_key_idx ON sync_page_events (tenant, source, key, id DESC);
CREATE INDEX sync_page_events_run_idx ON sync_page_events (run_id);
