"""Fashion Classifier: upload a garment photo, see its class probabilities and where it sits on the map."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from lookalike.classifier.data import sample_split
from lookalike.classifier.describe import knowledge_line, unsure_message
from lookalike.classifier.inference import Classifier, Prediction, dataset_embeddings, load_classifier
from lookalike.classifier.model import CONFUSION_FILE, MODEL_FILE, ClassifierError
from lookalike.classifier.storage import list_models, on_random_weights, read_metadata
from lookalike.classifier.training import TrainConfig, train
from lookalike.core import settings
from lookalike.core.files import bytes_sha256
from lookalike.core.images import ImageError, make_thumbnail
from lookalike.core.maps import cached_map, place_on_map
from lookalike.ui import common as ui
from lookalike.ui.maps import map_figure

MAP_PER_CLASS = 100  # test images per class on the embedding map
PREVIEW_PER_CLASS = 2
GALLERY_PER_CLASS = 1
TRAIN_COMMAND = "python classifier.py train --data fashion-mnist --epochs 8"
SMALL_MODEL = dict(epochs=3, limit=6000, batch_size=64, name="fashion-mnist-small-effb0-32", patience=2)


# ---------------------------------------------------------------------------------------------
# Cached loaders
# ---------------------------------------------------------------------------------------------


@st.cache_resource(show_spinner="Loading the classifier…", max_entries=4)
def load_model(folder: str, model_mtime_ns: int) -> Classifier:
    """One loaded model per file version, shared by every session."""
    return load_classifier(folder)


def current_model(folder: Path) -> Classifier:
    return load_model(str(folder), (folder / MODEL_FILE).stat().st_mtime_ns)


@st.cache_data(show_spinner="Reading sample images…", max_entries=16)
def split_sample(folder: str, model_id: str, split: str, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    return sample_split(read_metadata(folder), split, per_class)


@st.cache_data(show_spinner="Classifying the test gallery…", max_entries=8)
def gallery_probabilities(folder: str, model_id: str, per_class: int) -> np.ndarray:
    inputs, _ = split_sample(folder, model_id, "test", per_class)
    return current_model(Path(folder)).predict_proba(inputs)


@st.cache_data(show_spinner="Building the embedding map (once per model)…", max_entries=8)
def embedding_map(folder: str, model_id: str, per_class: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Embeddings, labels and cached t-SNE coordinates of the model's test images."""
    inputs, labels = split_sample(folder, model_id, "test", per_class)
    vectors = dataset_embeddings(current_model(Path(folder)), inputs)
    return vectors, labels, cached_map(vectors, model_id)


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------


def describe(folder: Path) -> str:
    meta = read_metadata(folder)
    accuracy = meta.get("test_accuracy")
    score = f", test accuracy {accuracy:.3f}" if isinstance(accuracy, float) else ""
    return f"{folder.name} ({meta.get('dataset')}, {len(meta.get('classes', []))} classes{score})"


def model_line(folder: Path) -> str:
    """One line naming the model in use, its backbone and what it learned from."""
    meta = read_metadata(folder)
    learned = meta.get("trained_on") or f"{meta.get('dataset')}, {len(meta.get('classes', []))} classes"
    return f"Model **{folder.name}**: {meta.get('backbone')}, {learned}."


def choose_model() -> Path | None:
    """The sidebar's model selector, with the chosen model's metadata."""
    folders = list_models(settings.MODELS_DIR)
    with st.sidebar:
        st.header("Model")
        if not folders:
            return None
        names = {describe(folder): folder for folder in folders}
        chosen = names[st.selectbox("Classifier", list(names), key="classifier_model")]
        meta = read_metadata(chosen)
        st.caption(
            f"{meta.get('backbone')} · {meta.get('input_size')} px · weights: {meta.get('weights')} · "
            f"trained {str(meta.get('date', '?'))[:10]}"
        )
        with st.expander("Metadata"):
            st.json(meta)
    return chosen


def no_model_section() -> None:
    """What to do when ``models/`` holds no classifier: the command, or a small model trained here."""
    st.info(f"No classifier in `{settings.MODELS_DIR}` yet. Create one with\n\n`{TRAIN_COMMAND}`")
    st.caption(
        "Or train a small model right here: Fashion-MNIST, 6,000 images, 3 epochs (a few minutes on a laptop). "
        "It is a rough model; the full recipe above reaches 0.92 or more."
    )
    if st.button("Train a small model", key="train_small"):
        bar = st.progress(0.0, text="Training…")

        def progress(done: int, total: int) -> None:
            bar.progress(min(done / max(total, 1), 1.0), text=f"Training: {done:,} of {total:,} images")

        try:
            config = TrainConfig(command="trained in the Fashion Classifier page", **SMALL_MODEL)
            folder = train(config, progress)
        except (ClassifierError, ImageError) as error:
            st.error(f"Training failed: {error}")
            return
        st.success(f"Saved {folder.name}.")
        st.rerun()


def upload_section(model: Classifier) -> Prediction | None:
    """The uploader, the image, the predicted class and every class probability, sorted."""
    uploaded = st.file_uploader("Choose an image", type=ui.UPLOAD_TYPES, key="classifier_upload",
                                on_change=ui.forget, args=("classifier_prediction",))
    if uploaded is None:
        st.caption("Upload a photo of a garment to see what the model thinks it is.")
        return None
    result = predict_once(model, uploaded)
    if result is None:
        return None
    prediction, thumbnail = result
    left, right = st.columns([1, 2])
    with left:
        st.image(thumbnail, caption="Your image", width="stretch")
        st.image(prediction.prepared, caption="What the model sees", width=112)
    with right:
        name, probability = prediction.ranked()[0]
        st.subheader(f"{name}  ·  {probability:.1%}")
        st.caption(knowledge_line(model.metadata))
        if message := unsure_message(probability):
            st.info(message, icon=":material/help:")
        st.plotly_chart(probability_chart(prediction), width="stretch", key="probabilities")
    return prediction


def predict_once(model: Classifier, uploaded) -> tuple[Prediction, np.ndarray] | None:
    """Classify the upload once per (model, file); reruns reuse the stored result."""
    key = (model.model_id, bytes_sha256(uploaded.getvalue()))
    stored = st.session_state.get("classifier_prediction")
    if stored and stored[0] == key:
        return stored[1], stored[2]
    image = ui.read_upload(uploaded)
    if image is None:
        return None
    prediction = model.predict_image(image)
    thumbnail = make_thumbnail(image, 512)
    st.session_state["classifier_prediction"] = (key, prediction, thumbnail)
    return prediction, thumbnail


def probability_chart(prediction: Prediction):
    import plotly.graph_objects as go

    ranked = prediction.ranked()[::-1]  # plotly draws the first bar at the bottom
    figure = go.Figure(
        go.Bar(
            x=[p for _, p in ranked],
            y=[name for name, _ in ranked],
            orientation="h",
            text=[f"{p:.1%}" for _, p in ranked],
            textposition="auto",
        )
    )
    figure.update_layout(
        xaxis=dict(range=[0, 1], tickformat=".0%", title="probability"),
        height=60 + 28 * len(ranked),
        margin=dict(l=10, r=10, t=10, b=10),
    )
    return figure


def map_section(folder: Path, model: Classifier, prediction: Prediction | None) -> None:
    """t-SNE of the test images' embeddings, coloured by class, with the upload placed on it."""
    st.subheader("Embedding map")
    try:
        vectors, labels, coords = embedding_map(str(folder), model.model_id, MAP_PER_CLASS)
    except ClassifierError as error:
        st.info(f"No map: {error}")
        return
    names = [model.classes[int(label)] for label in labels]
    query = place_on_map(coords, vectors, prediction.embedding) if prediction is not None else None
    figure = map_figure(coords, names, categories=names, query=query, height=520, legend_title="class")
    st.plotly_chart(figure, width="stretch", key="embedding_map")
    st.caption(f"{len(labels)} test images ({MAP_PER_CLASS} per class at most), t-SNE of the `embedding` layer.")


def confusion_section(folder: Path) -> None:
    st.subheader("Confusion matrix")
    image = folder / CONFUSION_FILE
    if image.is_file():
        st.image(str(image))
    else:
        st.info(f"Not evaluated yet: `python classifier.py evaluate {folder}`")


def preview_section(folder: Path, model: Classifier) -> None:
    st.subheader("Dataset preview")
    try:
        inputs, labels = split_sample(str(folder), model.model_id, "train", PREVIEW_PER_CLASS)
    except ClassifierError as error:
        st.info(f"No preview: {error}")
        return
    image_grid(inputs, [model.classes[int(label)] for label in labels])


def gallery_section(folder: Path, model: Classifier) -> None:
    st.subheader("Test images and their class probabilities")
    try:
        inputs, labels = split_sample(str(folder), model.model_id, "test", GALLERY_PER_CLASS)
        probabilities = gallery_probabilities(str(folder), model.model_id, GALLERY_PER_CLASS)
    except ClassifierError as error:
        st.info(f"No gallery: {error}")
        return
    captions = []
    for label, row in zip(labels, probabilities, strict=True):
        order = np.argsort(-row)
        lines = [f"{model.classes[i]} {row[i]:.0%}" for i in order[:3]]
        mark = "✓" if order[0] == label else "✗"
        captions.append(f"{mark} true: {model.classes[int(label)]} · " + " · ".join(lines))
    image_grid(inputs, captions)


def image_grid(images: np.ndarray, captions: list[str], columns: int = 5) -> None:
    for start in range(0, len(images), columns):
        for column, image, caption in zip(
            st.columns(columns), images[start : start + columns], captions[start : start + columns], strict=False
        ):
            column.image(image, caption=caption, width="stretch")


# ---------------------------------------------------------------------------------------------
# Page
# ---------------------------------------------------------------------------------------------


def main() -> None:
    st.title("Fashion Classifier")
    st.caption("Every class probability for your photo, and where it lands on a map of the model's embeddings.")
    folder = choose_model()
    if folder is None:
        no_model_section()
        return
    st.caption(model_line(folder))
    if on_random_weights(read_metadata(folder)):
        ui.random_weights_banner(["this classifier"])
    try:
        model = current_model(folder)
    except ClassifierError as error:
        st.error(str(error))
        return
    prediction = upload_section(model)
    map_section(folder, model, prediction)
    confusion_section(folder)
    preview_section(folder, model)
    gallery_section(folder, model)


main()
