"""One error tree that knows its HTTP status and whether a retry can help.

    AppError                      status 500, not retryable; `public_message` is safe to show a caller
    ├── BadRequest                400  the caller's mistake (malformed JSON, missing field, bad event)
    │   ├── RequestTimeout        408  the body did not arrive in time (shared/server.py)
    │   ├── PayloadTooLarge       413
    │   └── UnsupportedMediaType  415
    ├── NotFound                  404
    ├── RateLimited               429  retryable
    ├── ConfigurationError        500  a setting is missing or inconsistent; the message says what to set
    │   └── DimensionMismatch          vectors of the wrong dimension for the index
    ├── DocumentRejected          422  a file we will never be able to ingest: recorded as failed and acknowledged
    │   ├── UnsupportedFile
    │   ├── CorruptFile
    │   ├── EmptyDocument
    │   ├── FileTooLarge          more bytes than MAX_FILE_BYTES
    │   ├── DocumentTooLarge      small on disk, too much once expanded (unzipped, pages, elements, characters,
    │   │                         chunks): the message names the bound and says to split the file
    │   └── RejectedByDatabase    PostgreSQL refused the document's data itself (SQLSTATE class 22 or 54)
    └── TransientError            503  retryable: the event/task should be delivered again
        ├── DatabaseUnavailable
        ├── QueueUnavailable
        ├── StorageUnavailable
        ├── ServerBusy                 every body-reading slot of the instance is taken (shared/server.py)
        └── UpstreamUnavailable        an embedding/generation/vector service failed or throttled us

Event- and task-driven functions (ingest, embed) answer non-2xx only for `retryable` errors; everything else is
recorded and acknowledged, or the platform would retry it forever.
"""

from __future__ import annotations


class AppError(Exception):
    status = 500
    retryable = False
    public_message = "internal error"

    def __init__(self, message: str = "", *, public_message: str | None = None):
        super().__init__(message or self.public_message)
        if public_message is not None:
            self.public_message = public_message
        elif message and self.status < 500:
            # Client errors are the caller's to read; server errors never leak their detail.
            self.public_message = message

    @property
    def code(self) -> str:
        """A stable machine-readable name, e.g. 'bad_request'."""
        name = type(self).__name__
        return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


class BadRequest(AppError):
    status = 400
    public_message = "bad request"


class RequestTimeout(BadRequest):
    status = 408
    public_message = "request timeout"


class PayloadTooLarge(BadRequest):
    status = 413
    public_message = "payload too large"


class UnsupportedMediaType(BadRequest):
    status = 415
    public_message = "unsupported media type"


class NotFound(AppError):
    status = 404
    public_message = "not found"


class RateLimited(AppError):
    status = 429
    retryable = True
    public_message = "too many requests"

    def __init__(self, message: str = "", *, retry_after: int = 10, public_message: str | None = None):
        super().__init__(message, public_message=public_message)
        self.retry_after = max(1, int(retry_after))


class ConfigurationError(AppError):
    status = 500
    public_message = "service misconfigured"


class DimensionMismatch(ConfigurationError):
    pass


class DocumentRejected(AppError):
    status = 422
    public_message = "document rejected"


class UnsupportedFile(DocumentRejected):
    pass


class CorruptFile(DocumentRejected):
    pass


class EmptyDocument(DocumentRejected):
    pass


class FileTooLarge(DocumentRejected):
    pass


class DocumentTooLarge(DocumentRejected):
    pass


class RejectedByDatabase(DocumentRejected):
    pass


class TransientError(AppError):
    status = 503
    retryable = True
    public_message = "temporarily unavailable, retry later"


class DatabaseUnavailable(TransientError):
    pass


class QueueUnavailable(TransientError):
    pass


class StorageUnavailable(TransientError):
    pass


class ServerBusy(TransientError):
    public_message = "too many requests are sending a body at once; retry shortly"

    def __init__(self, message: str = "", *, retry_after: int = 2, public_message: str | None = None):
        super().__init__(message, public_message=public_message)
        self.retry_after = max(1, int(retry_after))


class UpstreamUnavailable(TransientError):
    pass
