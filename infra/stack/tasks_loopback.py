"""gcloud-tasks-emulator on loopback only: its CLI, with the gRPC server bound to 127.0.0.1 (the emulator hard-codes
`[::]`, every interface) and HTTP tasks dispatched only to loopback addresses (it POSTs to whatever URL a task
names, which on a shared network would make it a relay for anyone who can create a task).

Run by infra/stack/tasks.py with the emulator's own interpreter, as a script:

    .venv-tasks/bin/python infra/stack/tasks_loopback.py start --port 9090 \
        --default-queue projects/P/locations/L/queues/Q

Standard library and the emulator only: this file runs in `.venv-tasks`, not in the project's environment.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import urllib.parse
from urllib import error

import grpc
from gcloud_tasks_emulator import server as emulator
from gcloud_tasks_emulator.__main__ import main

LOOPBACK = "127.0.0.1"
_grpc_server = grpc.server
_make_task_request = emulator._make_task_request


def loopback_grpc_server(*args, **kwargs):
    """grpc.server(...) whose insecure ports bind to 127.0.0.1 whatever address the caller names."""
    server = _grpc_server(*args, **kwargs)
    bind = server.add_insecure_port

    def add_insecure_port(address: str) -> int:
        return bind(f"{LOOPBACK}:{address.rsplit(':', 1)[-1]}")

    server.add_insecure_port = add_insecure_port
    return server


def is_loopback(host: str) -> bool:
    """True if every address `host` resolves to is a loopback address."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (socket.gaierror, UnicodeError):
        return False
    return bool(addresses) and all(ipaddress.ip_address(a.split("%", 1)[0]).is_loopback for a in addresses)


def loopback_task_request(queue_name, task, host, port):
    """The emulator's dispatch, refused (as a connection error, which the emulator logs and retries) for a target
    that is not on this machine."""
    target = urllib.parse.urlsplit(task.http_request.url).hostname if task.http_request.url else host
    if not target or not is_loopback(target):
        raise error.URLError(f"refused: {target!r} is not a loopback address (the local emulator dispatches to "
                             f"this machine only)")
    return _make_task_request(queue_name, task, host, port)


def install() -> None:
    emulator.grpc.server = loopback_grpc_server
    emulator._make_task_request = loopback_task_request


if __name__ == "__main__":
    install()
    sys.exit(main())
