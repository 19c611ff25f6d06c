"""The Cloud Tasks queues: embed (one named HTTP task per document version) and sync (the steps of a sync run).

The task name is derived from the version, so an ingest retried after the task was created does not create a second
one (Cloud Tasks answers ALREADY_EXISTS, which is success here). A later task for the same version (`kb requeue`, or
a continuation of a version too large for one call) takes a new `attempt` number, hence a new name: Cloud Tasks
refuses a name used in the last hour. CLOUD_TASKS_EMULATOR_HOST points the client at the local emulator over an
insecure gRPC channel; in production the task carries an OIDC token for `embed`.
"""

from __future__ import annotations

import json
import threading
from urllib.parse import urlsplit

from shared.errors import QueueUnavailable


class _Queue:
    def __init__(self, settings):
        self._settings = settings
        self._client = None
        self._lock = threading.Lock()

    def _get_client(self):
        with self._lock:
            if self._client is None:
                from google.cloud import tasks_v2

                host = self._settings.tasks_emulator_host
                if host:
                    import grpc
                    from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

                    transport = CloudTasksGrpcTransport(channel=grpc.insecure_channel(host))
                    self._client = tasks_v2.CloudTasksClient(transport=transport)
                else:
                    self._client = tasks_v2.CloudTasksClient()
            return self._client

    def _create(self, parent: str, name: str, url: str, payload: dict, schedule_time=None) -> str:
        from google.api_core import exceptions
        from google.cloud import tasks_v2

        s = self._settings
        request = tasks_v2.HttpRequest(http_method=tasks_v2.HttpMethod.POST, url=url,
                                       headers={"Content-Type": "application/json"},
                                       body=json.dumps(payload).encode())
        if s.tasks_service_account:
            # The audience is the service's URL without the path (/step): what Cloud Run checks, and what the queues'
            # own OIDC override (terraform/triggers.tf) sets too.
            request.oidc_token = tasks_v2.OidcToken(service_account_email=s.tasks_service_account,
                                                    audience=service_url(url))
        task = tasks_v2.Task(name=name, http_request=request)
        if schedule_time is not None:
            task.schedule_time = schedule_time
        try:
            self._get_client().create_task(parent=parent, task=task, timeout=10)
        except exceptions.AlreadyExists:
            pass  # created by an earlier delivery of the same event or step
        except (exceptions.GoogleAPICallError, exceptions.RetryError, OSError) as exc:
            raise QueueUnavailable(f"cannot enqueue {name}: {exc}") from exc
        return name


def service_url(url: str) -> str:
    """`https://host[:port]` of a task's target URL: the OIDC audience a Cloud Run service accepts."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class EmbedQueue(_Queue):
    def task_name(self, version_id: str, attempt: int = 0) -> str:
        suffix = f"-r{attempt}" if attempt else ""
        return f"{self._settings.queue_path}/tasks/embed-{version_id}{suffix}"

    def enqueue(self, version_id: str, tenant: str, attempt: int = 0) -> str:
        """Create the task for this version (idempotent); return its name."""
        s = self._settings
        return self._create(s.queue_path, self.task_name(version_id, attempt), s.embed_url,
                            {"version_id": version_id, "tenant": tenant})


class SyncQueue(_Queue):
    """The steps of sync runs, each a named task `sync-{run}-{step}` POSTed to scrape's /step; a step that must wait
    (a Retry-After) is scheduled for then instead of sleeping."""

    def enqueue_step(self, run_id: int, step: int, not_before=None, attempt: int = 0) -> str:
        s = self._settings
        suffix = f"-r{attempt}" if attempt else ""
        name = f"{s.sync_queue_path}/tasks/sync-{run_id}-{step}{suffix}"
        return self._create(s.sync_queue_path, name, s.scrape_url.rstrip("/") + "/step",
                            {"run_id": run_id, "step": step}, schedule_time=not_before)
