"""The clothing-photos catalog: reading the dataset and its array cache, bad folders, P@10 by class, staged
training, and matching by VAE latent or by pretrained features through one index interface."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vae
from lookalike.core import settings
from lookalike.core.backends import positional_index
from lookalike.core.vectors import hits_at_k, precision_by_class
from lookalike.datasets import clothing_photos
from lookalike.datasets.catalog import Catalog, CatalogError
from lookalike.domain import CLOTHING_PHOTOS, PHOTO_SIZE, pad_with_border_colour, to_catalog_domain
from lookalike.vae import catalogs, features
from lookalike.vae.model import build_augmenter
from lookalike.vae.training import STATE_WEIGHTS
from tests.embedders import GridBackbone
from tests.paths import CLOTHING_FULL, PAINTINGS, ROOT

FULL = CLOTHING_FULL
needs_full = pytest.mark.skipif(not (FULL / "train").is_dir(), reason="clothing-dataset-full is not in ../shared/data")
needs_model = pytest.mark.skipif(not (vae.model_dir(CLOTHING_PHOTOS) / vae.WEIGHTS_FILE).is_file(),
                                 reason="no clothing-photos model")


def small_prepare(rgb: np.ndarray) -> np.ndarray:
    return to_catalog_domain(rgb, CLOTHING_PHOTOS).image[::3, ::3]  # 32 px: cheap


@pytest.fixture
def small_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three classes, four train and two validation photos each, copied from the real dataset; a private cache."""
    if not (FULL / "train").is_dir():
        pytest.skip("clothing-dataset-full is not in ../shared/data")
    monkeypatch.setenv("LOOKALIKE_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "photos"
    for split, count in (("train", 4), ("validation", 2)):
        for name in ("hat", "pants", "shoes"):
            (root / split / name).mkdir(parents=True)
            for photo in sorted((FULL / split / name).glob("*.jpg"))[:count]:
                shutil.copy(photo, root / split / name / photo.name)
    return root


def load_small(folder: Path, split: str = "train") -> clothing_photos.PhotoSplit:
    return clothing_photos.load_split(split, small_prepare, "test-32px", max_side=128, folder=folder)


# ---------------------------------------------------------------------------------------------
# The dataset and its array cache
# ---------------------------------------------------------------------------------------------


def test_a_split_is_decoded_once_then_read_from_the_disk_cache(
    small_dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photos = load_small(small_dataset)
    assert photos.images.shape == (12, 32, 32, 3) and photos.images.dtype == np.uint8
    assert photos.classes == ("hat", "pants", "shoes")
    assert np.bincount(photos.labels).tolist() == [4, 4, 4]
    assert all(path.parent.name == photos.classes[label] for path, label in zip(photos.paths, photos.labels,
                                                                                  strict=True))

    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached arrays should have been used")

    with monkeypatch.context() as patched:
        patched.setattr(clothing_photos, "load_image", no_decoding)
        again = load_small(small_dataset)
    np.testing.assert_array_equal(again.images, photos.images)
    assert again.paths == photos.paths

    photos.paths[0].unlink()  # a changed folder is read again
    assert load_small(small_dataset).images.shape[0] == 11


def test_another_preparation_gets_its_own_cache(small_dataset: Path) -> None:
    small = load_small(small_dataset, "validation")
    tiny = clothing_photos.load_split("validation", lambda rgb: small_prepare(rgb)[::2, ::2], "test-16px",
                                      max_side=128, folder=small_dataset)
    assert small.images.shape[1:3] == (32, 32) and tiny.images.shape[1:3] == (16, 16)


def test_a_damaged_cache_file_is_rebuilt(small_dataset: Path) -> None:
    photos = load_small(small_dataset, "validation")
    (cached,) = (settings.get_settings().cache_dir / "datasets").glob("clothing-photos-validation-*.npz")
    cached.write_bytes(b"not a zip file")
    again = load_small(small_dataset, "validation")
    np.testing.assert_array_equal(again.images, photos.images)
    assert np.load(cached)["images"].shape == (6, 32, 32, 3)  # and written back whole


def test_an_unreadable_photo_is_skipped_and_reported(small_dataset: Path) -> None:
    (small_dataset / "train" / "hat" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.warns(UserWarning, match="broken.jpg"):
        photos = load_small(small_dataset)
    assert photos.images.shape[0] == 12
    assert len(photos.skipped) == 1 and "broken.jpg" in photos.skipped[0]


@pytest.mark.parametrize("layout", ["missing", "empty", "no-photos", "no-validation"])
def test_a_bad_folder_gives_one_clear_message(tmp_path: Path, layout: str) -> None:
    folder = tmp_path / "photos"
    if layout != "missing":
        folder.mkdir()
    if layout in ("no-photos", "no-validation"):
        (folder / "train" / "hat").mkdir(parents=True)
        (folder / "train" / "hat" / "notes.txt").write_text("not a photo")
    if layout == "no-validation":
        Image.new("RGB", (40, 60), (90, 20, 20)).save(folder / "train" / "hat" / "red.jpg")
        load_small(folder, "train")  # the train split alone is fine
    with pytest.raises(CatalogError) as caught:
        load_small(folder, "validation")
    message = str(caught.value)
    assert str(folder) in message and clothing_photos.ENV in message


def test_the_folder_comes_from_the_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(clothing_photos.ENV, raising=False)
    assert clothing_photos.photos_dir() == settings.PROJECT_ROOT.parent / "shared" / "data" / "clothing-dataset-full"
    monkeypatch.setenv(clothing_photos.ENV, str(tmp_path / "nowhere"))
    assert clothing_photos.photos_dir() == tmp_path / "nowhere"
    catalogs.load_clothing_photos.cache_clear()
    try:
        with pytest.raises(CatalogError, match="nowhere"):
            catalogs.load_catalog(CLOTHING_PHOTOS)
    finally:
        catalogs.load_clothing_photos.cache_clear()


def test_cli_reports_a_missing_dataset_without_a_traceback(tmp_path: Path) -> None:
    query = next(iter(sorted(PAINTINGS.glob("*.jpg"))), None)
    if query is None:
        pytest.skip("no sample image")
    env = {**os.environ, clothing_photos.ENV: str(tmp_path / "nowhere")}
    completed = subprocess.run(
        [sys.executable, str(ROOT / "vae.py"), "search", str(query), "--data", CLOTHING_PHOTOS],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert clothing_photos.ENV in completed.stderr and "nowhere" in completed.stderr


def test_padding_keeps_the_whole_photo_and_fills_with_its_border_colour() -> None:
    photo = np.zeros((120, 60, 3), np.uint8)
    photo[:] = (200, 40, 40)  # a red backdrop
    photo[10:110, 20:40] = (10, 10, 10)  # a tall dark garment
    square = pad_with_border_colour(photo)
    assert square.shape == (120, 120, 3)
    assert (square[:, :30] == (200, 40, 40)).all() and (square[:, 90:] == (200, 40, 40)).all()
    np.testing.assert_array_equal(square[:, 30:90], photo)
    prepared = to_catalog_domain(photo, CLOTHING_PHOTOS)
    assert prepared.image.shape == (PHOTO_SIZE, PHOTO_SIZE, 3)
    assert [label.split(" ")[0] for label, _ in prepared.steps] == ["padded", "resized"]


@needs_full
@pytest.mark.slow  # decodes all 3,409 photos once per test session
def test_the_full_catalog_and_its_queries() -> None:
    catalog = catalogs.load_catalog(CLOTHING_PHOTOS)
    queries = catalogs.load_clothing_photos("validation")
    assert len(catalog) == 3068 and len(queries) == 341
    assert catalog.images.shape[1:] == (PHOTO_SIZE, PHOTO_SIZE, 3)
    assert len(catalog.class_names) == 10 and queries.class_names == catalog.class_names
    assert catalog.paths is not None and len(catalog.paths) == len(catalog)
    assert np.bincount(catalog.labels).min() >= 100
    # the cached arrays are exactly what the domain function makes of each file
    np.testing.assert_array_equal(catalog.images[7], to_catalog_domain(
        clothing_photos.load_image(catalog.paths[7], max_side=4 * PHOTO_SIZE), CLOTHING_PHOTOS).image)


# ---------------------------------------------------------------------------------------------
# P@10 by class
# ---------------------------------------------------------------------------------------------


def test_precision_by_class_weighs_each_class_equally() -> None:
    catalog = np.array([[1, 0], [1, 0.1], [1, -0.1], [0, 1], [0.1, 1]], dtype=np.float32)
    catalog_labels = np.array([0, 0, 0, 1, 1])
    queries = np.array([[1, 0.05], [1, 0.0], [1, -0.05], [0.05, 1]], dtype=np.float32)
    query_labels = np.array([0, 0, 0, 1])
    hits = hits_at_k(catalog, catalog_labels, queries, query_labels, 3)
    assert hits.tolist() == pytest.approx([1, 1, 1, 2 / 3])
    per_class = precision_by_class(hits, query_labels, 3)
    assert per_class[:2].tolist() == pytest.approx([1.0, 2 / 3]) and np.isnan(per_class[2])


def test_random_vectors_score_near_chance_by_class() -> None:
    rng = np.random.default_rng(0)
    catalog_labels = rng.choice(4, size=2000, p=[0.55, 0.25, 0.15, 0.05])  # unbalanced, like the photos
    query_labels = np.repeat(np.arange(4), 50)
    hits = hits_at_k(rng.normal(size=(2000, 16)), catalog_labels, rng.normal(size=(200, 16)), query_labels, 10)
    per_class = precision_by_class(hits, query_labels, 4)
    assert abs(np.mean(per_class) - 0.25) < 0.03  # balanced chance is 1 / classes
    assert per_class[0] > 0.45 and per_class[3] < 0.12  # per class it follows the catalog share


# ---------------------------------------------------------------------------------------------
# Staged, resumable training
# ---------------------------------------------------------------------------------------------

TINY_PHOTOS = vae.VAEConfig(
    dataset=CLOTHING_PHOTOS, image_shape=(16, 16, 3), latent_dim=4, beta=0.5, filters=(8, 16),
    dense_units=16, decoder_filters=(16, 8), augment=True, augment_fill="reflect",
)


@pytest.mark.slow
def test_a_staged_run_resumes_where_it_stopped(tmp_path: Path) -> None:
    images = np.random.default_rng(0).uniform(0, 1, (64, 16, 16, 3)).astype(np.float32)
    state = tmp_path / "state"
    first = vae.train(TINY_PHOTOS, images, epochs=3, batch_size=16, verbose=0, state_dir=state, stage_epochs=2)
    assert not first.finished and first.epochs_done == 2 and len(first.history["loss"]) == 2
    assert (state / STATE_WEIGHTS).is_file()

    second = vae.train(TINY_PHOTOS, images, epochs=3, batch_size=16, verbose=0, state_dir=state, stage_epochs=2)
    assert second.finished and second.epochs_done == 3
    assert second.history["loss"][:2] == first.history["loss"]  # the history carries over
    assert len(second.history["loss"]) == 3
    assert int(second.model.optimizer.iterations) == 3 * 4  # the optimizer (and its schedule) resumed too
    assert [(s["from_epoch"], s["to_epoch"]) for s in second.stages] == [(0, 2), (2, 3)]


def test_the_recorded_command_leaves_out_the_stage_size() -> None:
    argv = ["train", "--data", CLOTHING_PHOTOS, "--stage-epochs", "10", "--latent", "64"]
    assert vae.rebuild_command(argv) == "python vae.py train --data clothing-photos --latent 64"
    assert "stage" not in vae.rebuild_command(["train", "--data", "furniture", "--stage-epochs=5"])


def test_photo_augmenter_mirrors_edges_instead_of_painting_white() -> None:
    augmenter = build_augmenter(seed=1, fill="reflect")
    out = np.asarray(augmenter(np.zeros((8, 32, 32, 3), np.float32), training=True))
    assert out.max() == 0.0  # no white borders appear around a dark photo
    white = np.asarray(build_augmenter(seed=1)(np.zeros((8, 32, 32, 3), np.float32), training=True))
    assert white.max() == 1.0  # icons: shifts and zooms fill with white
    with pytest.raises(ValueError, match="augment_fill"):
        build_augmenter(fill="zeros")


# ---------------------------------------------------------------------------------------------
# Matching by pretrained features, through the same cache and index interface
# ---------------------------------------------------------------------------------------------


def test_a_pooled_backbone_plugs_in_as_a_cached_embedder(small_dataset: Path) -> None:
    photos = load_small(small_dataset)
    catalog = Catalog(name=CLOTHING_PHOTOS, images=photos.images, labels=photos.labels,
                      class_names=photos.classes, captions=[p.name for p in photos.paths], paths=photos.paths)
    backbone = GridBackbone()
    embedder = features.FeatureEmbedder(backbone)
    vectors = features.catalog_features(embedder, catalog)
    assert vectors.shape == (12, GridBackbone.dims) and backbone.seen == 12
    again = features.catalog_features(features.FeatureEmbedder(backbone), catalog)
    assert backbone.seen == 12  # read back from the shared cache, keyed by file content
    np.testing.assert_array_equal(again, vectors)

    query = clothing_photos.load_image(photos.paths[5])
    indices, scores = positional_index(vectors).search(embedder.embed_photo(query), 3)
    assert indices[0] == 5 and scores[0] == pytest.approx(1.0, abs=1e-3)  # decoded at another size: nearly equal


def test_no_bundled_backbone_means_no_features_option(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> features.PooledBackbone:
        raise features.BackboneUnavailable("weights missing")

    monkeypatch.setattr(features, "BACKBONES", [broken])
    assert features.bundled_backbone() is None
    monkeypatch.setattr(features, "BACKBONES", [broken, GridBackbone])
    assert isinstance(features.bundled_backbone(), GridBackbone)


@needs_model
@pytest.mark.slow  # reads the catalog photos, and embeds all of them with the stand-in backbone
def test_search_command_ranks_by_either_mode_through_the_index(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[int] = []
    original = type(positional_index(np.eye(2, dtype=np.float32))).search

    def spy(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        calls.append(int(np.shape(query)[-1]))
        return original(self, query, k)

    monkeypatch.setattr(type(positional_index(np.eye(2, dtype=np.float32))), "search", spy)
    monkeypatch.setattr(features, "BACKBONES", [GridBackbone])
    photo = sorted((FULL / "validation" / "pants").glob("*.jpg"))[0]
    by_vae = vae.search(str(photo), CLOTHING_PHOTOS, k=10, match=vae.VAE)
    by_features = vae.search(str(photo), CLOTHING_PHOTOS, k=10, match=vae.FEATURES)
    assert len(by_vae) == len(by_features) == 10
    assert calls == [vae.load_checkpoint(CLOTHING_PHOTOS).config.latent_dim, GridBackbone.dims]
    assert [score for _, score in by_vae] == sorted((score for _, score in by_vae), reverse=True)
    assert "pants" in capsys.readouterr().out


@needs_model
def test_recorded_comparison_feeds_the_mode_labels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lookalike.vae import evaluation, matching

    folder = tmp_path / "vae-clothing-photos"
    shutil.copytree(vae.model_dir(CLOTHING_PHOTOS), folder)
    checkpoint = vae.load_checkpoint_from(folder, CLOTHING_PHOTOS)
    per_class = np.linspace(0.2, 0.6, 10)
    rows = {key: evaluation.Row(key, 8, per_class, float(per_class.mean()), 0.5) for key in (matching.VAE,
                                                                                              matching.FEATURES)}
    classes = ("dress", "hat", "longsleeve", "outwear", "pants", "shirt", "shoes", "shorts", "skirt", "t-shirt")
    evaluation.record_comparison(checkpoint, rows, {matching.FEATURES: "pooled-x"}, classes)
    saved = json.loads((folder / vae.METADATA_FILE).read_text())
    assert saved["comparison"]["features"]["model_id"] == "pooled-x"
    assert saved["comparison"]["vae"]["per_class"]["dress"] == pytest.approx(0.2)
    reloaded = vae.load_checkpoint_from(folder, CLOTHING_PHOTOS)
    assert reloaded.model_id == checkpoint.model_id  # only the metadata changed
    assert matching.vae_mode(reloaded).label.endswith("P@10 0.40")

    class Named:
        backbone = GridBackbone()
        model_id = "pooled-x"

    assert matching.features_mode(reloaded, Named()).p_at_10 == pytest.approx(0.4)
    Named.model_id = "pooled-other-weights"
    assert matching.features_mode(reloaded, Named()).p_at_10 is None  # measured for other weights: no figure



# ---------------------------------------------------------------------------------------------
# The shipped model and the bundled backbone
# ---------------------------------------------------------------------------------------------


@needs_model
@needs_full
@pytest.mark.slow  # reads all 3,409 photos
def test_the_shipped_vae_beats_pca_and_three_times_chance() -> None:
    from lookalike.vae import evaluation

    checkpoint = vae.load_checkpoint(CLOTHING_PHOTOS)
    score = vae.retrieval_score(checkpoint.model, CLOTHING_PHOTOS)["p@10_by_class"]
    raw, pca = evaluation.pixel_rows(checkpoint.config.latent_dim)
    assert score >= 0.3  # chance is 0.1 by class
    assert score > pca.balanced > raw.balanced
    assert score == pytest.approx(checkpoint.metadata["retrieval_precision"], abs=1e-3)


@needs_model
def test_the_recorded_features_figure_belongs_to_the_bundled_backbone() -> None:
    from lookalike.vae import matching

    backbone = features.bundled_backbone()
    assert isinstance(backbone, features.Lite0Backbone)
    checkpoint = vae.load_checkpoint(CLOTHING_PHOTOS)
    mode = matching.features_mode(checkpoint, features.FeatureEmbedder(backbone))
    assert mode.p_at_10 is not None and mode.p_at_10 > 0.5  # most of the top 10 share the query's class
    assert mode.label.startswith("Pretrained features: EfficientNet-Lite0") and "P@10" in mode.label
    vectors = backbone.features(np.zeros((2, 224, 224, 3), np.uint8))
    assert vectors.shape == (2, 1280) and vectors.dtype == np.float32
