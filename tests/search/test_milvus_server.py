"""The ``milvus`` backend against a real Milvus standalone server (``milvus_server`` in conftest.py): ranking
against exact search with the server's HNSW index, the command line through the server's URI (index, add,
remove, search from a fresh process), collections of different models, and the ways it fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

import image_search
from lookalike.core.backends import BackendError, ExactIndex, MilvusIndex
from lookalike.core.cache import EmbeddingCache
from lookalike.core.vectors import normalize
from tests.core.test_backends import recall
from tests.embedders import GridEmbedder
from tests.paths import ROOT
from tests.servers import free_port

pytestmark = pytest.mark.servers

STYLE_DIM = 1024


def synthetic(n: int, seed: int = 0, dim: int = STYLE_DIM, clusters: int = 2000, rank: int = 64) -> np.ndarray:
    """Unit vectors in clusters on a low-rank subspace plus noise, like style embeddings (as in bench/scale.py)."""
    shape = np.random.default_rng(7)
    basis = shape.standard_normal((rank, dim), dtype=np.float32) / np.sqrt(rank)
    centers = shape.standard_normal((clusters, rank), dtype=np.float32)
    rng = np.random.default_rng(seed)
    latent = centers[rng.integers(clusters, size=n)] + 0.6 * rng.standard_normal((n, rank), dtype=np.float32)
    return normalize(latent @ basis + 0.05 * rng.standard_normal((n, dim), dtype=np.float32))


def run_cli(*args: str, cache: Path, model: str = "grid-server-test", timeout: float = 240) -> subprocess.CompletedProcess:
    """``python image_search.py ARGS`` in a fresh process, embedding with the cheap grid embedder."""
    code = (
        "import sys, image_search; from tests.embedders import GridEmbedder; "
        "image_search.default_embedder = lambda _choice=None: GridEmbedder(sys.argv[1]); "
        "sys.exit(image_search.main(sys.argv[2:]))"
    )
    env = {**os.environ, "LOOKALIKE_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code, model, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def ranked(output: str) -> list[str]:
    """The file names of a ``search`` listing (lines of rank, score, path), best first."""
    rows = [line.split() for line in output.splitlines()]
    return [Path(row[2]).name for row in rows if len(row) == 3 and row[0].isdigit()]


def assert_one_line_error(result: subprocess.CompletedProcess, *phrases: str) -> str:
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    for phrase in phrases:
        assert phrase in errors[0], errors[0]
    return errors[0]


# ---------------------------------------------------------------------------------------------
# Ranking through the server's index
# ---------------------------------------------------------------------------------------------


def test_server_hnsw_index_ranks_like_exact_on_20000_vectors(milvus_server):
    vectors, queries = synthetic(20_000), synthetic(100, seed=1)
    ids = np.arange(len(vectors), dtype=np.int64) * 7 + 3
    exact = ExactIndex(STYLE_DIM)
    exact.add(ids, vectors)
    truth, _ = exact.search(queries, 10)

    index = MilvusIndex(STYLE_DIM, uri=milvus_server.uri, collection=f"synthetic_{uuid.uuid4().hex[:8]}",
                        model_id="synthetic")
    index.add(ids, vectors)
    info = index.wait_until_indexed(timeout_s=600)
    assert info["index_type"] == "HNSW" and int(info["indexed_rows"]) == len(vectors)
    assert len(index) == len(vectors)
    found, scores = index.search(queries, 10)
    assert found.shape == (len(queries), 10)
    assert recall(found, truth) >= 0.95, "top-10 overlap with exact search"
    where = {int(i): row for row, i in enumerate(ids)}
    true_scores = np.array([[vectors[where[int(i)]] @ q for i in row] for row, q in zip(found, queries, strict=True)])
    np.testing.assert_allclose(scores, true_scores, atol=1e-4)
    index.close()


# ---------------------------------------------------------------------------------------------
# The command line through the server's URI
# ---------------------------------------------------------------------------------------------


def test_cli_indexes_adds_removes_and_searches_through_the_server(milvus_server, copy_paintings, paintings, tmp_path):
    folder = copy_paintings(slice(10), "through-server")
    cache, uri = tmp_path / "cache", milvus_server.uri
    query = str(folder / paintings[3].name)

    first = run_cli("index", str(folder), "--backend", "milvus", "--milvus-uri", uri, cache=cache)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "milvus index of 10 vectors" in first.stdout

    # A fresh process (a restarted client) finds the collection again from the saved settings, without the URI.
    milvus = run_cli("search", query, "--folder", str(folder), "--backend", "milvus", "-k", "5", cache=cache)
    exact = run_cli("search", query, "--folder", str(folder), "--backend", "exact", "-k", "5", cache=cache)
    assert milvus.returncode == exact.returncode == 0, milvus.stderr[-2000:] + exact.stderr[-2000:]
    assert ranked(milvus.stdout) == ranked(exact.stdout) and len(ranked(exact.stdout)) == 5
    assert ranked(milvus.stdout)[0] == paintings[3].name

    for extra in paintings[10:12]:
        shutil.copy(extra, folder / extra.name)
    for gone in sorted(folder.glob("*.jpg"))[:3]:
        gone.unlink()
    again = run_cli("index", str(folder), "--backend", "milvus", "--milvus-uri", uri, cache=cache)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "milvus index of 9 vectors" in again.stdout and "2 new, 7 reused, 3 removed" in again.stdout

    new_query = str(folder / paintings[11].name)
    milvus = run_cli("search", new_query, "--folder", str(folder), "--backend", "milvus", "-k", "9", cache=cache)
    exact = run_cli("search", new_query, "--folder", str(folder), "--backend", "exact", "-k", "9", cache=cache)
    assert ranked(milvus.stdout) == ranked(exact.stdout)
    assert set(ranked(milvus.stdout)) == {path.name for path in folder.glob("*.jpg")}, "removed files are gone"


# ---------------------------------------------------------------------------------------------
# Collections of different models
# ---------------------------------------------------------------------------------------------


def test_a_collection_of_another_model_is_refused_never_mixed(milvus_server, copy_paintings, tmp_path):
    name = f"shared_{uuid.uuid4().hex[:8]}"
    first = MilvusIndex(48, uri=milvus_server.uri, collection=name, model_id="model-a")
    first.add([1, 2], np.eye(48)[:2])
    with pytest.raises(BackendError, match="holds vectors of model 'model-a', not of 'model-b'"):
        MilvusIndex(48, uri=milvus_server.uri, collection=name, model_id="model-b")
    with pytest.raises(BackendError, match="dimension 48, not 64"):
        MilvusIndex(64, uri=milvus_server.uri, collection=name, model_id="model-a")
    assert len(first) == 2, "the refused clients wrote nothing"

    folder, cache = copy_paintings(slice(4), "two-models"), tmp_path / "cache"
    for model in ("grid-model-a", "grid-model-b"):  # by default each model gets its own collection
        result = run_cli("index", str(folder), "--backend", "milvus", "--milvus-uri", milvus_server.uri,
                         cache=cache, model=model)
        assert result.returncode == 0 and "milvus index of 4 vectors" in result.stdout, result.stderr[-2000:]
    forced = run_cli("index", str(folder), "--backend", "milvus", "--milvus-uri", milvus_server.uri,
                     "--milvus-collection", name, cache=cache, model="grid-model-c")
    assert_one_line_error(forced, f"collection {name!r}", "model 'model-a'", "never mixed")
    assert len(first) == 2
    first.close()


# ---------------------------------------------------------------------------------------------
# Failures: one line, no traceback, nothing lost locally
# ---------------------------------------------------------------------------------------------


def test_a_server_that_is_down_is_reported_before_embedding(copy_paintings, tmp_path):
    folder, cache = copy_paintings(slice(3), "server-down"), tmp_path / "cache"
    uri = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = run_cli("index", str(folder), "--backend", "milvus", "--milvus-uri", uri, cache=cache)
    assert_one_line_error(result, f"cannot reach Milvus at {uri}", "does not answer")
    assert time.monotonic() - started < 60
    assert not list(cache.glob("embeddings/*/shard-*.npz")), "it stopped before embedding anything"


@pytest.mark.parametrize(("uri", "phrase"), [
    ("127.0.0.1:19530", "is not a Milvus URI"),  # no scheme: not silently a local file of that name
    ("ftp://127.0.0.1:19530", "is not a Milvus URI"),
    ("http://", "is not a Milvus URI"),
    ("metrics", "cannot reach Milvus"),  # the server's HTTP health port, which does not speak gRPC
])
def test_a_wrong_uri_is_refused_in_one_line(uri, phrase, milvus_server, copy_paintings, tmp_path):
    if uri == "metrics":
        uri = f"http://127.0.0.1:{milvus_server.metrics_port}"
    folder, cache = copy_paintings(slice(2), "wrong-uri"), tmp_path / "cache"
    result = run_cli("index", str(folder), "--backend", "milvus", "--milvus-uri", uri, cache=cache)
    assert_one_line_error(result, phrase)
    assert not (ROOT / uri).exists() and not (ROOT / "127.0.0.1:19530").exists()


class KillsTheServer(GridEmbedder):
    """Embeds like the grid embedder, and kills the Milvus server (by its pid) once it has embedded ``after``."""

    def __init__(self, model_id: str, server, after: int):
        super().__init__(model_id)
        self.server, self.after = server, after

    def embed(self, images):
        vectors = super().embed(images)
        if self.embedded >= self.after and self.server.running:
            self.server.kill()
        return vectors


def test_the_server_stopping_mid_indexing_loses_nothing_and_a_rerun_completes(
    milvus_server, copy_paintings, paintings, monkeypatch, capsys
):
    model = f"grid-midway-{uuid.uuid4().hex[:8]}"
    folder = copy_paintings(slice(6), "midway")
    uri = milvus_server.uri
    monkeypatch.setattr(image_search, "default_embedder", lambda _choice=None: GridEmbedder(model))
    assert image_search.main(["index", str(folder), "--backend", "milvus", "--milvus-uri", uri]) == 0
    assert "milvus index of 6 vectors" in capsys.readouterr().out

    for extra in paintings[6:14]:
        shutil.copy(extra, folder / extra.name)
    monkeypatch.setattr(image_search, "default_embedder", lambda _choice=None: KillsTheServer(model, milvus_server, after=4))
    assert image_search.main(["index", str(folder), "--backend", "milvus", "--milvus-uri", uri]) == 1
    captured = capsys.readouterr()
    assert not milvus_server.running
    assert "Traceback" not in captured.err
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"Milvus at {uri}" in errors[0] and "does not answer" in errors[0]
    assert len(EmbeddingCache(model)) == 14, "every vector embedded before and after the crash is cached"

    milvus_server.restart()
    monkeypatch.setattr(image_search, "default_embedder", lambda _choice=None: GridEmbedder(model, fail_after=0))
    assert image_search.main(["index", str(folder), "--backend", "milvus", "--milvus-uri", uri]) == 0
    out = capsys.readouterr().out
    assert "milvus index of 14 vectors" in out and "0 new, 14 reused" in out, "nothing embedded twice"
    query = folder / paintings[12].name
    monkeypatch.setattr(image_search, "default_embedder", lambda _choice=None: GridEmbedder(model))  # embeds the query
    for backend in ("milvus", "exact"):
        assert image_search.main(["search", str(query), "--folder", str(folder), "--backend", backend, "-k", "14"]) == 0
    milvus, exact = (ranked(chunk) for chunk in capsys.readouterr().out.split("exact index of"))
    assert milvus == exact[-14:] and len(milvus) == 14 and milvus[0] == query.name
