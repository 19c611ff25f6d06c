"""Cloud Storage stand-in: gcp-storage-emulator in this process, plus an Eventarc bridge that turns object changes
into CloudEvents POSTed to subscribers, the way Eventarc delivers them to Cloud Functions.

Emulated
- The JSON/XML APIs of gcp-storage-emulator (uploads of every kind, download, list, copy, rewrite, compose, delete,
  soft delete/restore). Clients find it through STORAGE_EMULATOR_HOST=http://127.0.0.1:PORT.
- `google.cloud.storage.object.v1.finalized` for every object written (insert, resumable upload, XML PUT, copy,
  rewrite, compose, restore) and `google.cloud.storage.object.v1.deleted` for every live object removed, including
  the generation an overwrite replaces (a bucket without object versioning: GCS reports the old generation as
  deleted). The overwrite's `finalized` is queued before its `deleted`; GCS does not promise an order, so a consumer
  must compare generations rather than trust arrival order.
- Binary content mode, as Eventarc sends it: `ce-id`, `ce-specversion: 1.0`, `ce-type`,
  `ce-source: //storage.googleapis.com/projects/_/buckets/BUCKET`, `ce-subject: objects/NAME`, `ce-time`,
  `Content-Type: application/json`. Header values are percent-encoded as the CloudEvents HTTP binding requires
  (`objects/a b.md` travels as `objects/a%20b.md`; read the name from the body). The body is the object resource:
  `kind`, `id` = BUCKET/NAME/GENERATION, `name`, `bucket`, `generation`, `metageneration` and `size` as strings,
  `contentType`, `timeCreated`, `updated`, `md5Hash`, `crc32c`, `etag`, `metadata` when the object has custom
  metadata, and the emulator's other fields.
- Delivery at least once from background threads: a non-2xx answer or a connection error is retried with
  exponential backoff until the event is older than `max_event_age` (Eventarc keeps trying for 24 h by default).
  Events about one object reach one subscriber in order; different objects do not wait for each other. A retried
  event keeps its `ce-id`, so consumers can de-duplicate.
- Generations: microsecond timestamps like GCS (the emulator uses nanoseconds), strictly increasing per object even
  for writes within the same microsecond; a new generation always has metageneration 1 (the emulator counts the
  upload's metadata as an update).

Not emulated
- `metadataUpdated` and `archived` events, Pub/Sub notification configs (the emulator answers 501), Eventarc
  trigger filters other than bucket and event type, path patterns, OIDC tokens on delivery, and the delivery
  timeout of the target (ours is `request_timeout`).
- Preconditions (`if_generation_match`) are not enforced by the emulator; ACLs/IAM are stubs; `etag` is the MD5.
- `reset()` wipes objects through the emulator's /wipe endpoint without emitting events.
- Pending deliveries are lost when the process exits (Eventarc would keep them).

The emulator's HTTP server is single-threaded, so the hook only enqueues: deliveries happen on worker threads, and
a subscriber may call back into the emulator (e.g. download the object) while handling an event.
"""

from __future__ import annotations

import copy
import errno
import functools
import http.server
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from gcp_storage_emulator.handlers import buckets as emulator_buckets
from gcp_storage_emulator.server import RequestHandler as EmulatorRequestHandler
from gcp_storage_emulator.storage import Storage as EmulatorStorage

from infra.stack.processes import LOCALHOST, PortTakenError, wait_until

logger = logging.getLogger(__name__)

FINALIZED = "google.cloud.storage.object.v1.finalized"
DELETED = "google.cloud.storage.object.v1.deleted"
EVENT_TYPES = (FINALIZED, DELETED)

# Eventarc does not put ACLs in event data (the resource is rendered without them).
_FIELDS_NOT_IN_EVENTS = ("acl",)


# --- events ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CloudEvent:
    """A Cloud Storage event as Eventarc delivers it in binary content mode."""

    id: str
    type: str
    bucket: str
    name: str
    time: str
    data: dict

    @property
    def source(self) -> str:
        return f"//storage.googleapis.com/projects/_/buckets/{self.bucket}"

    @property
    def subject(self) -> str:
        return f"objects/{self.name}"

    @property
    def generation(self) -> str:
        return self.data["generation"]

    def headers(self) -> dict[str, str]:
        attributes = {
            "ce-id": self.id,
            "ce-specversion": "1.0",
            "ce-type": self.type,
            "ce-source": self.source,
            "ce-subject": self.subject,
            "ce-time": self.time,
        }
        return {**{k: _percent_encoded(v) for k, v in attributes.items()}, "Content-Type": "application/json"}

    def body(self) -> bytes:
        return json.dumps(self.data).encode()

    @classmethod
    def for_object(cls, event_type: str, resource: dict, event_time: str) -> CloudEvent:
        data = {k: v for k, v in copy.deepcopy(resource).items() if k not in _FIELDS_NOT_IN_EVENTS}
        # GCS renders these int64 fields as strings; some emulator paths (compose) store ints.
        for key in ("generation", "metageneration", "size"):
            if data.get(key) is not None:
                data[key] = str(data[key])
        return cls(id=uuid.uuid4().hex, type=event_type, bucket=data["bucket"], name=data["name"],
                   time=event_time, data=data)


@dataclass(frozen=True)
class Delivery:
    """One event's outcome at one subscriber (an entry of `delivered` or `dropped`)."""

    event: CloudEvent
    url: str
    attempts: int
    status: int | None  # the last HTTP status, None after a connection error
    error: str = ""


@dataclass(frozen=True)
class _Subscriber:
    url: str
    event_types: frozenset[str]
    bucket: str | None

    def wants(self, event: CloudEvent) -> bool:
        return event.type in self.event_types and self.bucket in (None, event.bucket)


@dataclass
class _Pending:
    event: CloudEvent
    url: str
    created: float = field(default_factory=time.monotonic)
    attempts: int = 0
    not_before: float = 0.0
    status: int | None = None
    error: str = ""


class EventarcBridge:
    """Delivers CloudEvents to HTTP subscribers: at least once, retried with backoff, in order per object.

    Each (subscriber, bucket, object) pair is a lane; a lane has at most one request in flight, and its next event
    waits until the head is delivered or dropped. `workers` threads serve all lanes.
    """

    def __init__(
        self,
        *,
        max_event_age: float = 24 * 3600,
        min_backoff: float = 1.0,
        max_backoff: float = 60.0,
        request_timeout: float = 300.0,
        workers: int = 4,
    ) -> None:
        self.max_event_age = max_event_age
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.request_timeout = request_timeout
        self.delivered: list[Delivery] = []
        self.dropped: list[Delivery] = []
        self._subscribers: list[_Subscriber] = []
        self._lanes: dict[tuple[str, str, str], deque[_Pending]] = {}
        self._in_flight: set[tuple[str, str, str]] = set()
        self._cond = threading.Condition()
        self._closed = False
        self._workers = [
            threading.Thread(target=self._work, name=f"eventarc-bridge-{i}", daemon=True) for i in range(workers)
        ]
        for worker in self._workers:
            worker.start()

    def add_subscriber(self, url: str, *, event_types: Iterable[str] = EVENT_TYPES, bucket: str | None = None) -> None:
        """POST future events of `event_types` (in `bucket`, or any) to `url`, like an Eventarc trigger."""
        with self._cond:
            self._subscribers.append(_Subscriber(url, _checked_event_types(event_types), bucket))

    def remove_subscriber(self, url: str) -> None:
        """Stop sending new events to `url` (events already queued are still delivered)."""
        with self._cond:
            self._subscribers = [s for s in self._subscribers if s.url != url]

    def publish(self, event: CloudEvent) -> None:
        """Queue `event` for every interested subscriber. Never blocks on the network."""
        with self._cond:
            for subscriber in self._subscribers:
                if subscriber.wants(event):
                    lane = (subscriber.url, event.bucket, event.name)
                    self._lanes.setdefault(lane, deque()).append(_Pending(event, subscriber.url))
            self._cond.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Block until every queued event is delivered or dropped; TimeoutError otherwise."""
        with self._cond:
            if not self._cond.wait_for(lambda: not self._lanes, timeout):
                pending = [p for lane in self._lanes.values() for p in lane]
                head = pending[0]
                raise TimeoutError(
                    f"{len(pending)} event(s) still pending after {timeout:g} s; first: {head.event.type} "
                    f"{head.event.subject} -> {head.url}, {head.attempts} attempt(s), last status {head.status} "
                    f"{head.error}".rstrip()
                )

    def close(self) -> None:
        """Stop the workers; events still queued are abandoned (with a warning)."""
        with self._cond:
            self._closed = True
            pending = sum(len(lane) for lane in self._lanes.values())
            self._cond.notify_all()
        if pending:
            logger.warning("Eventarc bridge closed with %d undelivered event(s)", pending)
        # A worker in the middle of a request finishes it first; workers are daemon threads, so exit never waits.
        for worker in self._workers:
            worker.join(timeout=1)

    # --- internals -----------------------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return
                    lane, wait = self._next_ready_lane()
                    if lane is not None:
                        break
                    self._cond.wait(wait)
                self._in_flight.add(lane)
                pending = self._lanes[lane][0]
            succeeded = self._attempt(pending)
            with self._cond:
                self._settle(lane, pending, succeeded)
                self._in_flight.discard(lane)
                self._cond.notify_all()

    def _next_ready_lane(self) -> tuple[tuple[str, str, str] | None, float | None]:
        """The first lane whose head may be tried now, else None and how long to sleep (None: until notified)."""
        now = time.monotonic()
        soonest: float | None = None
        for lane, queue in self._lanes.items():
            if lane in self._in_flight:
                continue
            head = queue[0]
            if head.not_before <= now:
                return lane, None
            soonest = head.not_before if soonest is None else min(soonest, head.not_before)
        return None, (None if soonest is None else soonest - now)

    def _attempt(self, pending: _Pending) -> bool:
        pending.attempts += 1
        request = urllib.request.Request(
            pending.url, data=pending.event.body(), headers=pending.event.headers(), method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.request_timeout) as response:
                response.read()
                pending.status, pending.error = response.status, ""
        except urllib.error.HTTPError as err:
            pending.status, pending.error = err.code, ""
        except (urllib.error.URLError, OSError) as err:
            pending.status, pending.error = None, str(getattr(err, "reason", err))
        return pending.status is not None and 200 <= pending.status < 300

    def _settle(self, lane: tuple[str, str, str], pending: _Pending, succeeded: bool) -> None:
        queue = self._lanes[lane]
        record = Delivery(pending.event, pending.url, pending.attempts, pending.status, pending.error)
        if succeeded:
            queue.popleft()
            self.delivered.append(record)
        elif time.monotonic() - pending.created >= self.max_event_age:
            queue.popleft()
            self.dropped.append(record)
            logger.error("dropping %s %s for %s after %d attempts (older than %g s); last status %s %s",
                         pending.event.type, pending.event.subject, pending.url, pending.attempts,
                         self.max_event_age, pending.status, pending.error)
        else:
            backoff = min(self.max_backoff, self.min_backoff * 2 ** (pending.attempts - 1))
            pending.not_before = time.monotonic() + backoff
            logger.info("delivery of %s %s to %s failed (status %s %s); retry in %.1f s",
                        pending.event.type, pending.event.subject, pending.url, pending.status, pending.error,
                        backoff)
        if not queue:
            del self._lanes[lane]


# --- the emulator's storage layer, reporting changes ---------------------------------------------------------------


class _NotifyingStorage(EmulatorStorage):
    """The emulator's storage layer, made faithful to GCS generations and reporting every object change.

    Every write path of the emulator (all upload kinds, copy, rewrite, compose, restore) ends in `create_file`, and
    every removal of a live object in `delete_file`, so hooking these two covers the handlers without touching them.
    Runs on the emulator's single server thread: `on_change` must only enqueue.
    """

    # The emulator rewrites its whole metadata file (every object's resource as indented JSON) after each write:
    # quadratic in the objects held (a 6,000-page sync spent most of its time there). In memory nothing reads it
    # back, so it is skipped; on disk it is written at most once a second, and by `flush` when the emulator stops.
    FLUSH_INTERVAL = 1.0

    def __init__(self, on_change: Callable[[str, dict, str], None], **kwargs) -> None:
        self._persistent = not kwargs.get("use_memory_fs")
        self._dirty = False
        self._flushed_at = 0.0
        super().__init__(**kwargs)
        self._on_change = on_change
        self._last_generation: dict[tuple[str, str], int] = {}

    def _write_config_to_file(self):
        if not self._persistent:
            return
        self._dirty = True
        if time.monotonic() - self._flushed_at >= self.FLUSH_INTERVAL:
            self.flush()

    def flush(self) -> None:
        """Write the metadata file if anything changed (call only when the server thread is not running, or
        from it)."""
        if self._persistent and self._dirty:
            super()._write_config_to_file()
            self._dirty, self._flushed_at = False, time.monotonic()

    def create_file(self, bucket_name, file_name, content, file_obj, file_id=None):
        replaced = copy.deepcopy(self.objects.get(bucket_name, {}).get(file_name))
        # The handlers send `file_obj` back to the client after this call, so fixing it here fixes the response too.
        self._assign_generation(bucket_name, file_name, file_obj, replaced)
        super().create_file(bucket_name, file_name, content, file_obj, file_id)
        self._on_change(FINALIZED, file_obj, file_obj.get("updated") or _now())
        if replaced is not None:
            self._on_change(DELETED, replaced, _now())

    def delete_file(self, bucket_name, file_name):
        removed = copy.deepcopy(self.objects.get(bucket_name, {}).get(file_name))
        super().delete_file(bucket_name, file_name)
        if removed is not None:
            self._on_change(DELETED, removed, _now())

    def _assign_generation(self, bucket: str, name: str, obj: dict, replaced: dict | None) -> None:
        generation = int(obj["generation"]) // 1000  # nanoseconds -> microseconds, as GCS
        floor = max(self._last_generation.get((bucket, name), 0), int(replaced["generation"]) if replaced else 0)
        generation = max(generation, floor + 1)
        self._last_generation[(bucket, name)] = generation
        obj["generation"] = str(generation)
        obj["metageneration"] = "1"
        obj["id"] = f"{bucket}/{name}/{generation}"
        if obj.get("size") is not None:
            obj["size"] = str(obj["size"])
        if isinstance(obj.get("mediaLink"), str):
            obj["mediaLink"] = re.sub(r"generation=\d+", f"generation={generation}", obj["mediaLink"])


def _percent_encoded(value: str) -> str:
    """Encode a header value as the CloudEvents HTTP binding asks: space, `"`, `%` and anything outside printable
    ASCII become UTF-8 percent-escapes (object names may hold any character; the body keeps the raw name)."""
    return "".join(c if "!" <= c <= "~" and c not in '"%' else urllib.parse.quote(c, safe="") for c in value)


def _checked_event_types(event_types: Iterable[str]) -> frozenset[str]:
    types = frozenset(event_types)
    unknown = types - set(EVENT_TYPES)
    if unknown or not types:
        raise ValueError(f"event types must be a non-empty subset of {EVENT_TYPES}, got {sorted(types)}")
    return types


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- the service -----------------------------------------------------------------------------------------------------


class StorageEmulator:
    """gcp-storage-emulator on 127.0.0.1:`port` with bucket `bucket`, plus the Eventarc bridge.

    In memory by default; with `data_dir`, objects and metadata persist under `data_dir/.cloudstorage`.
    Bridge options (`max_event_age`, `min_backoff`, `max_backoff`, `request_timeout`) are passed to EventarcBridge.
    """

    def __init__(
        self,
        port: int | None = None,
        bucket: str = "knowledge",
        data_dir: Path | str | None = None,
        **bridge_options: float,
    ) -> None:
        self.bucket = bucket
        self.data_dir = Path(data_dir).resolve() if data_dir else None
        self.port: int | None = None
        self._requested_port = port
        self._bridge_options = bridge_options
        self._subscriptions: list[tuple[str, tuple[str, ...], str | None]] = []  # kept across stop()/start()
        self.bridge: EventarcBridge | None = None
        self._httpd: http.server.HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`, the value of STORAGE_EMULATOR_HOST (the scheme is required)."""
        if self.port is None:
            raise RuntimeError("StorageEmulator is not started; call start() first")
        return f"http://{LOCALHOST}:{self.port}"

    def env(self) -> dict[str, str]:
        return {"STORAGE_EMULATOR_HOST": self.url, "KNOWLEDGE_BUCKET": self.bucket}

    def start(self) -> StorageEmulator:
        """Serve the emulator from a background thread (no-op if already serving)."""
        if self._httpd is not None:
            return self
        began = time.monotonic()
        self._storage = storage = _NotifyingStorage(
            on_change=self._publish,
            use_memory_fs=self.data_dir is None,
            data_dir=str(self.data_dir) if self.data_dir else None,
        )
        emulator_buckets.create_bucket(self.bucket, storage)  # no-op when it exists (persistent data_dir)
        # Our own HTTPServer around the emulator's request handler: binding port 0 gives a free port without a race,
        # and a port that is taken fails here instead of inside the emulator's thread (where start() would hang).
        try:
            self._httpd = http.server.HTTPServer(
                (LOCALHOST, self._requested_port or 0), functools.partial(EmulatorRequestHandler, storage)
            )
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise PortTakenError(f"port {self._requested_port} is in use") from err
            raise
        self.bridge = EventarcBridge(**self._bridge_options)
        for url, event_types, bucket in self._subscriptions:
            self.bridge.add_subscriber(url, event_types=event_types, bucket=bucket)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=f"storage-emulator-{self.port}",
                                        daemon=True)
        self._thread.start()
        wait_until(self._answers, 10, f"storage emulator on {self.url}")
        logger.info("storage emulator ready on %s in %.2f s (bucket %s, %s)", self.url, time.monotonic() - began,
                    self.bucket, self.data_dir or "in memory")
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = self._thread = None
            self._storage.flush()  # the server thread has stopped: nothing else touches the metadata now
        if self.bridge is not None:
            self.bridge.close()  # kept, so `delivered` and `dropped` can still be read
        self.port = None

    def reset(self) -> None:
        """Delete every object (buckets stay); no events are emitted. Goes through the server thread."""
        with urllib.request.urlopen(f"{self.url}/wipe?keep-buckets=true", timeout=10) as response:
            response.read()

    # --- Eventarc bridge ---------------------------------------------------------------------------------------

    def add_subscriber(self, url: str, *, event_types: Iterable[str] = EVENT_TYPES, bucket: str | None = None) -> None:
        """Deliver object events to `url` as an Eventarc trigger would; may be called before start()."""
        event_types = tuple(_checked_event_types(event_types))
        if self.bridge is not None:
            self.bridge.add_subscriber(url, event_types=event_types, bucket=bucket)
        self._subscriptions.append((url, event_types, bucket))

    def remove_subscriber(self, url: str) -> None:
        self._subscriptions = [s for s in self._subscriptions if s[0] != url]
        if self.bridge is not None:
            self.bridge.remove_subscriber(url)

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until every event so far is delivered (or dropped)."""
        self._require_bridge().wait_idle(timeout)

    @property
    def delivered(self) -> list[Delivery]:
        """Successful deliveries since the last start(), in completion order."""
        return self.bridge.delivered if self.bridge else []

    @property
    def dropped(self) -> list[Delivery]:
        """Events given up after `max_event_age` since the last start()."""
        return self.bridge.dropped if self.bridge else []

    def __enter__(self) -> StorageEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- internals -----------------------------------------------------------------------------------------------

    def _publish(self, event_type: str, resource: dict, event_time: str) -> None:
        self.bridge.publish(CloudEvent.for_object(event_type, resource, event_time))

    def _answers(self) -> bool:
        # The bucket resource rather than the emulator's "/" health check: it proves the bucket exists, and "/"
        # logs a warning on every call.
        try:
            with urllib.request.urlopen(f"{self.url}/storage/v1/b/{self.bucket}", timeout=2) as response:
                return json.load(response).get("name") == self.bucket
        except (urllib.error.URLError, ConnectionError, ValueError):
            return False

    def _require_bridge(self) -> EventarcBridge:
        if self.bridge is None:
            raise RuntimeError("StorageEmulator is not started; call start() first")
        return self.bridge
