"""Domain types shared by every service and port. Ports speak these, never SQL rows or vendor objects."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Block:
    """One structural unit of a parsed document, in reading order.

    kind:  heading | paragraph | list | code | table | faq
    text:  the block's text, Markdown-flavoured (list items start with "- " or "1. ", tables are pipe tables,
           code is the raw code without fences). For a faq block: the answer.
    level: heading level 1-6 (0 for other kinds).
    info:  code language for code blocks; the question for faq blocks; "" otherwise.
    """

    kind: str
    text: str
    level: int = 0
    info: str = ""

    def to_json(self) -> dict:
        data = {"kind": self.kind, "text": self.text}
        if self.level:
            data["level"] = self.level
        if self.info:
            data["info"] = self.info
        return data

    @classmethod
    def from_json(cls, data: dict) -> Block:
        return cls(kind=data["kind"], text=data["text"], level=data.get("level", 0), info=data.get("info", ""))


@dataclass(frozen=True)
class ParsedDocument:
    """Clean text with structure kept, as a parser returns it."""

    title: str
    blocks: list[Block]


@dataclass(frozen=True)
class ChunkDraft:
    """What the chunker produces: a piece of a document with its heading path as context."""

    ordinal: int
    heading_path: tuple[str, ...]
    text: str
    token_count: int

    @property
    def embedding_text(self) -> str:
        return embedding_text(self.heading_path, self.text)

    @property
    def content_hash(self) -> str:
        return content_hash(self.embedding_text)


@dataclass(frozen=True)
class Chunk:
    """A stored chunk of a document version. `id` is derived from the document, so a retry overwrites."""

    id: str
    tenant: str
    document_id: str
    version_id: str
    ordinal: int
    title: str
    topic: str
    source_uri: str
    heading_path: tuple[str, ...]
    text: str
    token_count: int
    content_hash: str
    url: str = ""

    @property
    def embedding_text(self) -> str:
        return embedding_text(self.heading_path, self.text)


@dataclass(frozen=True)
class VectorRecord:
    """One vector in a vector index: id = chunk id, metadata for filtering."""

    id: str
    values: list[float]
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class VectorMatch:
    id: str
    score: float
    metadata: dict = field(default_factory=dict)


def embedding_text(heading_path: tuple[str, ...], text: str) -> str:
    """The text that is embedded: the heading path as context, then the body."""
    return " > ".join(heading_path) + "\n\n" + text if heading_path else text


def content_hash(text: str | bytes) -> str:
    """sha256 hex digest of text (UTF-8) or bytes."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()
