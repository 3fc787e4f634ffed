"""Index backends against exact search, persistence round trips, incremental adds, and the Ray engine."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import image_search
import index_backends
import utils

HAS_MILVUS_LITE = all(importlib.util.find_spec(name) for name in ("pymilvus", "milvus_lite"))
HAS_RAY = importlib.util.find_spec("ray") is not None
DIM = 64


def clustered(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    """Vectors with cluster structure, like real embeddings (uniform noise has no meaningful neighbours)."""
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(42).standard_normal((50, dim)).astype(np.float32)
    return centers[rng.integers(50, size=n)] + 0.5 * rng.standard_normal((n, dim)).astype(np.float32)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, truth, strict=True)]))


def true_cosines(vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray, found: np.ndarray) -> np.ndarray:
    where = {int(i): row for row, i in enumerate(ids)}
    unit, q = index_backends.normalize(vectors), index_backends.normalize(queries)
    return np.array([[unit[where[int(i)]] @ q[r] for i in row] for r, row in enumerate(found)])


BACKEND_CASES = [
    pytest.param("exact", {}, id="exact"),
    pytest.param("faiss", {"kind": "hnsw"}, id="faiss-hnsw"),
    pytest.param("faiss", {"kind": "ivf", "encoding": "flat", "nprobe": 16}, id="faiss-ivf-flat"),
    pytest.param("faiss", {"kind": "ivf", "nprobe": 16}, id="faiss-ivf-sq8"),
    pytest.param(
        "milvus", {}, id="milvus-lite",
        marks=pytest.mark.skipif(not HAS_MILVUS_LITE, reason="pymilvus and milvus-lite are not installed"),
    ),
]


def make(name: str, options: dict, tmp_path: Path, dim: int = DIM) -> index_backends.VectorIndex:
    if name == "milvus":
        options = {"uri": str(tmp_path / "milvus.db"), "collection": "test_vectors", **options}
    return index_backends.make_index(name, dim, **options)


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    vectors = clustered(3000)
    ids = np.arange(3000, dtype=np.int64) * 11 + 5
    queries = clustered(40, seed=1)
    exact = index_backends.ExactIndex(DIM)
    exact.add(ids, vectors)
    truth_ids, truth_scores = exact.search(queries, 10)
    return {"vectors": vectors, "ids": ids, "queries": queries, "truth": truth_ids, "truth_scores": truth_scores}


def test_exact_agrees_with_numpy_top_k(data):
    exact = index_backends.ExactIndex(DIM)
    exact.add(data["ids"], data["vectors"])
    for query in data["queries"][:5]:
        rows, scores = image_search.top_k(data["vectors"], query, 10)
        found, found_scores = exact.search(query, 10)
        np.testing.assert_array_equal(found, data["ids"][rows])
        np.testing.assert_allclose(found_scores, scores, atol=1e-5)


@pytest.mark.parametrize(("name", "options"), BACKEND_CASES)
def test_backend_matches_exact(name, options, data, tmp_path):
    index = make(name, options, tmp_path)
    index.add(data["ids"], data["vectors"])
    assert len(index) == len(data["ids"])
    found, scores = index.search(data["queries"], 10)
    assert found.shape == scores.shape == (len(data["queries"]), 10)
    assert recall(found, data["truth"]) >= 0.95
    assert (np.diff(scores, axis=1) <= 1e-6).all(), "results are sorted best first"
    tolerance = 0.03 if options.get("kind") == "ivf" and options.get("encoding") != "flat" else 1e-4
    np.testing.assert_allclose(scores, true_cosines(data["vectors"], data["ids"], data["queries"], found),
                               atol=tolerance)
    one_ids, one_scores = index.search(data["queries"][0], 5)
    assert one_ids.shape == one_scores.shape == (5,)


@pytest.mark.parametrize(("name", "options"), BACKEND_CASES)
def test_add_remove_save_load_round_trip(name, options, data, tmp_path):
    ids, vectors, query = data["ids"][:600], data["vectors"][:600], data["vectors"][7]
    index = make(name, options, tmp_path)
    index.add(ids[:500], vectors[:500])
    index.add(ids[500:], vectors[500:])
    assert len(index) == 600
    assert index.search(query, 1)[0][0] == ids[7]

    assert index.remove(ids[5:10]) == 5
    assert index.remove(ids[5:10]) == 0, "removing twice removes nothing"
    assert len(index) == 595
    assert ids[7] not in index.search(query, 20)[0]
    assert sorted(index.ids().tolist()) == sorted(set(ids.tolist()) - set(ids[5:10].tolist()))

    index.add(ids[7:8], vectors[7:8])  # back again
    index.add(ids[0:1], vectors[1:2])  # replaced: id 0 now holds vector 1
    assert len(index) == 596
    folder = tmp_path / "saved"
    index.save(folder)
    if name == "milvus":
        index.close()
    loaded = index_backends.load_index(folder)
    assert type(loaded) is type(index) and len(loaded) == 596
    top, scores = loaded.search(query, 3)
    assert top[0] == ids[7] and scores[0] == pytest.approx(1.0, abs=0.02)
    assert set(loaded.search(vectors[1], 2)[0]) == {ids[0], ids[1]}
    assert json.loads((folder / index_backends.META_FILE).read_text())["backend"] == name
    for npz in folder.glob("*.npz"):
        with np.load(npz, allow_pickle=False) as saved:  # nothing pickled
            assert all(saved[key].dtype != object for key in saved.files)


def test_empty_and_small_indexes(tmp_path):
    for index in (index_backends.ExactIndex(8), index_backends.FaissIndex(8)):
        ids, scores = index.search(np.ones(8), 5)
        assert ids.shape == scores.shape == (0,) and len(index) == 0
        index.add([1, 2], np.eye(8)[:2])
        assert index.search(np.eye(8)[1], 5)[0].tolist() == [2, 1]
        index.save(tmp_path / index.name)
        assert len(index_backends.load_index(tmp_path / index.name)) == 2
    with pytest.raises(ValueError, match="dimension"):
        index_backends.ExactIndex(8).add([1], np.ones((1, 9)))
    with pytest.raises(ValueError, match="unique"):
        index_backends.ExactIndex(8).add([1, 1], np.ones((2, 8)))


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_adding_to_faiss_never_rebuilds(kind, data):
    import faiss

    index = index_backends.FaissIndex(DIM, kind=kind, nprobe=16)
    index.add(data["ids"][:2000], data["vectors"][:2000])
    inner = index.index
    if kind == "hnsw":
        levels = faiss.vector_to_array(inner.hnsw.levels).copy()
        neighbours_before = faiss.vector_to_array(inner.hnsw.neighbors).size
    else:
        centroids = inner.quantizer.reconstruct_n(0, inner.nlist).copy()
    for start in range(2000, 3000, 250):
        index.add(data["ids"][start : start + 250], data["vectors"][start : start + 250])
        assert index.index is inner, "the same faiss object keeps growing"
        assert inner.ntotal == start + 250
    if kind == "hnsw":  # existing nodes keep their levels; the graph only grew
        np.testing.assert_array_equal(faiss.vector_to_array(inner.hnsw.levels)[:2000], levels)
        assert faiss.vector_to_array(inner.hnsw.neighbors).size > neighbours_before
    else:  # no retraining: the coarse centroids are untouched
        np.testing.assert_array_equal(inner.quantizer.reconstruct_n(0, inner.nlist), centroids)
    found, _ = index.search(data["queries"], 10)
    assert recall(found, data["truth"]) >= 0.95


def test_faiss_kind_and_backend_choice():
    assert index_backends.choose_backend(32) == "exact"
    assert index_backends.choose_backend(100_000) == "exact"
    assert index_backends.choose_backend(1_000_000) == "faiss"
    assert index_backends.choose_backend(10**9) == "milvus"
    assert index_backends.choose_faiss_kind(100_000) == "hnsw"
    assert index_backends.choose_faiss_kind(1_000_000) == "ivf"
    assert index_backends.choose_faiss_kind(50_000_000) == "ivf"
    assert 64 <= index_backends.choose_nlist(10_000_000) <= 16384
    assert isinstance(index_backends.make_index("auto", 8, expected_size=10), index_backends.ExactIndex)
    big = index_backends.make_index("auto", 8, expected_size=5_000_000)
    assert isinstance(big, index_backends.FaissIndex)
    with pytest.raises(ValueError, match="unknown index backend"):
        index_backends.make_index("annoy", 8)


def test_optional_engines_are_not_imported():
    code = (
        "import sys, image_search, index_backends; "
        "index_backends.ExactIndex(4).add([1], [[1, 0, 0, 0]]); "
        "print(sorted({'faiss', 'pymilvus', 'ray', 'tensorflow'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------
# Collections: incremental index next to the cache, streamed indexing, maps
# ---------------------------------------------------------------------------------------------


class TinyEmbedder:
    """A fast stand-in for the style model: the image at 8x8, flattened (192 values)."""

    model_id = "tiny-8x8-test"

    def prepare(self, image: np.ndarray) -> np.ndarray:
        return utils.square_image(image, 8)

    def embed(self, images) -> np.ndarray:
        return np.stack([np.asarray(image, np.float32).reshape(-1) / 255.0 for image in images])


@pytest.fixture
def small_folder(tmp_path: Path, paintings: list[Path]) -> Path:
    folder = tmp_path / "collection"
    folder.mkdir()
    for path in paintings[:10]:
        shutil.copy(path, folder / path.name)
    (folder / "broken.jpg").write_bytes(b"not an image")
    return folder


def test_index_folder_streams_with_progress_and_resumes(small_folder, cache_root):
    cache = image_search.EmbeddingCache(TinyEmbedder.model_id, root=cache_root)
    seen: list[tuple[int, int]] = []
    collection = image_search.index_folder(small_folder, TinyEmbedder(), progress=lambda d, t: seen.append((d, t)),
                                           cache=cache, batch_size=3, checkpoint_every=3)
    assert len(collection) == 10 and collection.stats.new == 10 and collection.stats.skipped == 1
    assert seen[-1] == (11, 11), "the total is known up front, for the ETA"
    assert len(list(cache.folder.glob("shard-*.npz"))) >= 3, "checkpointed as it went"
    again = image_search.index_folder(small_folder, TinyEmbedder(), cache=image_search.EmbeddingCache(
        TinyEmbedder.model_id, root=cache_root))
    assert again.stats.reused == 10 and again.stats.new == 0
    np.testing.assert_array_equal(again.vectors, collection.vectors)


def test_sync_index_adds_and_removes_only_changes(tmp_path):
    vectors = clustered(300)
    keys = [f"key-{i}" for i in range(300)]
    paths = [tmp_path / f"{i}.jpg" for i in range(300)]

    def collection(rows: slice) -> image_search.Collection:
        return image_search.Collection(folder=tmp_path, model_id="m", paths=paths[rows], keys=keys[rows],
                                       vectors=image_search.normalize(vectors[rows]))

    for backend in ("exact", "faiss"):
        location = tmp_path / backend
        first = image_search.sync_index(collection(slice(0, 200)), backend, location)
        assert len(first) == 200
        grown = image_search.sync_index(collection(slice(50, 300)), backend, location)
        assert len(grown) == 250
        results = image_search.rank_with_index(collection(slice(50, 300)), grown, vectors[260], 3)
        assert results[0].path == paths[260] and results[0].rank == 1
        plain = image_search.rank(collection(slice(50, 300)), vectors[260], 3)
        assert [r.path for r in results] == [r.path for r in plain]


def test_style_map_samples_at_most_5000_and_is_cached(tmp_path, monkeypatch):
    labels = np.random.default_rng(0).choice(["a", "b", "c"], 120_000, p=[0.7, 0.2, 0.1])
    sample = image_search.stratified_sample(labels.tolist(), len(labels))
    assert len(sample) <= image_search.MAP_SAMPLE and len(set(sample.tolist())) == len(sample)
    shares = {label: np.mean(labels[sample] == label) for label in "abc"}
    assert shares["a"] == pytest.approx(0.7, abs=0.02) and shares["c"] == pytest.approx(0.1, abs=0.02)
    vectors = clustered(40)
    coords = image_search.cached_map(vectors, "m", root=tmp_path)
    monkeypatch.setattr(image_search, "project_2d", lambda *a, **k: pytest.fail("recomputed"))
    np.testing.assert_array_equal(image_search.cached_map(vectors, "m", root=tmp_path), coords)


# ---------------------------------------------------------------------------------------------
# Ray engine
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not HAS_RAY, reason="ray is not installed")
def test_ray_engine_writes_the_same_vectors(small_folder, tmp_path):
    import ray

    import ray_engine

    plain = image_search.index_folder(
        small_folder, TinyEmbedder(), cache=image_search.EmbeddingCache(TinyEmbedder.model_id, root=tmp_path / "a")
    )
    cache = image_search.EmbeddingCache(TinyEmbedder.model_id, root=tmp_path / "b")
    try:
        ray_engine.connect(num_cpus=1, object_store_mb=128)
        collection = ray_engine.index_folder_ray(small_folder, TinyEmbedder, TinyEmbedder.model_id,
                                                 cache=cache, batch_size=4)
    finally:
        ray.shutdown()
    assert collection.stats.new == 10 and collection.stats.skipped == 1
    assert [p.name for p in collection.paths] == [p.name for p in plain.paths]
    np.testing.assert_allclose(collection.vectors, plain.vectors, atol=1e-6)
    fresh = image_search.EmbeddingCache(TinyEmbedder.model_id, root=tmp_path / "b")
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
    from PIL import Image

    folder = tmp_path / "many"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(60):
        Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(folder / f"img-{i:03d}.png")
    listed: list[int] = []
    real_list_images = utils.list_images

    def counting(path):
        for item in real_list_images(path):
            listed.append(1)
            yield item

    monkeypatch.setattr(utils, "list_images", counting)
    first_embed: list[int] = []

    class Recording(TinyEmbedder):
        def embed(self, images):
            first_embed.append(len(listed))
            return super().embed(images)

    collection = image_search.index_folder(folder, Recording(), cache=image_search.EmbeddingCache(
        TinyEmbedder.model_id, root=cache_root), batch_size=4, workers=2)
    assert len(collection) == 60
    assert first_embed[0] <= 4 + 8 + 1, "the first batch is embedded after a bounded read-ahead, not the whole listing"
