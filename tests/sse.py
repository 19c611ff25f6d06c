"""A small Server-Sent Events reader for tests, following the WHATWG event-stream parsing rules.

    parse(body)              the events of a whole text/event-stream body (str or bytes)
    parse_all(body)          the same with the comment lines (`: ping` heartbeats) in stream order
    iter_sse(source)         events and comments as they arrive, from an httpx streaming response, a werkzeug test
                             response, or any iterable of str/bytes chunks
    SSEParser                the incremental parser underneath: feed(chunk) -> what the chunk completed

    with httpx.stream("POST", url + "/v1/chat", json={"message": "hi"}) as response:
        for item in iter_sse(response):
            if isinstance(item, Event) and item.name == "delta":
                print(item.json()["text"])
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Event:
    """One dispatched event: `name` is the `event:` field ("message" when absent), `data` its joined data lines."""

    name: str
    data: str
    id: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass(frozen=True)
class Comment:
    """A comment line (`: text`), such as a heartbeat; `text` is without the colon and one leading space."""

    text: str


class SSEParser:
    """Turns chunks of a text/event-stream, split anywhere (even inside a CRLF or a UTF-8 sequence), into events
    and comments."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._buffer = ""
        self._name = ""
        self._data: list[str] = []
        self._id: str | None = None
        self._retry: int | None = None
        self._first = True

    def feed(self, chunk: str | bytes) -> list[Event | Comment]:
        """What `chunk` completed, in stream order."""
        text = self._decoder.decode(chunk) if isinstance(chunk, bytes) else chunk
        if self._first and text:
            text = text.removeprefix("\ufeff")
            self._first = False
        self._buffer += text
        items: list[Event | Comment] = []
        while True:
            line, found = self._next_line()
            if not found:
                return items
            item = self._line(line)
            if item is not None:
                items.append(item)

    def close(self) -> list[Event | Comment]:
        """The end of the stream: a final CR still ends its line; an unfinished line or event is dropped (as
        browsers do)."""
        items = self.feed(self._decoder.decode(b"", final=True))
        if self._buffer.endswith("\r"):
            items.extend(self.feed("\n"))
        self._buffer, self._name, self._data = "", "", []
        return items

    def _next_line(self) -> tuple[str, bool]:
        for index, char in enumerate(self._buffer):
            if char == "\n":
                line, self._buffer = self._buffer[:index], self._buffer[index + 1:]
                return line, True
            if char == "\r":
                if index + 1 == len(self._buffer):
                    return "", False  # a CR at the end of the chunk may be the first half of CRLF
                skip = 2 if self._buffer[index + 1] == "\n" else 1
                line, self._buffer = self._buffer[:index], self._buffer[index + skip:]
                return line, True
        return "", False

    def _line(self, line: str) -> Event | Comment | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return Comment(line[1:].removeprefix(" "))
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            self._name = value
        elif field == "data":
            self._data.append(value)
        elif field == "id" and "\0" not in value:
            self._id = value
        elif field == "retry" and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> Event | None:
        name, data, self._name, self._data = self._name, self._data, "", []
        if not data:
            return None
        return Event(name=name or "message", data="\n".join(data), id=self._id, retry=self._retry)


def iter_sse(source: Any) -> Iterator[Event | Comment]:
    """Events and comments as their bytes arrive. `source`: an httpx response opened with `stream` (each network
    chunk is parsed as soon as it is read), a werkzeug test response, or an iterable of str/bytes chunks."""
    parser = SSEParser()
    for chunk in _chunks(source):
        yield from parser.feed(chunk)
    yield from parser.close()


def parse_all(body: str | bytes) -> list[Event | Comment]:
    """Every event and comment of a complete body."""
    parser = SSEParser()
    return [*parser.feed(body), *parser.close()]


def parse(body: str | bytes) -> list[Event]:
    """The events of a complete body (comments left out)."""
    return [item for item in parse_all(body) if isinstance(item, Event)]


def _chunks(source: Any) -> Iterable[str | bytes]:
    if hasattr(source, "iter_bytes"):  # httpx.Response: each chunk as it arrives (content-decoded)
        return source.iter_bytes()
    if hasattr(source, "iter_encoded"):  # werkzeug (test) response
        return source.iter_encoded()
    return source
