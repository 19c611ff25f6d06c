"""Load a BEIR-layout data set: `corpus.jsonl[.gz]`, `queries*.jsonl`, `qrels*.tsv` (file names are arguments, since
data sets name their splits differently).

    corpus   {"_id", "title", "text", "metadata"?}     one document per line
    queries  {"_id", "text", "metadata": {"split"?}}   one query per line
    qrels    query-id <TAB> corpus-id <TAB> score       a header line first; score > 0 means relevant
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    text: str
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Query:
    id: str
    text: str
    split: str = ""


def _lines(path: Path) -> Iterator[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield line


def load_corpus(path: Path) -> Iterator[Document]:
    for line in _lines(path):
        row = json.loads(line)
        yield Document(id=str(row["_id"]), title=row.get("title") or "", text=row.get("text") or "",
                       metadata=row.get("metadata") or {})


def load_queries(path: Path) -> list[Query]:
    queries = []
    for line in _lines(path):
        row = json.loads(line)
        queries.append(Query(id=str(row["_id"]), text=row["text"], split=(row.get("metadata") or {}).get("split", "")))
    return queries


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    """query id -> {document id: relevance grade}, keeping only grades > 0."""
    qrels: dict[str, dict[str, int]] = {}
    for number, line in enumerate(_lines(path)):
        parts = line.rstrip("\n").split("\t")
        if number == 0 and not parts[-1].strip().lstrip("-").isdigit():
            continue  # the header line
        if len(parts) != 3:
            raise ValueError(f"{path}:{number + 1}: expected query-id<TAB>corpus-id<TAB>score")
        query_id, doc_id, score = parts
        if int(score) > 0:
            qrels.setdefault(query_id, {})[doc_id] = int(score)
    return qrels
