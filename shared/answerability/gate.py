"""The answerability gate: the probability that the retrieved documents answer the question, from several signals.

    features(terms, documents, passages)   the signals, each on a fixed scale (FEATURES)
    Model                        logistic regression over them: p = 1 / (1 + exp(-(intercept + sum w_i x_i)))
    Gate.assess(...)             the question's terms (weighted by the knowledge base), the features, the
                                 probability, and whether it clears the threshold (ANSWER_MIN_CONFIDENCE)

Similarity alone cannot tell "about the topic" from "answers the question": "Do you offer a discount for students?"
is close to the pricing page, which never mentions students. So the question's salient terms are checked against
what was found:

    similarity        the best cosine similarity among the first three documents (the vector leg)
    document          the share of the question's term weight that the best of them contains (its retrieved
                      passages, headings and title): rare words count more
    passage           the same share for the best single passage (a sentence, list item, table row or FAQ answer)
                      of the sources; a term only its heading or the document's title contains counts half
    passage_similarity  the best cosine similarity of the question and one passage (see passages.py)
    unknown           the share of the question's term weight the knowledge base never mentions anywhere
    unknown_name      1 when a name, a code or a word rare in English of the question (Salesforce, BW-9999, zapier,
                      waitlist) is unknown to it
    exact             1 when an identifier of the question was found verbatim (an error code in the table)
    terms             how many salient terms the question has, as ln(1 + n)

The coefficients live in a reviewed JSON file (model.json beside this module, or ANSWERABILITY_MODEL), written by
`python -m infra.fit_answerability` from labelled questions, which prints how the threshold was chosen. The
similarity's scale belongs to the embedder the model was fitted with (the file names it): after changing EMBEDDER,
refit.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shared.answerability.passages import Passage, PassageScorer
from shared.answerability.terms import Term, coverage, question_terms, stems

log = logging.getLogger(__name__)

FEATURES = ("similarity", "document", "passage", "passage_similarity", "unknown", "unknown_name", "exact", "terms")
DEFAULT_MODEL = Path(__file__).with_name("model.json")
TOP_DOCUMENTS = 3  # the documents whose similarity and coverage are measured


@dataclass(frozen=True)
class Model:
    intercept: float
    weights: dict[str, float]
    embedder: str = ""  # the embedder whose similarities it was fitted on
    threshold: float = 0.5  # the threshold the fit chose (the default of ANSWER_MIN_CONFIDENCE)
    meta: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path = DEFAULT_MODEL) -> Model:
        data = json.loads(Path(path).read_text())
        weights = {name: float(data["weights"][name]) for name in FEATURES}  # KeyError names a missing feature
        return cls(float(data["intercept"]), weights, str(data.get("embedder", "")),
                   float(data.get("threshold", 0.5)), dict(data.get("meta", {})))

    def probability(self, features: dict[str, float]) -> float:
        z = self.intercept + sum(self.weights[name] * features[name] for name in FEATURES)
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


@dataclass(frozen=True)
class Assessment:
    probability: float  # the turn's `confidence`
    answerable: bool  # probability >= threshold
    features: dict[str, float]
    terms: list[Term]
    passages: list[Passage] = field(default_factory=list)  # the scored units of the first sources


def features(terms: Sequence[Term], documents: Sequence, passages: Sequence[Passage]) -> dict[str, float]:
    """The gate's signals for a question's terms, the retrieved documents (DocumentHit, best first) and the scored
    passages of their sources."""
    top = list(documents[:TOP_DOCUMENTS])
    total = sum(t.weight for t in terms)
    document_share = 0.0
    for document in top:
        title = stems(document.title)
        headings = set().union(set(), *(stems(" ".join(c.heading_path)) for c in document.chunks))
        text = "\n\n".join(c.text for c in document.chunks)
        document_share = max(document_share, coverage(terms, stems(text) | title | headings))
    unknown = sum(t.weight for t in terms if not t.known) / total if total else 0.0
    return {
        "similarity": max((d.vector_score for d in top), default=0.0),
        "document": document_share,
        "passage": max((p.share for p in passages), default=0.0),
        "passage_similarity": max((p.similarity for p in passages), default=0.0),
        "unknown": unknown,
        "unknown_name": 1.0 if any(t.name and not t.known for t in terms) else 0.0,
        "exact": 1.0 if top and top[0].exact else 0.0,
        "terms": math.log1p(len(terms)),
    }


class Gate:
    """Decides whether the retrieved documents answer the question (see the module doc)."""

    def __init__(self, model: Model, threshold: float,
                 frequencies: Callable[[str, str], tuple[int, dict[str, int]]] | None = None,
                 passages: PassageScorer | None = None,
                 question_vector: Callable[[str], Sequence[float]] | None = None):
        self.model = model
        self.threshold = threshold
        self._frequencies = frequencies  # (tenant, text) -> (chunks, {word: chunks containing it})
        self._passages = passages or PassageScorer()
        self._question_vector = question_vector  # the question's embedding (cached by the vector leg)

    def terms(self, question: str, tenant: str) -> list[Term]:
        lookup = None if self._frequencies is None else (lambda text: self._frequencies(tenant, text))
        return question_terms(question, lookup)

    def measure(self, question: str, tenant: str, documents: Sequence, sources: Sequence):
        """(terms, passages, features) of a question and what was retrieved for it."""
        terms = self.terms(question, tenant)
        vector = self._question_vector(question) if self._question_vector is not None and sources else None
        passages = self._passages.score(vector, terms, sources)
        return terms, passages, features(terms, documents, passages)

    def assess(self, question: str, tenant: str, documents: Sequence, sources: Sequence) -> Assessment:
        """The decision for a question, its retrieved documents and the sources built from them (in order)."""
        if not documents:
            return Assessment(0.0, False, dict.fromkeys(FEATURES, 0.0), self.terms(question, tenant))
        terms, passages, signals = self.measure(question, tenant, documents, sources)
        probability = round(self.model.probability(signals), 3)
        return Assessment(probability, probability >= self.threshold, signals, terms, passages)


def create_gate(settings, retriever, cache=None) -> Gate:
    """The gate of these settings: ANSWERABILITY_MODEL (or the shipped model), ANSWER_MIN_CONFIDENCE, the word
    statistics of the retriever's keyword leg, and its vector leg's embedder for the passages (through `cache`, an
    EmbeddingCache). Warns when the model was fitted with another embedder."""
    model = Model.load(settings.answerability_model or DEFAULT_MODEL)
    vector = retriever.vector
    if model.embedder and model.embedder != vector.embedder_key:
        log.warning("the answerability model was fitted with the embedder %s, this instance embeds with %s: "
                    "similarities are on another scale; refit it (python -m infra.fit_answerability)",
                    model.embedder, vector.embedder_key)
    return Gate(model, settings.answer_min_confidence, retriever.keyword.term_frequencies,
                PassageScorer(vector.embedder, cache), vector.embed_question)
