"""Index backends against exact search, persistence round trips, incremental adds, and lazy engine imports."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from lookalike.core import backends as index_backends
from lookalike.core.vectors import normalize, top_k
from tests.paths import ROOT

HAS_MILVUS_LITE = all(importlib.util.find_spec(name) for name in ("pymilvus", "milvus_lite"))
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
    unit, q = normalize(vectors), normalize(queries)
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
    pytest.param("milvus", {"server": True}, id="milvus-server", marks=pytest.mark.servers),
]


def make(name: str, options: dict, tmp_path: Path, request: pytest.FixtureRequest) -> index_backends.VectorIndex:
    """A new index; ``{"server": True}`` is a fresh collection on the session's real Milvus server."""
    if name == "milvus" and options.get("server"):
        uri = request.getfixturevalue("milvus_server").uri
        options = {"uri": uri, "collection": f"test_{uuid.uuid4().hex[:12]}"}
    elif name == "milvus":
        options = {"uri": str(tmp_path / "milvus.db"), "collection": "test_vectors", **options}
    return index_backends.make_index(name, DIM, **options)


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
        rows, scores = top_k(data["vectors"], query, 10)
        found, found_scores = exact.search(query, 10)
        np.testing.assert_array_equal(found, data["ids"][rows])
        np.testing.assert_allclose(found_scores, scores, atol=1e-5)


@pytest.mark.parametrize(("name", "options"), BACKEND_CASES)
def test_backend_matches_exact(name, options, data, tmp_path, request):
    index = make(name, options, tmp_path, request)
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
def test_add_remove_save_load_round_trip(name, options, data, tmp_path, request):
    ids, vectors, query = data["ids"][:600], data["vectors"][:600], data["vectors"][7]
    index = make(name, options, tmp_path, request)
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
        "import sys, image_search, style_transfer, classifier, vae, utils; "
        "from lookalike.core import backends; backends.ExactIndex(4).add([1], [[1, 0, 0, 0]]); "
        "print(sorted({'faiss', 'pymilvus', 'ray', 'tensorflow'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=ROOT)
    assert result.stdout.strip() == "[]"
