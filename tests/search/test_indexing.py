"""Indexing collections at scale: streamed indexing with checkpoints, saved backend indexes kept in sync,
sampled style maps, the Ray engine and the command line with a backend."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import image_search
from lookalike.core import images, maps
from lookalike.core.cache import EmbeddingCache
from lookalike.core.vectors import normalize
from lookalike.search import ray_engine
from lookalike.search.folders import Collection, index_folder
from lookalike.search.ranking import rank, rank_with_index, sync_index
from tests.core.test_backends import HAS_MILVUS_LITE, clustered
from tests.embedders import GridEmbedder

HAS_RAY = importlib.util.find_spec("ray") is not None
TinyEmbedder = functools.partial(GridEmbedder, "tiny-8x8-test", side=8)  # picklable, for Ray actors
TINY_ID = "tiny-8x8-test"


# ---------------------------------------------------------------------------------------------
# Collections: incremental index next to the cache, streamed indexing, maps
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def small_folder(copy_paintings) -> Path:
    folder = copy_paintings(slice(10), "collection")
    (folder / "broken.jpg").write_bytes(b"not an image")
    return folder


def test_index_folder_streams_with_progress_and_resumes(small_folder, cache_root):
    cache = EmbeddingCache(TINY_ID, root=cache_root)
    seen: list[tuple[int, int]] = []
    collection = index_folder(small_folder, TinyEmbedder(), progress=lambda d, t: seen.append((d, t)),
                                           cache=cache, batch_size=3, checkpoint_every=3)
    assert len(collection) == 10 and collection.stats.new == 10 and collection.stats.skipped == 1
    assert seen[-1] == (11, 11), "the total is known up front, for the ETA"
    assert len(list(cache.folder.glob("shard-*.npz"))) >= 3, "checkpointed as it went"
    again = index_folder(small_folder, TinyEmbedder(), cache=EmbeddingCache(
        TINY_ID, root=cache_root))
    assert again.stats.reused == 10 and again.stats.new == 0
    np.testing.assert_array_equal(again.vectors, collection.vectors)


def test_sync_index_adds_and_removes_only_changes(tmp_path):
    vectors = clustered(300)
    keys = [f"key-{i}" for i in range(300)]
    paths = [tmp_path / f"{i}.jpg" for i in range(300)]

    def collection(rows: slice) -> Collection:
        return Collection(folder=tmp_path, model_id="m", paths=paths[rows], keys=keys[rows],
                                       vectors=normalize(vectors[rows]))

    for backend in ("exact", "faiss"):
        location = tmp_path / backend
        first = sync_index(collection(slice(0, 200)), backend, location)
        assert len(first) == 200
        grown = sync_index(collection(slice(50, 300)), backend, location)
        assert len(grown) == 250
        results = rank_with_index(collection(slice(50, 300)), grown, vectors[260], 3)
        assert results[0].path == paths[260] and results[0].rank == 1
        plain = rank(collection(slice(50, 300)), vectors[260], 3)
        assert [r.path for r in results] == [r.path for r in plain]


def test_style_map_samples_at_most_5000_and_is_cached(tmp_path, monkeypatch):
    labels = np.random.default_rng(0).choice(["a", "b", "c"], 120_000, p=[0.7, 0.2, 0.1])
    sample = maps.stratified_sample(labels.tolist(), len(labels))
    assert len(sample) <= maps.MAP_SAMPLE and len(set(sample.tolist())) == len(sample)
    shares = {label: np.mean(labels[sample] == label) for label in "abc"}
    assert shares["a"] == pytest.approx(0.7, abs=0.02) and shares["c"] == pytest.approx(0.1, abs=0.02)
    vectors = clustered(40)
    coords = maps.cached_map(vectors, "m", root=tmp_path)
    monkeypatch.setattr(maps, "project_2d", lambda *a, **k: pytest.fail("recomputed"))
    np.testing.assert_array_equal(maps.cached_map(vectors, "m", root=tmp_path), coords)


# ---------------------------------------------------------------------------------------------
# Ray engine
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not HAS_RAY, reason="ray is not installed")
def test_ray_engine_writes_the_same_vectors(small_folder, tmp_path):
    import ray

    plain = index_folder(
        small_folder, TinyEmbedder(), cache=EmbeddingCache(TINY_ID, root=tmp_path / "a")
    )
    cache = EmbeddingCache(TINY_ID, root=tmp_path / "b")
    try:
        ray_engine.connect(num_cpus=1, object_store_mb=128)
        collection = ray_engine.index_folder_ray(small_folder, TinyEmbedder, TINY_ID,
                                                 cache=cache, batch_size=4)
    finally:
        ray.shutdown()
    assert collection.stats.new == 10 and collection.stats.skipped == 1
    assert [p.name for p in collection.paths] == [p.name for p in plain.paths]
    np.testing.assert_allclose(collection.vectors, plain.vectors, atol=1e-6)
    fresh = EmbeddingCache(TINY_ID, root=tmp_path / "b")
    assert len(fresh) == 10 and list(fresh.folder.glob("shard-*.npz"))


@pytest.mark.parametrize("backend", [
    "exact", "faiss",
    pytest.param("milvus", marks=pytest.mark.skipif(not HAS_MILVUS_LITE, reason="milvus-lite is not installed")),
])
def test_cli_index_and_search_with_a_backend(backend, small_folder, monkeypatch, capsys):
    monkeypatch.setattr(image_search, "default_embedder", TinyEmbedder)
    assert image_search.main(["index", str(small_folder), "--backend", backend]) == 0
    assert f"{backend} index of 10 vectors" in capsys.readouterr().out
    query = small_folder / "s_cubism-03.jpg"
    assert image_search.main(["search", str(query), "--folder", str(small_folder), "--backend", backend, "-k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-3].split()[0] == "1" and lines[-3].endswith(str(query))
    assert float(lines[-3].split()[1]) == pytest.approx(1.0, abs=1e-4)


def test_index_folder_embeds_while_still_listing(tmp_path, monkeypatch, cache_root):
    folder = tmp_path / "many"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(60):
        Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(folder / f"img-{i:03d}.png")
    listed: list[int] = []
    real_list_images = images.list_images

    def counting(path):
        for item in real_list_images(path):
            listed.append(1)
            yield item

    monkeypatch.setattr(images, "list_images", counting)
    first_embed: list[int] = []

    class Recording(GridEmbedder):
        def embed(self, batch):
            first_embed.append(len(listed))
            return super().embed(batch)

    collection = index_folder(folder, Recording(TINY_ID, side=8), cache=EmbeddingCache(
        TINY_ID, root=cache_root), batch_size=4, workers=2)
    assert len(collection) == 60
    assert first_embed[0] <= 4 + 8 + 1, "the first batch is embedded after a bounded read-ahead, not the whole listing"
