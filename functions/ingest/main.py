"""ingest: Eventarc delivers Cloud Storage object events (finalized / deleted / archived) from the knowledge bucket.

Returns normally for everything retrying cannot fix (the outcome is recorded); raises only for transient trouble, so
Eventarc redelivers the event.
"""

import logging

import functions_framework

from shared import server, services
from shared.errors import AppError
from shared.logs import setup_logging

log = logging.getLogger("functions.ingest")
server.install()  # request bodies with a deadline, JSON protocol errors (HTTP functions get it from http_endpoint)


@functions_framework.cloud_event
def ingest(event):
    setup_logging("ingest")
    try:
        services.ingest_service().handle_event(
            event_id=event["id"], event_type=event["type"], event_time=event.get("time"), data=event.data
        )
    except AppError as exc:
        if exc.retryable:
            log.warning("ingest will be retried: %s", exc)
            raise
        log.error("ingest gave up on event %s: %s", event["id"], exc)
