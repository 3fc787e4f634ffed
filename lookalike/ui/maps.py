"""The one map figure every page draws: a 2-D embedding map, coloured by category or not, with optional
thumbnails, and the user's image as a star on top of everything.

Thumbnails are layout images drawn *below* the traces, and the star is the last trace, so it is drawn above
every thumbnail and every dot. No trace sets ``zorder``: plotly.js then moves the traces to overlay subplots and
stops drawing layout images on the axes (the thumbnails vanish). plotly is imported here only, when a map is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

COLLECTION_COLOUR = "#9c89b8"
STAR = {"size": 22, "symbol": "star", "color": "#e63946", "line": {"width": 2, "color": "white"}}


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
):
    """A plotly figure of ``coords`` (n, 2) with ``hover`` text per point.

    * ``categories``: one label per point; each category gets its own colour and legend entry.
    * ``thumbnails``: one image URI (or None) per point, drawn at the point; the dots then only carry hover text.
    * ``query``: where the user's image lands (``core.maps.place_on_map``), drawn as a star above all else.
    """
    import plotly.express as px
    import plotly.graph_objects as go

    coords = np.asarray(coords, dtype=np.float32).reshape(-1, 2)
    figure = go.Figure()
    opacity = 0.0 if thumbnails is not None else 0.75  # thumbnails stand in for the dots
    groups = [(None, np.arange(len(coords)))]
    if categories is not None:
        labels = np.asarray(categories, dtype=object)
        groups = [(name, np.flatnonzero(labels == name)) for name in sorted(set(categories))]
    palette = px.colors.qualitative.Dark24  # enough distinct colours for every category
    for number, (name, rows) in enumerate(groups):
        colour = COLLECTION_COLOUR if name is None else palette[number % len(palette)]
        figure.add_trace(go.Scatter(
            x=coords[rows, 0], y=coords[rows, 1], mode="markers", name=name or "collection",
            text=[hover[i] for i in rows], hovertemplate="%{text}<extra></extra>",
            marker={"size": 9 if name is None else 6, "color": colour, "opacity": opacity},
        ))  # fmt: skip
    if thumbnails is not None:
        add_thumbnails(figure, coords, thumbnails)
    if query is not None:  # the last trace, so drawn on top of everything
        figure.add_trace(go.Scatter(
            x=[query[0]], y=[query[1]], mode="markers+text", name=query_name, text=[query_name],
            textposition="top center", hoverinfo="name", marker=STAR,
        ))  # fmt: skip
    figure.update_layout(
        height=height, margin={"l": 0, "r": 0, "t": 30 if title else 10, "b": 0}, title=title,
        legend_title_text=legend_title if categories is not None else None, showlegend=True,
        xaxis={"visible": False}, yaxis={"visible": False, "scaleanchor": "x"},
    )  # fmt: skip
    return figure


def add_thumbnails(figure, coords: np.ndarray, uris: Sequence[str | None]) -> None:
    """Draw each image's thumbnail at its place on the map, below the traces."""
    span = float(np.ptp(coords, axis=0).max()) if len(coords) else 1.0
    size = (span or 1.0) / max(8.0, np.sqrt(len(coords)) * 1.6)
    images = [
        {"source": uri, "x": x, "y": y, "xref": "x", "yref": "y", "sizex": size, "sizey": size,
         "xanchor": "center", "yanchor": "middle", "layer": "below"}
        for (x, y), uri in zip(coords.tolist(), uris, strict=True)
        if uri is not None
    ]  # fmt: skip
    figure.update_layout(images=images)
