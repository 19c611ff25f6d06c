"""What the answer benchmark and the gate's fitting script share: question files, scoring, AUROC, and indexes.

    load_questions(path)         JSON lines {"q", "answerable", "must"?, "kind"?, "doc"?}
    answered_correctly(turn, q)  not refused, and the answer contains one of `must` (case, Markdown and spacing
                                 aside)
    refused(turn)                action handoff or clarify, or no citations and a reply saying the documentation
                                 does not cover it
    auroc(scores, labels)        the probability that an answerable question scores above an unanswerable one
    SampleIndex                  the sample knowledge base parsed, chunked and embedded by the real code into a
                                 PostgreSQL database (as ingest and embed would), for fitting without a running stack
    hidden_retriever(...)        the product's Retriever with some documents hidden from both legs and the
                                 identifier lookup: the counterfactual "the documents that answer it do not exist"
"""

from __future__ import annotations

import json
import mimetypes
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_KB = ROOT / "infra" / "sample_kb"
QUESTIONS = ROOT / "infra" / "answers" / "sample-kb.jsonl"
TRAINING = ROOT / "infra" / "answers" / "train-sample-kb.jsonl"
TRAINING_FILES = (TRAINING, ROOT / "infra" / "answers" / "train-typical.jsonl")
REFUSALS = ("handoff", "clarify")
_MARKUP = re.compile(r"[*_`]+|\[\d+\]")


@dataclass(frozen=True)
class Question:
    q: str
    answerable: bool
    must: tuple[str, ...] = ()
    kind: str = ""
    doc: str = ""  # the object name of the document that answers it, when the file says


def load_questions(path: Path) -> list[Question]:
    """The questions of a JSON-lines file; a malformed line raises ValueError naming its line number."""
    questions = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            question = Question(q=str(data["q"]), answerable=bool(data["answerable"]),
                                must=tuple(str(m) for m in data.get("must") or ()), kind=str(data.get("kind") or ""),
                                doc=str(data.get("doc") or ""))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a question line ({exc})") from None
        if not question.q.strip():
            raise ValueError(f"{path}:{number}: empty question")
        questions.append(question)
    return questions


def normalize(text: str) -> str:
    """Lower case, Markdown emphasis, code ticks and citation markers removed, whitespace collapsed."""
    return " ".join(_MARKUP.sub("", text).replace("–", "-").lower().split())


def contains_any(answer: str, must: Iterable[str]) -> bool:
    text = normalize(answer)
    return any(normalize(m) in text for m in must)


def refused(turn: dict) -> bool:
    """Whether a chat turn (the JSON of POST /v1/chat) declined to answer (see the module doc)."""
    from shared.chat.service import says_not_covered

    if turn.get("action") in REFUSALS:
        return True
    return not turn.get("citations") and says_not_covered(turn.get("answer", ""))


def answered_correctly(turn: dict, question: Question) -> bool:
    return not refused(turn) and contains_any(turn.get("answer", ""), question.must)


def auroc(scores: list[float], labels: list[bool]) -> float:
    """Mann-Whitney: P(score of a positive > score of a negative), ties counting half. NaN without both classes."""
    positives = [s for s, y in zip(scores, labels) if y]
    negatives = [s for s, y in zip(scores, labels) if not y]
    if not positives or not negatives:
        return float("nan")
    ranked = sorted((s, y) for s, y in zip(scores, labels))
    rank_sum, i = 0.0, 0
    while i < len(ranked):  # average ranks over ties
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        average = (i + 1 + j) / 2
        rank_sum += average * sum(1 for _, y in ranked[i:j] if y)
        i = j
    n_pos, n_neg = len(positives), len(negatives)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def sample_files() -> list[tuple[str, Path]]:
    from infra.dev import sample_files as files

    return files()


def expected_documents(question: Question, texts: dict[str, str]) -> set[str]:
    """The object names whose text holds one of the question's `must` strings (or its `doc`)."""
    if question.doc:
        return {question.doc}
    return {name for name, text in texts.items() if any(normalize(m) in text for m in question.must)}


def sample_documents() -> dict[str, tuple[str, str]]:
    """Each sample document's title (as ingest records it) and parsed text (normalized), by object name."""
    from shared.config import Settings
    from shared.ingest.pipeline import prepare_document

    settings = Settings()
    documents = {}
    for name, path in sample_files():
        parsed = prepare_document(path.read_bytes(), path.name, mimetypes.guess_type(path.name)[0], settings).parsed
        documents[name] = (parsed.title, normalize(" ".join(block.text for block in parsed.blocks)))
    return documents


@dataclass
class SampleIndex:
    """The sample knowledge base indexed into `db` for `tenant` by the real parser, chunker, embedder and index."""

    settings: object
    db: object
    tenant: str = "answers"
    bucket: str = "knowledge"
    document_ids: dict[str, str] = field(default_factory=dict)  # object name -> document id

    def build(self) -> SampleIndex:
        from shared.documents import DocumentStore, document_id
        from shared.embeddings import create_embedder
        from shared.embeddings.cache import EmbeddingCache
        from shared.ingest.indexer import Indexer
        from shared.ingest.pipeline import prepare_document
        from shared.models import content_hash
        from shared.vectors import create_vector_index

        store = DocumentStore(self.db)
        indexer = Indexer(self.settings, store, create_embedder(self.settings), EmbeddingCache(self.db),
                          create_vector_index(self.settings, self.db))
        for name, path in sample_files():
            data = path.read_bytes()
            uri = f"gs://{self.bucket}/{name}"
            doc_id, digest = document_id(self.tenant, uri), content_hash(data)
            self.document_ids[name] = doc_id
            existing = store.get_document(doc_id)
            if existing and existing.live_version_id:
                live = store.get_version(existing.live_version_id, with_blocks=False)
                if live and live.content_hash == digest:
                    continue
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            parsed = prepare_document(data, path.name, content_type, self.settings).parsed  # as ingest parses
            version = store.record_version(doc_id=doc_id, tenant=self.tenant, source_uri=uri, url="",
                                           topic=name.split("/", 1)[0], title=parsed.title,
                                           generation=1, content_hash=digest, content_type=content_type,
                                           size_bytes=len(data), blocks=parsed.blocks, status="queued")
            indexer.index_version(version.id)
        return self


def sources_of(documents) -> list:
    """The numbered sources chat builds from retrieved documents (their URLs aside: the gate does not read them)."""
    from shared.answerability.passages import source_text
    from shared.llm.types import Source

    return [Source(number=i, title=d.title, text=source_text(d), url="", document_id=d.document_id)
            for i, d in enumerate(documents, 1)]


# Per word of a text: the chunks of the hidden documents that contain it (as the keyword leg analyses the text).
_HIDDEN_DF_SQL = """
WITH words AS (
    SELECT lower(token) AS word, unnest(lexemes) AS lexeme FROM ts_debug('english', %s)
    WHERE lexemes IS NOT NULL AND cardinality(lexemes) > 0
)
SELECT w.word, max(n) FROM (
    SELECT w.word, w.lexeme, count(DISTINCT t.chunk_seq) AS n
    FROM words w JOIN chunk_terms t ON t.tenant = %s AND t.lexeme = w.lexeme JOIN chunks c ON c.seq = t.chunk_seq
    WHERE c.document_id = ANY(%s) GROUP BY w.word, w.lexeme
) AS w GROUP BY w.word
"""


class _Hiding:
    """A retrieval leg whose results leave out some documents (asked for more, so the list keeps its length); the
    keyword leg's word statistics leave them out too, as if they had never been indexed."""

    def __init__(self, leg, hidden: set[str], extra: int):
        self._leg, self._extra = leg, extra
        self.hidden = hidden

    def __getattr__(self, name):
        return getattr(self._leg, name)

    def search(self, question, tenant, top_k=50, topics=None, *, with_text=True):
        hits = self._leg.search(question, tenant, top_k + self._extra, topics, with_text=with_text)
        return [h for h in hits if h.document_id not in self.hidden][:top_k]

    def term_frequencies(self, tenant: str, text: str) -> tuple[int, dict[str, int]]:
        chunks, df = self._leg.term_frequencies(tenant, text)
        if not self.hidden:
            return chunks, df
        with self._leg._db.transaction() as cur:
            cur.execute("SELECT count(*) FROM chunks WHERE tenant = %s AND document_id = ANY(%s)",
                        (tenant, list(self.hidden)))
            chunks -= int(cur.fetchone()[0])
            cur.execute(_HIDDEN_DF_SQL, (text, tenant, list(self.hidden)))
            for word, n in cur.fetchall():
                word = word.strip("-+")
                if word in df:
                    df[word] = max(0, df[word] - int(n))
        return chunks, df


def hidden_retriever(retriever, extra: int = 40):
    """A copy of `retriever` whose `hidden` set of document ids is left out of everything it returns and of the word
    statistics its keyword leg gives the gate; fill `copy.hidden` before each question."""
    from shared.retrieval.hybrid import Retriever

    hidden: set[str] = set()

    class HidingRetriever(Retriever):
        def _exact_matches(self, query, tenant, topics):
            identifiers, hits = super()._exact_matches(query, tenant, topics)
            return identifiers, [h for h in hits if h.document_id not in hidden]

    copy = HidingRetriever.__new__(HidingRetriever)
    copy.__dict__.update(retriever.__dict__)
    copy.keyword = _Hiding(retriever.keyword, hidden, extra)
    copy.vector = _Hiding(retriever.vector, hidden, extra)
    copy.hidden = hidden
    return copy
