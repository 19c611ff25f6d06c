"""The nightly sync of a tenant's knowledge base with the websites, feeds and buckets it mirrors: canonical page
addresses and crawl scope (urls), address safety against server-side request forgery (safety), robots.txt (robots),
sitemaps (sitemaps) and a polite, bounded HTTP fetcher (fetch). Import the submodule you need; this package itself
imports nothing, so a Cloud Function that never syncs pays nothing for it at cold start.
"""
