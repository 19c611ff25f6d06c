"""Check the `[n]` citation markers of a streamed answer against the sources the answerer was given.

    citations = CitationFilter(valid_numbers={1, 2, 3})
    for piece in answer_pieces:
        send(citations.feed(piece))     # what is safe to show now
    send(citations.finish())            # the held-back tail
    citations.cited                     # valid numbers actually cited, in first-use order

A marker is `[n]`, `[n, m, ...]` or a range `[n-m]` / `[n–m]` (numbers of one to three digits, at most
`MAX_MARKER` characters); adjacent markers `[1][2]` are checked one by one. Numbers outside the valid set are
removed from their marker (`[1, 7]` -> `[1]`); a marker left with none is removed with the one space or tab before
it, so "word [7]." becomes "word." (the space is kept when another marker follows: "word [7][1]" -> "word [1]").
A marker that is unchanged keeps its original spelling. Anything else in brackets passes through untouched:
Markdown links `[text](url)` — including `[1](url)` —, checkboxes `[x]`, `[ERROR]`, years `[2024]`.

Streaming never changes the result: the output of any split of a text equals that of the whole text. To get there
the filter holds back at most one space and a trailing fragment that could still become a marker ("[", "[1",
"[1, ") or a complete marker until the next character shows it is not a link — never more than `MAX_MARKER + 1`
characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_MARKER = 16  # "[1, 2, 3, 4, 5]" is 15
_MAX_RANGE = 20
_MARKER = re.compile(r"\[ *(\d{1,3}(?: *[,\-–] *\d{1,3})*) *\]")
_MARKER_PREFIX = re.compile(r"\[ *(?:\d{1,3}(?: *[,\-–] *\d{1,3})* *(?:[,\-–] *)?)?")
_ITEM = re.compile(r"(\d+)(?: *[\-–] *(\d+))?")
_SPACE = (" ", "\t")


class StreamFilter:
    """A filter over streamed text that may hold back a piece it cannot judge yet (a marker or a URL cut in two):
    `feed` returns what is safe to emit now, `finish` the rest at the end. Subclasses implement `_drain`, which
    consumes `self._pending` and keeps in it what must wait."""

    _pending = ""

    def feed(self, piece: str) -> str:
        """Take the next piece of the stream; return the text that is safe to emit now (possibly "")."""
        self._pending += piece
        return self._drain(final=False)

    def finish(self) -> str:
        """End of stream: return whatever is still held back, checked."""
        return self._drain(final=True)

    def _drain(self, final: bool) -> str:
        raise NotImplementedError


class CitationFilter(StreamFilter):
    """Removes citation numbers that match no source from a stream of text; records the valid ones cited."""

    def __init__(self, valid_numbers: Iterable[int], renumber: bool = False):
        """`renumber`: show citations as 1, 2, 3… in order of first use (source 4 cited first reads "[1]");
        `cited[i]` is then the source shown as number i + 1."""
        self._valid = frozenset(valid_numbers)
        self._renumber = renumber
        self._pending = ""
        self._cited: list[int] = []
        self.removed = 0  # invalid citation numbers removed so far

    @property
    def cited(self) -> list[int]:
        """The valid numbers cited so far, in order of first use."""
        return list(self._cited)

    def _drain(self, final: bool) -> str:
        text, out, start = self._pending, [], 0
        self._pending = ""
        while (bracket := text.find("[", start)) >= 0:
            marker = _MARKER.match(text, bracket)
            if marker is not None and marker.end() - bracket > MAX_MARKER:
                marker = None
            if marker is None:
                tail = text[bracket:]
                if not final and len(tail) < MAX_MARKER and _MARKER_PREFIX.fullmatch(tail):
                    return self._hold(text, out, start, bracket)  # "[1, " may still become a marker
                out.append(text[start : bracket + 1])
                start = bracket + 1
                continue
            end = marker.end()
            if end == len(text) and not final:
                return self._hold(text, out, start, bracket)  # "[1]" then "(" would be a link
            following = text[end : end + 1]
            if following == "(":
                out.append(text[start:end])  # a Markdown link whose text is a number
                start = end
                continue
            replacement = self._check(marker)
            before = text[start:bracket]
            if not replacement and before.endswith(_SPACE) and following != "[":
                before = before[:-1]
            out.extend((before, replacement))
            start = end
        tail = text[start:]
        if not final and tail.endswith(_SPACE):
            out.append(tail[:-1])  # the space goes if a removed marker follows
            self._pending = tail[-1]
        else:
            out.append(tail)
        return "".join(out)

    def _hold(self, text: str, out: list[str], start: int, bracket: int) -> str:
        held_from = bracket - 1 if bracket > start and text[bracket - 1] in _SPACE else bracket
        out.append(text[start:held_from])
        self._pending = text[held_from:]
        return "".join(out)

    def _check(self, marker: re.Match[str]) -> str:
        """The marker with invalid numbers removed ("" when none is left); records what it cites."""
        numbers = _numbers(marker.group(1))
        kept = [n for n in dict.fromkeys(numbers) if n in self._valid]
        invalid = sum(1 for n in numbers if n not in self._valid)
        self.removed += invalid
        self._cited.extend(n for n in kept if n not in self._cited)
        if self._renumber:
            return "[" + ", ".join(str(self._cited.index(n) + 1) for n in kept) + "]" if kept else ""
        if not invalid:
            return marker.group(0)
        return "[" + ", ".join(map(str, kept)) + "]" if kept else ""


def _numbers(body: str) -> list[int]:
    """The numbers of a marker's body, ranges expanded ("1, 3-5" -> [1, 3, 4, 5])."""
    numbers: list[int] = []
    for item in _ITEM.finditer(body):
        low, high = int(item.group(1)), int(item.group(2) or item.group(1))
        if low <= high <= low + _MAX_RANGE:
            numbers.extend(range(low, high + 1))
        else:
            numbers.extend((low, high))
    return numbers
