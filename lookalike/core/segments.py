"""Vectors made of segments: per-segment cosines ("why it matched") and per-segment query weights (emphasis).

A compact style vector is the concatenation of one part per layer, each normalised on its own and weighted,
and a collection stores it L2-normalised. The cosine of two such vectors is therefore a weighted sum of the
cosines of their segments, ``score = sum(weight_l * cosine_l)``, which is what an explanation shows.

Emphasis scales the segments of the *query only*. A stored vector and every index stay as they are, and the
index's cosine with the scaled query is the same weighted sum with new weights: re-ranking needs no model and no
re-indexing. Emphasis 0 leaves the query untouched, so it gives exactly the unweighted ranking.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Segment:
    """Columns ``start:stop`` of a vector: one layer's part, named for people by ``label``."""

    name: str
    label: str
    start: int
    stop: int

    @property
    def columns(self) -> slice:
        return slice(self.start, self.stop)


def check_layout(segments: Sequence[Segment], dim: int) -> None:
    """Raise ``ValueError`` unless the segments tile ``dim`` columns, in order, with no gap."""
    edges = [0, *(edge for s in segments for edge in (s.start, s.stop)), dim]
    if not segments or any(a != b for a, b in zip(edges[::2], edges[1::2], strict=True)):
        raise ValueError(f"segments {[(s.start, s.stop) for s in segments]} do not tile {dim} columns")


def check_emphasis(emphasis: float) -> float:
    """The emphasis as a float in [-1, 1], or ``ValueError`` with a message a person can act on."""
    value = float(emphasis)
    if not math.isfinite(value) or not -1.0 <= value <= 1.0:
        raise ValueError(f"emphasis must be between -1 (finest layer only) and 1 (coarsest layer only), not {emphasis}")
    return value


def emphasis_weights(count: int, emphasis: float) -> np.ndarray:
    """Weights of ``count`` segments, fine to coarse: all 1 at emphasis 0; the finest alone at -1, the coarsest
    alone at +1. In between a segment gets ``(1 - |emphasis|) ** (2 d)``, where ``d`` (0 to 1) is its distance
    from the favoured end, so weights fall smoothly away from that end and reach exactly 0 at ±1."""
    emphasis = check_emphasis(emphasis)
    if count < 2 or emphasis == 0.0:
        return np.ones(count)
    position = np.linspace(0.0, 1.0, count)  # 0 = finest, 1 = coarsest
    distance = 1.0 - position if emphasis > 0 else position
    return np.float64(1.0 - abs(emphasis)) ** (2.0 * distance)


def emphasise(vectors: np.ndarray, segments: Sequence[Segment], emphasis: float) -> np.ndarray:
    """``vectors`` (one query, or rows of queries) with each segment scaled by its emphasis weight.

    At emphasis 0 the input itself is returned, untouched, so the ranking is exactly the unweighted one.
    """
    vectors = np.asarray(vectors)
    check_layout(segments, vectors.shape[-1])
    weights = emphasis_weights(len(segments), emphasis)
    if (weights == 1.0).all():
        return vectors
    scaled = np.array(vectors, dtype=np.float32, copy=True)
    for segment, weight in zip(segments, weights, strict=True):
        scaled[..., segment.columns] *= np.float32(weight)
    return scaled


@dataclass(frozen=True)
class Breakdown:
    """Why each of ``n`` items matched a query: per-segment ``cosines`` (n, L) and the ``weights`` (n, L) with
    which they add up to each item's score against the (emphasised) query."""

    segments: tuple[Segment, ...]
    cosines: np.ndarray
    weights: np.ndarray

    @property
    def scores(self) -> np.ndarray:
        """Each item's cosine with the emphasised query: what the index ranks by."""
        return (self.weights * self.cosines).sum(axis=1)

    @property
    def similarities(self) -> np.ndarray:
        """The weighted mean of each item's segment cosines: 1 for an identical image at any emphasis.

        Stored vectors give every item the same total weight, so this orders items as ``scores`` do; at
        emphasis 0 the weights add up to 1 and it equals the score.
        """
        total = self.weights.sum(axis=1)
        return np.divide(self.scores, total, out=np.zeros_like(total), where=total > 0)

    def shares(self) -> np.ndarray:
        """Each segment's weight as a fraction of the item's total weight (rows sum to 1)."""
        total = self.weights.sum(axis=1, keepdims=True)
        return self.weights / np.where(total > 0, total, 1.0)


def _norms(rows: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("...i,...i->...", rows, rows))


def breakdown(query: np.ndarray, items: np.ndarray, segments: Sequence[Segment], emphasis: float = 0.0) -> Breakdown:
    """Exact per-segment cosines of ``items`` (n, d) with ``query`` (d,), and the weights that make
    ``sum(weights * cosines)`` equal each item's cosine with ``emphasise(query, emphasis)``.

    A segment's cosine does not depend on the emphasis (scaling a segment keeps its direction); only its
    weight does, and a segment that the emphasis switches off keeps its cosine with weight 0.
    """
    query = np.asarray(query, dtype=np.float64).reshape(-1)
    items = np.asarray(items, dtype=np.float64).reshape(-1, query.shape[0])
    check_layout(segments, query.shape[0])
    scale = emphasis_weights(len(segments), emphasis)
    cosines = np.zeros((len(items), len(segments)))
    products = np.zeros((len(items), len(segments)))  # |x_l| * |scale_l * q_l|
    query_norms = np.zeros(len(segments))
    for column, segment in enumerate(segments):
        q, x = query[segment.columns], items[:, segment.columns]
        query_norms[column] = _norms(q)
        denominator = _norms(x) * query_norms[column]
        cosines[:, column] = np.divide(x @ q, denominator, out=np.zeros(len(items)), where=denominator > 0)
        products[:, column] = denominator * scale[column]
    total = _norms(items) * float(np.sqrt(np.sum((scale * query_norms) ** 2)))  # |x| * |emphasised query|
    weights = np.divide(products, total[:, None], out=np.zeros_like(products), where=total[:, None] > 0)
    return Breakdown(tuple(segments), cosines, weights)
