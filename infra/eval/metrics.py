"""Ranking metrics as BEIR / pytrec_eval define them, for one query at a time (average them over queries).

`ranking` is the list of document ids best first (duplicates are ignored after their first place); `relevant` maps
document id -> graded relevance (> 0)."""

from __future__ import annotations

import math


def _dedupe(ranking: list[str]) -> list[str]:
    return list(dict.fromkeys(ranking))


def ndcg_at(ranking: list[str], relevant: dict[str, int], k: int = 10) -> float:
    """Normalised discounted cumulative gain with linear gains (the BEIR convention)."""
    ranking = _dedupe(ranking)[:k]
    dcg = sum(relevant.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranking))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(grade / math.log2(rank + 2) for rank, grade in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranking: list[str], relevant: dict[str, int], k: int = 10) -> float:
    if not relevant:
        return 0.0
    return len(set(_dedupe(ranking)[:k]) & set(relevant)) / len(relevant)


def mrr_at(ranking: list[str], relevant: dict[str, int], k: int = 10) -> float:
    for rank, doc in enumerate(_dedupe(ranking)[:k]):
        if doc in relevant:
            return 1.0 / (rank + 1)
    return 0.0


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation, like numpy's default."""
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
