"""The "Apply a style to your photo" section of the Style Search page (neural style transfer).

``pages/style_search.py`` calls :func:`render_style_transfer_section` inside its tab. A search result's
"Use this style" button presets the style by putting its path in ``st.session_state[PRESET_KEY]``.

Concurrency: each Streamlit session runs in its own thread. The VGG19 feature stack is built once per
process (``st.cache_resource``) and shared without a lock; every optimisation step is one TensorFlow call
that releases the GIL, so other sessions' searches keep running. At most ``MAX_CONCURRENT`` transfers run
at once (the others wait their turn, visibly); a waiting or running transfer stops within one step when
its user clicks anything else or leaves, because Streamlit interrupts the script at the next UI update.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import streamlit as st

from lookalike.core import weights
from lookalike.core.files import safe_file_name
from lookalike.core.images import ImageError, make_thumbnail, png_bytes
from lookalike.core.weights import WeightsUnavailable
from lookalike.style.transfer import (
    DEFAULT_STRENGTH,
    DEFAULT_TRANSFER_SIZE,
    DEFAULT_TRANSFER_STEPS,
    stylize,
    transfer_model,
)
from lookalike.style.transfer_model import TransferModel
from lookalike.style.vgg19 import WEIGHTS_KEY
from lookalike.ui.common import (
    UPLOAD_TYPES,
    button_with_reason,
    decode_bytes,
    forget,
    read_upload,
    weights_error,
)
from lookalike.ui.failures import remembered_failure, remembered_load, try_again_button

PRESET_KEY = "style_transfer_style"  # a path, set by "Use this style" on a search result
SOURCE_KEY = "style_transfer_source"  # the "Style from" radio
PICKED_KEY = "style_transfer_source_picked"  # the source a person chose (not one left over when options changed)
RESULT_KEY = "style_transfer_result"
MODEL_KEY = "style-transfer-model"  # its load failures are remembered under this key (lookalike.ui.failures)
MAX_CONCURRENT = 1  # transfers that may run at once in this process (each one uses every core)
THUMBNAIL = 200  # px, the chosen painting and photo
PREVIEW_EVERY_S = 0.5  # the live preview is redrawn at most this often
_SLOTS = threading.BoundedSemaphore(MAX_CONCURRENT)
SOURCE_PRESET, SOURCE_COLLECTION, SOURCE_UPLOAD = "The chosen search result", "The collection", "Upload a painting"


@st.cache_resource(show_spinner="Loading the VGG19 feature model…")
def shared_transfer_model(weights: str) -> TransferModel:
    """The process-wide style-transfer model for these weights (the label keys the cache)."""
    return transfer_model()


def render_style_transfer_section(
    style_choices: list[tuple[str, Path]], preset_style: Path | None = None, weights_banner: bool = True
) -> None:
    """Pick a style and a photo, then "Apply style": live progress, the result and a PNG download.

    ``weights_banner=False`` when the page's own banner already says that VGG19 runs on random weights.
    """
    st.caption("Repaint your photo in the brushwork and colours of a painting (Gatys et al. neural style transfer).")
    if weights_banner and weights.uses_random(WEIGHTS_KEY):
        st.warning(
            "VGG19 runs with random weights (LOOKALIKE_WEIGHTS=random): the result shows the mechanics, "
            "not a real painting style. Add the ImageNet weights for real results."
        )
    preset = preset_style or _session_preset()
    left, right = st.columns(2)
    with left:
        style_name, style_image = _pick_style(style_choices, preset)
        _show(style_image, style_name)
    with right:
        photo_name, photo_image = _pick_photo()
        _show(photo_image, photo_name)
    options = _pick_options()
    reason = _not_ready(style_image, photo_image)
    if remembered_failure(MODEL_KEY) is not None:  # VGG19's weights failed to load: say so once, offer a retry
        st.error(str(remembered_failure(MODEL_KEY)), icon=":material/key_off:")
        try_again_button(MODEL_KEY)
        reason = "VGG19 could not be loaded (see above)."
    if button_with_reason("Apply style", reason, type="primary", key="style_transfer_apply"):
        _apply(photo_image, style_image, options, f"{Path(photo_name).stem} in the style of {style_name}")
    _show_result()


def use_style(path: str) -> None:
    """Preset a painting and select it in "Style from" (a button callback: it runs before the next run)."""
    st.session_state[PRESET_KEY] = path
    st.session_state[SOURCE_KEY] = st.session_state[PICKED_KEY] = SOURCE_PRESET


def _session_preset() -> Path | None:
    value = st.session_state.get(PRESET_KEY)
    return Path(value) if value else None


def _pick_style(choices: list[tuple[str, Path]], preset: Path | None) -> tuple[str, np.ndarray | None]:
    """The style as (name, image); None when nothing is chosen yet or the file is not a usable image."""
    sources = ([SOURCE_PRESET] if preset else []) + ([SOURCE_COLLECTION] if choices else []) + [SOURCE_UPLOAD]
    # The person's own choice while it is offered, else the first source. Without this, a source left over
    # from a moment with fewer options (no collection: only "Upload a painting") would stay selected.
    picked = st.session_state.get(PICKED_KEY)
    st.session_state[SOURCE_KEY] = picked if picked in sources else sources[0]
    source = st.radio("Style from", sources, horizontal=True, key=SOURCE_KEY, on_change=_remember_source)
    if source == SOURCE_PRESET and preset is not None:
        return _name_of(preset, choices), _read(preset)
    if source == SOURCE_COLLECTION:
        captions = [caption for caption, _ in choices]
        index = st.selectbox("Painting", range(len(choices)), format_func=captions.__getitem__,
                             key="style_transfer_choice")  # fmt: skip
        caption, path = choices[index]
        return caption, _read(path)
    upload = st.file_uploader("Painting", type=UPLOAD_TYPES, key="style_transfer_style_upload",
                              on_change=forget, args=(RESULT_KEY,))
    return (Path(upload.name).stem, read_upload(upload, name=upload.name)) if upload is not None else ("", None)


def _remember_source() -> None:
    st.session_state[PICKED_KEY] = st.session_state[SOURCE_KEY]


def _not_ready(style: np.ndarray | None, photo: np.ndarray | None) -> str | None:
    """Why "Apply style" can't run yet, in words; None when it can."""
    uploads = []
    if style is None and st.session_state.get(SOURCE_KEY) == SOURCE_UPLOAD:
        uploads.append("a painting")
    if photo is None:
        uploads.append("your photo")
    if uploads:
        return f"Upload {' and '.join(uploads)} to apply a style."
    if style is None:
        return "The chosen painting can't be read: choose another one."
    return None


def _name_of(path: Path, choices: list[tuple[str, Path]]) -> str:
    """A painting's name as the collection gives it (title and artist for the Met sample), not its file name."""
    return next((caption for caption, choice in choices if Path(choice) == Path(path)), path.stem.replace("_", " "))


def _pick_photo() -> tuple[str, np.ndarray | None]:
    upload = st.file_uploader("Your photo", type=UPLOAD_TYPES, key="style_transfer_photo",
                              on_change=forget, args=(RESULT_KEY,))
    return (upload.name, read_upload(upload, name=upload.name)) if upload is not None else ("", None)


def _read(path: Path) -> np.ndarray | None:
    """A collection painting, decoded; one message when it can no longer be read."""
    try:
        return decode_bytes(Path(path).read_bytes())
    except OSError as error:
        st.error(f"Cannot read {Path(path).name} ({error.strerror or error}).")
    except ImageError as error:
        st.error(f"{Path(path).name} can't be used: {error}")
    return None


def _show(image: np.ndarray | None, name: str) -> None:
    if image is not None:
        st.image(make_thumbnail(image, THUMBNAIL), caption=name, width=THUMBNAIL)


def _pick_options() -> dict:
    with st.expander("Options"):
        columns = st.columns(3)
        strength = columns[0].slider("Style strength", 0.0, 1.0, DEFAULT_STRENGTH, 0.05,
                                     key="style_transfer_strength",
                                     help="0 keeps the photo; 1 lets the painting's texture take over.")  # fmt: skip
        size = columns[1].select_slider("Size (long side, px)", [256, 384, 512, 768, 1024],
                                        DEFAULT_TRANSFER_SIZE, key="style_transfer_size",
                                        help="Time grows with the number of pixels.")  # fmt: skip
        steps = columns[2].slider("Steps", 10, 300, DEFAULT_TRANSFER_STEPS, 10,
                                  key="style_transfer_steps", help="More steps: closer to the style, slower.")  # fmt: skip
        preserve = st.checkbox("Preserve the photo's colours", key="style_transfer_preserve")
    return {"strength": strength, "size": size, "steps": steps, "preserve_colors": preserve}


def _apply(photo: np.ndarray, style: np.ndarray, options: dict, caption: str) -> None:
    """Run one transfer with a progress bar and live previews; keep the result in the session."""
    st.session_state.pop(RESULT_KEY, None)
    try:
        model = remembered_load(MODEL_KEY, lambda: shared_transfer_model(weights.label(WEIGHTS_KEY)),
                                WeightsUnavailable)
    except WeightsUnavailable as error:
        weights_error(error, WEIGHTS_KEY)  # with its "Try again"
        return
    bar = st.progress(0.0, text="Waiting for a free slot…")
    preview = st.empty()
    _wait_for_slot(bar)
    try:
        result = stylize(photo, style, model=model, progress=_reporter(bar, preview), **options)
    finally:
        _SLOTS.release()
    bar.progress(1.0, text=f"Done in {result.seconds:.0f} s ({result.steps} steps).")
    preview.empty()
    st.session_state[RESULT_KEY] = {
        "png": png_bytes(result.image),
        "image": result.image,
        "caption": caption,
        "file_name": safe_file_name(caption, ".png", fallback="stylized"),
        "seconds": result.seconds,
        "losses": result.losses.as_dict(),
    }


def _wait_for_slot(bar) -> None:
    """Block until a transfer slot is free, touching the UI so that a click or a departure interrupts."""
    while not _SLOTS.acquire(timeout=0.5):
        bar.progress(0.0, text="Another style transfer is running; yours starts when it ends…")


def _reporter(bar, preview):
    """A progress callback that moves the bar every step and redraws the preview every half second."""
    last = {"t": 0.0}

    def report(info) -> None:
        width, height = info.shape[1], info.shape[0]
        text = f"Step {info.step} of {info.total_steps} at {width}×{height} px, loss {info.losses.total:.4g}"
        bar.progress(min(info.step / info.total_steps, 1.0), text=text)
        now = time.monotonic()
        if now - last["t"] >= PREVIEW_EVERY_S or info.step == info.total_steps:
            last["t"] = now
            preview.image(info.preview, caption="Work in progress", width=min(width * 2, 512))

    return report


def _show_result() -> None:
    result = st.session_state.get(RESULT_KEY)
    if not result:
        return
    losses = result["losses"]
    with st.container(horizontal=True, gap="medium"):  # the details beside the image, below it when it is wide
        # Its own width in pixels, at most the page's ("content" would widen to a long caption and stretch it).
        st.image(result["image"], caption=result["caption"], width=int(result["image"].shape[1]))
        details = st.container(width=240)
    with details:
        st.caption(
            f"{result['seconds']:.0f} s · style loss {losses['style']:.3g} · content loss {losses['content']:.3g}"
        )
        st.download_button(
            "Download PNG", result["png"], file_name=result["file_name"], mime="image/png",
            key="style_transfer_download", on_click="ignore",
        )  # fmt: skip
