"""The structured log events a test's code writes, as Cloud Logging would read them (JsonFormatter lines)."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator

from shared.logs import JsonFormatter


class Events(logging.Handler):
    """The records of the watched loggers as JSON lines, parsed back."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))

    def of(self, event: str) -> list[dict]:
        return [entry for entry in map(json.loads, self.lines) if entry.get("event") == event]


@contextlib.contextmanager
def watching(*names: str) -> Iterator[Events]:
    """Collect the events of these loggers at INFO (the functions may set the root higher), then restore them."""
    handler = Events()
    loggers = [logging.getLogger(n) for n in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        for logger, level in zip(loggers, levels):
            logger.removeHandler(handler)
            logger.setLevel(level)
