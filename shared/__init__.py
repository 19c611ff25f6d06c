"""The common package every Cloud Function ships with: settings, errors, logs, ingestion, retrieval and adapters."""
