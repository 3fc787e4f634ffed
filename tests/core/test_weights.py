"""The weights module: published files, search order, checked downloads, refusals with the real reason."""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest

from lookalike.core import digests, fetch, pretrained, weights
from lookalike.core.h5_layout import read_structure
from lookalike.core.weights import PUBLISHED, WeightsUnavailable
from tests.standin_weights import leftovers, truncate, zero_block


def message_of(call) -> str:
    with pytest.raises(WeightsUnavailable) as error:
        call()
    text = str(error.value)
    assert "Traceback" not in text and "\n" not in text.strip()
    return text


# ---------------------------------------------------------------------------------------------
# The published files, as Keras knows them
# ---------------------------------------------------------------------------------------------


def test_registry_matches_keras_own_sources():
    from keras.src.applications import efficientnet, vgg19

    assert PUBLISHED["vgg19"].url == vgg19.WEIGHTS_PATH_NO_TOP
    source = Path(vgg19.__file__).read_text(encoding="utf-8")
    found = re.search(r'"(vgg19_\w+_notop\.h5)",\s*WEIGHTS_PATH_NO_TOP,[^)]*file_hash="(\w+)"', source)
    assert found.groups() == (PUBLISHED["vgg19"].filename, PUBLISHED["vgg19"].md5)
    assert PUBLISHED["efficientnetb0"].url == efficientnet.BASE_WEIGHTS_PATH + PUBLISHED["efficientnetb0"].filename
    assert PUBLISHED["efficientnetb0"].md5 == efficientnet.WEIGHTS_HASHES["b0"][1]
    assert tuple(efficientnet.IMAGENET_STDDEV_RGB) == weights.IMAGENET_STDDEV_RGB


@pytest.mark.parametrize("key", list(PUBLISHED))
def test_registry_structure_is_the_keras_models(key):
    import keras

    model = getattr(keras.applications, PUBLISHED[key].model)(include_top=False, weights=None)
    with_weights = [layer for layer in model.layers if layer.weights]
    assert len(with_weights) == PUBLISHED[key].weighted_layers
    assert sum(int(np.prod(w.shape)) for layer in with_weights for w in layer.weights) == PUBLISHED[key].parameters


def test_standins_have_the_published_layout(standins):
    with h5py.File(standins.path("vgg19"), "r") as vgg:
        assert "keras_version" not in vgg.attrs and "backend" not in vgg.attrs  # written by Keras 1
        assert [n.decode() for n in vgg.attrs["layer_names"]][:3] == ["input_1", "block1_conv1", "block1_conv2"]
        assert [n.decode() for n in vgg["block1_conv1"].attrs["weight_names"]] == [
            "block1_conv1_W_1:0", "block1_conv1_b_1:0"]
        assert len(vgg["block1_pool"].attrs["weight_names"]) == 0
    with h5py.File(standins.path("efficientnetb0"), "r") as eff:
        assert (str(eff.attrs["keras_version"]), str(eff.attrs["backend"])) == ("2.4.0", "tensorflow")
        norm = eff["normalization"]
        assert [n.decode() for n in norm.attrs["weight_names"]] == [
            "normalization/mean:0", "normalization/variance:0", "normalization/count:0"]
        np.testing.assert_allclose(norm["normalization/variance:0"][()], weights.IMAGENET_STDDEV_RGB)
        assert norm["normalization/count:0"].dtype == np.int64 and norm["normalization/count:0"].shape == ()
        assert "block1a_dwconv/depthwise_kernel:0" in [n.decode() for n in eff["block1a_dwconv"].attrs["weight_names"]]
    for key in PUBLISHED:
        assert weights.identify(read_structure(standins.path(key))) is PUBLISHED[key]


# ---------------------------------------------------------------------------------------------
# Search order and settings
# ---------------------------------------------------------------------------------------------


def test_models_folder_comes_before_the_keras_cache(imagenet):
    cached = imagenet.place("vgg19", imagenet.keras_cache)
    assert weights.resolve("vgg19").path == cached and weights.resolve("vgg19").source == "keras cache"
    dropped = imagenet.place("vgg19", imagenet.models)
    resolved = weights.resolve("vgg19")
    assert (resolved.path, resolved.source, resolved.published) == (dropped, "models", True)
    assert resolved.label == f"imagenet:{weights.digests(dropped).sha256[:16]}"


def test_random_mode_needs_no_file(imagenet, monkeypatch):
    monkeypatch.setenv("LOOKALIKE_WEIGHTS", "random")
    resolved = weights.resolve("efficientnetb0")
    assert resolved.path is None and resolved.label == "random" and weights.uses_random("efficientnetb0")


def test_per_model_variables_take_any_file_that_fits(imagenet, monkeypatch, tmp_path, other_vgg19):
    monkeypatch.setenv("LOOKALIKE_VGG19_WEIGHTS", str(other_vgg19))
    resolved = weights.resolve("vgg19")
    assert resolved.path == other_vgg19 and not resolved.published
    assert resolved.label == f"file:{weights.digests(other_vgg19).sha256[:16]}"
    # The other model is untouched: it still looks for the published file.
    assert "efficientnetb0_notop.h5" in message_of(lambda: weights.resolve("efficientnetb0"))


def test_per_model_variable_with_the_wrong_models_file_is_refused(imagenet, monkeypatch, standins):
    monkeypatch.setenv("LOOKALIKE_EFFICIENTNETB0_WEIGHTS", str(standins.path("vgg19")))
    text = message_of(lambda: weights.resolve("efficientnetb0"))
    assert "does not fit EfficientNetB0" in text and "looks like the VGG19 file" in text
    assert "LOOKALIKE_EFFICIENTNETB0_WEIGHTS" in text


def test_old_single_setting_serves_the_model_it_fits(imagenet, monkeypatch, standins):
    imagenet.place("efficientnetb0", imagenet.models)
    monkeypatch.setenv("LOOKALIKE_WEIGHTS", str(standins.path("vgg19")))
    assert weights.resolve("vgg19").path == standins.path("vgg19")
    assert weights.resolve("efficientnetb0").source == "models"  # the other model takes the published file


def test_old_single_setting_that_fits_no_model_is_refused(imagenet, monkeypatch, tmp_path):
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as handle:
        handle.attrs["layer_names"] = np.array([b"dense"])
        handle.create_group("dense").attrs["weight_names"] = np.array([b"dense/kernel:0"])
        handle["dense"].create_dataset("dense/kernel:0", data=np.ones((3, 2), np.float32))
    monkeypatch.setenv("LOOKALIKE_WEIGHTS", str(foreign))
    text = message_of(lambda: weights.resolve("vgg19"))
    assert "LOOKALIKE_VGG19_WEIGHTS" in text and "LOOKALIKE_EFFICIENTNETB0_WEIGHTS" in text


# ---------------------------------------------------------------------------------------------
# Damaged and wrong files
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["models", "keras cache"])
def test_truncated_file_is_refused_with_its_hashes(imagenet, where):
    folder = imagenet.models if where == "models" else imagenet.keras_cache
    folder.mkdir(parents=True, exist_ok=True)
    bad = truncate(imagenet.standins.path("vgg19"), folder / PUBLISHED["vgg19"].filename)
    text = message_of(lambda: weights.resolve("vgg19"))
    assert str(bad) in text and f"expected {PUBLISHED['vgg19'].md5}" in text
    assert weights.digests(bad).md5 in text and "truncated or damaged" in text
    assert "python utils.py weights" in text


def test_zeroed_block_is_refused(imagenet):
    bad = zero_block(imagenet.standins.path("efficientnetb0"), imagenet.models / PUBLISHED["efficientnetb0"].filename)
    text = message_of(lambda: weights.resolve("efficientnetb0"))
    assert str(bad) in text and weights.digests(bad).md5 in text


def test_wrong_models_file_under_the_right_name_is_refused(imagenet):
    imagenet.place("vgg19", imagenet.models, source=imagenet.standins.path("efficientnetb0"))
    text = message_of(lambda: weights.resolve("vgg19"))
    assert "looks like the EfficientNetB0 file" in text and PUBLISHED["vgg19"].md5 in text


def test_truncated_own_file_is_refused(imagenet, monkeypatch, tmp_path):
    bad = truncate(imagenet.standins.path("vgg19"), tmp_path / "mine.h5")
    monkeypatch.setenv("LOOKALIKE_VGG19_WEIGHTS", str(bad))
    text = message_of(lambda: weights.resolve("vgg19"))
    assert str(bad) in text and "truncated or damaged" in text


# ---------------------------------------------------------------------------------------------
# Downloads
# ---------------------------------------------------------------------------------------------


def test_download_from_a_loopback_mirror(imagenet, monkeypatch, weights_server):
    monkeypatch.setenv("LOOKALIKE_MIRROR", f"{weights_server}/good")
    seen: list[tuple[int, int | None]] = []
    resolved = weights.resolve("efficientnetb0", progress=lambda done, total: seen.append((done, total)))
    assert resolved.source == "download" and resolved.path == imagenet.keras_cache / "efficientnetb0_notop.h5"
    assert resolved.path.read_bytes() == imagenet.standins.path("efficientnetb0").read_bytes()
    size = resolved.path.stat().st_size
    assert seen[-1] == (size, size) and len(seen) > 2
    assert leftovers(imagenet.keras_cache) == [resolved.path]
    # A second run finds it in the Keras cache.
    assert weights.resolve("efficientnetb0").source == "keras cache"


def test_download_from_a_mirror_folder(imagenet, monkeypatch):
    monkeypatch.setenv("LOOKALIKE_MIRROR", str(imagenet.standins.root))
    assert weights.resolve("vgg19").source == "download"


def test_cut_download_leaves_nothing_and_the_next_try_succeeds(imagenet, monkeypatch, weights_server):
    monkeypatch.setenv("LOOKALIKE_MIRROR", f"{weights_server}/cut")
    text = message_of(lambda: weights.resolve("efficientnetb0"))
    assert "was cut off before the file was complete" in text
    assert leftovers(imagenet.keras_cache) == []
    # The failure is remembered until one asks to try again.
    monkeypatch.setenv("LOOKALIKE_MIRROR", f"{weights_server}/good")
    assert weights.resolve("efficientnetb0", retry=True).source == "download"


def test_failures_are_remembered_until_retry(imagenet, monkeypatch, weights_server):
    monkeypatch.setenv("LOOKALIKE_MIRROR", f"{weights_server}/good")
    imagenet.keras_cache.mkdir(parents=True)
    blocker = imagenet.keras_cache / "efficientnetb0_notop.h5"
    truncate(imagenet.standins.path("efficientnetb0"), blocker)
    first = message_of(lambda: weights.resolve("efficientnetb0"))
    blocker.unlink()
    assert message_of(lambda: weights.resolve("efficientnetb0")) == first  # remembered, not retried
    assert weights.remembered_failure("efficientnetb0") is not None
    weights.forget_failures()
    assert weights.resolve("efficientnetb0").source == "download"


def test_http_404_is_named(imagenet, monkeypatch, weights_server):
    monkeypatch.setenv("LOOKALIKE_MIRROR", f"{weights_server}/missing")
    text = message_of(lambda: weights.resolve("vgg19"))
    assert "HTTP 404 Not Found" in text and f"{weights_server}/missing/{PUBLISHED['vgg19'].relative}" in text
    assert leftovers(imagenet.keras_cache) == []


def test_a_server_that_never_answers_times_out(imagenet, monkeypatch, stalled_server):
    monkeypatch.setenv("LOOKALIKE_MIRROR", stalled_server)
    monkeypatch.setenv("LOOKALIKE_DOWNLOAD_TIMEOUT", "1.5")
    started = time.monotonic()
    text = message_of(lambda: weights.resolve("vgg19"))
    assert time.monotonic() - started < 10
    assert "read timeout" in text and "1.5 s" in text
    assert leftovers(imagenet.keras_cache) == []


def test_dns_failure_is_named(imagenet, monkeypatch):
    monkeypatch.setenv("LOOKALIKE_MIRROR", "http://weights.invalid")
    assert "DNS" in message_of(lambda: weights.resolve("vgg19"))


def test_refused_connection_is_named(imagenet, monkeypatch):
    monkeypatch.setenv("LOOKALIKE_MIRROR", "http://127.0.0.1:9")
    assert "refused the connection" in message_of(lambda: weights.resolve("vgg19"))


def test_mirror_with_a_different_file_is_refused_and_nothing_kept(imagenet, monkeypatch, weights_server):
    monkeypatch.setitem(weights.PUBLISHED, "vgg19", replace(PUBLISHED["vgg19"], md5="0" * 32))
    monkeypatch.setenv("LOOKALIKE_MIRROR", f"{weights_server}/good")
    text = message_of(lambda: weights.resolve("vgg19"))
    assert "hash mismatch" in text and "0" * 32 in text
    assert leftovers(imagenet.keras_cache) == []


def test_stale_partial_downloads_are_cleared(imagenet, monkeypatch):
    imagenet.keras_cache.mkdir(parents=True)
    stale = imagenet.keras_cache / ".vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5.abc.part"
    stale.write_bytes(b"partial")
    old = time.time() - 2 * fetch.STALE_PARTIAL_SECONDS
    os.utime(stale, (old, old))
    monkeypatch.setenv("LOOKALIKE_MIRROR", str(imagenet.standins.root))
    weights.resolve("vgg19")
    assert not stale.exists()


def test_prefetch_reports_each_file(imagenet, monkeypatch, weights_server):
    monkeypatch.setenv("LOOKALIKE_MIRROR", f"{weights_server}/good")
    lines: list[str] = []
    assert weights.prefetch(report=lines.append)
    assert len(lines) == 2 and all(str(imagenet.keras_cache) in line for line in lines)
    monkeypatch.setenv("KERAS_HOME", str(imagenet.keras_cache.parent.parent / "elsewhere"))
    monkeypatch.setenv("LOOKALIKE_MIRROR", f"{weights_server}/missing")
    lines.clear()
    assert not weights.prefetch(report=lines.append)
    assert all(line.startswith("error:") and "HTTP 404" in line for line in lines)


# ---------------------------------------------------------------------------------------------
# Hashes once per process
# ---------------------------------------------------------------------------------------------


def test_file_hash_is_remembered_by_path_size_and_mtime(tmp_path):
    path = tmp_path / "w.h5"
    path.write_bytes(b"a" * 1000)
    before = digests.HASH_COUNT["files"]
    first = weights.digests(path)
    assert weights.digests(path) == first and digests.HASH_COUNT["files"] == before + 1
    path.write_bytes(b"b" * 1000)
    os.utime(path, ns=(time.time_ns() + 10**9,) * 2)
    assert weights.digests(path) != first and digests.HASH_COUNT["files"] == before + 2


# ---------------------------------------------------------------------------------------------
# Keras models from the files
# ---------------------------------------------------------------------------------------------


def test_loaded_kernels_equal_the_files(imagenet):
    imagenet.place("vgg19", imagenet.models)
    model = pretrained.keras_application("vgg19", weights.resolve("vgg19"), include_top=False)
    written = imagenet.standins.values["vgg19"]
    for name in ("block1_conv1", "block5_conv4"):
        kernel, bias = model.get_layer(name).get_weights()
        np.testing.assert_array_equal(kernel, written[name][0])
        np.testing.assert_array_equal(bias, written[name][1])


def test_wrong_file_for_the_model_gives_a_message_not_a_traceback(imagenet, tmp_path):
    import keras

    model = keras.applications.VGG19(include_top=False, weights=None)
    wrong = weights.Resolved("vgg19", imagenet.standins.path("efficientnetb0"), "LOOKALIKE_VGG19_WEIGHTS", "0" * 64)
    text = message_of(lambda: pretrained.load_into(model, wrong))
    assert "does not fit VGG19" in text and "131 layers" in text


def test_keras_cache_folder_follows_keras_home(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    assert weights.keras_cache_dir() == tmp_path / "kh" / "models"
    monkeypatch.delenv("KERAS_HOME")
    assert weights.keras_cache_dir() == Path.home() / ".keras" / "models"


def test_partial_copy_left_by_hand_is_not_mistaken_for_the_file(imagenet):
    shutil.copyfile(imagenet.standins.path("vgg19"), imagenet.models / "vgg19.h5")  # another name: ignored
    assert "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5" in message_of(lambda: weights.resolve("vgg19"))
