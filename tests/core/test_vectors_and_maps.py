"""Vectors and maps: cosine top-k, retrieval metrics, the cached t-SNE map, placing a query, sampling."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.core.maps import cached_map, place_on_map, stratified_sample
from lookalike.core.vectors import normalize, precision_at_k, retrieval_metrics, top_k


def test_normalize_gives_unit_rows_and_keeps_zero_rows():
    vectors = normalize(np.array([[3, 4], [0, 0], [1, 0]], np.int64))
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), [1, 0, 1])
    np.testing.assert_allclose(vectors[0], [0.6, 0.8])


def test_top_k_is_sorted_cosine():
    vectors = np.array([[1, 0], [0.9, 0.1], [0, 1], [-1, 0], [0.7, 0.7]], np.float32)
    indices, scores = top_k(vectors, np.array([1.0, 0.0]), 3)
    assert indices.tolist() == [0, 1, 4]
    assert np.all(np.diff(scores) <= 0) and scores[0] == pytest.approx(1.0)
    assert top_k(vectors, np.array([1.0, 0.0]), 99)[0].shape == (5,)
    ties = np.ones((4, 2), np.float32)
    assert top_k(ties, np.ones(2), 4)[0].tolist() == [0, 1, 2, 3]


def test_map_is_cached_and_queries_land_near_their_neighbours(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16))
    vectors = np.concatenate([c + 0.05 * rng.normal(size=(20, 16)) for c in centres]).astype(np.float32)
    coords = cached_map(vectors, "test", root=tmp_path)
    assert coords.shape == (60, 2)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime_ns
    np.testing.assert_array_equal(cached_map(vectors, "test", root=tmp_path), coords)
    assert files[0].stat().st_mtime_ns == mtime
    x, y = place_on_map(coords, vectors, centres[1])
    cluster = coords[20:40]
    assert np.linalg.norm(cluster.mean(axis=0) - (x, y)) < np.linalg.norm(coords.std(axis=0))
    files[0].write_bytes(b"garbage")
    np.testing.assert_allclose(cached_map(vectors, "test", root=tmp_path), coords, atol=1e-4)


def test_stratified_sample_keeps_every_label():
    labels = ["a"] * 9000 + ["b"] * 900 + ["c"] * 100
    sample = stratified_sample(labels, len(labels), limit=1000)
    picked = np.asarray(labels)[sample]
    assert len(sample) <= 1000 and set(picked) == {"a", "b", "c"}
    assert abs((picked == "b").mean() - 0.09) < 0.02


def test_retrieval_metrics_against_hand_computed_values():
    vectors = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], np.float32)
    perfect = retrieval_metrics(vectors, ["a", "a", "b", "b"])
    assert perfect["P@1"] == 1.0 and perfect["mAP"] == 1.0
    crossed = retrieval_metrics(vectors, ["a", "b", "a", "b"])
    assert crossed["P@1"] == 0.0 and crossed["mAP"] == pytest.approx(5 / 12)


def test_precision_at_k_and_leave_one_out() -> None:
    vectors = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], dtype=np.float32)
    labels = np.array([0, 0, 1, 1])
    assert precision_at_k(vectors, labels, vectors, labels, 1, leave_one_out=True) == 1.0
    assert precision_at_k(vectors, labels, vectors, labels, 2, leave_one_out=True) == 0.5
    assert precision_at_k(vectors, labels, vectors[:1], labels[:1], 2) == 1.0
