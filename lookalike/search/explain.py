"""Ranking that explains itself: the query re-weighted by an emphasis, and each result's per-segment breakdown.

Only the query changes with the emphasis; the collection's vectors and its index (exact, faiss or milvus) are
used as they are, so moving the emphasis re-ranks with no model call and no re-indexing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lookalike.core import backends
from lookalike.core.segments import Breakdown, Segment, breakdown, emphasise
from lookalike.search.folders import Collection
from lookalike.search.ranking import SearchResult, rank, rank_with_index


@dataclass(frozen=True)
class ExplainedResults:
    """Ranked results and, row for row, why each matched."""

    results: list[SearchResult]
    why: Breakdown


def explained_search(
    collection: Collection,
    query: np.ndarray,
    segments: Sequence[Segment],
    k: int,
    emphasis: float = 0.0,
    index: backends.VectorIndex | None = None,
    saved_index: backends.VectorIndex | None = None,
) -> ExplainedResults:
    """The ``k`` best matches for ``query`` under ``emphasis``, with their per-segment breakdown.

    ``index`` is a ``positional_index`` of the collection (ids are rows); ``saved_index`` a backend index kept
    by ``sync_index`` (ids from content). With neither, the collection is ranked in memory.
    """
    weighted = emphasise(query, segments, emphasis)
    if saved_index is not None:
        results = rank_with_index(collection, saved_index, weighted, k)
    else:
        results = rank(collection, weighted, k, index)
    rows = [result.row for result in results]
    return ExplainedResults(results, breakdown(query, collection.vectors[rows], segments, emphasis))


def explanation_lines(why: Breakdown, row: int, width: int = 24, fill: str = "#") -> list[str]:
    """One text line per segment of result ``row``: label, a bar of its cosine, the cosine, and its weight as a
    share of the result's weights (0% where the emphasis switched it off)."""
    labels = [segment.label for segment in why.segments]
    pad = max(map(len, labels))
    shares = why.shares()[row]
    lines = []
    for label, cosine, share in zip(labels, why.cosines[row], shares, strict=True):
        filled = round(min(max(float(cosine), 0.0), 1.0) * width)
        lines.append(f"{label:<{pad}}  {fill * filled}{'.' * (width - filled)}  {cosine:6.3f}  weight {share:4.0%}")
    return lines
