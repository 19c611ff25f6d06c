"""Cloud Tasks stand-in: gcloud-tasks-emulator, run from its own virtualenv.

The emulator pins protobuf<5 and an old google-cloud-tasks, which would downgrade the main environment, so it lives
in `.venv-tasks` (`python3 -m venv .venv-tasks && .venv-tasks/bin/pip install -r
infra/requirements-tasks-emulator.txt`). Clients in the main environment talk to it over gRPC: see `client()`.

CLI of gcloud-tasks-emulator 0.6.2 (`start` subcommand): `--port/-p` (gRPC port, default 9022),
`--default-queue/-d projects/P/locations/L/queues/Q` (repeatable, created at start-up), `--max-retries/-r` (default
-1 = forever), `--quiet/-q`, `--target-host/-H` and `--target-port/-t` (App Engine tasks only; HTTP tasks go to the
task's URL), `--queue-yaml/-Q` with `--queue-yaml-project/-P` and `--queue-yaml-location/-L`. It listens on all
interfaces (`[::]`) whatever you do, and POSTs a task to whatever URL it names, so we run its CLI through
`tasks_loopback.py` (with the emulator's interpreter): gRPC on 127.0.0.1 only, tasks dispatched to loopback
addresses only (another target is logged as a refused connection and retried like one).

Differences from production:
- no OIDC token is sent (the task's `oidc_token` is ignored), so `embed` must not require one locally;
- task names are not de-duplicated: creating a task whose name exists (or existed recently) succeeds and runs
  again, where Cloud Tasks answers ALREADY_EXISTS;
- a failed task is retried at once, with no backoff, up to `max_retries` (queue retry configs are ignored);
- one queue dispatches one task at a time, and a request has no timeout, so a hanging target stalls the queue;
- `X-CloudTasks-QueueName` carries the full queue path (production: the short queue id);
- queue state is in memory only.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import grpc
from google.api_core import exceptions as api_exceptions
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

from infra.stack.processes import LOCALHOST, ManagedProcess, PortTakenError, run_with_free_port, wait_until

logger = logging.getLogger(__name__)

_REPO_ROOT = Path(__file__).resolve().parents[2]
_VENV_EXECUTABLE = _REPO_ROOT / ".venv-tasks" / "bin" / "gcloud-tasks-emulator"
_LOOPBACK_LAUNCHER = Path(__file__).resolve().with_name("tasks_loopback.py")
INSTALL_HINT = (
    "create its own virtualenv: python3 -m venv .venv-tasks && "
    ".venv-tasks/bin/pip install -r infra/requirements-tasks-emulator.txt"
)


class TasksEmulator:
    """gcloud-tasks-emulator on 127.0.0.1:`port` with queue `queue` in `project`/`location`.

    Defaults match shared/config.py (GOOGLE_CLOUD_PROJECT, REGION, TASKS_QUEUE).
    """

    def __init__(
        self,
        port: int | None = None,
        project: str = "demo-local",
        location: str = "europe-west1",
        queue: str = "embed",
        *,
        sync_queue: str = "sync",
        max_retries: int = 100,  # Cloud Tasks' default max attempts; -1 retries forever (immediately!)
        log_dir: Path | str | None = None,
        executable: Path | str | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        self.project = project
        self.location = location
        self.queue = queue
        self.sync_queue = sync_queue
        self.port: int | None = None
        self._requested_port = port
        self._max_retries = max_retries
        self._log_dir = Path(log_dir) if log_dir else Path(tempfile.gettempdir()) / "local-stack-logs"
        self._executable = Path(executable) if executable else None
        self._start_timeout = start_timeout
        self._process: ManagedProcess | None = None
        self._client: tasks_v2.CloudTasksClient | None = None

    @property
    def host(self) -> str:
        """`127.0.0.1:PORT`, the value of CLOUD_TASKS_EMULATOR_HOST."""
        if self.port is None:
            raise RuntimeError("TasksEmulator is not started; call start() first")
        return f"{LOCALHOST}:{self.port}"

    @property
    def queue_path(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/queues/{self.queue}"

    @property
    def sync_queue_path(self) -> str:
        """The second queue: the steps of sync runs, dispatched to `scrape` (its own dispatcher thread)."""
        return f"projects/{self.project}/locations/{self.location}/queues/{self.sync_queue}"

    def env(self) -> dict[str, str]:
        return {
            "CLOUD_TASKS_EMULATOR_HOST": self.host,
            "GOOGLE_CLOUD_PROJECT": self.project,
            "REGION": self.location,
            "TASKS_QUEUE": self.queue,
            "SYNC_QUEUE": self.sync_queue,
        }

    def client(self) -> tasks_v2.CloudTasksClient:
        """A CloudTasksClient talking to this emulator (shared by callers; closed by stop())."""
        if self._client is None:
            self._client = _client_for(self.host)
        return self._client

    def start(self) -> TasksEmulator:
        """Start the emulator (no-op if already running) and make sure the queue exists."""
        if self._process is not None and self._process.is_running():
            return self
        executable = self._find_executable()
        began = time.monotonic()
        self.port = run_with_free_port(lambda port: self._start_on(executable, port), self._requested_port)
        logger.info("Cloud Tasks emulator ready on %s in %.1f s (queue %s)", self.host, time.monotonic() - began,
                    self.queue_path)
        return self

    def stop(self) -> None:
        if self._client is not None:
            self._client.transport.close()
            self._client = None
        if self._process is not None:
            self._process.stop()
            self._process = None
        self.port = None

    @property
    def log_path(self) -> Path | None:
        """The emulator's log file (None when stopped)."""
        return self._process.log_path if self._process else None

    def pids(self) -> set[int]:
        """The emulator's processes (empty when stopped), e.g. to check that nothing survives stop()."""
        return self._process.pids() if self._process else set()

    def __enter__(self) -> TasksEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- internals -----------------------------------------------------------------------------------------------

    def _start_on(self, executable: Path, port: int) -> None:
        argv = [
            _interpreter_of(executable), _LOOPBACK_LAUNCHER, "start",
            "--port", str(port),
            "--default-queue", self.queue_path,
            "--default-queue", self.sync_queue_path,
            "--max-retries", str(self._max_retries),
        ]
        process = ManagedProcess(f"cloud-tasks-{port}", argv, log_dir=self._log_dir)
        process.start()
        client = _client_for(f"{LOCALHOST}:{port}")
        try:
            wait_until(lambda: self._queue_listed(process, client, port), self._start_timeout,
                       f"Cloud Tasks emulator on {LOCALHOST}:{port} (log: {process.log_path})")
        except BaseException:
            process.stop()
            raise
        finally:
            client.transport.close()
        self._process = process

    def _queue_listed(self, process: ManagedProcess, client: tasks_v2.CloudTasksClient, port: int) -> bool:
        process.check_alive()
        if "Failed to bind" in process.log_tail(50):
            # The gRPC thread died but the dispatcher thread keeps the process alive: fail now, not at the timeout.
            raise PortTakenError(f"port {port} is in use")
        parent = f"projects/{self.project}/locations/{self.location}"
        try:
            names = {queue.name for queue in client.list_queues(parent=parent, retry=None, timeout=2)}
        except api_exceptions.GoogleAPICallError:
            return False
        # gRPC servers bind with SO_REUSEPORT: another emulator on this port would share it silently.
        if process.owns_port(port) is False:
            raise PortTakenError(f"another process listens on port {port}")
        for path in (self.queue_path, self.sync_queue_path):
            if path not in names:  # --default-queue normally created it; older emulators may not
                client.create_queue(parent=parent, queue=tasks_v2.Queue(name=path), timeout=5)
        return True

    def _find_executable(self) -> Path:
        candidates = [self._executable] if self._executable else [_VENV_EXECUTABLE]
        on_path = shutil.which("gcloud-tasks-emulator")
        if not self._executable and on_path:
            candidates.append(Path(on_path))
        for candidate in candidates:
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
        raise FileNotFoundError(f"gcloud-tasks-emulator not found (looked at {[str(c) for c in candidates]}); "
                                f"{INSTALL_HINT}")


def _interpreter_of(executable: Path) -> Path:
    """The Python that runs the emulator's console script: the `python` next to it (a virtualenv), else its #! line."""
    sibling = executable.parent / "python"
    if sibling.is_file() and os.access(sibling, os.X_OK):
        return sibling
    with open(executable, "rb") as script:
        first = script.readline().decode(errors="replace").strip()
    if first.startswith("#!") and "python" in first:
        return Path(first[2:].split()[0])
    raise FileNotFoundError(f"cannot tell which Python runs {executable}; {INSTALL_HINT}")


def _client_for(host: str) -> tasks_v2.CloudTasksClient:
    return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=grpc.insecure_channel(host)))
