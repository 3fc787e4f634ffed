"""Lookalike: the home page and the navigation to each tool.

Run with ``make run`` (or ``streamlit run app.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from lookalike.classifier.storage import list_models
from lookalike.core import settings, weights
from lookalike.core.images import list_images
from lookalike.core.weights import PUBLISHED
from lookalike.search.folders import FileHashes
from lookalike.search.samples import DEFAULT_COLLECTION
from lookalike.style.backbones import VGG19
from lookalike.ui.diagnostics import render_diagnostics

PAGES_DIR = Path(__file__).parent / "pages"


@dataclass
class Readiness:
    """One line of the home page's status table."""

    item: str
    ready: bool
    detail: str
    fix: str = ""  # Markdown, with commands and file names already in `code`
    blocks: tuple[str, ...] = ()  # the tools that cannot run until it is fixed


def code(text: str) -> str:
    """Inline code in Markdown (one place that adds the backticks, so none is ever nested)."""
    return f"`{text}`"


def vgg19_tools() -> tuple[str, ...]:
    """What needs VGG19's pretrained weights: the style transfer always; Style Search only when it is asked to run
    on VGG19 (otherwise it falls back to the bundled EfficientNet-Lite0)."""
    searches_on_vgg19 = settings.get_settings().style_model.strip().lower() == VGG19
    return ("Style Search", "style transfer") if searches_on_vgg19 else ("style transfer",)


def weights_status() -> list[Readiness]:
    """One line per ImageNet weights file: where it is, or why it can't be used (nothing is downloaded here).

    Missing VGG19 weights block the tools that need them; EfficientNetB0's only matter for training photo models
    on that backbone (the shipped classifiers don't use them).
    """
    rows = []
    for spec, use in ((PUBLISHED["vgg19"], "style search"), (PUBLISHED["efficientnetb0"], "photo classifiers")):
        ready, detail = weights.status(spec.key)
        blocks: tuple[str, ...] = ()
        if weights.uses_random(spec.key):
            fix = f"{code('unset LOOKALIKE_WEIGHTS')} to use ImageNet weights"
        elif not ready:
            fix = (f"put {code(spec.filename)} in {code('models/')} (with internet, "
                   f"{code('python utils.py weights')} fetches it)")
            blocks = vgg19_tools() if spec.key == "vgg19" else ()
            if blocks and "not downloaded yet" in detail:  # a blocker, not something that happens by itself
                detail = f"{code(spec.filename)} is in neither {code('models/')} nor the Keras cache"
        else:
            fix = ""
        rows.append(Readiness(f"{spec.model} ImageNet weights ({use})", ready, detail, fix, blocks))
    return rows


def trained_models_status() -> list[Readiness]:
    """The classifier and VAE models in ``models/``, read from their metadata."""
    classifiers = list_models()
    vaes = sorted(p.parent for p in settings.MODELS_DIR.glob("vae-*/metadata.json") if not _is_baseline(p))
    rows = []
    for kind, found, command in (
        ("Fashion classifier", classifiers, "python classifier.py train --data fashion-mnist"),
        ("VAE catalog model", vaes, "python vae.py train --data fashion-mnist|furniture"),
    ):
        if not found:
            rows.append(Readiness(kind, False, f"no trained model in {code('models/')}", code(command)))
        for folder in found:
            rows.append(Readiness(f"{kind}: {folder.name}", True, _metadata_summary(folder / "metadata.json")))
    return rows


def _is_baseline(metadata: Path) -> bool:
    """Models kept only as benchmark baselines (the 2-d VAE of the original design) aren't offered."""
    return metadata.parent.name.endswith("-2d")


def _metadata_summary(path: Path) -> str:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "metadata unreadable"
    facts = [str(meta.get("dataset", ""))]
    for key in ("test_accuracy", "retrieval_precision"):
        if isinstance(meta.get(key), (int, float)):
            facts.append(f"{key.replace('_', ' ')} {meta[key]:.3f}")
    return ", ".join(fact for fact in facts if fact)


def collection_status() -> Readiness:
    folder = DEFAULT_COLLECTION
    count = sum(1 for _ in list_images(folder)) if folder.is_dir() else 0
    cached = FileHashes(folder.resolve()).path.is_file()
    if count == 0:
        return Readiness("Style collection", True, f"{code('images-by-style/')} is empty: the 174 Met paintings are "
                         "offered", code("python image_search.py download images-by-style"))
    detail = f"{code('images-by-style/')}: {count} images, " + ("indexed" if cached else "not indexed yet")
    return Readiness("Style collection", cached, detail, "" if cached else code("python image_search.py index"))


def home() -> None:
    st.title(":material/image_search: Lookalike")
    st.caption("Visual search for paintings, photos and products, with real models and on-disk caches.")
    tools = [
        (":material/palette: Style Search", "Find paintings that share an artistic style, using VGG19 Gram-matrix style vectors.",
         "Upload a photo and paint it in a painting's style with neural style transfer."),
        (":material/checkroom: Fashion Classifier", "Upload a photo of a garment and see what it is, with a probability per class.",
         "An EfficientNetB0 embedding map shows where the photo sits among the training images."),
        (":material/chair: Visual Search (VAE)", "Upload a product photo and get the closest items of a catalog.",
         "A convolutional VAE's latent space is the index, for Fashion-MNIST and a furniture catalog."),
    ]
    for column, (name, line1, line2) in zip(st.columns(3), tools, strict=True):
        with column.container(border=True):
            st.subheader(name)
            st.write(line1)
            st.write(line2)
    st.subheader("What is ready")
    rows = [*weights_status(), collection_status(), *trained_models_status()]
    for row in rows:
        if row.blocks:  # a blocker, above the rest
            tools = " and ".join(row.blocks)
            st.error(f"**{row.item}**: {row.detail}. {tools[0].upper() + tools[1:]} cannot run until you "
                     f"{row.fix}, then reload.", icon=":material/block:")
    for row in rows:
        if row.blocks:
            continue
        icon = ":material/check_circle:" if row.ready else ":material/warning:"
        fix = f" — fix: {row.fix}" if row.fix else ""
        st.markdown(f"{icon} **{row.item}**: {row.detail}{fix}")


def main() -> None:
    st.set_page_config(page_title="Lookalike", page_icon=":material/image_search:", layout="wide")
    pages = [
        st.Page(home, title="Home", icon=":material/home:", default=True),
        st.Page(PAGES_DIR / "style_search.py", title="Style Search", icon=":material/palette:"),
    ]
    optional = [
        ("fashion_classifier.py", "Fashion Classifier", ":material/checkroom:"),
        ("visual_search.py", "Visual Search (VAE)", ":material/chair:"),
    ]
    pages += [st.Page(PAGES_DIR / f, title=t, icon=i) for f, t, i in optional if (PAGES_DIR / f).is_file()]
    st.navigation(pages).run()
    render_diagnostics()


main()
