"""The VAE: loss terms, training, checkpoints, the cached catalog latents, the furniture reader, the page."""

from __future__ import annotations

import dataclasses
import io
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import catalogs
import utils
import vae

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
    layer = vae._layers()["BoundedLogVar"]()
    raw = np.array([[-1e4, -10.0, 0.0, 3.0, 1e4]], dtype=np.float32)
    bounded = np.asarray(layer(raw))
    assert bounded.min() >= vae.LOG_VAR_MIN and bounded.max() <= vae.LOG_VAR_MAX
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


def test_precision_at_k_and_leave_one_out() -> None:
    vectors = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], dtype=np.float32)
    labels = np.array([0, 0, 1, 1])
    assert vae.precision_at_k(vectors, labels, vectors, labels, 1, leave_one_out=True) == 1.0
    assert vae.precision_at_k(vectors, labels, vectors, labels, 2, leave_one_out=True) == 0.5
    assert vae.precision_at_k(vectors, labels, vectors[:1], labels[:1], 2) == 1.0


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


# ---------------------------------------------------------------------------------------------
# Photos into the catalogs' domains
# ---------------------------------------------------------------------------------------------


def test_fashion_preprocessing_inverts_light_backgrounds_and_centres() -> None:
    photo = np.full((120, 80, 3), 240, np.uint8)
    photo[20:60, 10:40] = (200, 30, 30)  # a dark red object, off-centre, on a light background
    result = catalogs.to_fashion_mnist(photo)
    image = result.image[..., 0]
    assert result.image.shape == (28, 28, 1)
    assert image[0, 0] < 20 and image[:, 0].max() < 20  # the background became black
    assert image[14, 14] > 120  # the object is light and centred
    assert any("inverted" in label for label, _ in result.steps)


def test_furniture_preprocessing_whitens_a_plain_background() -> None:
    photo = np.zeros((100, 100, 3), np.uint8)
    photo[:] = (40, 120, 40)
    photo[30:70, 30:70] = (150, 60, 20)
    result = catalogs.to_furniture(photo)
    assert result.image.shape == (64, 64, 3)
    assert (result.image[0, 0] == 255).all()
    assert any("white" in label for label, _ in result.steps)


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


@needs_furniture
@pytest.mark.skipif(not (vae.model_dir("furniture") / vae.WEIGHTS_FILE).is_file(), reason="no furniture model")
def test_page_uploads_searches_and_shows_sorted_results() -> None:
    from streamlit.testing.v1 import AppTest

    catalog = catalogs.load_furniture()
    query_index = 300
    enlarged = np.asarray(Image.fromarray(catalog.images[query_index]).resize((200, 200)))
    at = AppTest.from_file(str(Path(vae.__file__).parent / "pages" / "visual_search.py"), default_timeout=240)
    at.run()
    assert not at.exception
    at.radio(key="catalog").set_value("furniture").run()
    assert not at.exception
    at.file_uploader(key="upload").set_value(("item.png", _png(enlarged), "image/png"))
    at.slider(key="k").set_value(6)
    at.button(key="search").click().run()
    assert not at.exception and not at.error

    results = [m.value for m in at.markdown if re.match(r"\*\*\d+\. ", m.value)]
    assert len(results) == 6
    scores = [float(re.search(r"similarity (-?[\d.]+)", text).group(1)) for text in results]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > 0.9
    assert catalog.captions[query_index] in results[0]  # the item itself comes first
    assert any(caption.value.startswith("by ") for caption in at.caption)  # creator and licence shown

    captions = [caption for image in at.image for caption in image.captions]
    assert any("reconstruction" in c for c in captions) and any("model input" in c for c in captions)

    at.button(key="generate_furniture").click().run()  # decode 8 draws from the prior
    assert any(len(image.value) == 8 for image in at.image)
    at.number_input(key="interp_steps_furniture").set_value(5)
    at.button(key="interpolate_furniture").click().run()  # a 5-step strip between two items
    assert not at.exception and any(len(image.value) == 5 for image in at.image)

    calls = dict(utils.INFERENCE_CALLS)
    at.run()  # a rerun keeps the results and runs no inference
    assert calls == utils.INFERENCE_CALLS
    assert len([m for m in at.markdown if re.match(r"\*\*\d+\. ", m.value)]) == 6

    at.file_uploader(key="upload").set_value(("broken.png", b"not an image at all", "image/png"))
    at.button(key="search").click().run()
    assert not at.exception
    assert len(at.error) == 1 and "can't be used" in at.error[0].value


def test_page_names_the_training_command_when_a_model_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    monkeypatch.setattr(vae, "MODELS_DIR", tmp_path)
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(str(Path(vae.__file__).parent / "pages" / "visual_search.py"), default_timeout=120)
        at.run()
        assert not at.exception
        assert len(at.error) == 1 and "python vae.py train --data fashion-mnist" in at.error[0].value
        assert not at.button  # nothing to click without a model
    finally:
        st.cache_resource.clear()
