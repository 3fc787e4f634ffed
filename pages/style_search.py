"""Style Search: find paintings that share a style, map the collection, and apply a style to a photo."""

from __future__ import annotations

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
from lookalike.search.folders import Collection, index_folder
from lookalike.search.ranking import rank
from lookalike.style.backbones import DISPLAY_NAMES, LITE0, VGG19
from lookalike.style.choice import UnknownStyleModel, requested_style_model
from lookalike.style.choice import load_style_model as choose_and_load_style_model
from lookalike.style.vectors import StyleModel
from lookalike.style.vgg19 import WEIGHTS_KEY
from lookalike.ui import common as ui
from lookalike.ui.maps import map_figure
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
# Search
# ---------------------------------------------------------------------------------------------


def search_form(model, collection: Collection) -> None:
    """Uploader, k slider and the search button; runs the model only when the button is clicked."""
    uploaded = st.file_uploader("Upload a reference image", type=ui.UPLOAD_TYPES, key="style_query",
                                on_change=ui.forget, args=("style_search",))
    most = min(24, len(collection))  # a slider needs min < max: one image means one result
    k = st.slider("Number of results (k)", 1, most, min(6, most)) if most > 1 else 1
    if st.button("Search for Similar Images", type="primary"):
        image = ui.read_upload(uploaded)
        if uploaded is None:
            st.warning("Upload a reference image first.")
        if image is not None:
            query = model.embed([model.prepare(image)])[0]
            st.session_state["style_search"] = {
                "query_image": make_thumbnail(image, 320),
                "query_vector": query,
                "collection_key": (str(collection.folder), collection.model_id),
            }
        else:  # the message above is the answer: results of an earlier image would look like this one's
            st.session_state.pop("style_search", None)
    st.session_state["style_k"] = k


def current_search(collection: Collection) -> dict | None:
    state = st.session_state.get("style_search")
    if state and state["collection_key"] == (str(collection.folder), collection.model_id):
        return state
    return None


def caption_for(path: Path, captions: dict[str, str]) -> str:
    return captions.get(path.name, path.stem.replace("_", " "))


def show_results(collection: Collection, search: dict, captions: dict[str, str]) -> None:
    """The query beside a grid of ranked results: thumbnail, similarity and caption."""
    index = collection_index(collection, collection.content_key)
    results = rank(collection, search["query_vector"], st.session_state.get("style_k", 6), index)
    left, right = st.columns([1, 4])
    left.image(search["query_image"], caption="Your reference image")
    with right:
        st.subheader(f"{len(results)} most similar in style")
        columns = st.columns(3)
        for result in results:
            with columns[(result.rank - 1) % 3].container(border=True):
                thumb = ui.file_thumbnail(result.path)
                if thumb is None:
                    st.warning(f"{result.path.name} is no longer readable.")
                    continue
                st.image(thumb, caption=f"#{result.rank} · similarity {result.score:.3f}")
                st.caption(caption_for(result.path, captions))
                st.button("Use this style", key=f"use_style_{result.rank}", on_click=use_this_style,
                          args=(str(result.path),), help="Apply this painting's style to your photo")


def use_this_style(path: str) -> None:
    """Select the painting in the transfer tab's "Style from", and open that tab."""
    use_style(path)
    st.session_state[TAB_KEY] = TABS[1]


def show_style_map(collection: Collection, search: dict | None, captions: dict[str, str]) -> None:
    """An interactive t-SNE map of the collection's styles, with the query as a star."""
    if len(collection) < 3:
        st.info("The style map needs at least 3 images.")
        return
    sample = stratified_sample(None, len(collection))
    vectors = collection.vectors[sample]
    coords = style_map(vectors, collection.model_id, collection.content_key)  # the sample depends only on len
    paths = [collection.paths[i] for i in sample]
    names = [caption_for(p, captions) for p in paths]
    thumbnails = thumbnail_uris(tuple(map(str, paths))) if len(paths) <= MAP_THUMBNAIL_LIMIT else None
    query = place_on_map(coords, vectors, search["query_vector"]) if search is not None else None
    figure = map_figure(coords, names, query=query, thumbnails=thumbnails, height=620,
                        title=f"Style map of {len(paths)} images (t-SNE of style vectors)")  # fmt: skip
    st.plotly_chart(figure, width="stretch")


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
            search_form(model, collection)
            search = current_search(collection)
            if search is not None:
                show_results(collection, search, captions)
            st.subheader("Style map")
            show_style_map(collection, search, captions)
    with transfer_tab:
        style_transfer_tab(collection, captions)


main()
