"""Front door of Style Search: index folders of images and rank them by style.

    image file -> load_image -> embedder.prepare -> embedder.embed(batch)
               -> EmbeddingCache (content hash + model id) -> index -> top-k -> page

    python image_search.py index [FOLDER] [--model auto|vgg19|lite0] [--backend exact|faiss|milvus [--milvus-uri URI]]
                                 [--engine local|ray [--ray-address ADDRESS] [--ray-token-file FILE]]
    python image_search.py search IMAGE [--folder F] [-k N] [--model auto|vgg19|lite0]
    python image_search.py evaluate FOLDER [--csv labels.csv] [--model auto|vgg19|lite0]
    python image_search.py download images-by-style

The code lives in ``lookalike.core`` (cache, vectors, maps, index backends) and ``lookalike.search``
(collections, ranking, sample collections, Ray); this module is its command line and re-exports its public API.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence
from pathlib import Path

from lookalike.core import backends
from lookalike.core.backends import BackendError, positional_index
from lookalike.core.backends.milvus_index import check_server, check_uri, is_server
from lookalike.core.cache import Embedder, EmbeddingCache, array_key, embed_with_cache, model_key
from lookalike.core.downloads import DownloadError
from lookalike.core.files import FolderError
from lookalike.core.images import ImageError, load_image
from lookalike.core.lite0 import BundledModelBroken
from lookalike.core.maps import MAP_SAMPLE, cached_map, place_on_map, project_2d, stratified_sample
from lookalike.core.progress import Progress, progress_printer
from lookalike.core.vectors import normalize, retrieval_metrics, top_k
from lookalike.core.weights import WeightsUnavailable
from lookalike.search import ray_engine
from lookalike.search.folders import Collection, FileHashes, IndexStats, count_images, index_folder
from lookalike.search.labels import labels_from_csv, labels_from_names
from lookalike.search.ranking import (
    SearchResult,
    index_location,
    rank,
    rank_with_index,
    search_by_style,
    sync_index,
)
from lookalike.search.samples import (
    DEFAULT_COLLECTION,
    download_images_by_style,
    has_images,
    museum_captions,
    museum_folder,
)
from lookalike.style.choice import STYLE_MODEL_CHOICES, UnknownStyleModel, load_style_model
from lookalike.style.vectors import StyleModel

__all__ = [
    "DEFAULT_COLLECTION", "MAP_SAMPLE", "Collection", "Embedder", "EmbeddingCache", "FileHashes", "IndexStats",
    "Progress", "SearchResult", "array_key", "cached_map", "count_images", "default_embedder",
    "download_images_by_style", "embed_with_cache", "has_images", "index_folder", "index_location", "labels_from_csv",
    "labels_from_names", "main", "model_key", "museum_captions", "museum_folder", "normalize", "place_on_map",
    "positional_index", "project_2d", "rank", "rank_with_index", "retrieval_metrics", "search_by_style",
    "stratified_sample", "sync_index", "top_k",
]


def default_embedder(model: str | None = None) -> Embedder:
    """The style search's embedder: compact style vectors from VGG19 or the bundled Lite0 (``--model``)."""
    embedder = load_style_model(model)
    if embedder.note:
        print(embedder.note, file=sys.stderr)
    return embedder


def _index_with_engine(args: argparse.Namespace) -> Collection:
    progress = progress_printer("Embedding")
    embedder = default_embedder(args.model)
    if getattr(args, "engine", "local") != "ray":
        return index_folder(args.folder, embedder, progress=progress)
    factory = functools.partial(StyleModel.load, embedder.config)
    return ray_engine.index_folder_ray(args.folder, factory, embedder.model_id, address=args.ray_address,
                                       token_file=args.ray_token_file, progress=progress)


def _check_milvus_first(args: argparse.Namespace) -> None:
    """A Milvus server that does not answer is reported before the embedding starts, not after an hour of it."""
    if getattr(args, "backend", None) == "milvus" and args.milvus_uri:
        uri = check_uri(args.milvus_uri)  # "host:19530" without a scheme is refused here, not after embedding
        if is_server(uri):
            check_server(uri)


def _backend_index(args: argparse.Namespace, collection: Collection) -> backends.VectorIndex | None:
    if not getattr(args, "backend", None) or len(collection) == 0:
        return None
    options = {"uri": args.milvus_uri, "collection": args.milvus_collection} if args.backend == "milvus" else {}
    index = sync_index(collection, args.backend, **options)
    print(f"{args.backend} index of {len(index)} vectors at {index_location(collection, args.backend)}")
    return index


def _cmd_index(args: argparse.Namespace) -> int:
    _check_milvus_first(args)
    if args.engine == "ray" and args.ray_address:  # join first: a wrong address or token fails before the model loads
        ray_engine.connect(args.ray_address, token_file=args.ray_token_file)
    collection = _index_with_engine(args)
    _backend_index(args, collection)
    stats = collection.stats
    print(
        f"{len(collection)} images indexed in {stats.seconds:.1f} s: "
        f"{stats.new} new, {stats.reused} reused, {stats.removed} removed, {stats.skipped} skipped"
    )
    for path, reason in collection.skipped:
        print(f"  skipped {path}: {reason}", file=sys.stderr)
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    embedder = default_embedder(args.model)
    collection = index_folder(args.folder, embedder, progress=progress_printer("Embedding"))
    index = _backend_index(args, collection)
    if index is None:
        results = search_by_style(load_image(args.image), collection, embedder, k=args.k)
    else:
        query = embedder.embed([embedder.prepare(load_image(args.image))])[0]
        results = rank_with_index(collection, index, query, args.k)
    for result in results:
        print(f"{result.rank:3d}  {result.score:.4f}  {result.path}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    collection = index_folder(args.folder, default_embedder(args.model), progress=progress_printer("Embedding"))
    labels = labels_from_csv(args.csv, collection.paths) if args.csv else labels_from_names(collection.paths)
    labelled = [i for i, label in enumerate(labels) if label]
    metrics = retrieval_metrics(collection.vectors[labelled], [labels[i] for i in labelled])
    print(f"{len(labelled)} labelled images, {len(set(labels) - {None})} labels")
    for name, value in metrics.items():
        print(f"{name:>4}: {value:.3f}")
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    if args.name != "images-by-style":
        print(f"Unknown dataset {args.name!r}; the one available is images-by-style.", file=sys.stderr)
        return 2
    saved = download_images_by_style(Path(args.to))
    print(f"{len(saved)} paintings in {args.to} (checksums verified)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="image_search.py", description="Index and search images by style.")
    commands = parser.add_subparsers(dest="command", required=True)
    index = commands.add_parser("index", help="embed a folder (incrementally) and cache the vectors")
    index.add_argument("folder", nargs="?", default=str(DEFAULT_COLLECTION))
    index.add_argument("--engine", choices=["local", "ray"], default="local", help="embed here, or with Ray Data")
    index.add_argument("--ray-address", help="a Ray cluster: ray://HEAD:10001, or HEAD:6379 on one of its nodes "
                       "(default: a local Ray instance)")
    index.add_argument("--ray-token-file", help="the cluster's token file, when it uses token authentication "
                       "(or set RAY_AUTH_TOKEN)")
    search = commands.add_parser("search", help="rank a folder by style similarity to an image")
    search.add_argument("image")
    search.add_argument("--folder", default=str(DEFAULT_COLLECTION))
    search.add_argument("-k", type=int, default=5)
    evaluate = commands.add_parser("evaluate", help="leave-one-out P@1, P@5 and mAP with labelled images")
    evaluate.add_argument("folder")
    evaluate.add_argument("--csv", type=Path, help="CSV of file,label (default: label = file-name prefix)")
    for command in (index, search, evaluate):
        command.add_argument("--model", choices=STYLE_MODEL_CHOICES, default=None,
                             help="style network (default: LOOKALIKE_STYLE_MODEL, else auto: VGG19 when its ImageNet "
                                  "weights load, else the bundled EfficientNet-Lite0)")
    for command in (index, search):
        command.add_argument("--backend", choices=sorted(backends.BACKENDS), help="also keep a saved index")
        command.add_argument("--milvus-uri", help="Milvus server URI (http://HOST:19530) or Milvus Lite .db file "
                             "(default: the last one used for this folder, else a .db next to the cache)")
        command.add_argument("--milvus-collection", help="the collection's name (default: one per folder and model)")
    download = commands.add_parser("download", help="fetch a sample collection (honours LOOKALIKE_MIRROR)")
    download.add_argument("name", choices=["images-by-style"])
    download.add_argument("--to", default=str(DEFAULT_COLLECTION))
    args = parser.parse_args(argv)
    handlers = {"index": _cmd_index, "search": _cmd_search, "evaluate": _cmd_evaluate, "download": _cmd_download}
    try:
        return handlers[args.command](args)
    except (ImageError, FolderError, DownloadError, WeightsUnavailable, BundledModelBroken, UnknownStyleModel,
            BackendError, ray_engine.ClusterError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
