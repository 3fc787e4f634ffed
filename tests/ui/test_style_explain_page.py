"""The Style Search page explains and browses, in AppTest: the emphasis re-ranks with no model call, "More
like this" and the breadcrumb, references added and removed, several uploads, and the map's stars and rings."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from lookalike.core import counters
from lookalike.core.backends import positional_index
from lookalike.search.explain import explained_search
from lookalike.search.folders import index_folder
from lookalike.style.segments import style_segments
from lookalike.ui.style_explain import escape_markdown
from tests.apptest import SEARCH, button, reference_shown, style_app

CAPTION = re.compile(r"^#(\d+) · similarity (-?\d\.\d{3})$")
LAYER = re.compile(r'data-layer="([^"]+)" data-cosine="([-\d.]+)" data-weight="([\d.]+)"')


@pytest.fixture(scope="module", autouse=True)
def private_cache(tmp_path_factory):
    """This module's own embedding cache: what it embeds never shows up as "reused" in another test."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOOKALIKE_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def eight(copy_paintings) -> Path:
    return copy_paintings([0, 1, 2, 3, 16, 17, 18, 19], "eight-to-browse")


@pytest.fixture(scope="module")
def collection(eight, style_model):
    """The page's collection, as the library indexes it (the same cache: no model run)."""
    return index_folder(eight, style_model)


def model_calls() -> int:
    return sum(counters.INFERENCE_CALLS.values())


def ranked(at: AppTest) -> list[tuple[int, float]]:
    """(rank, similarity) of the result cards, in rank order."""
    found = [CAPTION.match(c) for image in at.image for c in image.captions]
    return sorted((int(m.group(1)), float(m.group(2))) for m in found if m)


def result_names(at: AppTest) -> list[str]:
    """The caption under each card, in rank order (cards fill three columns, so the page order differs)."""
    cards = [c.value for c in at.caption if c.value.startswith("s ")]
    ranks = [rank for rank, _ in ranked(at)]
    by_rank = dict(zip([int(CAPTION.match(c).group(1)) for image in at.image for c in image.captions
                        if CAPTION.match(c)], cards, strict=True))
    return [by_rank[rank] for rank in ranks]


def references(at: AppTest) -> list[str]:
    return [c for image in at.image for c in image.captions
            if c.startswith("Your reference image") or c.startswith("Reference: ")]


def trail(at: AppTest):
    return at.session_state["style_trail"]


def searched(eight: Path, name: str = "s_cubism-02.jpg", k: int = 8) -> AppTest:
    at = style_app(eight)
    painting = eight / name
    at.file_uploader(key="style_query").set_value((painting.name, painting.read_bytes(), "image/jpeg"))
    at.slider[0].set_value(k)
    button(at, SEARCH).click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def expected_names(collection, at: AppTest, emphasis: float, k: int = 8) -> list[str]:
    """The ranking the library gives for the page's current query, through the same kind of index."""
    index = positional_index(collection.vectors)
    found = explained_search(collection, trail(at).current.vector(), style_segments_of(collection), k, emphasis,
                             index)
    return [r.path.stem.replace("_", " ") for r in found.results]


def style_segments_of(collection):
    from lookalike.style.vectors import StyleConfig

    assert collection.model_id.startswith("vgg19-gram")  # random VGG19 in tests
    return style_segments(StyleConfig())


def test_each_result_shows_why_it_matched(eight):
    at = searched(eight, k=6)
    bars = [m.value for m in at.markdown if "why-it-matched" in m.value]
    assert len(bars) == 6
    shown = [float(m.group(2)) for image in at.image for c in image.captions if (m := CAPTION.match(c))]
    for html, similarity in zip(bars, shown, strict=True):  # both in page order
        layers = LAYER.findall(html)
        assert [name for name, _, _ in layers] == ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1",
                                                    "block5_conv1"]
        cosines, weights = (np.array([float(v[i]) for v in layers]) for i in (1, 2))
        np.testing.assert_allclose(weights, 0.2, atol=1e-3)  # balanced: every layer counts the same
        assert (cosines * weights).sum() == pytest.approx(similarity, abs=2e-3)
    assert "colour &amp; fine texture" in bars[0] and "motifs &amp; composition" in bars[0]
    at.toggle(key="style_explain").set_value(False).run()
    assert not [m for m in at.markdown if "why-it-matched" in m.value]
    assert len(ranked(at)) == 6


def test_the_emphasis_re_ranks_with_no_model_call(eight, collection):
    at = searched(eight)
    balanced = result_names(at)
    assert balanced == expected_names(collection, at, 0.0)
    calls = model_calls()
    orders = {}
    for emphasis in (1.0, -1.0, 0.0):
        at.select_slider(key="style_emphasis").set_value(emphasis).run()
        assert not at.exception
        orders[emphasis] = result_names(at)
        assert orders[emphasis] == expected_names(collection, at, emphasis)
        assert ranked(at)[0] == (1, 1.0)  # the painting itself, similarity 1 at any emphasis
    assert model_calls() == calls, "moving the slider ran the model"
    assert orders[1.0] != balanced or orders[-1.0] != balanced, "the emphasis changed nothing"
    assert orders[0.0] == balanced
    at.select_slider(key="style_emphasis").set_value(0.5).run()
    assert any("emphasis on coarse 50%" in c.value for c in at.caption)


def test_more_like_this_searches_from_the_stored_vector_and_the_breadcrumb_steps_back(eight, collection):
    at = searched(eight, k=6)
    first = result_names(at)
    third = first[2]
    calls = model_calls()
    at.button(key="more_like_3").click().run()
    assert not at.exception
    assert references(at) == [f"Reference: {third}"] and not reference_shown(at)
    assert result_names(at)[0] == third and ranked(at)[0] == (1, 1.0)
    row = collection.rows[eight / f"{third.replace(' ', '_')}.jpg"]
    np.testing.assert_array_equal(trail(at).current.vector(), collection.vectors[row])  # the stored vector
    crumbs = [b.label for b in at.button if b.key and b.key.startswith("style_trail_step_")]
    assert crumbs == ["your image"]  # the way back; the current query is named in bold after it
    assert f"**{escape_markdown(third)}**" in [m.value for m in at.markdown]
    assert model_calls() == calls, "More like this ran the model"

    button(at, "Back").click().run()
    assert references(at) == ["Your reference image"] and result_names(at) == first
    at.button(key="more_like_2").click().run()
    at.button(key="style_trail_step_0").click().run()  # a crumb goes straight back to its query
    assert references(at) == ["Your reference image"] and result_names(at) == first
    assert model_calls() == calls


def test_add_a_second_reference_then_remove_it(eight, collection):
    at = searched(eight, k=6)
    first = result_names(at)
    calls = model_calls()
    at.button(key="add_to_query_4").click().run()
    added = first[3]
    assert references(at) == ["Your reference image", f"Reference: {added}"]
    assert any("mean style of these 2 images" in c.value for c in at.caption)
    assert result_names(at) == expected_names(collection, at, 0.0, 6) != first
    # The added painting (as close to the mean as the upload is) is among the results, and can't be added again.
    assert added in result_names(at)
    assert at.button(key=f"add_to_query_{result_names(at).index(added) + 1}").disabled
    removes = [b for b in at.button if b.label == "Remove"]
    assert len(removes) == 2
    removes[1].click().run()
    assert references(at) == ["Your reference image"] and result_names(at) == first
    assert not [b for b in at.button if b.label == "Remove"]
    assert model_calls() == calls


def test_several_uploads_are_one_query_embedded_in_one_batch(eight, collection):
    at = style_app(eight)
    files = [eight / "s_cubism-01.jpg", eight / "s_impressionist-01.jpg"]
    at.file_uploader(key="style_query").set_value([(p.name, p.read_bytes(), "image/jpeg") for p in files])
    calls = model_calls()
    button(at, SEARCH).click().run()
    assert not at.exception and not at.error
    assert model_calls() - calls == 1  # both images in one batch
    assert references(at) == ["Your reference image 1", "Your reference image 2"]
    stored = collection.vectors[[collection.rows[p] for p in files]]
    mean = stored.sum(axis=0) / np.linalg.norm(stored.sum(axis=0))
    np.testing.assert_allclose(trail(at).current.vector(), mean, atol=2e-2)  # the mean of the two styles
    assert result_names(at) == expected_names(collection, at, 0.0, 6)
    # One unusable file among them: its message, and results for the others.
    at.file_uploader(key="style_query").set_value([(files[0].name, files[0].read_bytes(), "image/jpeg"),
                                                   ("broken.png", b"not a picture", "image/png")])
    button(at, SEARCH).click().run()
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "This upload can't be used: broken.png" in errors[0]
    assert references(at) == ["Your reference image"] and result_names(at)[0] == "s cubism-01"


def test_the_map_marks_the_query_and_rings_the_results(eight):
    at = searched(eight, k=4)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    traces = {trace["name"]: trace for trace in spec["data"]}
    assert set(traces) == {"collection", "top 4", "your image"}
    assert traces["top 4"]["text"] == ["#1", "#2", "#3", "#4"]
    assert sorted(traces["collection"]["customdata"]) == list(range(8))
    at.button(key="more_like_2").click().run()
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    star = [t for t in spec["data"] if t["marker"].get("symbol") == "star"]
    assert len(star) == 1 and star[0]["name"] == result_names(at)[0]
