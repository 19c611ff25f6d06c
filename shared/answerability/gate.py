"""The answerability gate: the probability that the retrieved documents answer the question, from several signals.

    features(terms, documents)   the signals, each on a fixed scale (FEATURES)
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
                      of those documents; a term only its heading or the document's title contains counts half
    unknown           the share of the question's term weight the knowledge base never mentions anywhere
    unknown_name      1 when a name or code of the question (Salesforce, SSO, BW-9999) is unknown to it
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

from shared.answerability.terms import Term, coverage, question_terms, stems
from shared.llm.extractive import units

log = logging.getLogger(__name__)

FEATURES = ("similarity", "document", "passage", "unknown", "unknown_name", "exact", "terms")
DEFAULT_MODEL = Path(__file__).with_name("model.json")
TOP_DOCUMENTS = 3  # the documents an answer would mostly quote


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


def features(terms: Sequence[Term], documents: Sequence) -> dict[str, float]:
    """The gate's signals for a question's terms and the retrieved documents (DocumentHit, best first)."""
    top = list(documents[:TOP_DOCUMENTS])
    total = sum(t.weight for t in terms)
    document_share = passage = 0.0
    for document in top:
        title = stems(document.title)
        headings = set().union(set(), *(stems(" ".join(c.heading_path)) for c in document.chunks))
        text = "\n\n".join(c.text for c in document.chunks)
        document_share = max(document_share, coverage(terms, stems(text) | title | headings))
        for unit in units(text):
            passage = max(passage, coverage(terms, stems(unit.text), stems(unit.heading) | title))
    unknown = sum(t.weight for t in terms if not t.known) / total if total else 0.0
    return {
        "similarity": max((d.vector_score for d in top), default=0.0),
        "document": document_share,
        "passage": passage,
        "unknown": unknown,
        "unknown_name": 1.0 if any(t.name and not t.known for t in terms) else 0.0,
        "exact": 1.0 if top and top[0].exact else 0.0,
        "terms": math.log1p(len(terms)),
    }


class Gate:
    """Decides whether the retrieved documents answer the question (see the module doc)."""

    def __init__(self, model: Model, threshold: float,
                 frequencies: Callable[[str, str], tuple[int, dict[str, int]]] | None = None):
        self.model = model
        self.threshold = threshold
        self._frequencies = frequencies  # (tenant, text) -> (chunks, {word: chunks containing it})

    def terms(self, question: str, tenant: str) -> list[Term]:
        lookup = None if self._frequencies is None else (lambda text: self._frequencies(tenant, text))
        return question_terms(question, lookup)

    def assess(self, question: str, tenant: str, documents: Sequence) -> Assessment:
        terms = self.terms(question, tenant)
        if not documents:
            return Assessment(0.0, False, dict.fromkeys(FEATURES, 0.0), terms)
        signals = features(terms, documents)
        probability = round(self.model.probability(signals), 3)
        return Assessment(probability, probability >= self.threshold, signals, terms)


def create_gate(settings, keyword, embedder_key: str = "") -> Gate:
    """The gate of these settings: ANSWERABILITY_MODEL (or the shipped model), ANSWER_MIN_CONFIDENCE, and the word
    statistics of `keyword` (a KeywordSearch). Warns when the model was fitted with another embedder."""
    model = Model.load(settings.answerability_model or DEFAULT_MODEL)
    if model.embedder and embedder_key and model.embedder != embedder_key:
        log.warning("the answerability model was fitted with the embedder %s, this instance embeds with %s: "
                    "similarities are on another scale; refit it (python -m infra.fit_answerability)",
                    model.embedder, embedder_key)
    return Gate(model, settings.answer_min_confidence, keyword.term_frequencies)
