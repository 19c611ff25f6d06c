"""The embed queue on Cloud Tasks: one named HTTP task per document version.

The task name is derived from the version, so an ingest retried after the task was created does not create a second
one (Cloud Tasks answers ALREADY_EXISTS, which is success here). A later task for the same version (`kb requeue`, or
a continuation of a version too large for one call) takes a new `attempt` number, hence a new name: Cloud Tasks
refuses a name used in the last hour. CLOUD_TASKS_EMULATOR_HOST points the client at the local emulator over an
insecure gRPC channel; in production the task carries an OIDC token for `embed`.
"""

from __future__ import annotations

import json
import threading

from shared.errors import QueueUnavailable


class EmbedQueue:
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

    def task_name(self, version_id: str, attempt: int = 0) -> str:
        suffix = f"-r{attempt}" if attempt else ""
        return f"{self._settings.queue_path}/tasks/embed-{version_id}{suffix}"

    def enqueue(self, version_id: str, tenant: str, attempt: int = 0) -> str:
        """Create the task for this version (idempotent); return its name."""
        from google.api_core import exceptions
        from google.cloud import tasks_v2

        s = self._settings
        request = tasks_v2.HttpRequest(
            http_method=tasks_v2.HttpMethod.POST,
            url=s.embed_url,
            headers={"Content-Type": "application/json"},
            body=json.dumps({"version_id": version_id, "tenant": tenant}).encode(),
        )
        if s.tasks_service_account:
            request.oidc_token = tasks_v2.OidcToken(service_account_email=s.tasks_service_account,
                                                    audience=s.embed_url)
        name = self.task_name(version_id, attempt)
        try:
            self._get_client().create_task(parent=s.queue_path, task=tasks_v2.Task(name=name, http_request=request),
                                           timeout=10)
        except exceptions.AlreadyExists:
            pass  # created by an earlier delivery of the same event
        except (exceptions.GoogleAPICallError, exceptions.RetryError, OSError) as exc:
            raise QueueUnavailable(f"cannot enqueue {name}: {exc}") from exc
        return name
