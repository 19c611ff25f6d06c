"""Firestore stand-in: the Cloud Firestore emulator from the Google Cloud CLI (a JVM application).

Discovery, fastest first:
1. an explicit `binary=` path;
2. `<SDK root>/platform/cloud-firestore-emulator/cloud_firestore_emulator`, where the SDK root is found from
   `gcloud` on PATH (symlinks resolved: /usr/bin/gcloud -> /usr/lib/google-cloud-sdk/bin/gcloud). This skips
   gcloud's own Python start-up;
3. `gcloud emulators firestore start --host-port=127.0.0.1:PORT`.
Both need Java on PATH. Clients find the emulator through FIRESTORE_EMULATOR_HOST and need no credentials.

Not emulated (see the notes in shared/notes/local-stack.md): TTL policies; contended transactions are very slow
(lock timeouts), so counters should use `Increment`. Data lives in memory and is gone when the emulator stops.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from infra.stack.processes import LOCALHOST, ManagedProcess, PortTakenError, run_with_free_port, wait_until

logger = logging.getLogger(__name__)

_BINARY_IN_SDK = Path("platform") / "cloud-firestore-emulator" / "cloud_firestore_emulator"

INSTALL_HINT = (
    "Install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install) with the Firestore emulator "
    "(`gcloud components install cloud-firestore-emulator`, or the `google-cloud-cli-firestore-emulator` "
    "package on Debian/Ubuntu) and a Java runtime (17 or newer), and make sure `gcloud` and `java` are on PATH."
)


class FirestoreEmulatorNotFoundError(RuntimeError):
    """Neither the emulator binary nor gcloud could be found."""


class FirestoreEmulator:
    """The Firestore emulator on 127.0.0.1:`port` for `project`."""

    def __init__(
        self,
        port: int | None = None,
        project: str = "demo-local",
        *,
        log_dir: Path | str | None = None,
        binary: Path | str | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self.project = project
        self.port: int | None = None
        self._requested_port = port
        self._log_dir = Path(log_dir) if log_dir else Path(tempfile.gettempdir()) / "local-stack-logs"
        self._binary = Path(binary) if binary else None
        self._start_timeout = start_timeout
        self._process: ManagedProcess | None = None

    @property
    def host(self) -> str:
        """`127.0.0.1:PORT`, the value of FIRESTORE_EMULATOR_HOST."""
        if self.port is None:
            raise RuntimeError("FirestoreEmulator is not started; call start() first")
        return f"{LOCALHOST}:{self.port}"

    def env(self) -> dict[str, str]:
        return {"FIRESTORE_EMULATOR_HOST": self.host, "GOOGLE_CLOUD_PROJECT": self.project}

    def start(self) -> FirestoreEmulator:
        """Start the emulator (no-op if already running) and wait until it answers `Ok`."""
        if self._process is not None and self._process.is_running():
            return self
        argv_for = self._command()  # fail before picking ports when nothing is installed
        began = time.monotonic()
        self.port = run_with_free_port(lambda port: self._start_on(port, argv_for(port)), self._requested_port)
        logger.info("Firestore emulator ready on %s in %.1f s", self.host, time.monotonic() - began)
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None
        self.port = None

    def pids(self) -> set[int]:
        """The emulator's processes (empty when stopped), e.g. to check that nothing survives stop()."""
        return self._process.pids() if self._process else set()

    def reset(self, project: str | None = None) -> None:
        """Delete every document of the project (default: this emulator's; the emulator's own reset endpoint)."""
        request = urllib.request.Request(
            f"http://{self.host}/emulator/v1/projects/{project or self.project}/databases/(default)/documents",
            method="DELETE",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    def __enter__(self) -> FirestoreEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- internals -----------------------------------------------------------------------------------------------

    def _start_on(self, port: int, argv: list[str]) -> None:
        process = ManagedProcess(f"firestore-{port}", argv, log_dir=self._log_dir,
                                 env={**os.environ, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"})
        process.start()
        try:
            wait_until(lambda: self._answers(process, port), self._start_timeout,
                       f"Firestore emulator on {LOCALHOST}:{port} (log: {process.log_path})")
        except BaseException as err:
            process.stop()
            if "Address already in use" in process.log_tail(200) and not isinstance(err, PortTakenError):
                raise PortTakenError(f"port {port} is in use") from err
            raise
        self._process = process

    @staticmethod
    def _answers(process: ManagedProcess, port: int) -> bool:
        process.check_alive()
        try:
            with urllib.request.urlopen(f"http://{LOCALHOST}:{port}/", timeout=2) as response:
                if response.read().strip() != b"Ok":
                    return False
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False
        if process.owns_port(port) is False:
            raise PortTakenError(f"another process answers on port {port}")
        return True

    def _command(self) -> Callable[[int], list[str]]:
        """A function port -> argv for the best available way to run the emulator."""
        binary = self._binary or _binary_in_sdk()
        if binary is not None:
            if not binary.is_file():
                raise FirestoreEmulatorNotFoundError(f"{binary} does not exist. {INSTALL_HINT}")
            if shutil.which("java") is None and not os.environ.get("JAVA"):
                raise FirestoreEmulatorNotFoundError(
                    f"`java` is not on PATH (the emulator is a JVM application). {INSTALL_HINT}"
                )
            return lambda port: [str(binary), "start", f"--host={LOCALHOST}", f"--port={port}"]
        gcloud = shutil.which("gcloud")
        if gcloud is not None:
            logger.info("cloud_firestore_emulator not found under the SDK; falling back to `gcloud emulators`")
            return lambda port: [gcloud, "emulators", "firestore", "start", f"--host-port={LOCALHOST}:{port}"]
        raise FirestoreEmulatorNotFoundError(
            f"Neither `gcloud` nor the Firestore emulator binary was found. {INSTALL_HINT}"
        )


def _binary_in_sdk() -> Path | None:
    """The emulator binary of the SDK that `gcloud` on PATH belongs to, if installed."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return None
    sdk_root = Path(gcloud).resolve().parent.parent  # <root>/bin/gcloud
    candidate = sdk_root / _BINARY_IN_SDK
    return candidate if candidate.is_file() else None
