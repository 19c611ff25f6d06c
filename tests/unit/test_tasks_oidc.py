"""Tasks carry the invoker's OIDC token with the target service's URL as audience (what Cloud Run checks)."""

from __future__ import annotations

from shared.config import Settings
from shared.tasks import EmbedQueue, SyncQueue, service_url


class RecordingClient:
    """Stands in for CloudTasksClient.create_task: keeps what would be sent."""

    def __init__(self):
        self.tasks = []

    def create_task(self, parent, task, timeout):
        self.tasks.append((parent, task))


def queue_with(cls, **env):
    settings = Settings.from_env({"DATABASE_URL": "postgresql://x@h/db", **env})
    queue = cls(settings)
    queue._client = RecordingClient()
    return queue


def test_sync_steps_go_to_step_with_the_service_url_as_audience():
    queue = queue_with(SyncQueue, SCRAPE_URL="https://support-scrape-1234.europe-west1.run.app",
                       TASKS_SERVICE_ACCOUNT="support-tasks@p.iam.gserviceaccount.com")
    queue.enqueue_step(7, 2)
    _, task = queue._client.tasks[0]
    assert task.http_request.url == "https://support-scrape-1234.europe-west1.run.app/step"
    assert task.http_request.oidc_token.audience == "https://support-scrape-1234.europe-west1.run.app"
    assert task.http_request.oidc_token.service_account_email == "support-tasks@p.iam.gserviceaccount.com"


def test_embed_tasks_carry_the_token_for_embed():
    queue = queue_with(EmbedQueue, EMBED_URL="https://support-embed-1234.europe-west1.run.app",
                       TASKS_SERVICE_ACCOUNT="support-tasks@p.iam.gserviceaccount.com")
    queue.enqueue("v1", "default")
    _, task = queue._client.tasks[0]
    assert task.http_request.oidc_token.audience == "https://support-embed-1234.europe-west1.run.app"


def test_no_service_account_no_token():
    queue = queue_with(EmbedQueue, EMBED_URL="http://127.0.0.1:8083")
    queue.enqueue("v1", "default")
    _, task = queue._client.tasks[0]
    assert not task.http_request.oidc_token.service_account_email


def test_service_url_drops_path_and_query():
    assert service_url("https://h.run.app/step?x=1") == "https://h.run.app"
    assert service_url("http://127.0.0.1:8084/step") == "http://127.0.0.1:8084"
