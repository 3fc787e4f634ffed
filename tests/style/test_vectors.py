"""Style vectors (``lookalike.style.vgg19`` and ``vectors``): Gram matrices, the compact style vector and
style ranking, through the ``style_transfer`` front door (random weights)."""

from __future__ import annotations

import numpy as np
import pytest

import image_search
import style_transfer
import utils


def test_gram_matrix_matches_numpy():
    features = np.random.default_rng(0).normal(size=(2, 5, 7, 4)).astype(np.float32)
    grams = style_transfer.gram_matrix(features).numpy()
    for image, gram in zip(features, grams, strict=True):
        flat = image.reshape(-1, 4)
        np.testing.assert_allclose(gram, flat.T @ flat / (5 * 7), rtol=1e-5)


def test_upper_triangle_stores_each_gram_once_and_keeps_dot_products():
    rng = np.random.default_rng(1)
    a, b = (rng.normal(size=(6, 6)) for _ in range(2))
    a, b = a @ a.T, b @ b.T
    ua, ub = style_transfer.upper_triangle(a), style_transfer.upper_triangle(b)
    assert ua.shape == (6 * 7 // 2,)
    assert ua @ ub == pytest.approx(np.sum(a * b))


def test_projection_is_fixed_by_its_seed():
    first = style_transfer.projection_matrix(64, 32, seed=7)
    np.testing.assert_array_equal(first, style_transfer.projection_matrix(64, 32, seed=7))
    assert not np.allclose(first, style_transfer.projection_matrix(64, 32, seed=8))


def test_style_model_uses_every_style_layer(style_model):
    assert len(style_model.features.outputs) == 5
    assert [tuple(o.shape)[-1] for o in style_model.features.outputs] == [64, 128, 256, 512, 512]


@pytest.fixture(scope="module")
def painting_batch(paintings, style_model):
    chosen = paintings[::4]  # 8 paintings, both styles
    return [style_model.prepare(utils.load_image(path)) for path in chosen]


def test_compact_vector_is_small_and_batched_equals_single(style_model, painting_batch):
    vectors = style_model.embed(painting_batch[:4])
    assert vectors.shape == (4, 1024) and vectors.dtype == np.float32
    assert vectors.nbytes / 4 <= 4096
    single = np.concatenate([style_model.embed([image]) for image in painting_batch[:2]])
    np.testing.assert_allclose(single, vectors[:2], rtol=1e-3, atol=1e-4)


def test_compact_ranking_agrees_with_the_full_gram_ranking(style_model, painting_batch):
    full = style_model.embed_full(painting_batch)
    assert full.shape[1] == sum(c * (c + 1) // 2 for c in (64, 128, 256, 512, 512))
    compact = style_model.embed(painting_batch)
    overlaps = []
    for i in range(len(painting_batch)):
        exact = set(image_search.top_k(full, full[i], 4)[0])
        approx = set(image_search.top_k(compact, compact[i], 4)[0])
        overlaps.append(len(exact & approx) / 4)
    assert np.mean(overlaps) >= 0.8


def test_search_by_style_ranks_the_query_painting_first(style_model, paintings, copy_paintings):
    collection = image_search.index_folder(copy_paintings(slice(None, None, 4)), style_model)
    query = utils.load_image(paintings[4])
    results = image_search.search_by_style(query, collection, style_model, k=5)
    assert len(results) == 5 and results[0].path.name == paintings[4].name
    assert results[0].score == pytest.approx(1.0, abs=1e-4)
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)


def test_model_id_changes_with_configuration():
    base = style_transfer.StyleConfig()
    assert base.model_id("random") != style_transfer.StyleConfig(size=256).model_id("random")
    assert base.model_id("random") != base.model_id("imagenet")
    assert base.model_id("random") != style_transfer.StyleConfig(layers=base.layers[:3]).model_id("random")
