"""utils: settings, safe decoding of every odd input, atomic files, mirror-aware downloads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import utils
from tests.bad_images import CORPUS, bad_inputs, exif_rotated_jpeg
from tests.paths import SHARED_DATA


@pytest.mark.parametrize("entry", bad_inputs(), ids=lambda entry: entry.name)
def test_every_corpus_input_decodes_or_raises_one_clear_error(entry):
    if entry.usable:
        image = utils.load_image(entry.data)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert min(image.shape[:2]) >= 1 and max(image.shape[:2]) <= utils.DEFAULT_MAX_SIDE
    else:
        with pytest.raises(utils.ImageError) as error:
            utils.load_image(entry.data)
        assert len(str(error.value)) > 20


def test_exif_rotation_comes_out_upright():
    image = utils.load_image(exif_rotated_jpeg())
    assert image.shape[:2] == (200, 100)  # stored 100 x 200 landscape, orientation 6 -> portrait
    # The red half was the stored image's top; after a 90° clockwise turn it is on the right.
    left, right = image[:, :30].mean(axis=(0, 1)), image[:, -30:].mean(axis=(0, 1))
    assert right[0] > 200 and left[2] > 200


def test_transparency_is_composited_on_white():
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGBA", (8, 8), (255, 0, 0, 0)).save(buffer, format="PNG")
    assert (utils.load_image(buffer.getvalue()) == 255).all()


def test_sixteen_bit_keeps_its_range():
    image = utils.load_image(CORPUS["png16"][1]())
    assert image.min() <= 5 and image.max() >= 250


def test_huge_dimensions_are_refused_before_decoding():
    with pytest.raises(utils.ImageError, match="too large|megapixel"):
        utils.load_image(CORPUS["bomb"][1]())


def test_large_images_are_downscaled_on_load():
    image = utils.load_image(CORPUS["panorama"][1](), max_side=1000)
    assert image.shape[1] == 1000 and image.shape[0] == 20


def test_missing_file_and_folder_are_clear_errors(tmp_path):
    with pytest.raises(utils.ImageError, match="does not exist"):
        utils.load_image(tmp_path / "nope.jpg")
    with pytest.raises(utils.ImageError, match="folder"):
        utils.load_image(tmp_path)


def test_square_image_has_the_model_input_shape():
    image = np.zeros((300, 500, 3), np.uint8)
    assert utils.square_image(image, 224).shape == (224, 224, 3)
    assert utils.square_image(np.zeros((1, 1, 3), np.uint8), 224).shape == (224, 224, 3)


def test_settings_read_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LOOKALIKE_WEIGHTS", "random")
    monkeypatch.setenv("LOOKALIKE_MIRROR", "http://127.0.0.1:9/x")
    monkeypatch.setenv("LOOKALIKE_ROOTS", str(tmp_path))
    monkeypatch.setenv("LOOKALIKE_VGG19_WEIGHTS", str(tmp_path / "mine.h5"))
    monkeypatch.setenv("LOOKALIKE_DOWNLOAD_TIMEOUT", "2.5")
    settings = utils.get_settings()
    assert settings.random_weights and settings.mirror == "http://127.0.0.1:9/x"
    assert settings.roots == (tmp_path.resolve(),)
    assert settings.own_weights_for("vgg19") == tmp_path / "mine.h5" and settings.own_weights_for("efficientnetb0") is None
    assert settings.download_timeout == 2.5
    monkeypatch.setenv("LOOKALIKE_DOWNLOAD_TIMEOUT", "soon")
    assert utils.get_settings().download_timeout == 30.0


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "data.npz"
    utils.save_npz_atomic(target, a=np.arange(3))
    with pytest.raises(RuntimeError), utils.atomic_path(target) as temporary:
        temporary.write_bytes(b"partial")
        raise RuntimeError("interrupted")
    with np.load(target) as data:
        assert data["a"].tolist() == [0, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["data.npz"]


def test_folder_checks(tmp_path, monkeypatch):
    with pytest.raises(utils.FolderError, match="does not exist"):
        utils.check_folder(tmp_path / "gone")
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    (allowed / "escape").symlink_to(outside)
    monkeypatch.setenv("LOOKALIKE_ROOTS", str(allowed))
    assert utils.check_folder(allowed) == allowed.resolve()
    with pytest.raises(utils.FolderError, match="outside"):
        utils.check_folder(allowed / "escape")


def test_list_images_is_recursive_and_sorted(tmp_path):
    (tmp_path / "b").mkdir()
    for name in ("b/2.jpg", "1.PNG", "notes.txt", ".hidden.jpg"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.relative_to(tmp_path).as_posix() for p in utils.list_images(tmp_path)] == ["1.PNG", "b/2.jpg"]


def test_download_through_http_mirror_checks_the_checksum(mirror_server, tmp_path):
    source = SHARED_DATA / "images-by-style" / "s_cubism-01.jpg"
    digest = utils.file_sha256(source)
    url = "https://example.invalid/base|images-by-style/s_cubism-01.jpg"
    saved = utils.download_file(url, tmp_path / "a.jpg", sha256=digest, mirror=mirror_server)
    assert saved.read_bytes() == source.read_bytes()
    with pytest.raises(utils.DownloadError, match="checksum"):
        utils.download_file(url, tmp_path / "b.jpg", sha256="0" * 64, mirror=mirror_server)
    assert not (tmp_path / "b.jpg").exists()


def test_download_from_a_mirror_folder_and_missing_files(tmp_path):
    url = "https://example.invalid/base|images-by-style/s_cubism-02.jpg"
    saved = utils.download_file(url, tmp_path / "c.jpg", mirror=str(SHARED_DATA))
    assert saved.stat().st_size > 1000
    with pytest.raises(utils.DownloadError):
        utils.download_file("https://example.invalid/base|nope.jpg", tmp_path / "d.jpg", mirror=str(SHARED_DATA))


def test_no_network_gives_a_clear_download_error(tmp_path):
    with pytest.raises(utils.DownloadError, match="LOOKALIKE_MIRROR"):
        utils.download_file("http://127.0.0.1:9/base|x.jpg", tmp_path / "x.jpg", mirror="", timeout=2)
    assert not any(Path(tmp_path).iterdir())
