"""Fixtures of the integration tests that several files share."""

from __future__ import annotations

import pytest


@pytest.fixture
def site():
    from infra.standins.website import Website

    server = Website().start()
    yield server
    server.stop()
