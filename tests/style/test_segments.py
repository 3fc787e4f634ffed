"""The segments of a style vector follow its model's own layers (``lookalike.style.segments``), and an emphasis
of -1 or 1 ranks by the finest or coarsest layer alone, checked against brute force on real Gram matrices."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.core.images import load_image
from lookalike.core.segments import breakdown, emphasise
from lookalike.core.vectors import normalize, top_k
from lookalike.style.backbones import LITE0, LITE0_STYLE_LAYERS
from lookalike.style.segments import DEPTH_LABELS, style_segments
from lookalike.style.vectors import StyleConfig, StyleModel
from lookalike.style.vgg19 import STYLE_LAYERS, upper_triangle


def test_vgg19_segments_are_its_five_layers_fine_to_coarse():
    segments = style_segments(StyleConfig())
    assert [s.name for s in segments] == list(STYLE_LAYERS)
    assert [s.stop - s.start for s in segments] == [128, 192, 224, 240, 240]
    assert segments[0].start == 0 and segments[-1].stop == 1024
    assert [s.label for s in segments] == list(DEPTH_LABELS)


def test_lite0_segments_are_its_own_layers():
    config = StyleConfig.for_backbone(LITE0)
    segments = style_segments(config)
    assert [s.name for s in segments] == list(LITE0_STYLE_LAYERS) == ["block2", "block4", "block10", "block12", "block13"]
    assert [s.stop - s.start for s in segments] == list(config.dims)
    assert segments[0].label == "colour & fine texture" and segments[-1].label == "motifs & composition"


def test_other_layers_get_labels_by_depth_and_keep_their_names():
    config = StyleConfig(layers=("block1_conv2", "block3_conv4", "block5_conv4"), dims=(64, 64, 128))
    segments = style_segments(config)
    assert [s.label for s in segments] == [
        "colour & fine texture (block1_conv2)", "patterns (block3_conv4)", "motifs & composition (block5_conv4)"]
    assert [(s.start, s.stop) for s in segments] == [(0, 64), (64, 128), (128, 256)]
    with pytest.raises(ValueError, match="3 style layers but 2"):
        style_segments(StyleConfig(layers=config.layers, dims=(64, 64)))


@pytest.fixture(scope="module")
def vgg19_vectors(paintings, style_model) -> tuple[np.ndarray, list[np.ndarray]]:
    """Stored (compact, normalised) vectors and per-layer Gram matrices of 11 paintings, both styles."""
    images = [style_model.prepare(load_image(path)) for path in paintings[::3]]
    return normalize(style_model.embed(images)), style_model.grams(images)


def full_layer_vectors(grams: np.ndarray) -> np.ndarray:
    """A layer's exact style vectors: the unit upper triangles of its Gram matrices."""
    return normalize(np.stack([upper_triangle(gram) for gram in grams]))


def ranking(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    return top_k(vectors, query, len(vectors), normalized=True)[0]


@pytest.mark.slow  # embeds 11 paintings and takes their Gram matrices with VGG19; the Lite0 test below is exact
@pytest.mark.parametrize(("emphasis", "layer"), [(-1.0, 0), (1.0, 4)])
def test_vgg19_emphasis_at_an_end_ranks_by_that_layer(style_model, vgg19_vectors, emphasis, layer):
    """Exactly as brute force on that layer's stored segment, and close to brute force on its full Gram vectors
    (the stored segment is a 128- to 240-value projection of them)."""
    segments = style_segments(style_model.config)
    columns = segments[layer].columns
    stored, grams = vgg19_vectors
    full = full_layer_vectors(grams[layer])
    agree = []
    for i in range(len(stored)):
        ranked = ranking(stored, emphasise(stored[i], segments, emphasis))
        assert (ranked == ranking(normalize(stored[:, columns]), normalize(stored[i, columns]))).all()
        exact = set(ranking(full, full[i])[:5])
        agree.append(len(exact & set(ranked[:5])) / 5)
    assert np.mean(agree) >= 0.8, np.mean(agree)


@pytest.fixture(scope="module")
def exact_lite0() -> StyleModel:
    """Lite0 on two layers whose projections are identities: its stored vectors *are* the full Gram vectors."""
    config = StyleConfig(layers=("block2", "block4"), dims=(24 * 25 // 2, 40 * 41 // 2), layer_weights=(1.0, 1.0),
                         precision="float32", backbone=LITE0, size=160)
    model = StyleModel(config)
    model.projections = [np.eye(dim, dtype=np.float32) for dim in config.dims]
    return model


@pytest.mark.parametrize(("emphasis", "layer"), [(-1.0, 0), (1.0, 1)])
def test_emphasis_at_an_end_ranks_exactly_as_brute_force_on_full_gram_vectors(exact_lite0, paintings, emphasis,
                                                                               layer):
    images = [exact_lite0.prepare(load_image(path)) for path in paintings[::2]]
    segments = style_segments(exact_lite0.config)
    stored = normalize(exact_lite0.embed(images))
    full = full_layer_vectors(exact_lite0.grams(images)[layer])
    np.testing.assert_allclose(normalize(stored[:, segments[layer].columns]), full, atol=1e-5)
    for i in range(len(stored)):
        query = emphasise(stored[i], segments, emphasis)
        ranked, scores = top_k(stored, query, len(stored), normalized=True)
        brute = full @ full[i]
        assert (ranked == np.argsort(-brute, kind="stable")).all()
        why = breakdown(stored[i], stored[ranked], segments, emphasis)
        np.testing.assert_allclose(why.cosines[:, layer], brute[ranked], atol=1e-5)
        np.testing.assert_allclose(why.similarities, brute[ranked], atol=1e-5)
        np.testing.assert_allclose(why.scores, scores, atol=1e-5)
