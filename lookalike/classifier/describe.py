"""What a saved classifier knows, read from its ``metadata.json`` so that it holds for any model: what it was
trained on, which kinds of clothing it has never seen, and when it is unsure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Metadata = Mapping[str, Any]


UNSURE_BELOW = 0.5  # a top probability under this is a guess more than an answer

# Kinds of clothing people photograph, each with the class names (lower case) that cover it. A model whose
# classes cover none of a kind's names has never seen that kind: a photo of it gets the nearest class it knows.
CLOTHING_KINDS: dict[str, tuple[str, ...]] = {
    "bag": ("bag",),
    "dress": ("dress",),
    "hat": ("hat", "cap"),
    "long sleeves": ("longsleeve", "pullover", "sweater"),
    "outerwear": ("outwear", "outerwear", "coat", "jacket"),
    "shirt": ("shirt",),
    "shoes": ("shoes", "sandal", "sneaker", "ankle boot", "boot"),
    "shorts": ("shorts",),
    "skirt": ("skirt",),
    "t-shirt": ("t-shirt", "t-shirt/top", "top"),
    "trousers": ("pants", "trouser", "trousers"),
}
FASHION_MNIST_PIXELS = 28


def trained_on(meta: Metadata) -> str:
    """What the model learnt from, in a few words: the metadata's own ``trained_on`` line, or one made from
    ``dataset``, ``preprocessing``, ``classes`` and ``input_size``."""
    if meta.get("trained_on"):
        return str(meta["trained_on"])
    classes, size = len(meta.get("classes", [])), meta.get("input_size")
    if meta.get("preprocessing") == "fashion-mnist":
        return f"Fashion-MNIST: {FASHION_MNIST_PIXELS}-px grey product shots, {classes} classes, shown at {size} px"
    return f"{meta.get('dataset') or 'an unnamed dataset'}: colour photos, {classes} classes, at {size} px"


def missing_kinds(classes: list[str]) -> list[str]:
    """The kinds of clothing (``CLOTHING_KINDS``) that none of ``classes`` covers, alphabetically."""
    known = {name.strip().lower() for name in classes}
    return [kind for kind, names in CLOTHING_KINDS.items() if known.isdisjoint(names)]


def knowledge_line(meta: Metadata) -> str:
    """One line beside a prediction: what the model was trained on and which kinds of clothing it lacks."""
    line = f"Trained on {trained_on(meta)}"
    missing = missing_kinds(list(meta.get("classes", [])))
    if missing:
        listed = missing[0] if len(missing) == 1 else ", ".join(missing[:-1]) + " or " + missing[-1]
        line += f"; no {listed}: a photo of one gets the nearest class the model knows"
    return line + "."


def unsure_message(probability: float) -> str | None:
    """What to say when the top class is a guess; None when the model is reasonably sure."""
    if probability >= UNSURE_BELOW:
        return None
    return (f"The model is unsure: its best guess has only {probability:.1%}. The photo may show something it "
            "was not trained on, or look unlike its training images.")
