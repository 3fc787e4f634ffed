"""Neural style transfer (``lookalike.style``, through ``style_transfer.stylize`` and its command line),
with random VGG19 weights and small images.

Pictures are read at run time from the shared data folder: a painting from ``images-by-style`` and a
photo from ``clothing-dataset-small``. Tests that need them are skipped when the folder is missing.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import style_transfer
import utils
from lookalike.style import engine, pixels, transfer_model
from lookalike.style.transfer_model import Weights, make_target
from tests.paths import SHARED_DATA as DATA

SIZE = 96  # long side of the outputs in these tests: small, so the file runs in about a minute
# Colour preservation ("luminance"): the result's chroma (YIQ I and Q channels) keeps the photo's mean
# and standard deviation to within this many grey levels (only clipping to [0, 255] moves them).
CHROMA_TOLERANCE = 2.0


def _first(pattern: str) -> Path:
    matches = sorted(DATA.glob(pattern))
    if not matches:
        pytest.skip(f"no {pattern} under {DATA}")
    return matches[0]


@pytest.fixture(scope="module", autouse=True)
def random_weights():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOOKALIKE_WEIGHTS", "random")
        yield


@pytest.fixture(scope="module")
def model(random_weights):
    return style_transfer.transfer_model()


@pytest.fixture(scope="module")
def painting() -> np.ndarray:
    return utils.load_image(_first("images-by-style/s_impressionist-*.jpg"))


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return utils.load_image(_first("clothing-dataset-small/test/*/*.jpg"))


def _full_res_losses(model, result_image, photo, painting, strength=style_transfer.DEFAULT_STRENGTH):
    """Losses of an image at the output resolution, in float32, with the default weights."""
    content, style = engine.prepare_inputs(
        photo.astype(np.float32), painting.astype(np.float32), engine.Options(size=max(result_image.shape))
    )
    target = make_target(model, content, style, "float32")
    weights = Weights(style_transfer.strength_factor(strength), 1.0, 1.0)
    return model.losses(np.asarray(result_image, dtype=np.float32), target, weights, "float32")


def test_features_are_the_shared_vgg19_layers(model, photo):
    """The transfer model computes exactly the layers of ``selected_layers_model`` (same weights)."""
    layers = (*style_transfer.STYLE_LAYERS, style_transfer.CONTENT_LAYER)
    reference = style_transfer.selected_layers_model(layers)
    image = utils.square_image(photo, 48).astype(np.float32)
    expected = reference(style_transfer.preprocess(image[None]), training=False)
    actual = model._features(transfer_model._batch(image), "float32")
    for want, got in zip(expected, actual, strict=True):
        scale = float(np.abs(np.asarray(want)).max()) or 1.0
        np.testing.assert_allclose(np.asarray(got) / scale, np.asarray(want) / scale, atol=1e-4)


@pytest.mark.slow
def test_total_loss_halves_and_style_loss_falls(model, photo, painting):
    result = style_transfer.stylize(photo, painting, size=SIZE, steps=30, model=model)
    before = _full_res_losses(model, pixels.resize_long_side(photo, SIZE), photo, painting)
    after = _full_res_losses(model, result.image, photo, painting)
    assert after.total <= 0.5 * before.total
    assert after.style < before.style
    assert result.steps == 30 and not result.cancelled


def test_style_and_content_losses_fall_from_noise(model, photo, painting):
    result = style_transfer.stylize(
        photo, painting, size=SIZE, steps=30, init="noise", coarse_to_fine=False, model=model
    )
    start = engine.start_image(pixels.resize_long_side(photo, SIZE), engine.Options(init="noise"))
    before = _full_res_losses(model, start, photo, painting)
    after = _full_res_losses(model, result.image, photo, painting)
    assert after.total <= 0.5 * before.total
    assert after.style < before.style and after.content < before.content
    assert result.history[-1] < result.history[0]


def test_output_shape_dtype_and_range(model, photo, painting):
    result = style_transfer.stylize(photo, painting, size=SIZE, steps=4, model=model)
    height, width = photo.shape[:2]
    expected = pixels.output_shape(height, width, SIZE)
    assert result.image.shape == (*expected, 3)
    assert max(result.image.shape[:2]) == SIZE
    assert result.image.dtype == np.uint8
    assert result.image.min() >= 0 and result.image.max() <= 255 and result.image.std() > 1
    assert np.isfinite(result.losses.total)


def test_strength_zero_returns_the_photo(model, photo, painting):
    result = style_transfer.stylize(photo, painting, size=SIZE, steps=3, strength=0.0, model=model)
    reference = pixels.to_uint8(pixels.resize_long_side(photo, SIZE))
    assert np.abs(result.image.astype(int) - reference).mean() < 2.0


def _chroma_stats(image: np.ndarray) -> np.ndarray:
    chroma = pixels.to_yiq(image)[..., 1:].reshape(-1, 2)
    return np.concatenate([chroma.mean(0), chroma.std(0)])


def test_preserve_colors_keeps_the_photos_chroma(model, photo, painting):
    reference = _chroma_stats(pixels.resize_long_side(photo, SIZE))
    kept = style_transfer.stylize(photo, painting, size=SIZE, steps=8, preserve_colors=True, model=model)
    assert np.abs(_chroma_stats(kept.image) - reference).max() <= CHROMA_TOLERANCE


def test_histogram_matching_recolours_the_painting(photo, painting):
    matched = pixels.match_color_histogram(painting.astype(np.float32), photo.astype(np.float32))
    want = photo.reshape(-1, 3).astype(np.float64)
    got = matched.reshape(-1, 3).astype(np.float64)
    assert np.abs(got.mean(0) - want.mean(0)).max() < 3.0
    assert np.abs(got.std(0) - want.std(0)).max() < 6.0


def test_callback_returning_false_stops_at_once(model, photo, painting):
    seen: list[int] = []

    def progress(info: engine.Progress) -> bool:
        seen.append(info.step)
        assert info.preview.dtype == np.uint8 and info.preview.ndim == 3
        return info.step < 3

    result = style_transfer.stylize(photo, painting, size=SIZE, steps=20, progress=progress, model=model)
    assert result.cancelled and result.steps == 3 and seen == [1, 2, 3]
    assert result.image.dtype == np.uint8 and max(result.image.shape[:2]) == SIZE


def test_cancel_event_stops_within_one_step(model, photo, painting):
    cancel = threading.Event()
    steps_when_set: list[int] = []

    def progress(info: engine.Progress) -> None:
        if info.step == 5:  # pretend a user clicked "Stop" from another thread now
            threading.Thread(target=cancel.set).start()
            steps_when_set.append(info.step)

    result = style_transfer.stylize(
        photo, painting, size=SIZE, steps=40, progress=progress, cancel=cancel, model=model
    )
    assert result.cancelled
    assert steps_when_set == [5] and result.steps <= 6


def test_cancel_before_start_returns_the_start_image(model, photo, painting):
    cancel = threading.Event()
    cancel.set()
    result = style_transfer.stylize(photo, painting, size=SIZE, steps=10, cancel=cancel, model=model)
    assert result.cancelled and result.steps == 0
    assert result.image.shape[:2] == pixels.output_shape(*photo.shape[:2], SIZE)


def test_deterministic_for_a_seed(model, photo, painting):
    def once(seed: int) -> np.ndarray:
        return style_transfer.stylize(
            photo, painting, size=64, steps=6, init="noise", seed=seed, model=model
        ).image

    first, second, other = once(7), once(7), once(8)
    np.testing.assert_array_equal(first, second)
    assert np.abs(first.astype(int) - other).mean() > 1.0


@pytest.mark.parametrize(
    "content, message",
    [
        (b"not an image at all", "not an image"),
        (b"", "empty"),
        (Path("/nonexistent/photo.jpg"), "does not exist"),
        (np.zeros((10, 10, 5), dtype=np.uint8), "RGB array"),
        (np.full((8, 8, 3), np.nan, dtype=np.float32), "finite"),
    ],
)
def test_bad_images_give_a_clear_error(model, painting, content, message):
    with pytest.raises(utils.ImageError, match=message):
        style_transfer.stylize(content, painting, size=SIZE, steps=1, model=model)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"strength": 1.5}, "strength"),
        ({"steps": 0}, "step"),
        ({"size": 8}, "size"),
        ({"color_method": "sepia"}, "colour method"),
        ({"optimizer": "sgd"}, "optimiser"),
    ],
)
def test_bad_parameters_give_a_clear_error(model, photo, painting, kwargs, message):
    with pytest.raises(ValueError, match=message):
        style_transfer.stylize(photo, painting, model=model, **kwargs)


def test_cli_writes_a_png_and_prints_losses(tmp_path, capsys, photo, painting, model):
    from PIL import Image

    content, style = tmp_path / "photo.png", tmp_path / "painting.png"
    Image.fromarray(photo).save(content)
    Image.fromarray(painting).save(style)
    out = tmp_path / "out.png"
    code = style_transfer.main([str(content), str(style), "-o", str(out), "--size", "64", "--steps", "3"])
    assert code == 0
    with Image.open(out) as written:
        assert max(written.size) == 64 and written.mode == "RGB"
    printed = capsys.readouterr().out
    assert "Final losses" in printed and " s" in printed


def _cli_fails(tmp_path: Path, capsys, content: Path, style: Path) -> str:
    """Run the CLI expecting exit status 1 and no output file; returns stderr, which has no traceback."""
    code = style_transfer.main([str(content), str(style), "-o", str(tmp_path / "o.png"), "--size", "64"])
    captured = capsys.readouterr()
    assert code == 1 and not (tmp_path / "o.png").exists()
    assert "Traceback" not in captured.err + captured.out
    return captured.err


def test_cli_bad_input_exits_1_without_traceback(tmp_path, capsys, painting):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff garbage")
    style = tmp_path / "painting.png"
    style_transfer.save_png(painting, style)
    err = _cli_fails(tmp_path, capsys, broken, style)
    assert "error:" in err and "broken.jpg" in err


def test_cli_missing_weights_exits_1_with_advice(tmp_path, capsys, monkeypatch, painting):
    monkeypatch.setenv("LOOKALIKE_WEIGHTS", str(tmp_path / "no-such-weights.h5"))
    image = tmp_path / "painting.png"
    style_transfer.save_png(painting, image)
    err = _cli_fails(tmp_path, capsys, image, image)
    assert "error:" in err and "LOOKALIKE_WEIGHTS" in err
