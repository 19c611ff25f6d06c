"""Child processes for the local stack: free ports, readiness waits, and processes that clean up after themselves.

Every emulator runs in its own process group, so stopping it also stops whatever it spawned (the Firestore wrapper
script starts a JVM, `gcloud` starts the wrapper script). Output goes to one log file per service, which is the first
place to look when a service does not come up: errors quote its last lines.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import psutil

logger = logging.getLogger(__name__)

LOCALHOST = "127.0.0.1"


class PortTakenError(RuntimeError):
    """Another process answered on the port a service was started on."""


def free_port(host: str = LOCALHOST) -> int:
    """Return a TCP port that is free right now.

    Someone else can take it before we bind it, so services also check that the process answering is theirs.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.05) -> None:
    """Call `predicate` until it returns something truthy; raise TimeoutError naming `what` after `timeout` seconds.

    Exceptions from the predicate propagate, so a predicate can fail fast (e.g. when the process it waits for died).
    """
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        # Back off gently: the first answers usually come within a few hundred milliseconds.
        time.sleep(interval)
        interval = min(interval * 1.5, 0.5)


def run_with_free_port(start_on: Callable[[int], None], port: int | None, attempts: int = 3) -> int:
    """Run `start_on(port)`, choosing a free port when none is given; return the port that worked.

    `free_port()` can race with other processes, so a PortTakenError with a port we chose ourselves is retried on
    another port. A port the caller asked for is never swapped silently.
    """
    if port is not None:
        start_on(port)
        return port
    for attempt in range(1, attempts + 1):
        candidate = free_port()
        try:
            start_on(candidate)
            return candidate
        except PortTakenError:
            if attempt == attempts:
                raise
            logger.warning("port %d was taken meanwhile; retrying on another port", candidate)
    raise AssertionError("unreachable")


def listening_pids(port: int) -> set[int | None] | None:
    """PIDs of the processes listening on TCP `port` (None for a process we may not inspect).

    Returns None when the platform does not let us see sockets at all (macOS without root), so callers can skip
    the check instead of failing.
    """
    try:
        connections = psutil.net_connections(kind="inet")
    except psutil.AccessDenied:
        return None
    return {c.pid for c in connections if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port}


class ManagedProcess:
    """A child process in its own process group, logging to `log_dir/name.log`, stopped as a group.

    `stop()` sends SIGTERM to the whole group, then SIGKILL to whatever is still alive after `stop_timeout`.
    An `atexit` hook stops it too, in case the owner forgets or the interpreter exits on an exception.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_dir: Path | str,
        env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
        stop_timeout: float = 10.0,
    ) -> None:
        self.name = name
        self.argv = [str(arg) for arg in argv]
        self.log_path = Path(log_dir) / f"{name}.log"
        self._env = dict(env) if env is not None else None
        self._cwd = cwd
        self._stop_timeout = stop_timeout
        self._popen: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    def start(self) -> None:
        """Start the process (no-op when it is already running)."""
        if self.is_running():
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            log.write(f"\n=== {stamp} starting: {' '.join(self.argv)}\n".encode())
            log.flush()
            # The child keeps its own copy of the descriptor, so ours can be closed right away.
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env,
                cwd=self._cwd,
                start_new_session=True,  # own session and process group: stop() reaches every descendant
            )
        atexit.register(self.stop)
        logger.info("started %s (pid %d), log: %s", self.name, self._popen.pid, self.log_path)

    def is_running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit status once the process has exited by itself; None while it runs or after stop()."""
        return self._popen.poll() if self._popen is not None else None

    def check_alive(self) -> None:
        """Raise RuntimeError with the end of the log if the process has exited."""
        if self._popen is not None and self._popen.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with code {self._popen.returncode}; last lines of {self.log_path}:\n"
                + self.log_tail()
            )

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def owns_port(self, port: int) -> bool | None:
        """True if every listener on `port` belongs to this process tree, None if that cannot be checked.

        A readiness probe alone can be answered by another process that holds the port (gRPC servers bind with
        SO_REUSEPORT, so two of them can even share one).
        """
        listeners = listening_pids(port)
        if listeners is None:
            return None
        return bool(listeners) and listeners <= self.pids()

    def stop(self) -> None:
        """Stop the whole process group: SIGTERM innermost processes first, then the group, then SIGKILL."""
        if self._popen is None:
            return
        popen, self._popen = self._popen, None
        atexit.unregister(self.stop)
        pgid = popen.pid  # start_new_session makes the child the leader of a group with its own pid
        began = time.monotonic()
        # Innermost first: a wrapper (gcloud -> shell script -> JVM) then reaps its child and exits by itself,
        # instead of dying first and leaving the child to PID 1, which may keep it around as a zombie.
        for proc in _leaves(_live_group_members(pgid)):
            _signal(proc, signal.SIGTERM)
        if not _wait_group_gone(popen, pgid, began + self._stop_timeout / 2):
            self._signal_group(pgid, signal.SIGTERM)
            if not _wait_group_gone(popen, pgid, began + self._stop_timeout):
                logger.warning("%s did not stop within %g s; killing its process group", self.name,
                               self._stop_timeout)
                self._signal_group(pgid, signal.SIGKILL)
                # SIGKILL is delivered asynchronously: wait until the group is really gone.
                if not _wait_group_gone(popen, pgid, time.monotonic() + 5):
                    logger.error("%s (process group %d) survived SIGKILL", self.name, pgid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=5)
        logger.info("stopped %s (pid %d) in %.1f s", self.name, pgid, time.monotonic() - began)

    def pids(self) -> set[int]:
        """This process and all its descendants (empty when not running)."""
        if self._popen is None:
            return set()
        try:
            root = psutil.Process(self._popen.pid)
            return {root.pid, *(child.pid for child in root.children(recursive=True))}
        except psutil.NoSuchProcess:
            return set()

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)

    def __enter__(self) -> ManagedProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class Supervisor:
    """Restarts ManagedProcesses that exit by themselves, from a background thread, saying so in the log.

    A restart waits `first_delay` seconds, doubled for each further crash in a row up to `max_delay`; a process that
    ran `stable_after` seconds before it died starts the count afresh. After `max_restarts` crashes in a row the
    process is left down with an ERROR quoting its log, so a crash loop is seen instead of spinning quietly. A
    process stopped on purpose (`stop()`) is not restarted. Before a restart the dead process's group is stopped:
    gunicorn's worker outlives its master for a moment and still holds the port.
    """

    def __init__(self, processes: Mapping[str, ManagedProcess], *, first_delay: float = 1.0, max_delay: float = 30.0,
                 max_restarts: int = 5, stable_after: float = 60.0, interval: float = 0.5) -> None:
        self.processes = dict(processes)
        self.first_delay, self.max_delay = first_delay, max_delay
        self.max_restarts, self.stable_after, self.interval = max_restarts, stable_after, interval
        self.restarts = {name: 0 for name in self.processes}  # restarts so far, per process
        self.given_up: set[str] = set()
        now = time.monotonic()
        self._started = {name: now for name in self.processes}
        self._crashes = {name: 0 for name in self.processes}  # in a row
        self._restart_at: dict[str, float] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Supervisor:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching (the processes keep running); returns once no restart is under way."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def poll(self) -> None:
        """One round: notice processes that exited, restart those whose delay has passed."""
        for name, process in self.processes.items():
            if self._stopping.is_set():
                return
            if name in self.given_up:
                continue
            if name in self._restart_at:
                if time.monotonic() >= self._restart_at[name]:
                    self._restart(name, process)
                continue
            code = process.returncode
            if code is not None:
                self._exited(name, process, code)

    def _exited(self, name: str, process: ManagedProcess, code: int) -> None:
        ran = time.monotonic() - self._started[name]
        if ran >= self.stable_after:
            self._crashes[name] = 0
        self._crashes[name] += 1
        crashes = self._crashes[name]
        if crashes > self.max_restarts:
            self.given_up.add(name)
            process.stop()
            logger.error("%s exited with code %s after %.1f s, its %d%s crash in a row: not restarting it again. Fix "
                         "the cause and restart. Last lines of %s:\n%s", name, code, ran, crashes,
                         _ordinal(crashes), process.log_path, process.log_tail(20))
            return
        delay = min(self.max_delay, self.first_delay * 2 ** (crashes - 1))
        self._restart_at[name] = time.monotonic() + delay
        logger.warning("%s exited with code %s after %.1f s; restarting it in %g s (crash %d in a row; it is left down "
                       "after %d). Last lines of %s:\n%s", name, code, ran, delay, crashes, self.max_restarts,
                       process.log_path, process.log_tail(10))

    def _restart(self, name: str, process: ManagedProcess) -> None:
        del self._restart_at[name]
        process.stop()  # what the dead process left in its group
        process.start()
        self._started[name] = time.monotonic()
        self.restarts[name] += 1
        logger.warning("restarted %s (pid %s; restart %d)", name, process.pid, self.restarts[name])

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.poll()
            except Exception:  # keep supervising the others
                logger.exception("supervisor round failed")


def _ordinal(n: int) -> str:
    return "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def _live_group_members(pgid: int) -> list[psutil.Process]:
    """Processes in group `pgid` that are not zombies.

    Zombies are ignored on purpose: an orphan is re-parented to PID 1, and not every container init reaps promptly,
    so it may linger as a zombie that no signal can remove.
    """
    members = []
    for proc in psutil.process_iter(["ppid", "status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(proc)
        except (ProcessLookupError, psutil.Error):
            continue
    return members


def _leaves(members: list[psutil.Process]) -> list[psutil.Process]:
    """The members that are nobody's parent within the group."""
    parents = {proc.info["ppid"] for proc in members}
    return [proc for proc in members if proc.pid not in parents]


def _signal(proc: psutil.Process, sig: signal.Signals) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        proc.send_signal(sig)


def _wait_group_gone(popen: subprocess.Popen, pgid: int, deadline: float) -> bool:
    """Wait until no live process is left in group `pgid`; False if the deadline passes first."""
    while True:
        popen.poll()  # reap the leader, so it does not count as alive
        if not _live_group_members(pgid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
