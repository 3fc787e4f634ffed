"""The pieces of the explaining style search that need no page: emphasis words, the breakdown bars, crumb names."""

from __future__ import annotations

import re

import numpy as np

from lookalike.core.segments import Segment, breakdown
from lookalike.core.vectors import normalize
from lookalike.search.query import Query, Reference
from lookalike.ui.style_explain import EMPHASIS_STEPS, breakdown_html, emphasis_words, step_label

SEGMENTS = (Segment("block1_conv1", "colour & fine texture", 0, 3), Segment("block5_conv1", "motifs & composition", 3, 6))


def test_the_slider_says_what_each_setting_means():
    assert EMPHASIS_STEPS[0] == -1 and EMPHASIS_STEPS[-1] == 1 and 0.0 in EMPHASIS_STEPS
    assert [emphasis_words(v) for v in (-1.0, -0.5, 0.0, 0.25, 1.0)] == [
        "fine only", "fine 50%", "balanced", "coarse 25%", "coarse only"]


def test_breakdown_html_has_one_bar_per_layer_with_its_cosine_and_weight():
    rng = np.random.default_rng(0)
    query, items = rng.normal(size=6), normalize(rng.normal(size=(3, 6)))
    why = breakdown(query, items, SEGMENTS, 1.0)
    text = breakdown_html(why, 1)
    layers = re.findall(r'data-layer="([^"]+)" data-cosine="([-\d.]+)" data-weight="([\d.]+)"', text)
    assert [name for name, _, _ in layers] == ["block1_conv1", "block5_conv1"]
    np.testing.assert_allclose([float(c) for _, c, _ in layers], why.cosines[1], atol=1e-4)
    assert [float(w) for _, _, w in layers] == [0.0, 1.0]  # emphasis 1: the coarse layer carries the score
    assert "colour &amp; fine texture" in text and "opacity:0.4" in text  # escaped; the switched-off layer faded
    assert "<script" not in text


def test_breadcrumb_names_are_short():
    one = Reference("item:a", "a painting with a very long title indeed", np.ones(2))
    two = Reference("item:b", "b", np.ones(2))
    assert step_label(Query((two,))) == "b"
    assert step_label(Query((two, one))) == "b + 1 more"
    assert step_label(Query((one,))).endswith("…") and len(step_label(Query((one,)))) == 28
