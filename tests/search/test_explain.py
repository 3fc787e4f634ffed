"""Search that explains itself (``lookalike.search.explain``) on every index backend, queries of several
references and the trail of queries (``lookalike.search.query``), and ``image_search.py search --explain``."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import image_search
from lookalike.core import backends, counters
from lookalike.core.images import load_image
from lookalike.core.segments import emphasise
from lookalike.core.vectors import normalize, retrieval_metrics, top_k
from lookalike.search.explain import explained_search, explanation_lines
from lookalike.search.folders import Collection, index_folder
from lookalike.search.labels import labels_from_names
from lookalike.search.query import Query, Reference, Trail, combined_vector
from lookalike.search.ranking import rank, sync_index
from lookalike.style.segments import style_segments
from lookalike.style.vectors import StyleConfig
from tests.core.test_backends import HAS_MILVUS_LITE
from tests.core.test_segments import style_like

SEGMENTS = style_segments(StyleConfig())  # VGG19's five layers: 128, 192, 224, 240, 240 values
DIMS = tuple(s.stop - s.start for s in SEGMENTS)
EMPHASES = (-1.0, -0.5, 0.0, 0.5, 1.0)


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> Collection:
    """2,000 vectors shaped as stored style vectors (the paths need not exist for ranking)."""
    folder = tmp_path_factory.mktemp("synthetic")
    vectors = style_like(2000, DIMS, seed=11)
    paths = [folder / f"item-{i:04d}.jpg" for i in range(len(vectors))]
    return Collection(folder, "synthetic-style", paths, [f"key-{i}" for i in range(len(vectors))], vectors)


def brute_force(collection: Collection, query: np.ndarray, emphasis: float, k: int) -> list[int]:
    return top_k(collection.vectors, emphasise(query, SEGMENTS, emphasis), k, normalized=True)[0].tolist()


@pytest.mark.parametrize("emphasis", EMPHASES)
def test_explained_search_ranks_by_the_emphasised_query_and_explains_each_score(collection, emphasis):
    query = style_like(1, DIMS, seed=12)[0]
    found = explained_search(collection, query, SEGMENTS, 10, emphasis)
    assert [r.row for r in found.results] == brute_force(collection, query, emphasis, 10)
    assert [r.path for r in found.results] == [collection.paths[r.row] for r in found.results]
    np.testing.assert_allclose(found.why.scores, [r.score for r in found.results], atol=1e-5)
    assert found.why.cosines.shape == (10, 5)
    sims = found.why.similarities
    assert (np.diff(sims) <= 1e-6).all()  # the shown similarity falls with the rank


def test_emphasis_zero_gives_exactly_the_unweighted_ranking(collection):
    query = style_like(1, DIMS, seed=13)[0]
    index = backends.positional_index(collection.vectors)
    for before, after in [
        (rank(collection, query, 50), explained_search(collection, query, SEGMENTS, 50, 0.0).results),
        (rank(collection, query, 50, index), explained_search(collection, query, SEGMENTS, 50, 0.0, index).results),
    ]:
        assert [(r.path, r.score, r.rank) for r in before] == [(r.path, r.score, r.rank) for r in after]


@pytest.mark.parametrize("backend", [
    "exact", "faiss",
    pytest.param("milvus", marks=pytest.mark.skipif(not HAS_MILVUS_LITE, reason="milvus-lite is not installed")),
])
def test_every_backend_re_ranks_with_the_emphasis_and_stays_as_it_was(collection, backend, tmp_path):
    """The exact backend gives the brute-force results at every emphasis. faiss (HNSW) and Milvus Lite
    (AUTOINDEX) are approximate: on these unclustered vectors their recall@10 is 0.9 to 1.0 at emphasis 0 and
    ±0.5, and lower (about 0.8) when the whole score rests on one layer."""
    stored = collection.vectors.copy()
    index = sync_index(collection, backend, tmp_path / backend)
    ids_before, size_before = np.sort(index.ids()), len(index)
    for emphasis in EMPHASES:
        recall = []
        for row in range(0, len(collection), 200):
            query = collection.vectors[row]
            found = explained_search(collection, query, SEGMENTS, 10, emphasis, saved_index=index)
            rows = [r.row for r in found.results]
            recall.append(len(set(rows) & set(brute_force(collection, query, emphasis, 10))) / 10)
            np.testing.assert_allclose(found.why.scores, [r.score for r in found.results], atol=1e-3)
        assert np.mean(recall) >= (1.0 if backend == "exact" else 0.7), (emphasis, recall)
    assert (collection.vectors == stored).all()
    assert len(index) == size_before and (np.sort(index.ids()) == ids_before).all()


def test_a_query_of_one_reference_is_that_reference(collection):
    reference = Reference.item(collection, 42, "item 42")
    query = Query((reference,))
    assert query.vector() is reference.vector or (query.vector() == reference.vector).all()
    np.testing.assert_allclose(combined_vector(reference.vector[None]), collection.vectors[42])
    a = explained_search(collection, query.vector(), SEGMENTS, 20)
    b = explained_search(collection, collection.vectors[42], SEGMENTS, 20)
    assert [r.row for r in a.results] == [r.row for r in b.results]
    assert [r.score for r in a.results] == [r.score for r in b.results]


def test_several_references_search_for_their_mean(collection):
    first, second = (Reference.item(collection, row, f"item {row}") for row in (3, 900))
    query = Query((first,)).adding(second)
    assert query.keys == (first.key, second.key) and query.label == "item 3 + item 900"
    assert query.adding(first) is query  # the same image twice counts once
    np.testing.assert_allclose(query.vector(), normalize(collection.vectors[3] + collection.vectors[900]), atol=1e-6)
    found = explained_search(collection, query.vector(), SEGMENTS, 2)
    assert {r.row for r in found.results} == {3, 900}  # equally close to their mean, closer than anything else
    assert query.without(second.key).same_as(Query((first,)))


def test_an_upload_reference_is_known_by_its_bytes_not_its_name():
    vector = np.ones(4, np.float32)
    a = Reference.upload(b"image bytes", "your image", vector, np.zeros((2, 2, 3), np.uint8))
    b = Reference.upload(b"image bytes", "another name", vector, np.zeros((2, 2, 3), np.uint8))
    c = Reference.upload(b"other bytes", "your image", vector, np.zeros((2, 2, 3), np.uint8))
    assert a.key == b.key != c.key and a.path is None


def test_trail_steps_back_and_jumps_and_keeps_the_last_few(collection):
    trail = Trail(("folder", "model"), limit=3)
    queries = [Query((Reference.item(collection, row, str(row)),)) for row in range(5)]
    assert trail.current is None
    trail.go(queries[0])
    trail.go(queries[0])  # the same query again adds no step
    assert len(trail.steps) == 1
    version = trail.version
    for query in queries[1:]:
        trail.go(query)
    assert trail.version > version
    assert [q.label for q in trail.steps] == ["2", "3", "4"]  # the oldest dropped
    trail.back()
    assert trail.current.label == "3"
    trail.jump(0)
    assert [q.label for q in trail.steps] == ["2"]
    trail.back()  # nothing before the first step: it stays
    assert trail.current.label == "2"
    trail.hide()  # a failed search: no results, the steps stay
    assert trail.current is None and len(trail.steps) == 1
    trail.jump(0)
    assert trail.current.label == "2"
    with pytest.raises(ValueError):
        trail.go(Query(()))
    with pytest.raises(IndexError):
        trail.jump(5)


def test_explanation_lines_name_each_layer_fine_to_coarse(collection):
    found = explained_search(collection, collection.vectors[5], SEGMENTS, 3, 1.0)
    lines = explanation_lines(found.why, 0, width=10)
    assert [line.split("  ")[0].strip() for line in lines] == [s.label for s in SEGMENTS]
    assert lines[-1].endswith("weight 100%") and all(re.search(r"weight +0%$", line) for line in lines[:-1])
    assert "##########" in lines[0]  # the item itself: every layer's cosine is 1


# ---------------------------------------------------------------------------------------------
# The command line, with the style model (random VGG19)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def private_cache(tmp_path_factory):
    """This module's own embedding cache: what it embeds never shows up as "reused" in another test."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOOKALIKE_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def eight(copy_paintings) -> Path:
    return copy_paintings(slice(None, None, 4), "eight-for-explain")


def test_cli_search_with_several_images_explains_and_emphasises(style_model, eight, monkeypatch, capsys):
    monkeypatch.setattr(image_search, "default_embedder", lambda model=None: style_model)
    first, second = sorted(eight.glob("*.jpg"))[:2]
    calls = sum(counters.INFERENCE_CALLS.values())
    argv = ["search", str(first), str(second), "--folder", str(eight), "-k", "3", "--explain", "--emphasis", "0.5"]
    assert image_search.main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "query: the mean style of 2 images"
    ranked = [line for line in out if re.match(r"^\s+\d+\s+\d\.\d{4}\s+/", line)]
    assert len(ranked) == 3
    assert {Path(line.split()[-1]).name for line in ranked[:2]} == {first.name, second.name}
    labels = [s.label for s in SEGMENTS]
    explained = [line.strip() for line in out if line.strip().startswith(tuple(labels))]
    assert len(explained) == 3 * 5 and [line.split("  ")[0] for line in explained[:5]] == labels
    # The same results the library gives, from the stored vectors of the two images and one model run for both.
    collection = index_folder(eight, style_model)
    query = normalize(collection.vectors[[collection.rows[first], collection.rows[second]]].mean(axis=0))
    expected = explained_search(collection, query, SEGMENTS, 3, 0.5)
    assert [line.split()[-1] for line in ranked] == [str(r.path) for r in expected.results]
    assert sum(counters.INFERENCE_CALLS.values()) - calls <= 2  # the folder's batch (cached after) + the query batch


def test_cli_evaluate_with_emphasis_measures_the_re_weighted_queries(style_model, eight, monkeypatch, capsys):
    monkeypatch.setattr(image_search, "default_embedder", lambda model=None: style_model)
    collection = index_folder(eight, style_model)
    labels = labels_from_names(collection.paths)
    for emphasis in ("0", "1"):
        assert image_search.main(["evaluate", str(eight), "--emphasis", emphasis]) == 0
        out = capsys.readouterr().out
        assert f"emphasis {float(emphasis):+.2f}" in out
        p5 = float(re.search(r"P@5: (\d\.\d+)", out).group(1))
        vectors = collection.vectors if emphasis == "0" else collection.vectors[:, SEGMENTS[-1].columns]
        assert p5 == pytest.approx(retrieval_metrics(vectors, labels)["P@5"], abs=1e-3)


@pytest.mark.parametrize("bad", ["2", "-1.5", "nan", "coarse"])
def test_cli_refuses_an_emphasis_outside_minus_one_to_one(bad, capsys):
    with pytest.raises(SystemExit) as exit_info:
        image_search.main(["search", "x.jpg", "--emphasis", bad])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "is not a number from -1 (fine) to 1 (coarse)" in err and "Traceback" not in err


def test_cli_search_with_an_unreadable_image_says_so_before_indexing(eight, tmp_path, monkeypatch, capsys, style_model):
    monkeypatch.setattr(image_search, "default_embedder", lambda model=None: style_model)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    good = next(eight.glob("*.jpg"))
    assert image_search.main(["search", str(good), str(broken), "--folder", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err
    assert load_image(good) is not None
