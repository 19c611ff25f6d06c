"""Keeping a tenant's knowledge base in sync with a website, a feed or a bucket."""
