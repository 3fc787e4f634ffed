"""Collections: incremental folder indexing through the embedding cache, ranking, labels, sample downloads
and the ``image_search.py`` command line."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import image_search
from lookalike.core.backends import positional_index
from lookalike.core.cache import EmbeddingCache, array_key, embed_with_cache
from lookalike.search.folders import index_folder
from lookalike.search.labels import labels_from_csv, labels_from_names
from lookalike.search.ranking import rank
from lookalike.search.samples import download_images_by_style
from tests.embedders import GridEmbedder
from tests.paths import PAINTINGS, SHARED_DATA


@pytest.fixture
def folder(copy_paintings) -> Path:
    return copy_paintings(slice(None, None, 4))  # 8 paintings, both styles


def index(folder, embedder, cache_root, **options):
    cache = EmbeddingCache(embedder.model_id, root=cache_root / "embeddings")
    return index_folder(folder, embedder, cache=cache, batch_size=3, **options)


def test_index_then_reuse_everything(folder, cache_root):
    embedder = GridEmbedder()
    first = index(folder, embedder, cache_root)
    assert (first.stats.new, first.stats.reused, len(first)) == (8, 0, 8)
    second = index(folder, embedder, cache_root)
    assert (second.stats.new, second.stats.reused) == (0, 8)
    assert embedder.embedded == 8
    np.testing.assert_allclose(first.vectors, second.vectors)


def test_adding_changing_and_removing_files_is_incremental(folder, cache_root):
    embedder = GridEmbedder()
    index(folder, embedder, cache_root)
    shutil.copy(sorted(PAINTINGS.glob("*.jpg"))[1], folder / "added.jpg")
    (folder / "s_cubism-01.jpg").unlink()
    changed = folder / "s_cubism-05.jpg"
    changed.write_bytes(sorted(PAINTINGS.glob("*.jpg"))[2].read_bytes())
    collection = index(folder, embedder, cache_root)
    assert (collection.stats.new, collection.stats.removed, len(collection)) == (2, 1, 8)
    assert embedder.embedded == 8 + 2
    assert "s_cubism-01.jpg" not in {p.name for p in collection.paths}


def test_cache_is_keyed_by_content_not_path(folder, cache_root, tmp_path):
    embedder = GridEmbedder()
    index(folder, embedder, cache_root)
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    assert index(copy, embedder, cache_root).stats.reused == 8
    assert embedder.embedded == 8


def test_another_model_id_does_not_reuse_vectors(folder, cache_root):
    index(folder, GridEmbedder(), cache_root)
    other = GridEmbedder()
    other.model_id = "test-grid-v2"
    assert index(folder, other, cache_root).stats.new == 8


def test_interrupted_run_keeps_finished_checkpoints(folder, cache_root):
    with pytest.raises(RuntimeError, match="interrupted"):
        index(folder, GridEmbedder(fail_after=6), cache_root, checkpoint_every=3)
    resumed = GridEmbedder()
    collection = index(folder, resumed, cache_root)
    assert collection.stats.reused == 6 and resumed.embedded == 2 and len(collection) == 8


def test_truncated_or_foreign_shards_are_rebuilt(folder, cache_root):
    embedder = GridEmbedder()
    index(folder, embedder, cache_root)
    shard = next((cache_root / "embeddings").rglob("shard-*.npz"))
    shard.write_bytes(shard.read_bytes()[:100])
    again = index(folder, embedder, cache_root)
    assert again.stats.new == 8 and len(again) == 8
    # A shard that holds an object (pickled) array is refused, never unpickled.
    bad = shard.parent / "shard-99999999999999999999-1.npz"
    np.savez(bad, keys=np.array([object()], dtype=object), vectors=np.zeros((1, 48), np.float32),
             model_id=np.asarray(embedder.model_id))
    cache = EmbeddingCache(embedder.model_id, root=cache_root / "embeddings")
    assert len(cache) == 8 and bad in cache.rejected_shards and not bad.exists()


def test_bad_files_are_skipped_and_listed(folder, cache_root):
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "empty.png").write_bytes(b"")
    collection = index(folder, GridEmbedder(), cache_root)
    assert len(collection) == 8
    assert sorted(path.name for path, _ in collection.skipped) == ["broken.jpg", "empty.png"]


def test_compact_drops_unused_keys(folder, cache_root):
    embedder = GridEmbedder()
    collection = index(folder, embedder, cache_root, checkpoint_every=2)
    cache = EmbeddingCache(embedder.model_id, root=cache_root / "embeddings")
    cache.compact(keep=set(collection.keys[:5]))
    assert len(list(cache.folder.glob("shard-*.npz"))) == 1
    assert len(EmbeddingCache(embedder.model_id, root=cache_root / "embeddings")) == 5


def test_embed_with_cache_only_embeds_misses(cache_root):
    embedder = GridEmbedder()
    images = [np.full((8, 8, 3), value, np.uint8) for value in (10, 50, 90)]
    keys = [array_key(image) for image in images]
    cache = EmbeddingCache(embedder.model_id, root=cache_root)
    first = embed_with_cache(keys[:2], lambda i: images[i], embedder, cache, batch_size=2)
    both = embed_with_cache(keys, lambda i: images[i], embedder, cache, batch_size=2)
    assert embedder.embedded == 3
    np.testing.assert_allclose(both[:2], first)


def test_labels_from_names_and_csv(tmp_path):
    paths = [Path("s_cubism-01.jpg"), Path("s_impressionist-12.jpg"), Path("x/monet-1.png")]
    assert labels_from_names(paths) == ["cubism", "impressionist", "monet"]
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("file,label\ns_cubism-01.jpg,a\nx/monet-1.png,b\n")
    assert labels_from_csv(csv_file, paths) == ["a", None, "b"]


def test_download_images_by_style_from_a_mirror(tmp_path, mirror_server):
    saved = download_images_by_style(tmp_path / "ibs", mirror=mirror_server)
    assert len(saved) == 32
    assert all(path.read_bytes() == (PAINTINGS / path.name).read_bytes() for path in saved)
    again = download_images_by_style(tmp_path / "from-folder", mirror=str(SHARED_DATA))
    assert sorted(p.name for p in again) == sorted(p.name for p in saved)


def test_cli_download_honours_the_mirror_variable(tmp_path, mirror_server, monkeypatch, capsys):
    monkeypatch.setenv("LOOKALIKE_MIRROR", mirror_server)
    assert image_search.main(["download", "images-by-style", "--to", str(tmp_path)]) == 0
    assert "32 paintings" in capsys.readouterr().out
    assert len(list(tmp_path.glob("*.jpg"))) == 32


def test_cli_index_and_search_print_counts_and_ranks(folder, capsys, monkeypatch):
    monkeypatch.setattr(image_search, "default_embedder", lambda _choice=None: GridEmbedder())
    assert image_search.main(["index", str(folder)]) == 0
    assert "8 new, 0 reused, 0 removed" in capsys.readouterr().out
    assert image_search.main(["index", str(folder)]) == 0
    assert "0 new, 8 reused" in capsys.readouterr().out
    query = next(folder.glob("*.jpg"))
    assert image_search.main(["search", str(query), "--folder", str(folder), "-k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0].split()[0] == "1" and lines[0].endswith(query.name)


def test_cli_reports_missing_folder_without_traceback(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(image_search, "default_embedder", lambda _choice=None: GridEmbedder())
    assert image_search.main(["index", str(tmp_path / "gone")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_cli_evaluate_prints_metrics(folder, capsys, monkeypatch):
    monkeypatch.setattr(image_search, "default_embedder", lambda _choice=None: GridEmbedder())
    assert image_search.main(["evaluate", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "8 labelled images, 2 labels" in out and "P@5" in out and "mAP" in out


def test_rank_through_a_backend_index_matches_numpy(folder, cache_root):
    collection = index(folder, GridEmbedder(), cache_root)
    backend_index = positional_index(collection.vectors)
    query = collection.vectors[3] + 0.01
    plain = rank(collection, query, 5)
    indexed = rank(collection, query, 5, backend_index)
    assert [r.path for r in indexed] == [r.path for r in plain]
    np.testing.assert_allclose([r.score for r in indexed], [r.score for r in plain], rtol=1e-5)
