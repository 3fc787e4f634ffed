"""Streamlit pieces of a style search that explains itself and lets people browse.

* ``emphasis_control``: the fine-to-coarse slider that re-weights the query's layers;
* ``show_breakdown``: one small bar per layer under a result, "why it matched";
* ``show_breadcrumb``: the last few queries, to step back along;
* ``show_references``: the images the query is made of, each removable.

Buttons act through callbacks on the ``Trail``, so a click is applied before the page is drawn again.
"""

from __future__ import annotations

import html

import streamlit as st

from lookalike.core.segments import Breakdown
from lookalike.search.query import Query, Reference, Trail
from lookalike.ui import common as ui

EMPHASIS_STEPS: tuple[float, ...] = (-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0)
BAR_COLOUR = "#6a4c93"


def emphasis_words(value: float) -> str:
    """The slider's label for a value, in words."""
    if value == 0:
        return "balanced"
    side = "fine" if value < 0 else "coarse"
    if abs(value) == 1:
        return f"{side} only"
    return f"{side} {abs(value):.0%}"


def emphasis_control(key: str = "style_emphasis") -> float:
    """The fine ↔ coarse slider: -1 ranks by colour and fine texture alone, 1 by motifs and composition alone."""
    return st.select_slider(
        "Match on: fine detail ↔ composition", options=EMPHASIS_STEPS, value=0.0, key=key,
        format_func=emphasis_words,
        help="Re-weights the layers of your query only: left for colour, fine texture and brushwork, right for "
             "motifs and composition. Re-ranks at once, with no new upload and no model run.",
    )  # fmt: skip


def breakdown_html(why: Breakdown, row: int) -> str:
    """One result's per-layer cosines, fine to coarse: a label and its value, a thin bar under them. Layers the
    emphasis switched off are faded; hovering a layer shows its weight in the score."""
    shares = why.shares()[row]
    lines = []
    for segment, cosine, share in zip(why.segments, why.cosines[row], shares, strict=True):
        width = min(max(float(cosine), 0.0), 1.0) * 100
        tip = html.escape(f"{segment.label} ({segment.name}): cosine {cosine:.3f}, weight {share:.0%} of the score")
        lines.append(
            f'<div class="why-layer" data-layer="{html.escape(segment.name)}" data-cosine="{cosine:.4f}" '
            f'data-weight="{share:.4f}" title="{tip}" style="margin-bottom:0.3em;opacity:{1.0 if share > 0 else 0.4}">'
            f'<div style="display:flex;justify-content:space-between;gap:0.5em">'
            f"<span>{html.escape(segment.label)}</span><span>{cosine:.2f}</span></div>"
            f'<div style="height:0.3em;background:rgba(128,128,128,0.2);border-radius:0.15em">'
            f'<div style="width:{width:.1f}%;height:100%;background:{BAR_COLOUR};border-radius:0.15em"></div></div>'
            "</div>"
        )
    return ('<div class="why-it-matched" style="font-size:0.72rem;line-height:1.2;margin:0.1em 0 0.6em">'
            + "".join(lines) + "</div>")


def show_breakdown(why: Breakdown, row: int) -> None:
    st.markdown(breakdown_html(why, row), unsafe_allow_html=True)


def step_label(query: Query, limit: int = 28) -> str:
    """A breadcrumb's name for a query: its reference, or the first one and how many more."""
    first = query.references[0].label
    label = first if len(query.references) == 1 else f"{first} + {len(query.references) - 1} more"
    return label if len(label) <= limit else label[: limit - 1] + "…"


def show_breadcrumb(trail: Trail) -> None:
    """Back, then the recent queries, oldest first: earlier ones are buttons that go back to them, the current
    one is in bold."""
    if not trail.steps or (len(trail.steps) == 1 and trail.current is not None):
        return
    with st.container(horizontal=True, vertical_alignment="center", gap="small"):
        st.button("Back", icon=":material/arrow_back:", key="style_trail_back", on_click=trail.back,
                  disabled=len(trail.steps) < 2, help="The previous query")
        st.caption("Recent queries:", width="content")
        for number, query in enumerate(trail.steps):
            if number == len(trail.steps) - 1 and trail.current is not None:
                st.markdown(f"**{escape_markdown(step_label(query))}**", width="content")
            else:
                st.button(step_label(query), key=f"style_trail_step_{number}", on_click=trail.jump, args=(number,),
                          type="tertiary", help="Search with this query again")


def escape_markdown(text: str) -> str:
    """Text shown as itself in markdown (labels come from file names and titles)."""
    return "".join(f"\\{c}" if c in "\\`*_{}[]<>()#+-.!|~$" else c for c in text)


def reference_caption(reference: Reference, uploads: int, number: int) -> str:
    if reference.thumbnail is not None:
        return "Your reference image" if uploads == 1 else f"Your reference image {number}"
    return f"Reference: {reference.label}"


def show_references(trail: Trail) -> None:
    """The current query's images, one under another; with several, each has a button that removes it."""
    query = trail.current
    uploads = sum(reference.thumbnail is not None for reference in query.references)
    number = 0
    for reference in query.references:
        number += reference.thumbnail is not None
        image = reference.thumbnail if reference.thumbnail is not None else ui.file_thumbnail(reference.path)
        with st.container(gap="small"):  # one block per reference: its picture and its button
            if image is None:
                st.warning(f"{reference.path.name} is no longer readable.")
            else:
                st.image(image, caption=reference_caption(reference, uploads, number))
            if len(query.references) > 1:
                st.button("Remove", icon=":material/close:", key=f"style_remove_{reference.key}", type="tertiary",
                          on_click=lambda key=reference.key: trail.go(trail.current.without(key)),
                          help="Search without this image")
    if len(query.references) > 1:
        st.caption(f"The query is the mean style of these {len(query.references)} images.")
