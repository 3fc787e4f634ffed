"""The one map figure of the three pages: categories, thumbnails below the traces, the query star on top;
rings around results, several stars, and the point a click selected."""

from __future__ import annotations

import numpy as np

from lookalike.ui.maps import clicked_point, map_figure

COORDS = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], np.float32)


def valid(figure):
    """The figure is built unvalidated (for speed); plotly must accept every property of it."""
    import plotly.graph_objects as go

    return go.Figure(figure.to_dict())  # raises ValueError on any invalid property


def test_categories_get_one_trace_each_and_the_query_a_star_on_top():
    figure = map_figure(COORDS, ["a1", "b1", "a2", "b2"], categories=["a", "b", "a", "b"], query=(0.5, 0.5))
    names = [trace.name for trace in valid(figure).data]
    assert names == ["a", "b", "your image"]
    assert figure.layout.legend.title.text == "category"
    assert list(figure.data[0].text) == ["a1", "a2"]
    star = figure.data[-1]
    assert star.marker.symbol == "star"  # the last trace: drawn on top of the others
    assert all(trace.zorder is None for trace in figure.data)


def test_thumbnails_are_drawn_below_the_traces_and_replace_the_dots():
    uris = ["data:image/jpeg;base64,AAAA", None, "data:image/jpeg;base64,BBBB", "data:image/jpeg;base64,CCCC"]
    figure = map_figure(COORDS, ["p", "q", "r", "s"], thumbnails=uris, query=(1.0, 1.0))
    assert len(valid(figure).layout.images) == 3  # the unreadable one is left out
    assert {image.layer for image in figure.layout.images} == {"below"}
    assert figure.data[0].marker.opacity == 0 and list(figure.data[0].text) == ["p", "q", "r", "s"]
    assert figure.data[-1].name == "your image"  # drawn last, above the thumbnails (layer "below")
    # A zorder on any trace makes plotly drop layout images drawn below the traces: no thumbnail would show.
    assert all(trace.zorder is None for trace in figure.data)


def test_without_a_query_there_is_no_star():
    figure = valid(map_figure(COORDS, ["p", "q", "r", "s"], title="A map"))
    assert [trace.name for trace in figure.data] == ["collection"] and figure.layout.title.text == "A map"
    assert not figure.layout.images


def test_results_are_ringed_under_the_stars_and_points_carry_their_ids():
    uris = ["data:image/jpeg;base64,AAAA"] * 4
    figure = map_figure(COORDS, ["p", "q", "r", "s"], thumbnails=uris, highlight=[(3, "#1"), (1, "#2")],
                        queries=[("your image 1", (0.2, 0.2)), ("your image 2", (0.8, 0.8))],
                        point_ids=[10, 11, 12, 13], highlight_name="top 2")
    valid(figure)
    names = [trace.name for trace in figure.data]
    assert names == ["collection", "top 2", "your image 1", "your image 2"]
    collection, rings = figure.data[0], figure.data[1]
    assert list(collection.customdata) == [10, 11, 12, 13]
    assert list(rings.x) == [1, 1] and list(rings.y) == [1, 0] and list(rings.text) == ["#1", "#2"]
    assert list(rings.customdata) == [13, 11]
    assert all(trace.zorder is None for trace in figure.data)  # drawn in order: rings over points, stars last
    assert list(figure.data[3].x) == [0.8]


def test_a_click_gives_the_id_of_the_point_under_it():
    def state(*points):
        return {"selection": {"points": list(points), "point_indices": [], "box": [], "lasso": []}}

    assert clicked_point(state({"curve_number": 0, "point_index": 2, "customdata": 12})) == 12
    assert clicked_point(state({"curve_number": 1, "point_index": 0, "customdata": [13]})) == 13
    assert clicked_point(state({"curve_number": 2, "point_index": 0})) is None  # a star: no id
    assert clicked_point(state()) is None
    assert clicked_point(None) is None and clicked_point({}) is None and clicked_point({"selection": None}) is None
