"""Style Search: find paintings that share a style, map the collection, and apply a style to a photo."""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from lookalike.core.backends import positional_index
from lookalike.core.files import FolderError, check_folder
from lookalike.core.images import make_thumbnail
from lookalike.core.lite0 import BundledModelBroken
from lookalike.core.maps import cached_map, place_on_map, stratified_sample
from lookalike.core.settings import get_settings
from lookalike.core.weights import WeightsUnavailable
from lookalike.search import samples
from lookalike.search.explain import ExplainedResults, explained_search
from lookalike.search.folders import Collection, index_folder
from lookalike.search.query import Query, Reference, Trail
from lookalike.search.ranking import SearchResult
from lookalike.style.backbones import DISPLAY_NAMES, LITE0, VGG19
from lookalike.style.choice import UnknownStyleModel, requested_style_model
from lookalike.style.choice import load_style_model as choose_and_load_style_model
from lookalike.style.segments import style_segments
from lookalike.style.vectors import StyleModel
from lookalike.style.vgg19 import WEIGHTS_KEY
from lookalike.ui import common as ui
from lookalike.ui.maps import clicked_point, map_figure
from lookalike.ui.style_explain import (
    emphasis_control,
    emphasis_words,
    show_breadcrumb,
    show_breakdown,
    show_references,
)
from lookalike.ui.transfer_tab import PRESET_KEY, render_style_transfer_section, use_style

OTHER_FOLDER = "Another folder…"
MAP_THUMBNAIL_LIMIT = 400  # above this many points the map shows dots with hover text instead of thumbnails
TABS = ("Search by style", "Apply a style to your photo")
TAB_KEY = "style_search_tab"  # the open tab; "Use this style" switches it


# ---------------------------------------------------------------------------------------------
# Cached loaders (shared by every session of this process)
# ---------------------------------------------------------------------------------------------


@st.cache_resource(show_spinner="Loading the style model…", max_entries=4)
def load_style_model(choice: str, vgg19_weights: str) -> StyleModel:
    """The style model for LOOKALIKE_STYLE_MODEL (auto, vgg19 or lite0), loaded once per process and VGG19
    weights file: ``vgg19_weights`` is that file's label (with its SHA-256), so a replaced file is picked up."""
    model = choose_and_load_style_model(choice)
    ui.freeze_loaded_objects()
    return model


@st.cache_resource
def collection_registry() -> tuple[dict[tuple[str, str], Collection], threading.Lock]:
    """Indexed collections by (folder, model id), shared across sessions, with a lock for indexing."""
    return {}, threading.Lock()


@st.cache_resource(show_spinner=False, max_entries=16)
def collection_index(_collection: Collection, content_key: str):
    """The collection's vector index (exact, or faiss for large collections), built once per version."""
    return positional_index(_collection.vectors)


@st.cache_data(show_spinner=False)
def museum_captions() -> dict[str, str]:
    return samples.museum_captions()


@st.cache_data(show_spinner="Drawing the style map…", max_entries=32)
def style_map(_vectors: np.ndarray, model_id: str, content_key: str) -> np.ndarray:
    """The t-SNE style map, from the disk cache (computed once per collection and model)."""
    return cached_map(_vectors, model_id)


# ---------------------------------------------------------------------------------------------
# Collection
# ---------------------------------------------------------------------------------------------


@dataclass
class CollectionChoice:
    folder: Path
    label: str
    captions: dict[str, str]


def choose_collection() -> CollectionChoice | None:
    """The sidebar's collection picker: images-by-style/, the Met sample, or any folder."""
    default = samples.DEFAULT_COLLECTION
    default_ready = samples.has_images(default)
    options = ["images-by-style/", "Met paintings sample (174)", OTHER_FOLDER]
    with st.sidebar:
        st.header("Collection")
        choice = st.radio("Search in", options, index=0 if default_ready else 1, key="collection_choice")
        if choice == options[0]:
            if not default_ready:
                st.info("`images-by-style/` is empty. Fetch the 32 original paintings with "
                        "`python image_search.py download images-by-style`, or use the Met sample.")
                return None
            return CollectionChoice(default, "images-by-style", {})
        if choice == options[1]:
            return CollectionChoice(samples.museum_folder(), "Met paintings", museum_captions())
        typed = st.text_input("Folder to index", key="custom_folder", placeholder="/path/to/images")
        if not typed:
            st.caption("Type the path of a folder of images (searched recursively).")
            return None
        return CollectionChoice(Path(typed), Path(typed).name or typed, {})


def get_collection(choice: CollectionChoice, model) -> Collection | None:
    """The indexed collection, from memory, or indexed now with a progress bar (new images only)."""
    try:
        folder = check_folder(choice.folder)
    except FolderError as error:
        st.error(str(error), icon=":material/folder_off:")
        return None
    registry, lock = collection_registry()
    key = (str(folder), model.model_id)
    refresh = st.sidebar.button("Re-scan folder", help="Pick up added, changed or removed images")
    if key in registry and not refresh:
        return registry[key]
    with lock:
        if key in registry and not refresh:
            return registry[key]
        bar = st.progress(0.0, text=f"Indexing {choice.label}…")

        def progress(done: int, total: int) -> None:
            bar.progress(done / max(total, 1), text=f"Indexing {choice.label}: {done}/{total} images")

        try:
            collection = index_folder(folder, model, progress=progress)
        except FolderError as error:
            bar.empty()
            st.error(str(error), icon=":material/folder_off:")
            return None
        bar.empty()
        registry[key] = collection
    return collection


def show_collection_summary(collection: Collection) -> None:
    stats = collection.stats
    st.sidebar.caption(
        f"{len(collection)} images indexed ({stats.new} new, {stats.reused} from cache, "
        f"{stats.removed} removed) in {stats.seconds:.1f} s"
    )
    if collection.skipped:
        with st.sidebar.expander(f"{len(collection.skipped)} files skipped", icon=":material/warning:"):
            for path, reason in collection.skipped:
                st.caption(f"**{path.name}**: {reason}")


# ---------------------------------------------------------------------------------------------
# Search: references, emphasis, results that explain themselves, and the trail of queries
# ---------------------------------------------------------------------------------------------


def current_trail(collection: Collection) -> Trail:
    """This session's trail of queries on this collection (a new one when the collection or model changes)."""
    key = (str(collection.folder), collection.model_id)
    trail = st.session_state.get("style_trail")
    if trail is None or trail.collection_key != key:
        trail = st.session_state["style_trail"] = Trail(key)
    return trail


def hide_results() -> None:
    """A new upload clears the results of the previous one (the breadcrumb keeps them)."""
    trail = st.session_state.get("style_trail")
    if trail is not None:
        trail.hide()


def search_form(model, collection: Collection, trail: Trail) -> None:
    """Uploader (one image or several), k, emphasis, and the search button; the model runs only on the button."""
    uploaded = st.file_uploader(
        "Upload a reference image, or several", type=ui.UPLOAD_TYPES, key="style_query", accept_multiple_files=True,
        help="Several images search for the style they share: the mean of their style vectors.",
        on_change=hide_results,
    )  # fmt: skip
    most = min(24, len(collection))  # a slider needs min < max: one image means one result
    size, emphasis = st.columns([2, 3])
    with size:
        k = st.slider("Number of results (k)", 1, most, min(6, most)) if most > 1 else 1
    with emphasis:
        emphasis_control()
    if st.button("Search for Similar Images", type="primary"):
        search_uploads(model, uploaded or [], trail)
    st.session_state["style_k"] = k


def search_uploads(model, uploaded: list, trail: Trail) -> None:
    """Embed the usable uploads in one batch and make them the query; unusable ones get one message each."""
    if not uploaded:
        st.warning("Upload a reference image first.")
        trail.hide()
        return
    several = len(uploaded) > 1
    images = [(file, ui.read_upload(file, name=file.name if several else "")) for file in uploaded]
    usable = [(file, image) for file, image in images if image is not None]
    if not usable:  # the message above is the answer: results of an earlier image would look like this one's
        trail.hide()
        return
    vectors = model.embed([model.prepare(image) for _, image in usable])
    references = tuple(
        Reference.upload(file.getvalue(), "your image" if len(usable) == 1 else f"your image {number}", vector,
                         make_thumbnail(image, 320))
        for number, ((file, image), vector) in enumerate(zip(usable, vectors, strict=True), start=1)
    )  # fmt: skip
    trail.go(Query(references))


def caption_for(path: Path, captions: dict[str, str]) -> str:
    return captions.get(path.name, path.stem.replace("_", " "))


def search_from_item(trail: Trail, collection: Collection, row: int, label: str, add: bool = False) -> None:
    """"More like this" (a new query of one stored vector) or "Add to query"; no upload and no model call."""
    reference = Reference.item(collection, row, label)
    current = trail.current
    trail.go(current.adding(reference) if add and current is not None else Query((reference,)))


def show_search(collection: Collection, trail: Trail, captions: dict[str, str], segments) -> list[SearchResult]:
    """The breadcrumb, then the current query's references beside its results; [] when there is no query."""
    show_breadcrumb(trail)
    if trail.current is None:
        return []
    index = collection_index(collection, collection.content_key)
    emphasis = st.session_state.get("style_emphasis", 0.0)
    found = explained_search(collection, trail.current.vector(), segments, st.session_state.get("style_k", 6),
                             emphasis, index=index)
    left, right = st.columns([1, 4])
    with left:
        show_references(trail)
    with right:
        st.subheader(f"{len(found.results)} most similar in style")
        explain = st.toggle("Why it matched", value=True, key="style_explain",
                            help="Each result's similarity layer by layer, from fine texture to composition")
        if emphasis:
            st.caption(f"Ranked with the emphasis on {emphasis_words(emphasis)}.")
        columns = st.columns(3)
        for row, result in enumerate(found.results):
            with columns[(result.rank - 1) % 3].container(border=True):
                result_card(collection, trail, found, row, captions, explain)
    return found.results


def use_this_style(path: str) -> None:
    """Select the painting in the transfer tab's "Style from", and open that tab."""
    use_style(path)
    st.session_state[TAB_KEY] = TABS[1]


def result_card(collection: Collection, trail: Trail, found: ExplainedResults, row: int, captions: dict[str, str],
                explain: bool) -> None:
    """One result: thumbnail, similarity (the weighted mean of its layers' similarities), caption, why it
    matched, and what to do with it."""
    result = found.results[row]
    thumb = ui.file_thumbnail(result.path)
    if thumb is None:
        st.warning(f"{result.path.name} is no longer readable.")
        return
    label = caption_for(result.path, captions)
    st.image(thumb, caption=f"#{result.rank} · similarity {found.why.similarities[row]:.3f}")
    st.caption(label)
    if explain:
        show_breakdown(found.why, row)
    in_query = Reference.item_key(result.path) in trail.current.keys
    with st.container(horizontal=True, gap="small"):
        st.button("More like this", key=f"more_like_{result.rank}", icon=":material/travel_explore:", type="tertiary",
                  on_click=search_from_item, args=(trail, collection, result.row, label),
                  help="Search with this painting's style (its stored vector: no upload, no model run)")
        st.button("Add to query", key=f"add_to_query_{result.rank}", icon=":material/add:", disabled=in_query,
                  type="tertiary",
                  on_click=search_from_item, args=(trail, collection, result.row, label, True),
                  help="Already in the query" if in_query else "Search for the style this painting shares "
                                                               "with the current references")
        st.button("Use this style", key=f"use_style_{result.rank}", on_click=use_this_style,
                  args=(str(result.path),), help="Apply this painting's style to your photo")


# ---------------------------------------------------------------------------------------------
# Style map: the queries as stars, the results ringed, a click searches from a painting
# ---------------------------------------------------------------------------------------------


def follow_map_click(key: str, trail: Trail, collection: Collection, captions: dict[str, str]) -> None:
    """A click on a painting of the map makes it the query (its stored vector)."""
    row = clicked_point(st.session_state.get(key))
    if row is not None and 0 <= row < len(collection):
        search_from_item(trail, collection, row, caption_for(collection.paths[row], captions))


def show_style_map(collection: Collection, trail: Trail, results: list[SearchResult],
                   captions: dict[str, str]) -> None:
    """An interactive t-SNE map of the collection's styles: stars for the query's images, rings for the
    results; clicking a painting searches from it."""
    if len(collection) < 3:
        st.info("The style map needs at least 3 images.")
        return
    sample = stratified_sample(None, len(collection))
    vectors = collection.vectors[sample]
    coords = style_map(vectors, collection.model_id, collection.content_key)  # the sample depends only on len
    paths = [collection.paths[i] for i in sample]
    names = [caption_for(p, captions) for p in paths]
    thumbnails = thumbnail_uris(tuple(map(str, paths))) if len(paths) <= MAP_THUMBNAIL_LIMIT else None
    place = {int(row): number for number, row in enumerate(sample)}

    def position(reference: Reference) -> tuple[float, float]:
        number = place.get(collection.rows.get(reference.path, -1)) if reference.path is not None else None
        if number is not None:
            return float(coords[number, 0]), float(coords[number, 1])
        return place_on_map(coords, vectors, reference.vector)

    query = trail.current
    stars = [(star_name(reference, query), position(reference)) for reference in query.references] if query else []
    rings = [(place[result.row], f"#{result.rank}") for result in results if result.row in place]
    figure = map_figure(coords, names, queries=stars, highlight=rings, thumbnails=thumbnails, height=620,
                        point_ids=sample.tolist(), highlight_name=f"top {len(results)}",
                        title=f"Style map of {len(paths)} images (t-SNE of style vectors)")  # fmt: skip
    key = f"style_map_{trail.version}"  # a fresh chart for each query: a click is read once
    st.plotly_chart(figure, width="stretch", key=key, selection_mode="points",
                    on_select=functools.partial(follow_map_click, key, trail, collection, captions))
    st.caption("Click a painting on the map to search for more like it.")


def star_name(reference: Reference, query: Query) -> str:
    if reference.thumbnail is None:
        return reference.label
    uploads = sum(r.thumbnail is not None for r in query.references)
    return "your image" if uploads == 1 else reference.label


@st.cache_data(show_spinner=False, max_entries=16)
def thumbnail_uris(paths: tuple[str, ...]) -> list[str | None]:
    """Small JPEG data URIs of the map's images, computed once per collection."""
    thumbs = [ui.file_thumbnail(Path(path), 96) for path in paths]
    return [ui.data_uri(thumb, 64) if thumb is not None else None for thumb in thumbs]


# ---------------------------------------------------------------------------------------------
# Page
# ---------------------------------------------------------------------------------------------


def style_transfer_tab(collection: Collection | None, captions: dict[str, str]) -> None:
    choices = [(caption_for(p, captions), p) for p in collection.paths] if collection else []
    preset = st.session_state.get(PRESET_KEY)
    render_style_transfer_section(choices, Path(preset) if preset else None, weights_banner=False)


def vgg19_weights_label(choice: str) -> str:
    """The VGG19 weights part of the model's cache key (found or fetched here, with a progress bar).

    Raises ``WeightsUnavailable`` only when VGG19 is required; ``auto`` then falls back to Lite0.
    """
    if choice == LITE0:
        return "not used"
    try:
        return ui.weights_label(WEIGHTS_KEY)
    except WeightsUnavailable:
        if choice == VGG19:
            raise
        return "unavailable"


def model_line(model: StyleModel, choice: str) -> None:
    """One line naming the network in use, and why when it was chosen for the user."""
    if model.note:
        st.info(model.note, icon=":material/model_training:")
        if choice != LITE0 and model.backbone_name == LITE0:  # auto fell back: VGG19 may be fixed meanwhile
            ui.retry_weights_button(WEIGHTS_KEY)
    st.caption(f"Paintings ranked by the similarity of their {DISPLAY_NAMES[model.backbone_name]} "
               "Gram-matrix style vectors.")


def random_weight_parts(model: StyleModel) -> list[str]:
    """What runs on random weights on this page: VGG19, in the search when it is the style model, and always in
    the style transfer. The bundled EfficientNet-Lite0 has real weights."""
    if not get_settings().random_weights:
        return []
    return (["style search"] if model.backbone_name == VGG19 else []) + ["style transfer"]


def main() -> None:
    st.title(":material/palette: Style Search")
    choice = choose_collection()
    try:
        requested = requested_style_model(get_settings().style_model)
        # a failed VGG19 load is remembered by the weights module: reruns show this message without trying again
        model = load_style_model(requested, vgg19_weights_label(requested))
    except WeightsUnavailable as error:
        ui.weights_error(error, WEIGHTS_KEY)  # with its "Try again"
        return
    except (BundledModelBroken, UnknownStyleModel) as error:
        st.error(str(error), icon=":material/key_off:")
        return
    model_line(model, requested)
    ui.random_weights_banner(random_weight_parts(model))
    collection = get_collection(choice, model) if choice else None
    search_tab, transfer_tab = st.tabs(list(TABS), key=TAB_KEY, on_change="rerun")
    captions = choice.captions if choice else {}
    with search_tab:
        if collection is None:
            st.info("Choose a collection in the sidebar to search it.")
        elif len(collection) == 0:
            st.warning("This folder holds no readable images.")
            show_collection_summary(collection)
        else:
            show_collection_summary(collection)
            trail = current_trail(collection)
            search_form(model, collection, trail)
            results = show_search(collection, trail, captions, style_segments(model.config))
            st.subheader("Style map")
            show_style_map(collection, trail, results, captions)
    with transfer_tab:
        style_transfer_tab(collection, captions)


main()
