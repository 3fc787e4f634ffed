"""Visual Search (VAE): upload a photo, find the catalog items that look most like it.

UI only: the model, the catalogs and the cache live in ``lookalike.vae``, ``lookalike.domain`` and
``lookalike.core``. Models, catalogs and latents are loaded once per process; inference runs only
when a button is clicked, and its results are kept in ``st.session_state`` across reruns.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st
from PIL import Image

from lookalike.core.backends import positional_index
from lookalike.core.images import make_thumbnail
from lookalike.core.maps import cached_map, place_on_map, stratified_sample
from lookalike.datasets.catalog import Catalog, CatalogError
from lookalike.domain import DOMAINS, Preprocessed, to_catalog_domain
from lookalike.ui import common as ui
from lookalike.ui.maps import map_figure
from lookalike.vae.catalogs import load_catalog
from lookalike.vae.checkpoints import Checkpoint, ModelMissing, load_checkpoint, train_command
from lookalike.vae.latents import catalog_latents, decode, encode, generate, interpolate

CATALOG_TITLES = {
    "fashion-mnist": "Fashion-MNIST clothes (60,000 items, 28×28 grey)",
    "furniture": "Sweet Home 3D furniture (about 820 items, 64×64 colour)",
}
DISPLAY_SIZE = {"fashion-mnist": 112, "furniture": 128}
MAP_LIMIT = 2000
STATE_KEY = "vae_page"


# ---------------------------------------------------------------------------------------------
# Cached resources
# ---------------------------------------------------------------------------------------------


@st.cache_resource(show_spinner="Loading the VAE…")
def get_checkpoint(dataset: str) -> Checkpoint:
    return load_checkpoint(dataset)


@st.cache_resource(show_spinner="Reading the catalog…")
def get_catalog(dataset: str) -> Catalog:
    return load_catalog(dataset)


@st.cache_resource(show_spinner=False)
def get_latents(dataset: str, model_id: str) -> np.ndarray:
    """z_mean of the whole catalog: read from the disk cache, or computed once with a progress bar."""
    bar = st.progress(0.0, text="Encoding the catalog (once; cached on disk)…")

    def progress(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"Encoding the catalog: {done:,} / {total:,}")

    vectors = catalog_latents(get_checkpoint(dataset), get_catalog(dataset), progress=progress)
    bar.empty()
    return vectors


@st.cache_resource(show_spinner=False)
def get_catalog_index(dataset: str, model_id: str):
    """The catalog's z_mean vectors in a vector index (exact up to ~100,000 items), built once per model."""
    return positional_index(get_latents(dataset, model_id))


@st.cache_data(show_spinner="Drawing the latent map (once; cached on disk)…")
def get_map(dataset: str, model_id: str) -> tuple[np.ndarray, np.ndarray]:
    """A stratified sample of the catalog and its 2-D t-SNE coordinates."""
    catalog = get_catalog(dataset)
    labels = [catalog.category(i) for i in range(len(catalog))]
    sample = stratified_sample(labels, len(catalog), limit=MAP_LIMIT)
    return sample, cached_map(get_latents(dataset, model_id)[sample], model_id)


# ---------------------------------------------------------------------------------------------
# Actions (run on clicks only)
# ---------------------------------------------------------------------------------------------


def run_search(dataset: str, image: np.ndarray, k: int) -> dict[str, Any]:
    """Preprocess, encode, rank and reconstruct one query: everything the results need."""
    checkpoint = get_checkpoint(dataset)
    prepared = to_catalog_domain(image, dataset)
    query = encode(checkpoint.model, prepared.image[None])[0]
    indices, scores = get_catalog_index(dataset, checkpoint.model_id).search(query, k)
    return {
        "dataset": dataset,
        "model_id": checkpoint.model_id,
        "original": image,
        "prepared": prepared,
        "reconstruction": decode(checkpoint.model, query[None])[0],
        "query": query,
        "indices": [int(i) for i in indices],
        "scores": [float(s) for s in scores],
    }


def state() -> dict[str, Any]:
    """This page's per-session results, one entry per catalog."""
    return st.session_state.setdefault(STATE_KEY, {})


def forget_results() -> None:
    """The uploader's ``on_change``: a new photo drops every catalog's results for the previous one."""
    for page in state().values():
        page.pop("result", None)


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------


def enlarge(image: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour upscale so that small catalog images stay crisp on screen."""
    picture = Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image)
    return np.asarray(picture.resize((size, size), Image.Resampling.NEAREST))


def caption_of(catalog: Catalog, index: int) -> str:
    if catalog.name == "fashion-mnist":
        return f"{catalog.category(index)} · #{index}"
    return f"{catalog.captions[index]} ({catalog.category(index)})"


def show_query(result: dict[str, Any]) -> None:
    """The upload, each preprocessing step, and the decoder's reconstruction: what the model sees."""
    st.subheader("What the model sees")
    size = DISPLAY_SIZE[result["dataset"]]
    prepared: Preprocessed = result["prepared"]
    panels = [("your upload", make_thumbnail(result["original"], 256))]
    panels += [(label, make_thumbnail(step, 256)) for label, step in prepared.steps[:-1]]
    panels += [
        ("model input: " + prepared.steps[-1][0] if prepared.steps else "model input", enlarge(prepared.image, size)),
        ("its reconstruction (decoded z_mean)", enlarge(result["reconstruction"], size)),
    ]
    for column, (label, picture) in zip(st.columns(len(panels)), panels, strict=True):
        column.image(picture, caption=label, width=size)


def show_results(result: dict[str, Any], catalog: Catalog) -> None:
    """The ranked catalog items, best first, with scores (and credits for furniture)."""
    st.subheader("Most similar catalog items")
    size = DISPLAY_SIZE[result["dataset"]]
    per_row = 5
    ranked = list(enumerate(zip(result["indices"], result["scores"], strict=True), start=1))
    for start in range(0, len(ranked), per_row):
        for column, (rank, (index, score)) in zip(st.columns(per_row), ranked[start : start + per_row], strict=False):
            with column:
                st.image(enlarge(catalog.images[index], size), width=size)
                st.markdown(f"**{rank}. {caption_of(catalog, index)}**  \nsimilarity {score:.3f}")
                if catalog.creators and catalog.licences:
                    st.caption(f"by {catalog.creators[index]} · {catalog.licences[index]}")


def show_map(dataset: str, catalog: Catalog, result: dict[str, Any] | None) -> None:
    """t-SNE of the catalog latents, coloured by category, with the query as a star."""
    checkpoint = get_checkpoint(dataset)
    sample, coords = get_map(dataset, checkpoint.model_id)
    categories = [catalog.category(i) for i in sample]
    query = None
    if result is not None:
        query = place_on_map(coords, get_latents(dataset, checkpoint.model_id)[sample], result["query"])
    hover = [caption_of(catalog, int(i)) for i in sample]
    figure = map_figure(coords, hover, categories=categories, query=query, height=520, query_name="your query")
    st.subheader("Latent map")
    st.caption(f"t-SNE of z_mean for {len(sample):,} catalog items, coloured by category.")
    st.plotly_chart(figure, width="stretch")


def show_generate(dataset: str) -> None:
    """Decode random draws from the prior: what the latent space has learnt to produce."""
    st.subheader("Generate")
    left, right = st.columns(2)
    count = left.slider("How many", 4, 16, 8, step=4, key=f"gen_count_{dataset}")
    temperature = right.slider("Spread (σ of the prior draw)", 0.3, 1.5, 1.0, step=0.1, key=f"gen_temp_{dataset}")
    page = state().setdefault(dataset, {})
    if st.button("Generate", key=f"generate_{dataset}"):
        seed = page.get("generate_seed", 0) + 1
        images = generate(get_checkpoint(dataset).model, count, seed=seed, temperature=temperature)
        page.update(generate_seed=seed, generated=images)
    if "generated" in page:
        size = DISPLAY_SIZE[dataset]
        st.image([enlarge(image, size) for image in page["generated"]], width=size)


def show_interpolation(dataset: str, catalog: Catalog, result: dict[str, Any] | None) -> None:
    """A strip of decoded points on the straight line between two chosen items' latents."""
    st.subheader("Interpolate between two items")
    choices = interpolation_choices(catalog, result)
    left, right, steps_column = st.columns([2, 2, 1])
    first = left.selectbox("From", choices, index=0, format_func=lambda i: caption_of(catalog, i),
                           key=f"interp_a_{dataset}")
    second = right.selectbox("To", choices, index=min(1, len(choices) - 1),
                             format_func=lambda i: caption_of(catalog, i), key=f"interp_b_{dataset}")
    steps = steps_column.number_input("Steps", 3, 12, 8, key=f"interp_steps_{dataset}")
    page = state().setdefault(dataset, {})
    if st.button("Interpolate", key=f"interpolate_{dataset}"):
        model = get_checkpoint(dataset).model
        page["interpolation"] = interpolate(model, catalog.images[first], catalog.images[second], int(steps))
    if "interpolation" in page:
        size = DISPLAY_SIZE[dataset]
        st.image([enlarge(image, size) for image in page["interpolation"]], width=size)


def interpolation_choices(catalog: Catalog, result: dict[str, Any] | None) -> list[int]:
    """The current results first, then the first few items of every category."""
    picked = list(result["indices"]) if result else []
    for label in range(len(catalog.class_names)):
        picked += [int(i) for i in np.flatnonzero(catalog.labels == label)[:4]]
    return list(dict.fromkeys(picked))


def show_about(catalog: Catalog) -> None:
    with st.expander("About the data"):
        st.markdown(f"**{len(catalog):,} items** in {len(catalog.class_names)} categories, read at run time.")
        for source in catalog.sources:
            st.markdown(f"- {source}")
        for problem in catalog.skipped:
            st.warning(f"Skipped: {problem}")
        if catalog.creators:
            st.markdown(
                "Each furniture model keeps its creator and licence from the package's "
                "`PluginFurnitureCatalog.properties`; they are shown under every result. "
                "CC-BY items require attribution to their creator."
            )


# ---------------------------------------------------------------------------------------------
# Page
# ---------------------------------------------------------------------------------------------


def main() -> None:
    st.title("Visual Search (VAE)")
    st.write(
        "Upload a photo of a garment or a piece of furniture. A variational autoencoder maps it to a small "
        "latent vector, and the catalog items with the closest vectors (cosine similarity) are returned."
    )
    dataset = st.radio("Catalog", DOMAINS, format_func=CATALOG_TITLES.get, horizontal=True, key="catalog")
    try:
        checkpoint = get_checkpoint(dataset)
        catalog = get_catalog(dataset)
    except ModelMissing as error:
        st.error(f"No trained model for this catalog yet. Create it with `{train_command(dataset)}`. ({error})")
        return
    except CatalogError as error:
        st.error(str(error))
        return

    uploaded = st.file_uploader("Upload a photo", type=ui.UPLOAD_TYPES, key="upload", on_change=forget_results)
    k = st.slider("Number of results", 1, 30, 10, key="k")
    if st.button("Search for Similar Images", type="primary", key="search"):
        if uploaded is None:
            st.warning("Upload a photo first.")
        elif (image := ui.read_upload(uploaded)) is not None:
            state()[dataset] = {**state().get(dataset, {}), "result": run_search(dataset, image, k)}
        else:  # a broken upload: don't leave the previous results looking like its results
            state().get(dataset, {}).pop("result", None)

    result = state().get(dataset, {}).get("result")
    if result is not None and result["model_id"] != checkpoint.model_id:
        result = None  # the model was retrained: the old result no longer applies
    if result is not None:
        show_query(result)
        show_results(result, catalog)
    if st.toggle("Show the latent map (t-SNE, drawn once per model and cached)", key=f"map_{dataset}"):
        show_map(dataset, catalog, result)
    show_generate(dataset)
    show_interpolation(dataset, catalog, result)
    show_about(catalog)


main()
