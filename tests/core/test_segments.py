"""Segmented vectors (``lookalike.core.segments``): per-segment cosines that add up to the score, and the
emphasis that re-weights a query's segments; ``mean_direction`` for several references."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.core.segments import (
    Segment,
    breakdown,
    check_emphasis,
    check_layout,
    emphasis_weights,
    emphasise,
)
from lookalike.core.vectors import mean_direction, normalize, retrieval_metrics, top_k

DIMS = (4, 6, 7, 8, 8)
EMPHASES = (-1.0, -0.75, -0.5, -0.25, 0.0, 0.3, 0.5, 1.0)


def layout(dims=DIMS) -> tuple[Segment, ...]:
    edges = np.cumsum((0, *dims))
    pairs = zip(edges[:-1], edges[1:], strict=True)
    return tuple(Segment(f"layer{i}", f"label {i}", int(a), int(b)) for i, (a, b) in enumerate(pairs))


def style_like(n: int, dims=DIMS, seed: int = 0) -> np.ndarray:
    """Vectors built as style vectors are: each segment unit length, concatenated, then normalised."""
    rng = np.random.default_rng(seed)
    parts = [normalize(rng.normal(size=(n, d)) + 0.5) for d in dims]
    return normalize(np.concatenate(parts, axis=1))


@pytest.mark.parametrize("emphasis", EMPHASES)
def test_segment_cosines_times_their_weights_add_up_to_the_score(emphasis):
    items, segments = style_like(40), layout()
    query = style_like(1, seed=1)[0] * 3.0  # any length: the index normalises the query
    why = breakdown(query, items, segments, emphasis)
    weighted = normalize(emphasise(query, segments, emphasis))
    np.testing.assert_allclose(why.scores, items @ weighted, atol=1e-6)
    np.testing.assert_allclose((why.weights * why.cosines).sum(axis=1), items @ weighted, atol=1e-6)
    # Each cosine is the plain cosine of that segment, whatever the emphasis.
    for column, segment in enumerate(segments):
        part = normalize(items[:, segment.columns]) @ normalize(query[segment.columns])
        np.testing.assert_allclose(why.cosines[:, column], part, atol=1e-6)


def test_the_sum_holds_for_vectors_of_any_segment_lengths():
    rng = np.random.default_rng(3)
    items, query, segments = rng.normal(size=(10, 33)), rng.normal(size=33), layout()
    why = breakdown(query, items, segments, 0.5)
    np.testing.assert_allclose(why.scores, normalize(items) @ normalize(emphasise(query, segments, 0.5)), atol=1e-6)


def test_at_emphasis_zero_the_weights_of_style_vectors_are_equal_and_add_up_to_one():
    why = breakdown(style_like(1, seed=4)[0], style_like(5), layout(), 0.0)
    np.testing.assert_allclose(why.weights, 1 / len(DIMS), atol=1e-6)
    np.testing.assert_allclose(why.similarities, why.scores, atol=1e-6)


def test_similarity_is_one_for_the_query_itself_at_any_emphasis():
    items = style_like(6)
    for emphasis in EMPHASES:
        why = breakdown(items[2], items, layout(), emphasis)
        assert why.similarities[2] == pytest.approx(1.0, abs=1e-6)
        order = np.argsort(-why.scores, kind="stable")
        assert (np.argsort(-why.similarities, kind="stable") == order).all()  # same order as the scores


def test_emphasis_zero_leaves_the_query_untouched_and_the_ranking_exactly_as_it_was():
    items, query = style_like(200), style_like(1, seed=9)[0]
    assert emphasise(query, layout(), 0.0) is query
    assert emphasise(items, layout(), -0.0) is items
    before = top_k(items, query, 50, normalized=True)
    after = top_k(items, emphasise(query, layout(), 0.0), 50, normalized=True)
    assert (before[0] == after[0]).all() and (before[1] == after[1]).all()


@pytest.mark.parametrize(("emphasis", "segment"), [(-1.0, 0), (1.0, -1)])
def test_emphasis_at_either_end_ranks_by_that_segment_alone(emphasis, segment):
    items, query, segments = style_like(300), style_like(1, seed=5)[0], layout()
    columns = segments[segment].columns
    ranked = top_k(items, emphasise(query, segments, emphasis), 300, normalized=True)[0]
    brute = np.argsort(-(normalize(items[:, columns]) @ normalize(query[columns])), kind="stable")
    assert (ranked == brute).all()
    why = breakdown(query, items, segments, emphasis)
    others = [i for i in range(len(segments)) if i != segment % len(segments)]
    assert (why.weights[:, others] == 0).all() and (why.shares()[:, segment] == 1).all()


def test_emphasis_weights_fall_smoothly_away_from_the_favoured_end():
    assert emphasis_weights(5, 0.0).tolist() == [1, 1, 1, 1, 1]
    assert emphasis_weights(5, -1.0).tolist() == [1, 0, 0, 0, 0]
    assert emphasis_weights(5, 1.0).tolist() == [0, 0, 0, 0, 1]
    coarse, fine = emphasis_weights(5, 0.5), emphasis_weights(5, -0.5)
    assert (np.diff(coarse) > 0).all() and (np.diff(fine) < 0).all()
    np.testing.assert_allclose(coarse, fine[::-1])
    assert coarse[-1] == 1 and 0 < coarse[0] < 1
    # Stronger emphasis, smaller far weights.
    assert (emphasis_weights(5, 0.75)[:-1] < coarse[:-1]).all()
    assert emphasis_weights(1, 1.0).tolist() == [1]  # one segment: nothing to re-weight


@pytest.mark.parametrize("bad", [1.5, -2, float("nan"), float("inf")])
def test_emphasis_outside_minus_one_to_one_is_refused(bad):
    with pytest.raises(ValueError, match="between -1"):
        check_emphasis(bad)
    with pytest.raises(ValueError):
        emphasise(np.ones(sum(DIMS)), layout(), bad)


def test_segments_must_tile_the_vector():
    check_layout(layout(), sum(DIMS))
    with pytest.raises(ValueError, match="do not tile"):
        check_layout(layout(), sum(DIMS) + 1)
    with pytest.raises(ValueError, match="do not tile"):
        check_layout((Segment("a", "a", 0, 3), Segment("b", "b", 4, 6)), 6)
    with pytest.raises(ValueError, match="do not tile"):
        breakdown(np.ones(5), np.ones((2, 5)), layout(), 0.0)


def test_stored_vectors_are_never_changed():
    items = style_like(20)
    copy = items.copy()
    breakdown(items[0], items, layout(), 1.0)
    emphasise(items[0], layout(), 1.0)
    emphasise(items, layout(), -0.5)
    assert (items == copy).all()


def test_mean_of_one_reference_is_that_reference():
    items, query = style_like(100), style_like(1, seed=2)[0] * 2.5
    mean = mean_direction(query[None])
    np.testing.assert_allclose(mean, normalize(query), atol=1e-7)
    a, b = top_k(items, query, 100, normalized=True), top_k(items, mean, 100, normalized=True)
    assert (a[0] == b[0]).all()
    np.testing.assert_allclose(a[1], b[1], atol=1e-6)


def test_mean_of_several_references_weighs_each_equally():
    a, b = normalize(np.array([1.0, 0.0, 0.0])), normalize(np.array([0.0, 1.0, 0.0]))
    mean = mean_direction(np.stack([a * 10, b]))  # the length of a reference does not count
    np.testing.assert_allclose(mean, normalize(np.array([1.0, 1.0, 0.0])), atol=1e-7)
    assert np.linalg.norm(mean) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        mean_direction(np.zeros((0, 3)))


def test_retrieval_metrics_with_emphasised_queries():
    items, labels = style_like(30), ["a"] * 15 + ["b"] * 15
    assert retrieval_metrics(items, labels, queries=items) == retrieval_metrics(items, labels)
    assert retrieval_metrics(items, labels, queries=emphasise(items, layout(), 0.0)) == retrieval_metrics(items, labels)
    # At emphasis 1 the metrics are those of the coarsest segment alone.
    coarse = layout()[-1].columns
    assert retrieval_metrics(items, labels, queries=emphasise(items, layout(), 1.0)) == pytest.approx(
        retrieval_metrics(items[:, coarse], labels))
