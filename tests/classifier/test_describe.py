"""What a classifier knows, from its metadata alone (any model, shipped or trained here)."""

from __future__ import annotations

from lookalike.classifier.describe import knowledge_line, missing_kinds, trained_on, unsure_message

FASHION_MNIST = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                 "Ankle boot"]
PHOTOS = ["dress", "hat", "longsleeve", "outwear", "pants", "shirt", "shoes", "shorts", "skirt", "t-shirt"]


def test_the_kinds_of_clothing_a_model_never_saw():
    assert missing_kinds(FASHION_MNIST) == ["hat", "shorts", "skirt"]
    assert missing_kinds(PHOTOS) == ["bag"]
    assert "hat" in missing_kinds(["Trouser"]) and missing_kinds([]) != []


def test_the_line_is_made_from_the_metadata_when_it_has_no_trained_on():
    meta = {"dataset": "fashion-mnist", "preprocessing": "fashion-mnist", "input_size": 32, "classes": FASHION_MNIST}
    assert knowledge_line(meta) == (
        "Trained on Fashion-MNIST: 28-px grey product shots, 10 classes, shown at 32 px; no hat, shorts or skirt: "
        "a photo of one gets the nearest class the model knows."
    )
    photos = {"dataset": "my-shop", "preprocessing": "photo", "input_size": 224, "classes": PHOTOS}
    assert trained_on(photos) == "my-shop: colour photos, 10 classes, at 224 px"
    assert knowledge_line(photos).endswith("; no bag: a photo of one gets the nearest class the model knows.")
    assert trained_on({**photos, "trained_on": "3,068 shop photos"}) == "3,068 shop photos"


def test_a_model_covering_every_kind_has_no_gap_in_its_line():
    every = PHOTOS + ["bag"]
    assert knowledge_line({"trained_on": "everything", "classes": every}) == "Trained on everything."


def test_unsure_below_one_half():
    assert unsure_message(0.9) is None and unsure_message(0.5) is None
    assert "unsure" in unsure_message(0.31) and "31.0%" in unsure_message(0.31)

