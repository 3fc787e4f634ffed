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
from lookalike.domain import CLOTHING_PHOTOS, DOMAINS, Preprocessed, to_catalog_domain
from lookalike.ui import common as ui
from lookalike.ui.maps import map_figure
from lookalike.vae.catalogs import load_catalog
from lookalike.vae.checkpoints import Checkpoint, ModelMissing, load_checkpoint, train_command
from lookalike.vae.features import FeatureEmbedder, bundled_backbone
from lookalike.vae.latents import decode, encode, generate, interpolate
from lookalike.vae.matching import (
    VAE,
    MatchMode,
    catalog_vectors,
    features_mode,
    query_vector,
    vae_mode,
)

CATALOG_TITLES = {
    "fashion-mnist": "Fashion-MNIST clothes (60,000 items, 28×28 grey)",
    "furniture": "Sweet Home 3D furniture (about 820 items, 64×64 colour)",
    CLOTHING_PHOTOS: "Clothing photos (3,068 real photos, 96×96 colour)",
}
DISPLAY_SIZE = {"fashion-mnist": 112, "furniture": 128, CLOTHING_PHOTOS: 128}
MATCHABLE = {CLOTHING_PHOTOS}  # catalogs whose "Match by" choices were measured (P@10 by class)
MAP_LIMIT = 2000
SEARCHABLE_LIMIT = 5000  # From/To lists of larger catalogs (Fashion-MNIST's 60,000) take an item number instead
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


@st.cache_resource(show_spinner="Loading the pretrained backbone…")
def get_embedder() -> FeatureEmbedder | None:
    """The bundled pooled-feature backbone as an embedder, or None where none is bundled."""
    backbone = bundled_backbone()
    return FeatureEmbedder(backbone) if backbone is not None else None


@st.cache_resource(show_spinner=False)
def get_vectors(dataset: str, mode: str, model_id: str) -> np.ndarray:
    """The catalog's vectors for one way of matching: read from the disk cache, or computed once with a bar."""
    what = "Encoding the catalog" if mode == VAE else "Computing the catalog's pretrained features"
    bar = st.progress(0.0, text=f"{what} (once; cached on disk)…")

    def progress(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"{what}: {done:,} / {total:,}")

    vectors = catalog_vectors(mode, get_checkpoint(dataset), get_catalog(dataset), get_embedder(), progress)
    bar.empty()
    return vectors


def get_latents(dataset: str, model_id: str) -> np.ndarray:
    return get_vectors(dataset, VAE, model_id)


@st.cache_resource(show_spinner=False)
def get_catalog_index(dataset: str, mode: str, model_id: str):
    """The catalog's vectors in a vector index (exact up to ~100,000 items), built once per way of matching."""
    return positional_index(get_vectors(dataset, mode, model_id))


def match_modes(dataset: str, checkpoint: Checkpoint) -> list[MatchMode]:
    """The VAE's latent always; pretrained features where measured for this catalog and a backbone is bundled."""
    modes = [vae_mode(checkpoint)]
    embedder = get_embedder() if dataset in MATCHABLE else None
    if embedder is not None:
        modes.append(features_mode(checkpoint, embedder))
    return modes


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


def run_search(dataset: str, image: np.ndarray, k: int, mode: MatchMode) -> dict[str, Any]:
    """Preprocess, encode, rank and reconstruct one query: everything the results need.

    Both ways of matching rank through the same index interface; the VAE's latent is computed either way, for
    the reconstruction and the star on the latent map.
    """
    checkpoint = get_checkpoint(dataset)
    prepared = to_catalog_domain(image, dataset)
    latent = encode(checkpoint.model, prepared.image[None])[0]
    query = latent if mode.key == VAE else query_vector(mode.key, checkpoint, image, prepared.image, get_embedder())
    indices, scores = get_catalog_index(dataset, mode.key, mode.model_id).search(query, k)
    return {
        "dataset": dataset,
        "model_id": checkpoint.model_id,
        "match": mode,
        "original": image,
        "prepared": prepared,
        "reconstruction": decode(checkpoint.model, latent[None])[0],
        "query": latent,
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
    """Upscale for the screen: nearest-neighbour by whole factors, so small icons stay crisp; smooth otherwise."""
    picture = Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image)
    whole = size % picture.width == 0
    return np.asarray(picture.resize((size, size), Image.Resampling.NEAREST if whole else Image.Resampling.LANCZOS))


def item_picture(catalog: Catalog, index: int, size: int) -> np.ndarray:
    """A catalog item as shown in the results: its original photo where there is one, else its image."""
    if catalog.paths is not None:
        thumbnail = ui.file_thumbnail(catalog.paths[index], size)
        if thumbnail is not None:
            return thumbnail
    return enlarge(catalog.images[index], size)


def caption_of(catalog: Catalog, index: int) -> str:
    return item_names(catalog.name)[index]


@st.cache_resource(show_spinner=False)
def item_names(dataset: str) -> list[str]:
    """One distinct name per catalog item: "Bed (Bedroom)", then "Bed (Bedroom) #2" for the next bed, and so on."""
    catalog = get_catalog(dataset)
    if catalog.name == "fashion-mnist":
        return [f"{catalog.category(i)} · #{i}" for i in range(len(catalog))]
    return numbered([f"{catalog.captions[i]} ({catalog.category(i)})" for i in range(len(catalog))])


def numbered(names: list[str]) -> list[str]:
    """The names, with "#2", "#3"… added to the second and later uses of a name."""
    seen: dict[str, int] = {}
    distinct = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        distinct.append(name if seen[name] == 1 else f"{name} #{seen[name]}")
    return distinct


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
    st.caption(f"Matched by {result['match'].label}.")
    size = DISPLAY_SIZE[result["dataset"]]
    per_row = 5
    ranked = list(enumerate(zip(result["indices"], result["scores"], strict=True), start=1))
    for start in range(0, len(ranked), per_row):
        for column, (rank, (index, score)) in zip(st.columns(per_row), ranked[start : start + per_row], strict=False):
            with column:
                st.image(item_picture(catalog, index, size), width=size)
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
        ui.image_rows([enlarge(image, size) for image in page["generated"]], size)


def show_interpolation(dataset: str, catalog: Catalog, result: dict[str, Any] | None) -> None:
    """A strip of decoded points on the straight line between two chosen items' latents."""
    st.subheader("Interpolate between two items")
    start, end = default_ends(catalog, result)
    left, right, steps_column = st.columns([2, 2, 1])
    first = pick_item(left, "From", catalog, start, f"interp_a_{dataset}")
    second = pick_item(right, "To", catalog, end, f"interp_b_{dataset}")
    steps = steps_column.number_input("Steps", 3, 12, 8, key=f"interp_steps_{dataset}")
    page = state().setdefault(dataset, {})
    same = "From and To are the same item: pick two different items." if first == second else None
    if ui.button_with_reason("Interpolate", same, key=f"interpolate_{dataset}"):
        model = get_checkpoint(dataset).model
        page["interpolation"] = interpolate(model, catalog.images[first], catalog.images[second], int(steps))
    if "interpolation" in page:
        size = DISPLAY_SIZE[dataset]
        ui.image_rows([enlarge(image, size) for image in page["interpolation"]], size)


def pick_item(column, label: str, catalog: Catalog, default: int, key: str) -> int:
    """Any catalog item: a searchable list of every item, or, for a very large catalog, its item number."""
    names = item_names(catalog.name)
    if len(catalog) <= SEARCHABLE_LIMIT:
        return int(column.selectbox(label, range(len(catalog)), index=default, format_func=names.__getitem__,
                                    key=key, help="Type to search"))  # fmt: skip
    index = int(column.number_input(f"{label} (item number)", 0, len(catalog) - 1, default, key=key))
    column.caption(names[index])
    return index


def default_ends(catalog: Catalog, result: dict[str, Any] | None) -> tuple[int, int]:
    """Where From and To start: the two best results, or the first items of the first two categories."""
    if result and len(result["indices"]) > 1:
        return result["indices"][0], result["indices"][1]
    firsts = [int(np.flatnonzero(catalog.labels == label)[0]) for label in np.unique(catalog.labels)[:2]]
    return firsts[0], firsts[-1] if len(firsts) > 1 else min(1, len(catalog) - 1)


def pick_match_mode(dataset: str, checkpoint: Checkpoint) -> MatchMode:
    """The "Match by" control: shown where there is a choice; each option carries its measured P@10."""
    modes = match_modes(dataset, checkpoint)
    if len(modes) == 1:
        if modes[0].p_at_10 is not None:
            st.caption(f"Matching by {modes[0].label} (P@10 by class on 341 validation photos; chance 0.10).")
        return modes[0]
    chosen = st.radio("Match by", [m.key for m in modes], format_func={m.key: m.label for m in modes}.get,
                      horizontal=True, key=f"match_{dataset}",
                      help="P@10 by class: of the 10 best matches for each of 341 validation photos, the share of "
                           "the photo's own class, averaged over the 10 classes (chance: 0.10).")
    return next(m for m in modes if m.key == chosen)


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
        catalog = get_catalog(dataset)
        checkpoint = get_checkpoint(dataset)
    except ModelMissing as error:
        st.error(f"No trained model for this catalog yet. Create it with `{train_command(dataset)}`. ({error})")
        return
    except CatalogError as error:
        st.error(str(error))
        return

    uploaded = st.file_uploader("Upload a photo", type=ui.UPLOAD_TYPES, key="upload", on_change=forget_results)
    k = st.slider("Number of results", 1, 30, 10, key="k")
    mode = pick_match_mode(dataset, checkpoint)
    if st.button("Search for Similar Images", type="primary", key="search"):
        if uploaded is None:
            st.warning("Upload a photo first.")
        elif (image := ui.read_upload(uploaded)) is not None:
            state()[dataset] = {**state().get(dataset, {}), "result": run_search(dataset, image, k, mode)}
        else:  # a broken upload: don't leave the previous results looking like its results
            state().get(dataset, {}).pop("result", None)

    result = state().get(dataset, {}).get("result")
    if result is not None and result["model_id"] != checkpoint.model_id:
        result = None  # the model was retrained: the old result no longer applies
    if result is not None:
        if result["match"].key != mode.key:
            st.info(f"These results were matched by {result['match'].title}. Search again to match by "
                    f"{mode.title}.")
        show_query(result)
        show_results(result, catalog)
    if st.toggle("Show the latent map (t-SNE, drawn once per model and cached)", key=f"map_{dataset}"):
        show_map(dataset, catalog, result)
    show_generate(dataset)
    show_interpolation(dataset, catalog, result)
    show_about(catalog)


main()
