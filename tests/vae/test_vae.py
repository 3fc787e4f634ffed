"""The VAE: loss terms, training, checkpoints, the cached catalog latents, the furniture reader."""

from __future__ import annotations

import dataclasses
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

import utils
import vae
from lookalike.vae import catalogs
from lookalike.vae.model import LOG_VAR_MAX, LOG_VAR_MIN, layer_classes

REALLUSION = catalogs.FURNITURE_DIR / "Reallusion.sh3f"
needs_furniture = pytest.mark.skipif(not REALLUSION.is_file(), reason="sweethome3d-furniture is not installed")
TINY = vae.VAEConfig(
    dataset="fashion-mnist", image_shape=(28, 28, 1), latent_dim=4, beta=0.5,
    filters=(8, 16), dense_units=32, decoder_filters=(16, 8),
)


@pytest.fixture(scope="module")
def fashion_sample() -> np.ndarray:
    """512 real Fashion-MNIST catalog images (uint8, 28×28×1)."""
    return catalogs.load_fashion_mnist("train").images[:512]


# ---------------------------------------------------------------------------------------------
# Loss terms
# ---------------------------------------------------------------------------------------------


def test_reconstruction_and_kl_terms_match_numpy() -> None:
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (3, 4, 4, 1)).astype(np.float32)
    reconstructions = rng.uniform(0.05, 0.95, (3, 4, 4, 1)).astype(np.float32)
    z_mean = rng.normal(0, 1, (3, 5)).astype(np.float32)
    z_log_var = rng.normal(0, 0.5, (3, 5)).astype(np.float32)

    bce = -(images * np.log(reconstructions) + (1 - images) * np.log(1 - reconstructions))
    expected_reconstruction = bce.reshape(3, -1).sum(axis=1).mean()
    expected_kl = (-0.5 * (1 + z_log_var - z_mean**2 - np.exp(z_log_var))).sum(axis=1).mean()

    assert float(vae.reconstruction_loss(images, reconstructions)) == pytest.approx(expected_reconstruction, rel=1e-4)
    assert float(vae.kl_loss(z_mean, z_log_var)) == pytest.approx(expected_kl, rel=1e-4)
    assert float(vae.kl_loss(np.zeros((2, 5), np.float32), np.zeros((2, 5), np.float32))) == pytest.approx(0.0)


def test_posterior_log_variance_is_bounded() -> None:
    layer = layer_classes()["BoundedLogVar"]()
    raw = np.array([[-1e4, -10.0, 0.0, 3.0, 1e4]], dtype=np.float32)
    bounded = np.asarray(layer(raw))
    assert bounded.min() >= LOG_VAR_MIN and bounded.max() <= LOG_VAR_MAX
    assert np.all(np.diff(bounded[0]) > 0)  # monotonic: the order of raw values is kept


# ---------------------------------------------------------------------------------------------
# Training and checkpoints
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(fashion_sample: np.ndarray) -> vae.TrainResult:
    return vae.train(TINY, vae.to_unit(fashion_sample), epochs=4, batch_size=32, learning_rate=5e-3, verbose=0)


def test_short_training_run_lowers_the_loss(trained: vae.TrainResult) -> None:
    losses = trained.history["loss"]
    assert len(losses) == 4
    assert losses[-1] < 0.9 * losses[0]
    assert trained.history["reconstruction_loss"][-1] < trained.history["reconstruction_loss"][0]


def test_save_and_load_round_trip_gives_the_same_latents(
    trained: vae.TrainResult, fashion_sample: np.ndarray, tmp_path: Path
) -> None:
    vae.save_checkpoint(trained.model, vae.model_dir("fashion-mnist", tmp_path), {"dataset": "fashion-mnist"})
    loaded = vae.load_checkpoint("fashion-mnist", tmp_path)
    assert loaded.config == TINY
    before = vae.encode(trained.model, fashion_sample[:64])
    after = vae.encode(loaded.model, fashion_sample[:64])
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        vae.decode(loaded.model, after[:4]), vae.decode(trained.model, before[:4]), atol=1
    )


def test_missing_checkpoint_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(vae.ModelMissing, match=re.escape("python vae.py train --data furniture")):
        vae.load_checkpoint("furniture", tmp_path)


# ---------------------------------------------------------------------------------------------
# Catalog latents through the shared embedding cache
# ---------------------------------------------------------------------------------------------


def test_catalog_latents_are_cached_and_invalidated_by_new_weights(
    trained: vae.TrainResult, fashion_sample: np.ndarray, tmp_path: Path
) -> None:
    models, cache = tmp_path / "models", tmp_path / "cache"
    catalog = dataclasses.replace(catalogs.load_fashion_mnist("train"), images=fashion_sample[:200])
    vae.save_checkpoint(trained.model, vae.model_dir("fashion-mnist", models), {})
    checkpoint = vae.load_checkpoint("fashion-mnist", models)

    calls = utils.INFERENCE_CALLS.get("vae", 0)
    first = vae.catalog_latents(checkpoint, catalog, cache_root=cache)
    computed = utils.INFERENCE_CALLS.get("vae", 0) - calls
    assert computed >= 1
    np.testing.assert_allclose(first, vae.encode(checkpoint.model, catalog.images), atol=1e-5)

    calls = utils.INFERENCE_CALLS.get("vae", 0)
    second = vae.catalog_latents(checkpoint, catalog, cache_root=cache)
    assert utils.INFERENCE_CALLS.get("vae", 0) == calls  # all 200 read back, none encoded
    np.testing.assert_array_equal(second, first)

    retrained = checkpoint.model  # "retrain": nudge the weights and save them again
    retrained.encoder.set_weights([w + np.float32(0.01) for w in retrained.encoder.get_weights()])
    vae.save_checkpoint(retrained, vae.model_dir("fashion-mnist", models), {})
    new_checkpoint = vae.load_checkpoint("fashion-mnist", models)
    assert new_checkpoint.model_id != checkpoint.model_id
    calls = utils.INFERENCE_CALLS.get("vae", 0)
    third = vae.catalog_latents(new_checkpoint, catalog, cache_root=cache)
    assert utils.INFERENCE_CALLS.get("vae", 0) > calls
    np.testing.assert_allclose(third, vae.encode(new_checkpoint.model, catalog.images), atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Furniture packages
# ---------------------------------------------------------------------------------------------


@needs_furniture
def test_sh3f_reader_on_a_real_package() -> None:
    items = catalogs.read_sh3f(REALLUSION)
    assert len(items) == 25
    assert {item.category for item in items} == {"Characters"}
    assert {item.creator for item in items} == {"Reallusion"}
    assert all(item.licence.startswith("Creative Commons Attribution 3.0") for item in items)
    icon = items[0].icon
    assert icon.shape == (64, 64, 3) and icon.dtype == np.uint8
    assert (icon[0, 0] == 255).all()  # transparency composited on white
    assert icon.min() < 200  # and the figure is there


@needs_furniture
def test_damaged_package_gives_a_clear_message_and_is_skipped(tmp_path: Path) -> None:
    damaged = tmp_path / "Damaged.sh3f"
    damaged.write_bytes(REALLUSION.read_bytes()[:50_000])
    with pytest.raises(catalogs.CatalogError, match="Damaged.sh3f is damaged"):
        catalogs.read_sh3f(damaged)

    corrupt_member = tmp_path / "Corrupt.sh3f"
    with zipfile.ZipFile(corrupt_member, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("PluginFurnitureCatalog.properties", "id#1=x\nname#1=Chair\nicon#1=/chair.png\n" * 50)
        archive.writestr("chair.png", b"\x89PNG" + bytes(2000))
    with zipfile.ZipFile(corrupt_member) as archive:
        info = archive.getinfo("PluginFurnitureCatalog.properties")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data = bytearray(corrupt_member.read_bytes())
    data[start : start + info.compress_size] = b"\xff" * info.compress_size  # garble the compressed stream
    corrupt_member.write_bytes(bytes(data))
    with pytest.raises(catalogs.CatalogError, match="Corrupt.sh3f"):
        catalogs.read_sh3f(corrupt_member)

    shutil.copy(REALLUSION, tmp_path / "Reallusion.sh3f")
    with pytest.warns(UserWarning) as warned:
        catalog = catalogs.load_furniture.__wrapped__(tmp_path)
    messages = " ".join(str(warning.message) for warning in warned)
    assert "Damaged.sh3f" in messages and "Corrupt.sh3f" in messages
    assert len(catalog) == 25
    assert len(catalog.skipped) == 2
    assert catalog.creators is not None and catalog.licences is not None


def test_properties_parser_handles_escapes_and_continuations() -> None:
    text = "# comment\nname#1=Bill 10\\u20ac\nname#2 = Long \\\n    name\ncategory#2: Kitchen\n! other comment\n"
    assert catalogs.parse_properties(text) == {"name#1": "Bill 10€", "name#2": "Long name", "category#2": "Kitchen"}


