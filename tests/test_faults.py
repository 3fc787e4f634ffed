"""Faults: interrupted indexing, damaged cache files, a collection that disappears, many sessions in one process."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import streamlit as st

import image_search
import utils
from lookalike.ui import diagnostics
from tests.apptest import button, result_captions, style_app, upload_and_search
from tests.embedders import GridEmbedder


@pytest.fixture
def collection_folder(copy_paintings) -> Path:
    """A private copy of the 32 paintings (so file hashes and deletions stay local to the test)."""
    return copy_paintings()


def shard_files(cache: image_search.EmbeddingCache) -> list[Path]:
    return sorted(cache.folder.glob("shard-*.npz"))


def leftovers(folder: Path) -> list[Path]:
    """Temporary files from half-finished atomic writes."""
    return [p for p in folder.rglob(".*") if p.is_file()] if folder.exists() else []


# ---------------------------------------------------------------------------------------------
# Interrupted indexing
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt], ids=["exception", "ctrl-c"])
def test_interrupted_index_keeps_finished_work(collection_folder: Path, cache_root: Path, error):
    cache = image_search.EmbeddingCache("test-grid-v1", root=cache_root)
    failing = GridEmbedder(fail_after=20, error=error)
    with pytest.raises(error):
        image_search.index_folder(collection_folder, failing, cache=cache, batch_size=4, checkpoint_every=8)
    assert failing.embedded == 20
    # Two checkpoints of 8 were written; the 4 images after the last checkpoint are lost, nothing else.
    assert not leftovers(cache_root)
    reopened = image_search.EmbeddingCache("test-grid-v1", root=cache_root)
    assert len(reopened) == 16 and reopened.rejected_shards == []
    for shard in shard_files(reopened):
        with np.load(shard, allow_pickle=False) as data:
            assert data["vectors"].shape == (8, 48) and np.isfinite(data["vectors"]).all()

    # The next run embeds only the 16 images that were not finished, and gives the full, correct index.
    resumed_embedder = GridEmbedder()
    resumed = image_search.index_folder(collection_folder, resumed_embedder, cache=reopened, batch_size=4,
                                        checkpoint_every=8)
    assert resumed_embedder.embedded == 16
    assert (resumed.stats.new, resumed.stats.reused, len(resumed)) == (16, 16, 32)
    clean = image_search.index_folder(collection_folder, GridEmbedder(), batch_size=4,
                                      cache=image_search.EmbeddingCache("test-grid-v1", root=cache_root / "clean"))
    assert resumed.paths == clean.paths
    np.testing.assert_allclose(resumed.vectors, clean.vectors, rtol=1e-6)


def test_failed_shard_write_leaves_no_partial_file(cache_root: Path, monkeypatch):
    cache = image_search.EmbeddingCache("test-grid-v1", root=cache_root)
    cache.store(["a", "b"], np.ones((2, 3), np.float32))

    def crash_midway(path, **arrays):
        Path(path).write_bytes(b"PK\x03\x04 half a zip file")
        raise OSError("No space left on device")

    monkeypatch.setattr(np, "savez", crash_midway)
    with pytest.raises(OSError, match="No space left"):
        cache.store(["c"], np.ones((1, 3), np.float32))
    monkeypatch.undo()
    assert len(shard_files(cache)) == 1 and not leftovers(cache_root)
    reopened = image_search.EmbeddingCache("test-grid-v1", root=cache_root)
    assert sorted(reopened.lookup(["a", "b", "c"])) == ["a", "b"] and reopened.rejected_shards == []


# ---------------------------------------------------------------------------------------------
# Damaged cache files
# ---------------------------------------------------------------------------------------------


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x00" * 100)


def _wrong_model(path: Path) -> None:
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    np.savez(path, **{**arrays, "model_id": np.asarray("another-model")})


def _not_finite(path: Path) -> None:
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    arrays["vectors"] = arrays["vectors"].copy()
    arrays["vectors"][3, 5] = np.nan
    np.savez(path, **arrays)


def _length_mismatch(path: Path) -> None:
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    np.savez(path, **{**arrays, "keys": arrays["keys"][:-1]})


@pytest.mark.parametrize("damage", [_truncate, _garbage, _wrong_model, _not_finite, _length_mismatch],
                         ids=["truncated", "garbage", "wrong-model", "nan", "length-mismatch"])
def test_damaged_shard_is_detected_and_rebuilt(collection_folder: Path, cache_root: Path, damage):
    cache = image_search.EmbeddingCache("test-grid-v1", root=cache_root)
    first = image_search.index_folder(collection_folder, GridEmbedder(), cache=cache, batch_size=8,
                                      checkpoint_every=8)
    shards = shard_files(cache)
    assert len(shards) == 4  # 32 images, a checkpoint every 8
    damage(shards[1])

    embedder = GridEmbedder()
    reopened = image_search.EmbeddingCache("test-grid-v1", root=cache_root)
    rebuilt = image_search.index_folder(collection_folder, embedder, cache=reopened, batch_size=8,
                                        checkpoint_every=8)
    assert reopened.rejected_shards == [shards[1]] and not shards[1].exists()
    assert embedder.embedded == 8  # only the damaged shard's images are embedded again
    assert (rebuilt.stats.new, rebuilt.stats.reused) == (8, 24)
    assert rebuilt.paths == first.paths
    np.testing.assert_allclose(rebuilt.vectors, first.vectors, rtol=1e-6)

    # And the rebuilt cache is whole: a third run embeds nothing and rejects nothing.
    third = GridEmbedder()
    again = image_search.EmbeddingCache("test-grid-v1", root=cache_root)
    image_search.index_folder(collection_folder, third, cache=again, checkpoint_every=8)
    assert third.embedded == 0 and again.rejected_shards == []


def test_damaged_file_hash_memo_is_rebuilt(collection_folder: Path, cache_root: Path):
    cache = image_search.EmbeddingCache("test-grid-v1", root=cache_root)
    first = image_search.index_folder(collection_folder, GridEmbedder(), cache=cache)
    memo = image_search.FileHashes(collection_folder.resolve()).path
    assert memo.is_file()
    _truncate(memo)
    embedder = GridEmbedder()
    second = image_search.index_folder(collection_folder, embedder, cache=cache)
    assert embedder.embedded == 0 and second.keys == first.keys  # hashes recomputed, vectors reused
    assert len(image_search.FileHashes(collection_folder.resolve()).entries) == 32


def test_damaged_map_cache_is_recomputed(tmp_path: Path):
    vectors = np.random.default_rng(0).standard_normal((12, 16)).astype(np.float32)
    coords = image_search.cached_map(vectors, "test-grid-v1", root=tmp_path)
    (path,) = tmp_path.glob("*.npz")
    _truncate(path)
    again = image_search.cached_map(vectors, "test-grid-v1", root=tmp_path)
    np.testing.assert_allclose(again, coords, rtol=1e-5, atol=1e-5)
    with np.load(path, allow_pickle=False) as data:  # and the file on disk is whole again
        assert data["coords"].shape == (12, 2)


# ---------------------------------------------------------------------------------------------
# The collection disappears while the page is open (AppTest)
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def four_paintings(copy_paintings) -> Path:
    return copy_paintings([4, 5, 20, 21], "four")


@pytest.mark.slow  # three page runs and a re-scan
def test_deleted_collection_folder_gives_a_message(four_paintings: Path, paintings: list[Path]):
    at = style_app(four_paintings)
    painting = next(iter(sorted(four_paintings.glob("*.jpg"))))
    upload_and_search(at, painting.name, painting.read_bytes(), "image/jpeg")
    assert len(result_captions(at)) == 4 and not at.exception

    shutil.rmtree(four_paintings)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "does not exist" in errors[0] and str(four_paintings) in errors[0], errors
    assert result_captions(at) == []
    # The page stays usable: once the folder is back (with one painting), a re-scan indexes it.
    four_paintings.mkdir()
    shutil.copy(next(p for p in paintings if p.name == painting.name), four_paintings / painting.name)
    at.run()
    assert not at.exception and len(at.error) == 0
    button(at, "Re-scan folder").click().run()
    assert not at.exception and len(at.error) == 0
    assert any(c.value.startswith("1 images indexed") for c in at.sidebar.caption)


@pytest.mark.slow
def test_images_deleted_under_open_results_are_reported(four_paintings: Path):
    at = style_app(four_paintings)
    files = sorted(four_paintings.glob("*.jpg"))
    upload_and_search(at, files[0].name, files[0].read_bytes(), "image/jpeg")
    for path in files[1:]:
        path.unlink()
    at.run()  # same index in memory, three of its files gone
    assert not at.exception, [e.value for e in at.exception]
    gone = [w.value for w in at.warning if "no longer readable" in w.value]
    assert sorted(gone) == sorted(f"{p.name} is no longer readable." for p in files[1:])
    button(at, "Re-scan folder").click().run()
    assert not at.exception
    summary = [c.value for c in at.sidebar.caption if "images indexed" in c.value]
    assert summary and summary[0].startswith("1 images indexed") and "3 removed" in summary[0], summary


# ---------------------------------------------------------------------------------------------
# Many sessions, one process
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_style_model_loads_once_for_many_sessions(four_paintings: Path):
    """Four sessions of the page share one VGG19 (AppTest sessions are not thread-safe, so they take turns)."""
    st.cache_resource.clear()
    before = utils.LOAD_COUNTS.get("vgg19", 0)
    apps = [style_app(four_paintings) for _ in range(4)]
    painting = sorted(four_paintings.glob("*.jpg"))[2]
    for at in apps:
        upload_and_search(at, painting.name, painting.read_bytes(), "image/jpeg")
        assert not at.exception and result_captions(at)[0].startswith("#1 · similarity 1.00")
    assert utils.LOAD_COUNTS["vgg19"] - before == 1


def test_diagnostics_readout_is_opt_in_and_counts_loads(monkeypatch):
    from streamlit.testing.v1 import AppTest

    script = "from lookalike.ui import diagnostics\ndiagnostics.render_diagnostics()\n"
    monkeypatch.delenv(diagnostics.ENV, raising=False)
    at = AppTest.from_string(script).run()
    assert not at.exception and len(at.sidebar.caption) == 0
    monkeypatch.setenv(diagnostics.ENV, "1")
    monkeypatch.setitem(utils.LOAD_COUNTS, "vgg19", 1)
    at = AppTest.from_string(script).run()
    (line,) = [c.value for c in at.sidebar.caption]
    assert f"pid {os.getpid()}" in line and "vgg19=1" in line, line
