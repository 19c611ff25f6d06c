"""The nightly sync of a tenant's knowledge base with the websites, feeds and buckets it mirrors (see engine.py):
sources an operator configures (sources), run state with leases (state), the engine and its three kinds of source
(website, listings), canonical page addresses and crawl scope (urls), address safety against server-side request
forgery (safety), robots.txt (robots), sitemaps (sitemaps), a polite, bounded HTTP fetcher (fetch), page
extraction into clean Markdown (extract) and feed items (feeds). Import the submodule you need; this package itself
imports nothing, so a Cloud Function that never syncs pays nothing for it at cold start.
"""
