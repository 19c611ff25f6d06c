"""A packaged function bundle boots under functions-framework from a temporary folder with nothing else importable:
no repository on sys.path, no PYTHONPATH, only the bundle and the installed runtime dependencies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile

import pytest

from infra.package import build
from infra.stack.processes import free_port


def _post(url, body: bytes, headers: dict) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture
def serve_bundle(tmp_path):
    processes = []

    def serve(name: str, env: dict | None = None) -> str:
        folder, zip_path = build(name, tmp_path / "dist")
        unpacked = tmp_path / f"{name}-unzipped"
        zipfile.ZipFile(zip_path).extractall(unpacked)  # deploy what the zip holds, not the folder
        port = free_port()
        clean_env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "DATABASE_URL": "postgresql://x@127.0.0.1:1/x",
                     **(env or {})}
        process = subprocess.Popen(
            [sys.executable, "-I", "-m", "functions_framework", "--target", name, "--source",
             str(unpacked / "main.py"), "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path, env=clean_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        processes.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(process.stdout.read().decode())
            try:
                urllib.request.urlopen(url, timeout=1)
                return url
            except urllib.error.HTTPError:
                return url
            except OSError:
                time.sleep(0.2)
        raise AssertionError("bundle did not start")

    yield serve
    for process in processes:
        process.kill()
        process.wait()


def test_bundle_is_self_contained_and_reproducible(tmp_path):
    _, first = build("embed", tmp_path / "a")
    _, second = build("embed", tmp_path / "b")
    assert first.name == second.name  # content-addressed: same code, same object name
    names = zipfile.ZipFile(first).namelist()
    assert {"main.py", "requirements.txt", "shared/__init__.py", "shared/ingest/chunker.py"} <= set(names)
    assert not any("__pycache__" in n or n.startswith(("tests/", "infra/")) for n in names)


def test_embed_bundle_boots_and_validates_requests(serve_bundle):
    url = serve_bundle("embed")
    status, body = _post(url, b'{"tenant": "default"}', {"Content-Type": "application/json"})
    assert status == 400
    assert json.loads(body)["error"]["message"] == "'version_id' (string) is required"


def test_ingest_bundle_boots_and_acknowledges_a_malformed_event(serve_bundle):
    url = serve_bundle("ingest")
    headers = {"ce-id": "1", "ce-specversion": "1.0", "ce-type": "google.cloud.storage.object.v1.finalized",
               "ce-source": "//storage.googleapis.com/projects/_/buckets/knowledge", "Content-Type": "application/json"}
    status, _ = _post(url, b'{"not": "an object resource"}', headers)
    assert status == 200


def test_chat_bundle_boots(serve_bundle):
    url = serve_bundle("chat")
    with urllib.request.urlopen(url + "/healthz", timeout=5) as response:
        assert json.loads(response.read()) == {"status": "ok"}
