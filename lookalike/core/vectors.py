"""Vector arithmetic shared by every tool: the one L2 ``normalize``, cosine ``top_k``, and retrieval metrics."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def normalize(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise rows (the last axis) as float32; zero rows stay zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def mean_direction(vectors: np.ndarray) -> np.ndarray:
    """The unit vector of the mean of the unit rows: one query that stands for several references equally.

    For a single row it is that row normalised, so a query of one reference ranks exactly as the reference does.
    """
    vectors = normalize(np.asarray(vectors, dtype=np.float32).reshape(-1, np.shape(vectors)[-1]))
    if len(vectors) == 0:
        raise ValueError("a mean direction needs at least one vector")
    return vectors[0] if len(vectors) == 1 else normalize(vectors.mean(axis=0))


def top_k(
    vectors: np.ndarray, query: np.ndarray, k: int, normalized: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosine similarities of the ``k`` rows most similar to ``query``, best first.

    Pass ``normalized=True`` when the rows are already unit length (as ``Collection.vectors`` are),
    to skip normalising the whole matrix on every query.
    """
    if len(vectors) == 0:
        return np.zeros(0, int), np.zeros(0, np.float32)
    scores = (vectors if normalized else normalize(vectors)) @ normalize(query.reshape(1, -1))[0]
    k = min(k, len(scores))
    best = np.argpartition(-scores, k - 1)[:k]
    order = best[np.lexsort((best, -scores[best]))]  # by score, ties by index: stable
    return order, scores[order]


def retrieval_metrics(
    vectors: np.ndarray, labels: Sequence[str], queries: np.ndarray | None = None
) -> dict[str, float]:
    """Leave-one-out P@1, P@5 and mAP for ranking by cosine similarity.

    ``queries`` (one row per item, default the items themselves) are what each item searches with, e.g. its
    vector re-weighted by an emphasis; the items it is ranked against stay ``vectors``.
    """
    labels_array = np.asarray(labels)
    sims = normalize(vectors if queries is None else queries) @ normalize(vectors).T
    np.fill_diagonal(sims, -np.inf)
    p1, p5, aps = [], [], []
    for i in range(len(vectors)):
        order = np.argsort(-sims[i], kind="stable")[:-1]
        relevant = labels_array[order] == labels_array[i]
        p1.append(relevant[0])
        p5.append(relevant[:5].mean())
        hits = np.cumsum(relevant)
        precision_at_hits = hits[relevant] / (np.flatnonzero(relevant) + 1)
        aps.append(precision_at_hits.mean() if relevant.any() else 0.0)
    return {"P@1": float(np.mean(p1)), "P@5": float(np.mean(p5)), "mAP": float(np.mean(aps))}


def hits_at_k(
    catalog_vectors: np.ndarray,
    catalog_labels: np.ndarray,
    query_vectors: np.ndarray,
    query_labels: np.ndarray,
    k: int,
    leave_one_out: bool = False,
    chunk: int = 256,
) -> np.ndarray:
    """Per query, the fraction of its k cosine-nearest catalog items that share its label.

    With ``leave_one_out`` the queries are the catalog itself and each query's own row is skipped.
    """
    catalog_unit, query_unit = normalize(catalog_vectors), normalize(query_vectors)
    catalog_labels, query_labels = np.asarray(catalog_labels), np.asarray(query_labels)
    hits = [np.zeros(0)]
    for start in range(0, len(query_unit), chunk):
        scores = query_unit[start : start + chunk] @ catalog_unit.T
        if leave_one_out:
            rows = np.arange(scores.shape[0])
            scores[rows, start + rows] = -np.inf
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        hits.append((catalog_labels[top] == query_labels[start : start + chunk, None]).mean(axis=1))
    return np.concatenate(hits)


def precision_at_k(
    catalog_vectors: np.ndarray,
    catalog_labels: np.ndarray,
    query_vectors: np.ndarray,
    query_labels: np.ndarray,
    k: int,
    leave_one_out: bool = False,
    chunk: int = 256,
) -> float:
    """Mean fraction of each query's k cosine-nearest catalog items that share its label (see ``hits_at_k``)."""
    return float(hits_at_k(catalog_vectors, catalog_labels, query_vectors, query_labels, k, leave_one_out,
                           chunk).mean())


def precision_by_class(hits: np.ndarray, query_labels: np.ndarray, classes: int) -> np.ndarray:
    """Mean of per-query ``hits`` within each class (NaN for a class without queries).

    Their mean weighs every class equally. On an unbalanced catalog that is the fair figure: a plain mean over
    queries rewards ranking the big class first, while the balanced mean's chance level is 1 / ``classes``
    whatever the class sizes (a random top k holds each class in proportion to its catalog share, and the
    shares average to 1 / classes).
    """
    labels = np.asarray(query_labels)
    return np.array([hits[labels == c].mean() if np.any(labels == c) else np.nan for c in range(classes)])
