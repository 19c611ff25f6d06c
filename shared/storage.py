"""Cloud Storage access for the knowledge bucket (google-cloud-storage; STORAGE_EMULATOR_HOST points it at the local
emulator). Missing objects are `None`; network trouble and 5xx become `StorageUnavailable` (retryable). A listing is
complete or an error, never a partial list: reconciliation deletes what a listing lacks."""

from __future__ import annotations

import threading

from shared.errors import ConfigurationError, StorageUnavailable


class ObjectStore:
    def __init__(self, project: str):
        self._project = project
        self._client = None
        self._lock = threading.Lock()

    def _get_client(self):
        with self._lock:
            if self._client is None:
                import os

                from google.cloud import storage

                if os.environ.get("STORAGE_EMULATOR_HOST"):
                    from google.auth.credentials import AnonymousCredentials

                    self._client = storage.Client(project=self._project, credentials=AnonymousCredentials())
                else:
                    self._client = storage.Client(project=self._project)
            return self._client

    def download(self, bucket: str, name: str, generation: int | None = None) -> bytes | None:
        """The object's bytes at `generation` (or the live one); None when it no longer exists."""
        from google.api_core import exceptions

        blob = self._get_client().bucket(bucket).blob(name, generation=generation or None)
        try:
            return blob.download_as_bytes()
        except exceptions.NotFound:
            return None
        except (exceptions.GoogleAPICallError, OSError) as exc:
            raise StorageUnavailable(f"cannot download gs://{bucket}/{name}: {exc}") from exc

    def live_generation(self, bucket: str, name: str) -> int | None:
        """The generation of the object that exists now, or None."""
        from google.api_core import exceptions

        try:
            blob = self._get_client().bucket(bucket).get_blob(name)
        except (exceptions.GoogleAPICallError, OSError) as exc:
            raise StorageUnavailable(f"cannot read gs://{bucket}/{name}: {exc}") from exc
        return int(blob.generation) if blob is not None and blob.generation else None

    def list_objects(self, bucket: str) -> list[dict]:
        """Every live object in the bucket as the object resource an event carries (`bucket`, `name`, `generation`,
        `size`, `contentType`, `metadata`). Every page is read before this returns; any failure on the way raises
        StorageUnavailable (ConfigurationError for a bucket that does not exist), so a caller never sees part of a
        listing as the whole."""
        from google.api_core import exceptions

        try:
            blobs = list(self._get_client().list_blobs(bucket, timeout=60))
        except exceptions.NotFound as exc:
            raise ConfigurationError(f"bucket {bucket} does not exist: set KNOWLEDGE_BUCKET") from exc
        except (exceptions.GoogleAPICallError, exceptions.RetryError, OSError) as exc:
            raise StorageUnavailable(f"cannot list gs://{bucket}: {exc}") from exc
        return [{"bucket": bucket, "name": b.name, "generation": str(b.generation or 0), "size": str(b.size or 0),
                 "contentType": b.content_type or "", "metadata": dict(b.metadata or {})} for b in blobs]

    def upload(self, bucket: str, name: str, data: bytes, content_type: str, metadata: dict[str, str]) -> int:
        """Write the object (a new generation when it exists) and return its generation."""
        from google.api_core import exceptions

        blob = self._get_client().bucket(bucket).blob(name)
        blob.metadata = dict(metadata)
        try:
            blob.upload_from_string(data, content_type=content_type, timeout=60)
        except exceptions.NotFound as exc:
            raise ConfigurationError(f"bucket {bucket} does not exist: set KNOWLEDGE_BUCKET") from exc
        except (exceptions.GoogleAPICallError, exceptions.RetryError, OSError) as exc:
            raise StorageUnavailable(f"cannot write gs://{bucket}/{name}: {exc}") from exc
        return int(blob.generation or 0)

    def delete(self, bucket: str, name: str) -> bool:
        """Delete the live object; False when there was none."""
        from google.api_core import exceptions

        try:
            self._get_client().bucket(bucket).blob(name).delete(timeout=60)
        except exceptions.NotFound:
            return False
        except (exceptions.GoogleAPICallError, exceptions.RetryError, OSError) as exc:
            raise StorageUnavailable(f"cannot delete gs://{bucket}/{name}: {exc}") from exc
        return True
