"""The one map figure every page draws: a 2-D embedding map, coloured by category or not, with optional
thumbnails, rings around the current results, and the user's image (or images) as stars on top of everything.

Thumbnails are layout images drawn *below* the traces, and traces are drawn in order, so the rings and then the
stars (the last traces) are never hidden. No trace may set ``zorder``: plotly then stops drawing layout images
below the traces, and every thumbnail disappears. Points can carry ids (``point_ids``), which a click on the map gives back
(``clicked_point``). plotly is imported here only, when a map is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

COLLECTION_COLOUR = "#9c89b8"
STAR = {"size": 22, "symbol": "star", "color": "#e63946", "line": {"width": 2, "color": "white"}}
RING = {"size": 24, "symbol": "circle-open", "color": "#f4a261", "line": {"width": 3}}


def map_figure(
    coords: np.ndarray,
    hover: Sequence[str],
    categories: Sequence[str] | None = None,
    query: tuple[float, float] | None = None,
    thumbnails: Sequence[str | None] | None = None,
    title: str | None = None,
    height: int = 560,
    legend_title: str = "category",
    query_name: str = "your image",
    queries: Sequence[tuple[str, tuple[float, float]]] = (),
    highlight: Sequence[tuple[int, str]] = (),
    highlight_name: str = "results",
    point_ids: Sequence[int] | None = None,
):
    """A plotly figure of ``coords`` (n, 2) with ``hover`` text per point.

    * ``categories``: one label per point; each category gets its own colour and legend entry.
    * ``thumbnails``: one image URI (or None) per point, drawn at the point; the dots then only carry hover text.
    * ``query``: where the user's image lands (``core.maps.place_on_map``), drawn as a star above all else;
      ``queries``: several such (name, position) pairs, one star each.
    * ``highlight``: (point number, text) pairs, e.g. the results and their ranks, ringed above the points.
    * ``point_ids``: one id per point (e.g. its row in a collection), returned by ``clicked_point``.
    """
    import plotly.express as px
    import plotly.graph_objects as go

    coords = np.asarray(coords, dtype=np.float32).reshape(-1, 2)
    traces: list[dict] = []
    opacity = 0.0 if thumbnails is not None else 0.75  # thumbnails stand in for the dots
    groups = [(None, np.arange(len(coords)))]
    if categories is not None:
        labels = np.asarray(categories, dtype=object)
        groups = [(name, np.flatnonzero(labels == name)) for name in sorted(set(categories))]
    palette = px.colors.qualitative.Dark24  # enough distinct colours for every category
    for number, (name, rows) in enumerate(groups):
        colour = COLLECTION_COLOUR if name is None else palette[number % len(palette)]
        traces.append(_with_ids({
            "type": "scatter", "x": coords[rows, 0], "y": coords[rows, 1], "mode": "markers",
            "name": name or "collection", "text": [hover[i] for i in rows], "hovertemplate": "%{text}<extra></extra>",
            "marker": {"size": 9 if name is None else 6, "color": colour, "opacity": opacity},
        }, point_ids, rows))  # fmt: skip
    if highlight:
        points = [number for number, _ in highlight]
        traces.append(_with_ids({
            "type": "scatter", "x": coords[points, 0], "y": coords[points, 1], "mode": "markers+text",
            "name": highlight_name, "text": [text for _, text in highlight], "textposition": "top right",
            "marker": RING, "hovertext": [hover[i] for i in points],
            "hovertemplate": "%{text} · %{hovertext}<extra></extra>",
        }, point_ids, points))  # fmt: skip
    stars = [(query_name, query)] if query is not None else []
    for name, (x, y) in [*stars, *queries]:
        traces.append({
            "type": "scatter", "x": [x], "y": [y], "mode": "markers+text", "name": name, "text": [name],
            "legendgroup": "queries", "textposition": "top center", "hoverinfo": "name", "marker": STAR,
        })  # fmt: skip
    layout = {
        "height": height, "margin": {"l": 0, "r": 0, "t": 30 if title else 10, "b": 0}, "showlegend": True,
        "xaxis": {"visible": False}, "yaxis": {"visible": False, "scaleanchor": "x"},
    }  # fmt: skip
    if title:
        layout["title"] = {"text": title}
    if categories is not None:
        layout["legend"] = {"title": {"text": legend_title}}
    if thumbnails is not None:
        layout["images"] = thumbnail_images(coords, thumbnails)
    # Built as plain data and wrapped unvalidated: validating 174 thumbnails took 80 ms of every page run.
    # tests/ui/test_maps.py validates the same figures once.
    return go.Figure({"data": traces, "layout": layout}, _validate=False)


def _with_ids(trace: dict, point_ids: Sequence[int] | None, rows) -> dict:
    if point_ids is not None:
        trace["customdata"] = [point_ids[i] for i in rows]
    return trace


def thumbnail_images(coords: np.ndarray, uris: Sequence[str | None]) -> list[dict]:
    """Each image's thumbnail at its place on the map, below the traces (layout images)."""
    span = float(np.ptp(coords, axis=0).max()) if len(coords) else 1.0
    size = (span or 1.0) / max(8.0, np.sqrt(len(coords)) * 1.6)
    return [
        {"source": uri, "x": x, "y": y, "xref": "x", "yref": "y", "sizex": size, "sizey": size,
         "xanchor": "center", "yanchor": "middle", "layer": "below"}
        for (x, y), uri in zip(coords.tolist(), uris, strict=True)
        if uri is not None
    ]  # fmt: skip


def clicked_point(state) -> int | None:
    """The id (``point_ids``) of the point a person clicked, from ``st.plotly_chart``'s selection state, or None
    (nothing selected, or a point without an id such as a star)."""
    try:
        points = state["selection"]["points"]
    except (KeyError, TypeError):
        return None
    for point in points or ():
        data = point.get("customdata")
        data = data[0] if isinstance(data, list | tuple) and data else data
        if isinstance(data, int | float) and not isinstance(data, bool):
            return int(data)
    return None
