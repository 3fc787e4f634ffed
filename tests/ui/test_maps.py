"""The one map figure of the three pages: categories, thumbnails below the traces, the query star on top."""

from __future__ import annotations

import numpy as np

from lookalike.ui.maps import map_figure

COORDS = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], np.float32)


def test_categories_get_one_trace_each_and_the_query_a_star_on_top():
    figure = map_figure(COORDS, ["a1", "b1", "a2", "b2"], categories=["a", "b", "a", "b"], query=(0.5, 0.5))
    names = [trace.name for trace in figure.data]
    assert names == ["a", "b", "your image"]
    assert list(figure.data[0].text) == ["a1", "a2"]
    star = figure.data[-1]  # the last trace is drawn on top
    assert star.marker.symbol == "star"
    assert all(trace.zorder is None for trace in figure.data)  # zorder would hide the thumbnails (plotly.js)


def test_thumbnails_are_drawn_below_the_traces_and_replace_the_dots():
    uris = ["data:image/jpeg;base64,AAAA", None, "data:image/jpeg;base64,BBBB", "data:image/jpeg;base64,CCCC"]
    figure = map_figure(COORDS, ["p", "q", "r", "s"], thumbnails=uris, query=(1.0, 1.0))
    assert len(figure.layout.images) == 3  # the unreadable one is left out
    assert {image.layer for image in figure.layout.images} == {"below"}
    assert figure.data[0].marker.opacity == 0 and list(figure.data[0].text) == ["p", "q", "r", "s"]
    assert figure.data[-1].name == "your image" and all(trace.zorder is None for trace in figure.data)


def test_without_a_query_there_is_no_star():
    figure = map_figure(COORDS, ["p", "q", "r", "s"])
    assert [trace.name for trace in figure.data] == ["collection"]
    assert not figure.layout.images
