"""Small Streamlit pieces that every page shares: banners, the one upload reader, thumbnails."""

from __future__ import annotations

import base64
import gc
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

from lookalike.core import weights
from lookalike.core.images import DEFAULT_MAX_SIDE, IMAGE_SUFFIXES, ImageError, load_image, make_thumbnail
from lookalike.core.weights import WeightsUnavailable
from lookalike.ui import failures

UPLOAD_TYPES = [suffix.lstrip(".") for suffix in IMAGE_SUFFIXES]  # jpg, jpeg, png, webp, bmp, gif (first frame)


def freeze_loaded_objects() -> None:
    """Move everything allocated so far (models, graphs) out of the garbage collector's view.

    Streamlit runs a full garbage collection after every script run (and Keras' ``clear_session``
    another); with TensorFlow's large object graphs each takes most of a second. Frozen objects
    are skipped, so call this once after loading a model.
    """
    gc.collect()
    gc.freeze()


def random_weights_banner(parts: Sequence[str] | None = None) -> None:
    """The page's one warning, naming the ``parts`` of the page that run on random weights; nothing when none does.

    Each page calls it once, after it knows its models: a model trained from scratch, or shipped with its own
    weights, does not run on random weights whatever ``LOOKALIKE_WEIGHTS`` says. Without ``parts``, the warning
    names "this page's models" whenever ``LOOKALIKE_WEIGHTS=random``.
    """
    if parts is None:
        parts = ["this page's models"] if weights.uses_random("vgg19") else []
    if not parts:
        return
    names = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    st.warning(
        f"Running on **random weights** (LOOKALIKE_WEIGHTS=random) in {names}: the results are placeholders, which "
        "show that the pipeline works, not real similarity or style. Add the ImageNet weights for real results.",
        icon=":material/warning:",
    )


def weights_label(key: str) -> str:
    """``weights.label(key)``, with a progress bar while the file downloads (the first run only)."""
    spec = weights.PUBLISHED[key]
    bar: dict[str, object] = {}

    def progress(done: int, total: int | None) -> None:
        if "bar" not in bar:
            bar["bar"] = st.progress(0.0)
        size = f" of {total / 2**20:.0f} MB" if total else ""
        bar["bar"].progress(min(done / total, 1.0) if total else 0.0,
                            text=f"Downloading the {spec.model} ImageNet weights: {done / 2**20:.0f}{size}")

    try:
        return weights.resolve(key, progress=progress).label
    finally:
        if "bar" in bar:
            bar["bar"].empty()


def weights_error(error: WeightsUnavailable, key: str) -> None:
    """One message naming the missing, damaged or wrong weights file and the fix, and a "Try again".

    A failed attempt is remembered for the process (reruns don't download again); the button forgets it.
    """
    st.error(f"**{error.model} weights are not available.** {error.reason}\n\n{error.fix}", icon=":material/key_off:")
    retry_weights_button(key)


def retry_weights_button(key: str) -> None:
    """"Try again": forget the remembered failure and rerun, after the file was fixed or the network is back."""
    if st.button("Try again", key=f"weights_retry_{key}", icon=":material/refresh:"):
        weights.forget_failures()
        failures.forget_all_failures()
        st.rerun()


def upload_error(error: ImageError, name: str = "") -> None:
    """The one message every uploader shows for a file that is not a usable image."""
    prefix = f"{name}: " if name else ""
    st.error(f"This upload can't be used: {prefix}{error} Please choose another image.", icon=":material/broken_image:")


@st.cache_data(max_entries=16, show_spinner=False)
def decode_bytes(data: bytes, max_side: int = DEFAULT_MAX_SIDE) -> np.ndarray:
    """Decode image bytes once per content (reruns reuse the array). Raises ``ImageError``."""
    return load_image(data, max_side=max_side)


def button_with_reason(label: str, reason: str | None, **kwargs) -> bool:
    """A button that is disabled while ``reason`` says what is missing, with that reason beside it."""
    with st.container(horizontal=True, vertical_alignment="center"):
        clicked = st.button(label, disabled=reason is not None, **kwargs)
        if reason is not None:
            st.caption(reason)
    return clicked


def image_rows(images: Sequence[np.ndarray], width: int, most_per_row: int = 8) -> None:
    """Images in rows of equal length (12 as 6 + 6, never 7 + 5 or a browser's 7 + 1), each at ``width`` px or
    its column's width, whichever is smaller."""
    if not len(images):
        return
    rows = -(-len(images) // most_per_row)
    per_row = -(-len(images) // rows)
    for start in range(0, len(images), per_row):
        for column, image in zip(st.columns(per_row), images[start : start + per_row], strict=False):
            column.image(image, width=width)


def forget(*keys: str) -> None:
    """An uploader's ``on_change``: choosing another file drops the results of the previous one, which
    would otherwise stand under the new image as if they were its own."""
    for key in keys:
        st.session_state.pop(key, None)


def read_upload(uploaded, max_side: int = DEFAULT_MAX_SIDE, name: str = "") -> np.ndarray | None:
    """Decode an uploaded file from its bytes (its name is never used as a path).

    Shows one ``st.error`` and returns ``None`` when the file is not a usable image.
    """
    if uploaded is None:
        return None
    try:
        return decode_bytes(uploaded.getvalue(), max_side)
    except ImageError as error:
        upload_error(error, name)
        return None


@st.cache_data(show_spinner=False, max_entries=20_000)
def thumbnail_of(path: str, mtime_ns: int, size: int = 256) -> np.ndarray | None:
    """A display thumbnail of an image file, cached per file version. ``None`` if it no longer decodes."""
    try:
        return make_thumbnail(load_image(path, max_side=size * 2), size)
    except ImageError:
        return None


def file_thumbnail(path: Path, size: int = 256) -> np.ndarray | None:
    try:
        return thumbnail_of(str(path), path.stat().st_mtime_ns, size)
    except OSError:
        return None


def data_uri(image: np.ndarray, size: int = 64, quality: int = 70) -> str:
    """A small JPEG data URI, for thumbnails inside plotly charts."""
    thumb = Image.fromarray(make_thumbnail(image, size))
    buffer = io.BytesIO()
    thumb.save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
